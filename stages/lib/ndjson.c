/*
 * The NDJSON layer every stage stands on. A line is checked by a single-pass,
 * non-recursive scanner that also notes where each top-level member lies, so that
 * records can be passed on byte for byte and extended without re-serializing them:
 * numbers, escapes and the "raw" audit copy stay exactly as the source wrote them.
 */
#include "ndjson.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exits.h"
#include "log.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- scanning ---------------------------------------------------------- */

struct scan {
	const char *start, *p, *end;
	struct ndj_record *r;
	const char *why;
	size_t nkeys;	   /* keys of the open objects, in r->keys */
	char why_buf[160]; /* a reason that names something (a duplicate key) */
};

/* A key of an open object: its decoded bytes are in the line or, escaped, in r->arena. */
struct ndj_key {
	uint32_t hash, len;
	size_t off;  /* of the decoded bytes, in the line or in the arena */
	size_t pos;  /* of the key's opening quote in the line */
	int decoded; /* off is in r->arena */
};

static void decode_string(const char *lit, size_t len, struct buf *out);

static int
scan_fail(struct scan *s, const char *why)
{
	s->why = why;
	return -1;
}

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Length of the UTF-8 sequence at p (1 to 4), or 0 when it is not valid UTF-8. */
static int
utf8_length(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	int n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (end - p < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned
hex4(const char *p)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Check a string literal starting at s->p (the opening quote); leave p after it. */
/* Whether p (a backslash) starts a \uXXXX escape that ends before end. */
static int
is_u_escape(const unsigned char *p, const unsigned char *end)
{
	return end - p >= 6 && p[0] == '\\' && p[1] == 'u' && is_hex((char)p[2]) && is_hex((char)p[3]) &&
	       is_hex((char)p[4]) && is_hex((char)p[5]);
}

static int
scan_string(struct scan *s, int *escaped)
{
	const unsigned char *p = (const unsigned char *)s->p + 1;
	const unsigned char *end = (const unsigned char *)s->end;
	unsigned cp;

	*escaped = 0;
	for (;;) {
		/* The common case: a run of plain printable ASCII, 16 bytes at a time. */
#ifdef __SSE2__
		while (end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
			/* Signed: bytes of 0x80 and above are negative, so "< 0x20" finds them too. */
			__m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
								    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
						       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
			int mask = _mm_movemask_epi8(special);

			if (mask != 0) {
				p += __builtin_ctz((unsigned)mask);
				break;
			}
			p += 16;
		}
#endif
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p >= end)
			return scan_fail(s, "the line ends inside a string (truncated?)");
		if (*p == '"') {
			s->p = (const char *)p + 1;
			return 0;
		}
		if (*p == '\\') {
			*escaped = 1;
			if (p + 1 >= end)
				return scan_fail(s, "the line ends inside a string (truncated?)");
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				break;
			case 'u':
				if (!is_u_escape(p, end)) {
					s->p = (const char *)p;
					return scan_fail(s, "bad \\u escape in a string");
				}
				/*
				 * What cJSON, PostgreSQL and C strings would read differently is
				 * refused: U+0000 (a C string ends there) and a surrogate that is
				 * not half of a pair (no character at all).
				 */
				cp = hex4((const char *)p + 2);
				s->p = (const char *)p;
				if (cp == 0)
					return scan_fail(s, "\\u0000 in a string (NUL is not allowed)");
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return scan_fail(s, "lone surrogate in a string: a low surrogate "
							    "(\\uDC00-\\uDFFF) with no high one before it");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (!is_u_escape(p + 6, end) ||
					    (hex4((const char *)p + 8) & 0xfc00) != 0xdc00)
						return scan_fail(
							s, "lone surrogate in a string: a high surrogate "
							   "(\\uD800-\\uDBFF) not followed by a low one");
					p += 6;
				}
				p += 6;
				break;
			default:
				s->p = (const char *)p;
				return scan_fail(s, "bad escape in a string");
			}
		} else if (*p < 0x20) {
			s->p = (const char *)p;
			return scan_fail(s, *p == 0 ? "NUL byte in a string"
						    : "control character in a string (must be escaped)");
		} else {
			int n = utf8_length(p, end);

			if (n == 0) {
				s->p = (const char *)p;
				return scan_fail(s, "invalid UTF-8 in a string");
			}
			p += n;
		}
	}
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
scan_number(struct scan *s)
{
	const char *p = s->p;

	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end || !is_digit(*p))
		return scan_fail(s, "bad number");
	if (*p == '0')
		p++;
	else
		while (p < s->end && is_digit(*p))
			p++;
	if (p < s->end && *p == '.') {
		p++;
		if (p >= s->end || !is_digit(*p))
			return scan_fail(s, "bad number");
		while (p < s->end && is_digit(*p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || !is_digit(*p))
			return scan_fail(s, "bad number");
		while (p < s->end && is_digit(*p))
			p++;
	}
	s->p = p;
	return 0;
}

