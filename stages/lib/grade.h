/* grade.h: coin grades as collectors write them ("MS63", "MS-63", "PR69", "XF 40",
 * "Gem BU", "Choice AU", "Good-4") read into a Sheldon interval. One parser for titles
 * (filter-junk) and for an attribution's own grade (filter-junk and valuate). */
#ifndef GRADE_H
#define GRADE_H

#include <stddef.h>

struct grade {
	int lo, hi;     /* Sheldon interval 1..70; lo == hi for a numeric grade */
	int proof;      /* 1 for a proof grade (PR, PF), else 0 */
	char text[16];  /* canonical form: "MS63", "XF40", "PR69", "Choice BU", "AU" */
};

/* grade_parse reads s[0..len), a grade written on its own (an attribution's `grade`
 * field). Returns 0 and fills *g, or -1 when s is not a grade. */
int grade_parse(const char *s, size_t len, struct grade *g);

#endif
