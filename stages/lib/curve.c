/* curve.c: the built-in grade curves. Ratios to MS63 from published price guides (for a
 * common date of each series; see DESIGN.md "Valuation with a target grade"). Each curve
 * names its source; a knot no source gives is interpolated in log price between the knots
 * that are given, kept rising with the grade. Sources were read on 2026-11-29. */
#include "curve.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

const int curve_knot[CURVE_KNOTS] = { 4, 8, 12, 20, 40, 50, 55, 58, 60, 62, 63, 64, 65, 66, 67, 68, 69, 70 };

/*
 * MS69 and MS70 are published for no series below (a classic coin is all but unknown
 * there): they go on from MS68 at twice the price per grade, the top of what modern coins
 * show between a 69 and a 70 (1.3-3x), never at the last segment's slope, which below
 * MS68 is up to 6x a grade and would make a 70 priced from 69s eight times their price.
 */
/*                    G4    VG8   F12   VF20  XF40  AU50  AU55  AU58  MS60  MS62  MS63 MS64  MS65  MS66  MS67  MS68  MS69 MS70 */
static const struct curve curves[] = {
	/* 1921-S Morgan dollar; VF20-MS67 as DESIGN.md gives them (and the next three) */
	{ "Morgan",
	  1921,
	  "the Morgan dollar's",
	  { 0.30, 0.31, 0.33, 0.36, 0.38, 0.41, 0.45, 0.49, 0.52, 0.80, 1, 1.26, 1.52, 2.69, 8.9, 50, 100,
	    200 } },
	/* 1922 Peace dollar */
	{ "Peace",
	  1935,
	  "the Peace dollar's",
	  { 0.45, 0.47, 0.50, 0.53, 0.56, 0.59, 0.62, 0.65, 0.67, 0.85, 1, 1.19, 1.78, 4.07, 16.3, 100, 200,
	    400 } },
	/* 1935 Walking Liberty half */
	{ "Walking",
	  1947,
	  "the Walking Liberty half's",
	  { 0.04, 0.045, 0.048, 0.05, 0.06, 0.13, 0.25, 0.35, 0.43, 0.75, 1, 1.67, 3.73, 9.33, 33.3, 150, 300,
	    600 } },
	/* 1944 Mercury dime */
	{ "Mercury",
	  1945,
	  "the Mercury dime's",
	  { 0.15, 0.16, 0.17, 0.19, 0.22, 0.25, 0.29, 0.32, 0.41, 0.73, 1, 1.59, 2.95, 7.27, 31.8, 150, 300,
	    600 } },
	/* 1964 Kennedy half: circulated near melt; MS65 $30, MS66 $75, MS67 $500 (figures of the
	 * earlier table; its source is not recorded and no guide was found to check it) */
	{ "Kennedy",
	  0,
	  "the Kennedy half's",
	  { 0.75, 0.75, 0.76, 0.77, 0.78, 0.80, 0.82, 0.85, 0.88, 0.94, 1, 1.30, 2.1, 5.4, 36, 300, 600,
	    1200 } },
	/* 1963 Franklin half: circulated near melt (about $10-15), full bell lines aside. MS63
	 * $15, VF $10-15 (cryptosquirrelz.com, 1963 half dollar value, August 2025); XF $11.55,
	 * AU $12, MS60 $14, MS65 $40 (robpaulsenlive.com, 1963 half dollar value chart); MS67
	 * $2,500-2,850 (the same); MS64 and MS66 interpolated from the earlier table. */
	{ "Franklin",
	  1963,
	  "the Franklin half's",
	  { 0.68, 0.68, 0.69, 0.70, 0.77, 0.80, 0.82, 0.85, 0.93, 0.97, 1, 1.40, 3.0, 15, 180, 400, 800,
	    1600 } },
	/* a common-date Barber quarter (dimes and halves alike): Good $10-25, Fine $30-50,
	 * XF45 $100-200, AU $250-400, BU $500-1,000, MS66 $1,500-3,000 (junksilver.co, Barber
	 * quarter value chart), the middle of each range with BU as MS63; MS67-68 kept. */
	{ "Barber",
	  1916,
	  "the Barber coinage's",
	  { 0.025, 0.035, 0.055, 0.10, 0.18, 0.40, 0.46, 0.55, 0.62, 0.80, 1, 1.40, 2.0, 3.0, 8, 20, 40,
	    80 } },
	/* 1937 Buffalo nickel: XF45 $7-9, MS60 $31-32, MS65 $75, MS68 $10,500
	 * (coinvaluechecker.com and kalaobloomington.com, 1937 Buffalo nickel value charts).
	 * No MS63 figure is given: MS60 is kept at 0.60 of MS63 and the rest scaled from it. */
	{ "Buffalo",
	  1938,
	  "the Buffalo nickel's",
	  { 0.05, 0.06, 0.08, 0.11, 0.14, 0.25, 0.33, 0.45, 0.60, 0.80, 1, 1.20, 1.43, 3.0, 12, 200, 400,
	    800 } },
	/* 1944-D wheat cent, red-brown: VF $0.10, XF $0.20, MS63RB $0.85, MS65RB $4
	 * (silverrecyclers.com, 1944 wheat penny); the rest interpolated, MS66-68 scaled from the
	 * earlier table. */
	{ "Lincoln",
	  0,
	  "the Lincoln cent's",
	  { 0.06, 0.08, 0.10, 0.12, 0.24, 0.30, 0.35, 0.40, 0.50, 0.75, 1, 2.0, 4.7, 9.4, 31, 150, 300,
	    600 } },
	/* 1964 Washington quarter: circulated near melt. No published grade table was found
	 * this session: the earlier figures, unchecked. */
	{ "Washington",
	  0,
	  "the Washington quarter's",
	  { 0.60, 0.60, 0.61, 0.62, 0.63, 0.65, 0.67, 0.70, 0.75, 0.88, 1, 1.30, 2.5, 6.0, 25, 150, 300,
	    600 } },
};