static int
scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return scan_fail(s, "unexpected character");
	s->p += n;
	return 0;
}

static struct ndj_member *
new_member(struct ndj_record *r)
{
	BUF_ALLOC_GROW(r->members, r->nmembers + 1, r->members_cap);
	memset(&r->members[r->nmembers], 0, sizeof(r->members[0]));
	return &r->members[r->nmembers++];
}

enum { WANT_VALUE, WANT_KEY, AFTER_VALUE };

static const char *
key_bytes(const struct scan *s, const struct ndj_key *k)
{
	return k->decoded ? s->r->arena.data + k->off : s->start + k->off;
}

/* Note a key of the innermost open object: its decoded bytes at off, and their hash. */
static void
push_key(struct scan *s, const char *lit, size_t off, size_t len, int decoded)
{
	struct ndj_record *r = s->r;
	struct ndj_key *k;

	BUF_ALLOC_GROW(r->keys, s->nkeys + 1, r->keys_cap);
	k = &r->keys[s->nkeys++];
	k->off = off;
	k->len = (uint32_t)len;
	k->decoded = decoded;
	k->pos = (size_t)(lit - s->start);
	k->hash = 0; /* computed only when the object has many keys */
}

static void
hash_key(const struct scan *s, struct ndj_key *k)
{
	const unsigned char *b = (const unsigned char *)key_bytes(s, k);
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < k->len; i++)
		h = (h ^ b[i]) * 16777619u;
	k->hash = h;
}

