/*
 * The record scanner (ndj_scan) against cJSON. Where both take a line they must agree
 * on every top-level member: same keys in the same order, same values (each member's
 * raw text parsed alone equals cJSON's item), ndj_string and ndj_int as cJSON reads
 * them. Where cJSON takes a line the scanner refuses, the scanner's reason must be
 * one it is stricter about on purpose, and true of the line.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                            \
	do {                                                                                                 \
		fprintf(stderr, __VA_ARGS__);                                                                \
		abort();                                                                                     \
	} while (0)

/* Whether some object in the tree has two equal keys. */
static int
has_duplicate(const cJSON *v)
{
	const cJSON *a, *b;

	for (a = v->child; a != NULL; a = a->next) {
		if (cJSON_IsObject(v))
			for (b = a->next; b != NULL; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return 1;
		if (has_duplicate(a))
			return 1;
	}
	return 0;
}

static int
depth_of(const cJSON *v)
{
	const cJSON *c;
	int d = 0, cd;

	for (c = v->child; c != NULL; c = c->next)
		if ((cd = depth_of(c)) > d)
			d = cd;
	return d + (cJSON_IsArray(v) || cJSON_IsObject(v));
}

/*
 * Equal trees, in order. Not cJSON_Compare: it compares numbers within an epsilon, and
 * 1e400 (inf) then differs from itself.
 */
static int
same(const cJSON *a, const cJSON *b)
{
	if ((a->type & 0xff) != (b->type & 0xff))
		return 0;
	if (cJSON_IsNumber(a))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	for (a = a->child, b = b->child; a != NULL && b != NULL; a = a->next, b = b->next)
		if ((a->string != NULL && strcmp(a->string, b->string) != 0) || !same(a, b))
			return 0;
	return a == NULL && b == NULL;
}

/* cJSON's parse of exactly these bytes (trailing whitespace allowed), or NULL. */
static cJSON *
cjson_exact(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);

	if (v == NULL)
		return NULL;
	while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != text + len) {
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}

static void
compare_members(const struct ndj_record *r, const cJSON *tree)
{
	const cJSON *item = tree->child;
	struct buf s = BUF_INIT;
	size_t i;

	for (i = 0; i < r->nmembers; i++, item = item->next) {
		const struct ndj_member *m = &r->members[i];
		cJSON *alone;
		int64_t n;

		if (item == NULL)
			FAIL("cJSON has fewer members than the scanner's %zu\n", r->nmembers);
		if (strlen(item->string) != m->key_len || memcmp(item->string, m->key, m->key_len) != 0)
			FAIL("member %zu: key %s in cJSON, %.*s in the scanner\n", i, item->string,
			     (int)m->key_len, m->key);
		alone = cJSON_ParseWithLength(m->val, m->val_len);
		if (alone == NULL || !same(alone, item))
			FAIL("member %s: the scanner's value %.*s is not cJSON's\n", item->string,
			     (int)m->val_len, m->val);
		cJSON_Delete(alone);
		if (ndj_string(m, &s) == 0 &&
		    (!cJSON_IsString(item) || strcmp(s.data, item->valuestring) != 0 ||
		     strlen(item->valuestring) != s.len))
			FAIL("member %s: ndj_string gives %s\n", item->string, s.data);
		if (ndj_int(m, &n) == 0 && (!cJSON_IsNumber(item) || (n > -(1LL << 52) && n < (1LL << 52) &&
								      item->valuedouble != (double)n)))
			FAIL("member %s: ndj_int gives %lld\n", item->string, (long long)n);
	}
	if (item != NULL)
		FAIL("cJSON has more members than the scanner's %zu\n", r->nmembers);
	buf_free(&s);
}

/* Whether the scanner stopped inside what cJSON takes for one number: 0001, 1., 1.e5. */
static int
lax_number(const char *e, const char *line, size_t len)
{
	const char *at = strstr(e, "(byte ");
	size_t pos;

	if (at == NULL || (pos = strtoul(at + 6, NULL, 10)) < 2 || pos > len)
		return 0;
	return strchr("0123456789.eE+-", line[pos - 1]) != NULL &&
	       strchr("0123456789.", line[pos - 2]) != NULL;
}

/* The scanner refused a line cJSON takes: the reason must be a deliberate one, and true. */
static void
check_refusal(const struct ndj_record *r, const cJSON *tree, const char *line, size_t len)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(tree, "kind");
	const char *e = r->err;

	if (strstr(e, "duplicate key") != NULL) {
		if (!has_duplicate(tree))
			FAIL("no duplicate key in cJSON's view: %s\n", e);
	} else if (strstr(e, "no \"kind\" string") != NULL) {
		if (cJSON_IsObject(tree) && cJSON_IsString(kind))
			FAIL("cJSON finds a kind string: %s\n", e);
	} else if (strstr(e, "not a JSON object") != NULL) {
		if (cJSON_IsObject(tree))
			FAIL("cJSON reads an object: %s\n", e);
	} else if (strstr(e, "nested deeper than 512") != NULL) {
		if (depth_of(tree) <= NDJ_MAX_DEPTH)
			FAIL("cJSON finds depth %d: %s\n", depth_of(tree), e);
	} else if (strstr(e, "surrogate") != NULL || strstr(e, "\\u0000") != NULL ||
		   strstr(e, "bad \\u") != NULL) {
		/* cJSON reads a bad hex digit as 0 and takes lone surrogates in some places. */
		if (memmem(line, len, "\\u", 2) == NULL)
			FAIL("no \\u escape: %s\n", e);
	} else if (lax_number(e, line, len)) {
		/* cJSON reads "01" and "1." as numbers; a number ends at "0" or "." for us. */
	} else if (strstr(e, "invalid UTF-8") == NULL && strstr(e, "control character") == NULL &&
		   strstr(e, "NUL byte") == NULL && strstr(e, "bad number") == NULL) {
		/* cJSON does not check UTF-8 or control characters, and takes 01 and 1. */
		FAIL("the scanner refused what cJSON takes: %s\n", e);
	}
}

/* cJSON takes every byte up to 0x20, NUL too, for whitespace: there it is no judge. */
static int
has_control(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ndj_record r = { 0 };
	char *line = malloc(size + 1);
	cJSON *tree;
	int ok;

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	ok = ndj_scan(&r, line, size) == 0;
	tree = cjson_exact(line, size);
	if (ok) {
		if (tree == NULL || !cJSON_IsObject(tree))
			FAIL("the scanner took a line that cJSON refuses\n");
		if (has_duplicate(tree))
			FAIL("the scanner took a line with a duplicate key\n");
		compare_members(&r, tree);
		if (strcmp(r.kind, cJSON_GetObjectItemCaseSensitive(tree, "kind")->valuestring) != 0)
			FAIL("kind differs\n");
	} else if (tree != NULL && !has_control(line, size)) {
		check_refusal(&r, tree, line, size);
	}
	cJSON_Delete(tree);
	ndj_record_free(&r);
	free(line);
	return 0;
}
