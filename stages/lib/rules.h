/*
 * Source rules: the "rules" of a job record (rows of source_rules), the NDJSON rule
 * files of ad-hoc use, and the options that stand for rules.
 */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>

enum rule_type {
	RULE_EXCLUDE_KEYWORDS,
	RULE_INCLUDE_KEYWORDS,
	RULE_MIN_PRICE_CENTS,
	RULE_MAX_PRICE_CENTS,
	RULE_OTHER /* a type some other stage owns; kept so that lists stay whole */
};

struct rule {
	enum rule_type type;
	char *value; /* rule_value as text; owned by the list */
	long priority;
};

struct rule_list {
	struct rule *v;
	size_t n, cap;
};

/* Append a rule; value is copied. */
void rules_add(struct rule_list *l, enum rule_type type, const char *value, long priority);

/*
 * Append the rules of a JSON array of rule objects ({"rule_type", "rule_value",
 * "priority", "active"}; inactive ones are skipped), json being len bytes. Returns 0,
 * or -1 with a reason in err.
 */
int rules_add_json(struct rule_list *l, const char *json, size_t len, char *err, size_t errlen);

/* Append the rules of a file with one rule object per line. 0, or -1 with err set. */
int rules_load_file(struct rule_list *l, const char *path, char *err, size_t errlen);

/* Sort by priority (lowest first), keeping the order of equal priorities. */
void rules_sort(struct rule_list *l);

void rules_clear(struct rule_list *l);

#endif
