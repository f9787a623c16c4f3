/*
 * Rules: the input as a rules file (rules_load_file, one rule object per line) and as
 * a job record's "rules" array (rules_add_json). Neither may crash or leak; a list
 * read must hold strings and sort stably.
 */
#include <stdlib.h>

#include "harness.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(struct rule_list *l)
{
	size_t i;

	rules_sort(l);
	for (i = 0; i < l->n; i++)
		if (l->v[i].value == NULL || (i > 0 && l->v[i - 1].priority > l->v[i].priority))
			abort();
	rules_clear(l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_list l = { 0 };
	struct fuzz_file f;
	char err[256];

	fuzz_file_open(&f, data, size);
	rules_load_file(&l, f.path, err, sizeof(err));
	check(&l);
	fuzz_file_close(&f);
	rules_add_json(&l, (const char *)data, size, err, sizeof(err));
	check(&l);
	return 0;
}