/* For a series with no curve of its own: a middle course between the curves above. */
static const struct curve generic = { "generic",
				      0,
				      "a generic",
				      { 0.15, 0.17, 0.20, 0.28, 0.38, 0.48, 0.55, 0.62, 0.70, 0.85, 1, 1.40,
					2.4, 5.0, 15, 60, 120, 240 } };

/*
 * For a proof, whatever its series: ratios to PR63. A proof's price climbs far more gently
 * with the grade than a business strike's above 65 (no bag marks to grade away): for a
 * classic proof (an 1880s proof Morgan, in the usual guides: PR60 about half of PR63, PR65
 * about twice, PR67 about five times) and a modern one (a proof silver eagle or clad proof
 * set coin: PR69 the common grade, PR70 about 1.3-3x it). Below PR60 (impaired proofs)
 * it flattens, as a worn proof sells near a business strike of its grade.
 */
static const struct curve proof = { "proof",
				    0,
				    "a proof coin's",
				    { 0.25, 0.27, 0.30, 0.34, 0.40, 0.45, 0.50, 0.55, 0.60, 0.80, 1, 1.35,
				      2.0, 2.9, 4.2, 5.6, 7.0, 15 } };

/*
 * Modern bullion coins and modern collector issues (a Silver Eagle, a Maple Leaf, a 2021
 * Morgan, a commemorative since 1982): ratios to a raw BU coin (MS63), which sells near its
 * metal's value. Such a coin is graded almost only at the top (NGC's census puts 99 % of
 * Silver Eagles at 67-70: NGC, "Learn Grading: American Silver Eagles", 2020), and up to
 * MS68 it trades at about its bullion value: for the 1997 half-ounce platinum eagle, "up
 * through MS-68 ... near its bullion value", an MS69 $50-75 (about a tenth) more than an
 * uncertified one or an MS68 (Coin World market analysis, 2016-03-30); bullion below MS60
 * is worth little over its metal (free-bullion-investment-guide.com, graded bullion coins).
 * MS70 is the one big step. On a silver coin the slab and the grade are a large share of
 * the price: a common-date MS69 about a quarter over a raw coin, an MS70 about twice an
 * MS69 (1.3-3x among modern coins, as the proof curve below; a condition rarity such as
 * the 1995 Silver Eagle, $40 in MS69 and $4,000 in MS70 in PCGS's guide as quoted by
 * coin-rare.com, is no common date). On gold, platinum and palladium the metal dwarfs the
 * premiums: an MS69 a few percent over raw, an MS70 about a sixth over an MS69. Circulated
 * pieces sell a little under a BU one. Sources read on 2026-11-30.
 */
