/* curve.h: grade curves, a coin's price at each grade relative to its price in MS63, per
 * series. Built in from published price guides; one table, so that a later step (curves
 * learnt per coin from stored sales) can replace it. */
#ifndef CURVE_H
#define CURVE_H

#include <stddef.h>

/* The knots every curve gives a ratio at, in Sheldon numbers. */
#define CURVE_KNOTS 18

struct curve {
	const char *series; /* the name matched in an attribution's series or title */
	int last_year;	    /* the series' last year of issue, 0 while it is still struck: a
			     * later coin of that name is a modern issue of the old design */
	const char *name;   /* for an explanation: "the Morgan dollar's" (curve) */
	double ratio[CURVE_KNOTS];
};

/* The Sheldon grade of each knot. */
extern const int curve_knot[CURVE_KNOTS];

/* The curve of a series named anywhere in text[0..len) (case-insensitive), else the generic
 * curve. text may be NULL. */
const struct curve *curve_find(const char *text, size_t len);

/*
 * The curve of an attribution: series and title (either may be NULL) and year (0 when
 * unknown). A modern bullion coin or collector issue (a Silver Eagle, Maple Leaf,
 * Krugerrand, a commemorative since 1982, a 2021 Morgan: a named series struck after its
 * last year) gets the modern curve of its metal; else the series' curve as curve_find
 * finds it in the series, then in the title. Not the proof curve: the caller knows the
 * strike.
 */
const struct curve *curve_choose(const char *series, const char *title, long year);

/* The modern curves, silver (and clad) and gold (platinum, palladium). */
const struct curve *curve_modern(int gold);

/* The generic curve, for a series with none of its own. */
const struct curve *curve_generic(void);

/* The curve of a proof (PR, PF), whatever its series: ratios to PR63. */
const struct curve *curve_proof(void);

/* Where a Sheldon grade lies among the knots, counted in knots: 0 at or below the first,
 * i at knot i, fractional between, and one more per grade beyond the last. A published
 * curve's error grows with the number of knots between two grades. */
double curve_knot_position(double grade);

/* ln R(grade): the log price ratio to MS63 at a Sheldon grade (any real in 1..70):
 * log-linear between knots (the last is MS70), flat below the first. */
double curve_log_ratio(const struct curve *c, double grade);

#endif