static int
key_cmp(const void *a, const void *b, void *ctx)
{
	const struct ndj_key *x = a, *y = b;
	int c;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(key_bytes(ctx, x), key_bytes(ctx, y), x->len);
	if (c != 0)
		return c;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static int
key_eq(const struct scan *s, const struct ndj_key *x, const struct ndj_key *y)
{
	return x->hash == y->hash && x->len == y->len &&
	       memcmp(key_bytes(s, x), key_bytes(s, y), x->len) == 0;
}

/*
 * An object closes: fail if two of its keys (r->keys[first..]) are equal, naming the
 * key whose second occurrence comes first. Few keys are compared pairwise; many go
 * through a hash table, so that no object makes this quadratic.
 */
static int
check_keys(struct scan *s, size_t first, int top)
{
	struct ndj_key *k = s->r->keys + first, *dup = NULL;
	size_t n = s->nkeys - first, i, j, o = 0;
	const unsigned char *b;

	if (n <= 8) {
		for (j = 1; j < n && dup == NULL; j++)
			for (i = 0; i < j && dup == NULL; i++)
				if (key_eq(s, &k[i], &k[j]))
					dup = &k[j];
	} else {
		/*
		 * An open-addressing table of at least twice as many slots as keys, each the
		 * index + 1 of a key; keys go in in the order they came, so the first key
		 * found in the table already is the first second occurrence.
		 */
		size_t size = 16, mask, h, probes = 0;
		uint32_t *slot;

		while (size < 2 * n)
			size *= 2;
		BUF_ALLOC_GROW(s->r->slots, size, s->r->slots_cap);
		slot = s->r->slots;
		memset(slot, 0, size * sizeof(*slot));
		mask = size - 1;
		for (j = 0; j < n && dup == NULL && probes <= 8 * n; j++) {
			hash_key(s, &k[j]);
			for (h = k[j].hash & mask; slot[h] != 0; h = (h + 1) & mask, probes++)
				if (key_eq(s, &k[slot[h] - 1], &k[j])) {
					dup = &k[j];
					break;
				}
			slot[h] = (uint32_t)(j + 1);
		}
		if (probes > 8 * n) {
			/* Keys made to collide: sorted instead, never quadratic. */
			for (i = 0; i < n; i++)
				hash_key(s, &k[i]);
			qsort_r(k, n, sizeof(*k), key_cmp, s);
			for (i = 1, dup = NULL; i < n; i++)
				if (key_eq(s, &k[i - 1], &k[i]) && (dup == NULL || k[i].pos < dup->pos))
					dup = &k[i];
		}
	}
	s->nkeys = first;
	if (dup == NULL)
		return 0;
	/* Name the key printably: it may hold anything. */
	o = (size_t)snprintf(s->why_buf, sizeof(s->why_buf), "duplicate key \"");
	b = (const unsigned char *)key_bytes(s, dup);
	for (i = 0; i < dup->len && o < 60; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
			s->why_buf[o++] = (char)b[i];
		else
			o += (size_t)snprintf(s->why_buf + o, sizeof(s->why_buf) - o, "\\x%02x", b[i]);
	}
	snprintf(s->why_buf + o, sizeof(s->why_buf) - o, "%s\" in %s", i < dup->len ? "..." : "",
		 top ? "the record" : "a nested object");
	s->p = s->start + dup->pos;
	s->why = s->why_buf;
	return -1;
}

static int
scan_line(struct scan *s)
{
	char stack[NDJ_MAX_DEPTH];
	size_t first_key[NDJ_MAX_DEPTH]; /* where each open object's keys start in r->keys */
	int depth = 0, state = WANT_VALUE, escaped;
	struct ndj_record *r = s->r;
	struct ndj_member *m = NULL;
	const char *lit;

	skip_ws(s);
	if (s->p >= s->end)
		return scan_fail(s, "empty line");
	if (*s->p != '{')
		return scan_fail(s, "not a JSON object");
	for (;;) {
		if (state == AFTER_VALUE && depth == 1 && m != NULL && m->val_len == 0)
			m->val_len = (size_t)(s->p - m->val);
		skip_ws(s);
		if (state == AFTER_VALUE) {
			if (depth == 0)
				break;
			if (s->p >= s->end)
				return scan_fail(s, "the line ends inside an object or array (truncated?)");
			if (*s->p == ',') {
				s->p++;
				state = stack[depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
			} else if (*s->p == (stack[depth - 1] == '{' ? '}' : ']')) {
				if (stack[depth - 1] == '{' &&
				    check_keys(s, first_key[depth - 1], depth == 1) < 0)
					return -1;
				s->p++;
				depth--;
			} else {
				return scan_fail(s, "expected ',' or a closing bracket");
			}
			continue;
		}
		if (s->p >= s->end)
			return scan_fail(s, "the line ends where a value should be (truncated?)");
		if (state == WANT_KEY) {
			if (*s->p != '"')
				return scan_fail(s, "expected a member name in quotes");
			lit = s->p;
			if (scan_string(s, &escaped) < 0)
				return -1;
			if (escaped) {
				/* The arena may move as it grows: keep an offset for now. */
				size_t off = r->arena.len;

				decode_string(lit, (size_t)(s->p - lit), &r->arena);
				push_key(s, lit, off, r->arena.len - off, 1);
			} else {
				push_key(s, lit, (size_t)(lit + 1 - s->start), (size_t)(s->p - lit) - 2, 0);
			}
			if (depth == 1) {
				m = new_member(r);
				m->text = lit;
				if (escaped) {
					m->key_off = r->keys[s->nkeys - 1].off;
					m->key_len = r->keys[s->nkeys - 1].len;
				} else {
					m->key = lit + 1;
					m->key_len = (size_t)(s->p - lit) - 2;
				}
			}
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return scan_fail(s, "expected ':' after a member name");
			s->p++;
			skip_ws(s);
			if (depth == 1)
				m->val = s->p;
			state = WANT_VALUE;
			continue;
		}
		/* WANT_VALUE */
		switch (*s->p) {
		case '{':
		case '[':
			if (depth == NDJ_MAX_DEPTH)
				return scan_fail(s, "nested deeper than 512 levels");
			first_key[depth] = s->nkeys;
			stack[depth++] = *s->p;
			s->p++;
			skip_ws(s);
			if (s->p < s->end && *s->p == (stack[depth - 1] == '{' ? '}' : ']')) {
				s->p++;
				depth--;
				state = AFTER_VALUE;
			} else {
				state = stack[depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
			}
			continue;
		case '"':
			if (scan_string(s, &escaped) < 0)
				return -1;
			break;
		case 't':
			if (scan_literal(s, "true") < 0)
				return -1;
			break;
		case 'f':
			if (scan_literal(s, "false") < 0)
				return -1;
			break;
		case 'n':
			if (scan_literal(s, "null") < 0)
				return -1;
			break;
		default:
			if (*s->p == '-' || is_digit(*s->p)) {
				if (scan_number(s) < 0)
					return -1;
				break;
			}
			return scan_fail(s, *s->p == '\0' ? "NUL byte" : "unexpected character");
		}
		state = AFTER_VALUE;
	}
	if (s->p != s->end)
		return scan_fail(s, *s->p == '\0' ? "NUL byte after the object"
						  : "more after the end of the object");
	return 0;
}

void
ndj_record_free(struct ndj_record *r)
{
	free(r->members);
	r->members = NULL;
	r->nmembers = r->members_cap = 0;
	free(r->keys);
	r->keys = NULL;
	r->keys_cap = 0;
	free(r->slots);
	r->slots = NULL;
	r->slots_cap = 0;
	buf_free(&r->arena);
	buf_free(&r->kind_buf);
}

/* Scan line into r: the checks and the index of ndj_scan(), without the "kind". */
static int
scan_record(struct ndj_record *r, char *line, size_t len)
{
	struct scan s = { line, line, line + len, r, NULL, 0, "" };
	size_t i;

	r->line = line;
	r->len = len;
	r->nmembers = 0;
	r->kind = NULL;
	r->err[0] = '\0';
	buf_reset(&r->arena);
	if (scan_line(&s) < 0) {
		snprintf(r->err, sizeof(r->err), "%s%s (byte %zu)",
			 s.why == s.why_buf ? "" : "not valid JSON: ", s.why, (size_t)(s.p - s.start) + 1);
		return -1;
	}
	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].key == NULL)
			r->members[i].key = r->arena.data + r->members[i].key_off;
	return 0;
}

int
ndj_check_object(const char *text, size_t len, char *err, size_t errlen)
{
	struct ndj_record r = { 0 };
	int rc;

	/* The scanner only reads the line; the cast is for the record's type. */
	rc = scan_record(&r, (char *)(uintptr_t)text, len);
	if (rc < 0)
		snprintf(err, errlen, "%s", r.err);
	ndj_record_free(&r);
	return rc;
}

int
ndj_scan(struct ndj_record *r, char *line, size_t len)
{
	const struct ndj_member *kind;

	if (scan_record(r, line, len) < 0)
		return -1;
	kind = ndj_get(r, "kind");
	if (kind == NULL || kind->val[0] != '"') {
		snprintf(r->err, sizeof(r->err), "the record has no \"kind\" string");
		return -1;
	}
	buf_reset(&r->kind_buf);
	decode_string(kind->val, kind->val_len, &r->kind_buf);
	r->kind = r->kind_buf.data;
	return 0;
}

const struct ndj_member *
ndj_get(const struct ndj_record *r, const char *key)
{
	size_t klen = strlen(key), i;

	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].key_len == klen && memcmp(r->members[i].key, key, klen) == 0)
			return &r->members[i];
	return NULL;
}