/*                    G4    VG8   F12   VF20  XF40  AU50  AU55  AU58  MS60  MS62  MS63 MS64  MS65  MS66  MS67  MS68  MS69 MS70 */
static const struct curve modern_silver = { "modern silver",
					    0,
					    "a modern silver issue's",
					    { 0.85, 0.86, 0.87, 0.88, 0.90, 0.92, 0.94, 0.96, 0.97, 0.99, 1,
					      1.005, 1.01, 1.02, 1.04, 1.08, 1.25, 2.5 } };
static const struct curve modern_gold = { "modern gold",
					  0,
					  "a modern gold issue's",
					  { 0.94, 0.945, 0.95, 0.955, 0.96, 0.97, 0.975, 0.98, 0.985, 0.995,
					    1, 1.002, 1.005, 1.01, 1.015, 1.025, 1.05, 1.2 } };

/*
 * Names of modern bullion programmes and modern issues, with their first year (a coin
 * of that name from an earlier year is no bullion coin) and whether the name alone says
 * gold (a word for silver or gold in the text says so first). Matched as whole words. A
 * name that older coins share (an 1890s $10 gold eagle, a Britannia penny, a classic
 * commemorative half) counts only with a year from its first on, or, with no year, beside
 * a bullion weight ("1 oz").
 */
static const struct modern_name {
	const char *words;
	int first_year;
	int gold;
	int shared; /* older coins bear the name too */
} modern_names[] = {
	{ "silver eagle", 1986, 0, 0 },	  { "gold eagle", 1986, 1, 1 },
	{ "platinum eagle", 1997, 1, 0 }, { "palladium eagle", 2017, 1, 0 },
	{ "american eagle", 1986, 0, 0 }, { "ase", 1986, 0, 0 },
	{ "maple leaf", 1979, 0, 0 },	  { "maple leafs", 1979, 0, 0 },
	{ "britannia", 1987, 0, 1 },	  { "krugerrand", 1967, 1, 0 },
	{ "philharmonic", 1989, 0, 0 },	  { "philharmoniker", 1989, 0, 0 },
	{ "panda", 1982, 0, 0 },	  { "kookaburra", 1990, 0, 0 },
	{ "kangaroo", 1986, 1, 1 },	  { "nugget", 1986, 1, 1 },
	{ "libertad", 1981, 0, 0 },	  { "lunar", 1996, 0, 1 },
	{ "gold buffalo", 2006, 1, 0 },	  { "american buffalo", 2001, 0, 1 },
	{ "queen s beasts", 2016, 0, 0 }, { "first spouse", 2007, 1, 0 },
	{ "commemorative", 1982, 0, 1 },
};

static int
contains(const char *text, size_t len, const char *word)
{
	size_t n = strlen(word), i;

	for (i = 0; i + n <= len; i++)
		if (strncasecmp(text + i, word, n) == 0)
			return 1;
	return 0;
}

const struct curve *
curve_find(const char *text, size_t len)
{
	size_t i;

	if (text != NULL)
		for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
			if (contains(text, len, curves[i].series))
				return &curves[i];
	return &generic;
}

/* Whether the words w (lower case, single spaces) stand in text[0..len) as whole words,
 * any run of non-alphanumeric bytes between them. */
