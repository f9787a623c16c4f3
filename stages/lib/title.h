/* title.h: a listing's title read as a collector reads it (grade, certifier,
 * designations, how many coins, problems, year, mint mark, series, denomination,
 * strike), and the checks of those facts against the coin being priced. */
#ifndef TITLE_H
#define TITLE_H

#include <stddef.h>

#include "grade.h"

#define TITLE_MAX_YEARS 8

struct title_facts {
	int has_grade;
	struct grade grade;    /* when has_grade; its designations are in designations */
	const char *certifier; /* static string, or NULL */
	unsigned designations; /* GRADE_D_* bits */
	int quantity;	       /* coins the title counts ("lot of 5", "(3)", "x10"), 0 when silent */
	int variation;	       /* several coins of no stated count: "you pick", "random date", sets */
	const char *problem;   /* the problem the title names and does not negate ("cleaned"), or NULL */
	/* Each year the title names, once per mint mark written after it ("1921 P D S" is
	 * three entries): the mark ("P", "S"), "" when none. */
	int years[TITLE_MAX_YEARS];
	char marks[TITLE_MAX_YEARS][3];
	int nyears;
	unsigned varieties;	    /* TITLE_V_* bits of the varieties it names */
	unsigned not_varieties;	    /* TITLE_V_* bits it names to deny them ("No VDB") */
	char mark_word[3];	    /* a mint named in words ("Carson City"), "" when none */
	unsigned series;	    /* bits of the series the title names */
	unsigned denominations;	    /* bits of the denominations it names */
	int proof;		    /* names a proof strike */
	int business;		    /* names a business-strike grade (MS, BU, Unc) or "business strike" */
	int specimen;		    /* names a specimen strike (SP65, "SMS", "Special Mint Set") */
	int weight_num, weight_den; /* the bullion weight it names in troy ounces ("1/10 oz":
				     * 1 and 10, "5 oz": 5 and 1), 0 and 0 when none */
};

/* What the job's attribution says about the coin being priced. */
struct title_attribution {
	int year;	  /* 0 when not given */
	char mark[3];	  /* "S", "CC"; "" for none or Philadelphia's P */
	int mark_known;	  /* the attribution has a "mintmark" (null counts: no mint mark) */
	int series;	  /* index of a known series, -1 when unknown */
	int denomination; /* index of a known denomination, -1 when unknown */
	int strike;	  /* 1 proof, 2 specimen, 0 business strike, -1 not known */
	int details;	  /* its grade is a details grade */
	unsigned designations;
	unsigned varieties; /* TITLE_V_* bits its variety (or title) names */
	int has_grade;
	struct grade grade;
	int weight_num, weight_den; /* the weight its series or title names ("1/10 oz"), else 0 */
};

/* Varieties that are other coins than the date and mint mark alone: a title naming one
 * the attribution lacks is wrong_coin. */
enum {
	TITLE_V_THREE_LEGGED = 1u << 0, /* 1937-D Buffalo nickel */
	TITLE_V_VDB = 1u << 1,		/* 1909 Lincoln cent */
	TITLE_V_OVERDATE = 1u << 2,	/* "1942/1", "1918/7-D" */
	TITLE_V_OVERMARK = 1u << 3,	/* "1900-O/CC", "1882-O/S" */
};

/* Read the title s[0..len) into *f. Never fails: a title that says nothing gives
 * empty facts. */
void title_read(const char *s, size_t len, struct title_facts *f);

/*
 * Read a job's "attribution" object, the JSON text json[0..len). Returns 0, or -1 when it
 * is not an object (*a then says nothing: every check that needs it is skipped).
 */
int title_attribution_read(const char *json, size_t len, struct title_attribution *a);

/*
 * The first reason, in DESIGN.md's order after the decoys, why a point with these
 * facts is not a comparable of the attribution's coin: "wrong_coin:…", "lot:N",
 * "lot:variation", "problem_coin:…", "designation:…". quantity is the point's own
 * (0 when its collector gave none). a may be NULL (no attribution): then only the lot
 * and problem checks apply. Writes the reason into out and returns 1, or returns 0.
 */
int title_check(const struct title_facts *f, int quantity, const struct title_attribution *a, char *out,
		size_t outlen);

/* Whether a word (lower-case ASCII, len bytes) negates the problem or decoy word after
 * it ("not", "no", "never", "non", "without"), and whether it may stand between the two
 * ("not a replica", "never been cleaned"). */
int title_is_negator(const char *w, size_t len);

/* Whether the word w[0..len) (lower-case ASCII) is one of the n words of list. */
int title_word_in(const char *const *list, size_t n, const char *w, size_t len);
int title_is_filler(const char *w, size_t len);

#endif