int
ndj_is_null(const struct ndj_member *m)
{
	return m == NULL || (m->val_len == 4 && memcmp(m->val, "null", 4) == 0);
}

int
ndj_bool(const struct ndj_member *m, int *v)
{
	*v = 0;
	if (m == NULL)
		return 1;
	if (m->val_len == 4 && memcmp(m->val, "true", 4) == 0) {
		*v = 1;
		return 0;
	}
	return m->val_len == 5 && memcmp(m->val, "false", 5) == 0 ? 0 : -1;
}

int
ndj_is_true(const struct ndj_member *m)
{
	int v;

	return ndj_bool(m, &v) == 0 && v;
}

static void
add_utf8(struct buf *out, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		u[0] = (char)cp;
		buf_add(out, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 4);
	}
}

/* Decode a JSON string literal (quotes included, already checked) into out, appending. */
static void
decode_string(const char *lit, size_t len, struct buf *out)
{
	const char *p = lit + 1, *end = lit + len - 1, *run;

	buf_grow(out, len);
	while (p < end) {
		unsigned cp;

		run = p;
		while (p < end && *p != '\\')
			p++;
		buf_add(out, run, (size_t)(p - run));
		if (p >= end)
			break;
		switch (p[1]) {
		case 'b':
			buf_addc(out, '\b');
			p += 2;
			continue;
		case 'f':
			buf_addc(out, '\f');
			p += 2;
			continue;
		case 'n':
			buf_addc(out, '\n');
			p += 2;
			continue;
		case 'r':
			buf_addc(out, '\r');
			p += 2;
			continue;
		case 't':
			buf_addc(out, '\t');
			p += 2;
			continue;
		case 'u':
			break;
		default:
			buf_addc(out, p[1]);
			p += 2;
			continue;
		}
		cp = hex4(p + 2);
		p += 6;
		if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
			unsigned low = hex4(p + 2);

			if (low >= 0xdc00 && low <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
				p += 6;
			}
		}
		/* A lone surrogate cannot be UTF-8: it becomes U+FFFD. */
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd;
		add_utf8(out, cp);
	}
}