static int
has_words(const char *text, size_t len, const char *w)
{
	size_t i, j, k;

	for (i = 0; i < len; i++) {
		if (i > 0 && isalnum((unsigned char)text[i - 1]))
			continue;
		for (j = i, k = 0; w[k] != '\0' && j < len; k++) {
			if (w[k] == ' ') {
				if (isalnum((unsigned char)text[j]))
					break;
				while (j < len && !isalnum((unsigned char)text[j]))
					j++;
			} else if (tolower((unsigned char)text[j]) == w[k]) {
				j++;
			} else {
				break;
			}
		}
		if (w[k] == '\0' && (j == len || !isalnum((unsigned char)text[j])))
			return 1;
	}
	return 0;
}

/* 1 for gold (platinum, palladium), 0 for silver, -1 when the text names neither or both. */
static int
metal_of(const char *text, size_t len)
{
	int gold = has_words(text, len, "gold") || has_words(text, len, "platinum") ||
		   has_words(text, len, "palladium") || has_words(text, len, "oro");
	int silver = has_words(text, len, "silver") || has_words(text, len, "argent") ||
		     has_words(text, len, "silber") || has_words(text, len, "plata") ||
		     has_words(text, len, "argento");

	return gold == silver ? -1 : gold;
}

const struct curve *
curve_choose(const char *series, const char *title, long year)
{
	const char *texts[2] = { series, title };
	size_t lens[2] = { series ? strlen(series) : 0, title ? strlen(title) : 0 };
	const struct curve *c;
	int t, metal = -1, gold = -1;
	int weight = has_words(series, lens[0], "oz") || has_words(title, lens[1], "oz");
	size_t i;

	for (t = 0; t < 2; t++) {
		if (metal < 0 && lens[t] > 0)
			metal = metal_of(texts[t], lens[t]);
		for (i = 0; gold < 0 && i < sizeof(modern_names) / sizeof(modern_names[0]); i++) {
			const struct modern_name *m = &modern_names[i];

			if ((year == 0 ? !m->shared || weight : year >= m->first_year) &&
			    has_words(texts[t], lens[t], m->words))
				gold = m->gold;
		}
	}
	if (gold >= 0)
		return curve_modern(metal >= 0 ? metal : gold);
	c = curve_find(series, series ? strlen(series) : 0);
	if (c == &generic && title != NULL)
		c = curve_find(title, strlen(title));
	/* a classic design struck again long after its series ended (a 2021 Morgan, a 2016
	 * gold Mercury dime) is a modern issue, graded and priced as one */
	if (c->last_year > 0 && year > c->last_year)
		return curve_modern(metal == 1);
	return c;
}

const struct curve *
curve_modern(int gold)
{
	return gold ? &modern_gold : &modern_silver;
}

const struct curve *
curve_generic(void)
{
	return &generic;
}

const struct curve *
curve_proof(void)
{
	return &proof;
}

double
curve_knot_position(double grade)
{
	int i;

	if (grade <= curve_knot[0])
		return 0;
	for (i = 1; i < CURVE_KNOTS; i++)
		if (grade <= curve_knot[i])
			return i - 1 +
			       (grade - curve_knot[i - 1]) / (double)(curve_knot[i] - curve_knot[i - 1]);
	return CURVE_KNOTS - 1 + (grade - curve_knot[CURVE_KNOTS - 1]);
}

double
curve_log_ratio(const struct curve *c, double grade)
{
	int i;

	if (grade <= curve_knot[0])
		return log(c->ratio[0]);
	for (i = 1; i < CURVE_KNOTS - 1 && grade > curve_knot[i]; i++)
		;
	/* between knot i-1 and knot i (the last knot is the top of the Sheldon scale) */
	{
		double a = log(c->ratio[i - 1]), b = log(c->ratio[i]);
		double t = (grade - curve_knot[i - 1]) / (double)(curve_knot[i] - curve_knot[i - 1]);

		return a + t * (b - a);
	}
}
