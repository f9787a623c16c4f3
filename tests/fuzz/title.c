/*
 * The title grammar on arbitrary bytes, with no JSON around them: title_read and
 * grade_parse on the input as a title and as a grade, title_attribution_read on it as an
 * attribution, and title_check of the title's facts against a fixed attribution and the
 * input's own. What they give must stay inside the contract (DESIGN.md, title facts):
 * Sheldon intervals within 1..70 and ordered, a canonical grade text, known certifiers,
 * counts and years in range, a reason with a known prefix that fits its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grade.h"
#include "title.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_grade(const struct grade *g)
{
	size_t len = strnlen(g->text, sizeof(g->text));

	if (g->lo < 1 || g->hi > 70 || g->lo > g->hi || len == 0 || len == sizeof(g->text))
		abort();
}

static void
check_reason(const char *r)
{
	static const char *const prefixes[] = { "wrong_coin:", "lot:", "problem_coin:", "designation:" };
	size_t k;

	for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++)
		if (strncmp(r, prefixes[k], strlen(prefixes[k])) == 0)
			return;
	abort();
}

static void
check_facts(const struct title_facts *f)
{
	static const char *const certifiers[] = { "PCGS", "NGC", "ANACS", "ICG", "CACG", "SEGS", "PCI" };
	size_t k;
	int i, known = f->certifier == NULL;

	if (f->has_grade)
		check_grade(&f->grade);
	for (k = 0; !known && k < sizeof(certifiers) / sizeof(certifiers[0]); k++)
		known = strcmp(f->certifier, certifiers[k]) == 0;
	if (!known || f->quantity < 0 || f->quantity > 10000 || f->nyears < 0 ||
	    f->nyears > TITLE_MAX_YEARS || f->designations >> GRADE_NDESIGNATIONS)
		abort();
	for (i = 0; i < f->nyears; i++)
		if (f->years[i] < 1700 || f->years[i] > 2099 || strnlen(f->marks[i], 3) > 2)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fixed[] =
		"{\"year\":1921,\"mintmark\":\"S\",\"series\":\"Morgan\",\"denomination\":"
		"\"dollar\",\"grade\":\"MS64 DMPL\",\"variety\":\"3 Legged\"}";
	const char *s = (const char *)data;
	struct title_facts f;
	struct title_attribution a, own;
	struct grade g;
	char reason[64];

	title_read(s, size, &f);
	check_facts(&f);
	if (grade_parse(s, size, &g) == 0)
		check_grade(&g);
	if (title_attribution_read(fixed, sizeof(fixed) - 1, &a) != 0)
		abort();
	memset(reason, 'x', sizeof(reason));
	if (title_check(&f, 0, &a, reason, sizeof(reason)))
		check_reason(reason);
	if (title_check(&f, 3, NULL, reason, sizeof(reason)))
		check_reason(reason);
	if (title_attribution_read(s, size, &own) == 0) {
		if (own.has_grade)
			check_grade(&own.grade);
		if (title_check(&f, 0, &own, reason, sizeof(reason)))
			check_reason(reason);
	}
	return 0;
}