void
ndj_decode_string(const char *lit, size_t len, struct buf *out)
{
	decode_string(lit, len, out);
}

int
ndj_string(const struct ndj_member *m, struct buf *out)
{
	buf_reset(out);
	buf_grow(out, 0);
	if (ndj_is_null(m))
		return 1;
	if (m->val[0] != '"')
		return -1;
	decode_string(m->val, m->val_len, out);
	return 0;
}

int
ndj_int(const struct ndj_member *m, int64_t *v)
{
	const char *p, *end;
	int neg = 0;
	uint64_t acc = 0, limit;

	if (ndj_is_null(m))
		return 1;
	p = m->val;
	end = p + m->val_len;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p == end)
		return -1;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return -1;
		if (acc > (limit - (uint64_t)(*p - '0')) / 10)
			return -1;
		acc = acc * 10 + (uint64_t)(*p - '0');
	}
	*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

static int out_errno; /* the first output error, 0 while output is fine */

static int
out_check(void)
{
	if (out_errno == 0 && ferror(stdout))
		out_errno = errno ? errno : EIO;
	return out_errno ? -1 : 0;
}

int
ndj_write(const void *data, size_t len)
{
	if (out_errno)
		return -1;
	if (len && fwrite(data, 1, len, stdout) != len)
		return out_check();
	return 0;
}

int
ndj_flush(void)
{
	if (out_errno)
		return -1;
	if (fflush(stdout) != 0)
		return out_check();
	return 0;
}

int
ndj_output_failed(void)
{
	return out_errno != 0;
}

int
ndj_close_output(void)
{
	if (fclose(stdout) != 0 && out_errno == 0)
		out_errno = errno ? errno : EIO;
	if (out_errno == 0 || out_errno == EPIPE)
		return EXIT_OK;
	log_error("cannot write standard output: %s", strerror(out_errno));
	return EXIT_IOERR;
}

int
ndj_pass(const struct ndj_record *r)
{
	ndj_write(r->line, r->len);
	return ndj_write("\n", 1);
}

/* Whether m is one of the ndrop names of drop, whose lengths are in lens. */
static int
dropped(const struct ndj_member *m, const char *const *drop, const size_t *lens, size_t ndrop)
{
	size_t i;

	for (i = 0; i < ndrop; i++)
		if (lens[i] == m->key_len && memcmp(drop[i], m->key, m->key_len) == 0)
			return 1;
	return 0;
}

