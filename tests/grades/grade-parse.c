/*
 * grade-parse: the test driver of grade_parse(). Reads one grade per line and writes
 * "text lo hi [proof] [details] [designations...]" for it, or "-" when it is no grade.
 */
#include <stdio.h>
#include <string.h>

#include "grade.h"

int
main(void)
{
	char line[512];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		struct grade g;
		size_t len = strcspn(line, "\n");
		int i;

		if (grade_parse(line, len, &g) < 0) {
			puts("-");
			continue;
		}
		printf("%s %d %d", g.text, g.lo, g.hi);
		if (g.proof == 1)
			fputs(" proof", stdout);
		else if (g.proof == 2)
			fputs(" specimen", stdout);
		if (g.details)
			fputs(" details", stdout);
		for (i = 0; i < GRADE_NDESIGNATIONS; i++)
			if (g.designations & (1u << i))
				printf(" %s", grade_designation_name(i));
		putchar('\n');
	}
	return ferror(stdout) || fclose(stdout) != 0;
}
