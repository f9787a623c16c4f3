/*
 * Reading rules. Rule records are small and rare (once per job), so they are parsed
 * with cJSON rather than the record scanner.
 */
#include "rules.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ndjson.h"

static const struct {
	const char *name;
	enum rule_type type;
} rule_names[] = {
	{ "exclude_keywords", RULE_EXCLUDE_KEYWORDS },
	{ "include_keywords", RULE_INCLUDE_KEYWORDS },
	{ "min_price_cents", RULE_MIN_PRICE_CENTS },
	{ "max_price_cents", RULE_MAX_PRICE_CENTS },
};

void
rules_add(struct rule_list *l, enum rule_type type, const char *value, long priority)
{
	BUF_ALLOC_GROW(l->v, l->n + 1, l->cap);
	l->v[l->n].type = type;
	l->v[l->n].value = xstrdup(value);
	l->v[l->n].priority = priority;
	l->n++;
}

/* A priority as a long, clamped so that no double is cast out of range. */
static long
priority_of(const cJSON *priority)
{
	double d = cJSON_IsNumber(priority) ? priority->valuedouble : 0;

	if (!(d > -1e9))
		return -1000000000L;
	if (d > 1e9)
		return 1000000000L;
	return (long)d;
}

static int
add_one(struct rule_list *l, const cJSON *o, char *err, size_t errlen)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "rule_type");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "rule_value");
	const cJSON *priority = cJSON_GetObjectItemCaseSensitive(o, "priority");
	const cJSON *active = cJSON_GetObjectItemCaseSensitive(o, "active");
	enum rule_type t = RULE_OTHER;
	char number[32];
	size_t i;

	if (!cJSON_IsObject(o) || !cJSON_IsString(type)) {
		snprintf(err, errlen, "a rule must be an object with a string \"rule_type\"");
		return -1;
	}
	if (cJSON_IsFalse(active))
		return 0;
	for (i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++)
		if (strcmp(type->valuestring, rule_names[i].name) == 0)
			t = rule_names[i].type;
	if (priority != NULL && !cJSON_IsNull(priority) && !cJSON_IsNumber(priority)) {
		snprintf(err, errlen, "rule \"priority\" must be a number");
		return -1;
	}
	if (cJSON_IsString(value)) {
		rules_add(l, t, value->valuestring, priority_of(priority));
	} else if (cJSON_IsNumber(value) && value->valuedouble >= -9e15 && value->valuedouble <= 9e15 &&
		   value->valuedouble == (double)(long long)value->valuedouble) {
		snprintf(number, sizeof(number), "%lld", (long long)value->valuedouble);
		rules_add(l, t, number, priority_of(priority));
	} else {
		snprintf(err, errlen, "rule \"%s\" needs a string \"rule_value\"", type->valuestring);
		return -1;
	}
	return 0;
}

int
rules_add_json(struct rule_list *l, const char *json, size_t len, char *err, size_t errlen)
{
	cJSON *array = cJSON_ParseWithLength(json, len);
	const cJSON *o;
	int rc = 0;

	if (!cJSON_IsArray(array)) {
		snprintf(err, errlen, "\"rules\" must be an array of rule objects");
		rc = -1;
		goto out;
	}
	cJSON_ArrayForEach (o, array)
		if ((rc = add_one(l, o, err, errlen)) < 0)
			goto out;
out:
	cJSON_Delete(array);
	return rc;
}

int
rules_load_file(struct rule_list *l, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, why[200] = "";
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		cJSON *o;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		/* The record scanner's rules first, so that cJSON reads no duplicate key. */
		if (ndj_check_object(line, (size_t)len, why, sizeof(why)) < 0 ||
		    (o = cJSON_ParseWithLength(line, (size_t)len)) == NULL) {
			snprintf(err, errlen, "%s:%lu: not a JSON rule object: %s", path, lineno, why);
			rc = -1;
			break;
		}
		rc = add_one(l, o, why, sizeof(why));
		cJSON_Delete(o);
		if (rc < 0) {
			snprintf(err, errlen, "%s:%lu: %s", path, lineno, why);
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

static int
by_priority(const void *a, const void *b)
{
	const struct rule *x = a, *y = b;

	return (x->priority > y->priority) - (x->priority < y->priority);
}

void
rules_sort(struct rule_list *l)
{
	size_t i, j;

	/* Insertion sort: stable, and rule lists are short. */
	for (i = 1; i < l->n; i++) {
		struct rule t = l->v[i];

		for (j = i; j > 0 && by_priority(&l->v[j - 1], &t) > 0; j--)
			l->v[j] = l->v[j - 1];
		l->v[j] = t;
	}
}

void
rules_clear(struct rule_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].value);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