int
ndj_write_edited(const struct ndj_record *r, const char *const *drop, size_t ndrop, const char *extra,
		 size_t extra_len)
{
	size_t i, kept = 0, ndropped = 0, lens[NDJ_MAX_DROP];
	const char *close;

	if (ndrop > NDJ_MAX_DROP)
		ndrop = NDJ_MAX_DROP;
	for (i = 0; i < ndrop; i++)
		lens[i] = strlen(drop[i]);
	for (i = 0; i < r->nmembers; i++)
		ndropped += (size_t)dropped(&r->members[i], drop, lens, ndrop);
	if (ndropped == 0) {
		/* The usual case: copy the record up to its closing brace. */
		close = r->line + r->len;
		while (*--close != '}')
			;
		while (close > r->line && (close[-1] == ' ' || close[-1] == '\t' || close[-1] == '\r'))
			close--;
		ndj_write(r->line, (size_t)(close - r->line));
		if (r->nmembers && extra_len)
			ndj_write(",", 1);
	} else {
		ndj_write("{", 1);
		for (i = 0; i < r->nmembers; i++) {
			const struct ndj_member *m = &r->members[i];
			const char *run_end = m->val + m->val_len;

			if (dropped(m, drop, lens, ndrop))
				continue;
			/* Kept members that follow one another with a bare comma go out in one write. */
			while (i + 1 < r->nmembers && r->members[i + 1].text == run_end + 1 &&
			       *run_end == ',' && !dropped(&r->members[i + 1], drop, lens, ndrop)) {
				i++;
				run_end = r->members[i].val + r->members[i].val_len;
			}
			if (kept++)
				ndj_write(",", 1);
			ndj_write(m->text, (size_t)(run_end - m->text));
		}
		if (kept && extra_len)
			ndj_write(",", 1);
	}
	ndj_write(extra, extra_len);
	return ndj_write("}\n", 2);
}

/* ---- reading ----------------------------------------------------------- */

/* What ndj_set_idle() asked to run before a read that would block. */
static int (*idle_fn)(void *);
static void *idle_ctx;
static int idle_status;
/* The reader of ndj_run(), for ndj_input_waiting(). */
static struct reader *current_reader;

struct reader {
	char *buf;
	size_t cap, start, end; /* unread bytes are buf[start..end) */
	int eof;
	int error;	/* errno of a failed read */
	int discarding; /* skipping the rest of an overlong line */
};

#define READ_CHUNK ((size_t)1 << 16)

/*
 * Fill the buffer. Before a read that would block, push our output out, so that in a
 * live pipeline no record waits in a buffer while this stage waits for input.
 */
static int
reader_fill(struct reader *rd)
{
	struct pollfd pfd = { 0, POLLIN, 0 };
	ssize_t n;

	if (rd->start > 0 && (rd->start == rd->end || rd->end + READ_CHUNK > rd->cap)) {
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->end -= rd->start;
		rd->start = 0;
	}
	if (rd->start == rd->end && rd->cap > 64 * READ_CHUNK) {
		/* Give back what one long line made us take. */
		free(rd->buf);
		rd->buf = NULL;
		rd->cap = rd->start = rd->end = 0;
	}
	if (rd->end + READ_CHUNK > rd->cap) {
		rd->cap = rd->cap ? rd->cap * 2 : 4 * READ_CHUNK;
		/*
		 * No line is kept past NDJ_MAX_LINE, so never hold much more: a regular file
		 * answers a read with all the room there is, not 64 KiB as a pipe does.
		 */
		if (rd->cap > NDJ_MAX_LINE + 2 * READ_CHUNK)
			rd->cap = NDJ_MAX_LINE + 2 * READ_CHUNK;
		rd->buf = xrealloc(rd->buf, rd->cap + 1);
	}
	if (poll(&pfd, 1, 0) == 0) {
		if (idle_fn != NULL && idle_status == 0)
			idle_status = idle_fn(idle_ctx);
		ndj_flush();
	}
	do
		n = read(0, rd->buf + rd->end, rd->cap - rd->end);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rd->error = errno;
		return -1;
	}
	if (n == 0)
		rd->eof = 1;
	rd->end += (size_t)n;
	return 0;
}

/*
 * The next line, without its newline, NUL-terminated in place. Returns 1 with a
 * line, 2 for a line that was too long (skipped), 0 at the end, -1 on a read error.
 */
static int
reader_line(struct reader *rd, char **line, size_t *len)
{
	size_t scanned = 0;
	char *nl;

	for (;;) {
		nl = NULL;
		if (rd->end - rd->start > scanned)
			nl = memchr(rd->buf + rd->start + scanned, '\n', rd->end - rd->start - scanned);
		if (nl != NULL || (rd->eof && rd->end > rd->start)) {
			size_t at = nl ? (size_t)(nl - rd->buf) : rd->end;

			*line = rd->buf + rd->start;
			*len = at - rd->start;
			rd->start = nl ? at + 1 : at;
			if (rd->discarding || *len > NDJ_MAX_LINE) {
				rd->discarding = 0;
				return 2;
			}
			(*line)[*len] = '\0';
			if (*len > 0 && (*line)[*len - 1] == '\r')
				(*line)[--*len] = '\0';
			return 1;
		}
		if (rd->eof)
			return rd->discarding ? (rd->discarding = 0, 2) : 0;
		scanned = rd->end - rd->start;
		if (rd->discarding || scanned > NDJ_MAX_LINE) {
			/* Keep nothing of an overlong line; just look for its end. */
			rd->discarding = 1;
			rd->start = rd->end;
			scanned = 0;
		}
		if (reader_fill(rd) < 0)
			return -1;
	}
}

/* ---- the loop ---------------------------------------------------------- */

static int
report_bad(const struct ndj_stage *stage, unsigned long lineno, const char *why, int *bad)
{
	log_error("line %lu: %s", lineno, why);
	(*bad)++;
	return stage->strict ? -1 : 0;
}

int
ndj_run(const struct ndj_stage *stage)
{
	static char outbuf[1 << 16];
	struct reader rd = { 0 };
	struct ndj_record rec = { 0 };
	unsigned long lineno = 0;
	int bad = 0, status = 0, got;
	char *line;
	size_t len;

	/* A closed pipe is a write error (EPIPE) we end on quietly, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	current_reader = &rd;

	while (status == 0 && !ndj_output_failed() && (got = reader_line(&rd, &line, &len)) != 0) {
		lineno++;
		if (idle_status != 0) {
			status = idle_status;
			break;
		}
		if (got < 0)
			break;
		if (got == 2) {
			if (report_bad(stage, lineno, "line longer than 256 MiB, skipped", &bad) < 0)
				goto out;
			continue;
		}
		if (ndj_scan(&rec, line, len) < 0) {
			if (report_bad(stage, lineno, rec.err, &bad) < 0)
				goto out;
			continue;
		}
		rec.lineno = lineno;
		status = stage->record(&rec, stage->ctx);
		if (status == NDJ_BAD) {
			status = 0;
			if (report_bad(stage, lineno, rec.err, &bad) < 0)
				goto out;
		}
	}
	if (status == 0 && idle_status != 0)
		status = idle_status;
	if (rd.error) {
		log_error("cannot read standard input: %s", strerror(rd.error));
		status = EXIT_IOERR;
	} else if (status == 0 && !ndj_output_failed() && stage->finish)
		status = stage->finish(stage->ctx);
out:
	current_reader = NULL;
	free(rd.buf);
	ndj_record_free(&rec);
	if (ndj_close_output() != EXIT_OK)
		return EXIT_IOERR;
	if (out_errno == EPIPE)
		return EXIT_OK;
	if (status)
		return status;
	return bad ? EXIT_DATAERR : EXIT_OK;
}

void
ndj_set_idle(int (*fn)(void *ctx), void *ctx)
{
	idle_fn = fn;
	idle_ctx = ctx;
}

int
ndj_input_waiting(void)
{
	struct pollfd pfd = { 0, POLLIN, 0 };
	const struct reader *rd = current_reader;

	if (rd != NULL && (rd->end > rd->start || rd->eof))
		return 1;
	return poll(&pfd, 1, 0) > 0;
}

int
ndj_utf8_length(const unsigned char *p, const unsigned char *end)
{
	return utf8_length(p, end);
}

int
ndj_fail_job(const struct ndj_record *r, const char *reason)
{
	static const char *const ids[] = { "job_id", "intake_id" };
	struct buf out = BUF_INIT;
	size_t i;
	int rc;

	buf_adds(&out, "{\"kind\":\"job_error\"");
	for (i = 0; i < 2; i++) {
		const struct ndj_member *m = ndj_get(r, ids[i]);

		buf_addf(&out, ",\"%s\":", ids[i]);
		if (m != NULL)
			buf_add(&out, m->val, m->val_len);
		else
			buf_adds(&out, "null");
	}
	buf_adds(&out, ",\"error\":");
	buf_add_json_string(&out, reason, strlen(reason));
	buf_adds(&out, ",\"retryable\":false}\n");
	ndj_pass(r);
	rc = ndj_write(out.data, out.len);
	buf_free(&out);
	return rc < 0 ? -1 : 0;
}

int
ndj_is_job_part(const char *kind)
{
	return strcmp(kind, "price_point") == 0 || strcmp(kind, "job_end") == 0 ||
	       strcmp(kind, "job_error") == 0;
}
