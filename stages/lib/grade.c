/*
 * Coin grades as collectors write them, read into Sheldon intervals: the grade of an
 * attribution on its own, and the grammar of grades, designations and certifiers that
 * the title parser (title.c) finds inside titles.
 */
#include "grade.h"

#include <stdio.h>
#include <string.h>

/* A grade word's range: the numbers it may carry and its interval without one. */
struct grade_class {
	const char *abbr; /* canonical prefix */
	int num_lo, num_hi;
	int lo, hi;		  /* interval when written without a number */
	int choice_lo, choice_hi; /* "Choice ..." (0: the word takes no "Choice") */
	int gem;		  /* 1: takes "Gem" and "Superb Gem" */
	int proof;
};

enum { C_PO, C_FR, C_AG, C_G, C_VG, C_F, C_VF, C_XF, C_AU, C_MS, C_PR, C_BU, C_SP };

static const struct grade_class classes[] = {
	[C_PO] = { "PO", 1, 1, 1, 1, 0, 0, 0, 0 },
	[C_FR] = { "FR", 2, 2, 2, 2, 0, 0, 0, 0 },
	[C_AG] = { "AG", 3, 3, 3, 3, 0, 0, 0, 0 },
	[C_G] = { "G", 4, 6, 4, 6, 6, 6, 0, 0 },
	[C_VG] = { "VG", 8, 10, 8, 10, 10, 10, 0, 0 },
	[C_F] = { "F", 12, 15, 12, 15, 15, 15, 0, 0 },
	[C_VF] = { "VF", 20, 35, 20, 35, 30, 35, 0, 0 },
	[C_XF] = { "XF", 40, 45, 40, 45, 45, 45, 0, 0 },
	[C_AU] = { "AU", 50, 58, 50, 58, 55, 58, 0, 0 },
	[C_MS] = { "MS", 60, 70, 60, 70, 63, 64, 1, 0 },
	[C_PR] = { "PR", 1, 70, 60, 70, 63, 64, 1, 1 },
	[C_BU] = { "BU", 0, 0, 60, 63, 63, 64, 1, 0 },
	/* Specimen: a special strike, neither proof nor business (PCGS's SP65 of a 1966 SMS half) */
	[C_SP] = { "SP", 1, 70, 60, 70, 0, 0, 0, 2 },
};

/* Flags of a grade word. */
enum {
	W_NUMBER_IN_TITLE = 1, /* in a title, only with a number after it */
	W_NUMBER_ALWAYS = 2,   /* only with a number after it */
	W_FINE = 4,	       /* not when it is a metal's fineness (".999 fine silver") */
	W_AU = 8,	       /* not when it is gold's symbol ("AU .9999") */
	W_PROOF = 16,	       /* not "proof like" */
	W_GOOD = 32,	       /* "very good condition", "fair price", "poor strike" are no grades */
	W_AG = 64,	       /* not when it is silver's symbol ("90% silver AG", "AG .999") */
	W_PRAISED = 128,       /* not after a word of praise ("a nice specimen") */
	W_PROOFLIKE = 256,     /* the grade of a prooflike coin: its designation is PL */
};

static const struct {
	const char *words;
	int cls, flags;
} grade_words[] = {
	{ "brilliant uncirculated", C_BU, 0 },
	{ "brilliant unc", C_BU, 0 },
	{ "about uncirculated", C_AU, 0 },
	{ "almost uncirculated", C_AU, 0 },
	{ "about unc", C_AU, 0 },
	{ "almost unc", C_AU, 0 },
	{ "extremely fine", C_XF, 0 },
	{ "extra fine", C_XF, 0 },
	{ "very fine", C_VF, 0 },
	{ "very good", C_VG, W_GOOD },
	{ "about good", C_AG, 0 },
	{ "mint state", C_MS, 0 },
	{ "uncirculated", C_BU, 0 },
	{ "unc", C_BU, 0 },
	{ "bu", C_BU, 0 },
	{ "b u", C_BU, 0 },
	{ "ms", C_MS, W_NUMBER_IN_TITLE },
	{ "pl", C_MS, W_NUMBER_ALWAYS | W_PROOFLIKE }, /* ICCS's grade of a prooflike coin: "PL-65" */
	{ "proof", C_PR, W_PROOF },
	{ "pr", C_PR, W_NUMBER_IN_TITLE },
	{ "pf", C_PR, W_NUMBER_IN_TITLE },
	{ "prf", C_PR, W_NUMBER_IN_TITLE },
	{ "sp", C_SP, W_NUMBER_IN_TITLE },
	{ "specimen", C_SP, W_PRAISED }, /* "1964 Canada Dollar Specimen" is the strike */
	{ "au", C_AU, W_AU },
	{ "xf", C_XF, 0 },
	{ "ef", C_XF, 0 },
	{ "vf", C_VF, 0 },
	{ "fine", C_F, W_FINE },
	{ "f", C_F, W_NUMBER_IN_TITLE },
	{ "vg", C_VG, 0 },
	{ "good", C_G, W_NUMBER_IN_TITLE },
	{ "g", C_G, W_NUMBER_IN_TITLE },
	{ "ag", C_AG, W_AG },
	{ "fair", C_FR, W_GOOD },
	{ "fr", C_FR, W_NUMBER_IN_TITLE },
	{ "poor", C_PO, W_GOOD },
	{ "po", C_PO, W_NUMBER_IN_TITLE },
	{ "p", C_PO, W_NUMBER_ALWAYS },
	/* The grades of eBay's other sites, as the US grade they stand for: German, French,
	 * Italian, Spanish and British. Not "ss", "st", "be", "sc", "spl": those are also
	 * S.S. ships, Saint-Gaudens, English words, South Carolina, or two grades apart. */
	{ "vz", C_XF, 0 },
	{ "vorzuglich", C_XF, 0 },
	{ "sehr schon", C_VF, 0 },
	{ "stgl", C_BU, 0 },
	{ "stempelglanz", C_BU, 0 },
	{ "unzirkuliert", C_BU, 0 },
	{ "bankfrisch", C_BU, 0 },
	{ "pragefrisch", C_BU, 0 },
	{ "polierte platte", C_PR, 0 },
	{ "pp", C_PR, 0 },
	{ "spiegelglanz", C_PR, 0 },
	{ "tb", C_F, 0 },
	{ "ttb", C_VF, 0 },
	{ "sup", C_XF, 0 },
	{ "fdc", C_BU, 0 },
	{ "fleur de coin", C_BU, 0 },
	{ "non circulee", C_BU, 0 },
	{ "non circule", C_BU, 0 },
	{ "belle epreuve", C_PR, 0 },
	{ "bb", C_VF, 0 },
	{ "qfdc", C_AU, 0 },
	{ "fior di conio", C_BU, 0 },
	{ "fondo specchio", C_PR, 0 },
	{ "mbc", C_VF, 0 },
	{ "ebc", C_XF, 0 },
	{ "sin circular", C_BU, 0 },
	{ "prueba", C_PR, 0 },
	{ "fondo espejo", C_PR, 0 },
	{ "gvf", C_VF, 0 },
	{ "gef", C_XF, 0 },
	{ "nef", C_XF, 0 },
	{ "aef", C_XF, 0 },
	{ "aunc", C_AU, 0 },
	{ "a unc", C_AU, 0 }, /* British "A/UNC" */
};

static const int sheldon[] = { 1,  2,  3,  4,  6,  8,  10, 12, 15, 20, 25, 30, 35, 40, 45,
			       50, 53, 55, 58, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70 };

static const char *const designation_names[GRADE_NDESIGNATIONS] = {
	"PL", "DMPL", "RD", "RB", "BN", "FB", "FBL", "FH", "FS", "CAM", "DCAM", "CAC", "+",
};

static const struct {
	const char *words;
	unsigned bit;
} designation_words[] = {
	{ "deep mirror prooflike", GRADE_D_DMPL },
	{ "deep mirror proof like", GRADE_D_DMPL },
	{ "dmpl", GRADE_D_DMPL },
	{ "d m p l", GRADE_D_DMPL },
	{ "dpl", GRADE_D_DMPL },
	{ "dm pl", GRADE_D_DMPL },
	{ "deep mirror pl", GRADE_D_DMPL },
	{ "deep mirror p l", GRADE_D_DMPL },
	{ "prooflike", GRADE_D_PL },
	{ "proof like", GRADE_D_PL },
	{ "pl", GRADE_D_PL },
	{ "p l", GRADE_D_PL },
	{ "red brown", GRADE_D_RB },
	{ "rb", GRADE_D_RB },
	{ "full red", GRADE_D_RD },
	{ "rd", GRADE_D_RD },
	{ "red", GRADE_D_RD }, /* only right after a grade's number: "MS65 Red", not "Red Book" */
	{ "bn", GRADE_D_BN },
	{ "brown", GRADE_D_BN }, /* likewise: "MS64 Brown" */
	{ "full split bands", GRADE_D_FB },
	{ "full bands", GRADE_D_FB },
	{ "fsb", GRADE_D_FB },
	{ "f b l", GRADE_D_FBL },
	{ "f b", GRADE_D_FB },
	{ "fb", GRADE_D_FB },
	{ "full torch", GRADE_D_FB }, /* NGC's name for a Roosevelt dime's full bands */
	{ "ft", GRADE_D_FB },
	{ "full bell lines", GRADE_D_FBL },
	{ "fbl", GRADE_D_FBL },
	{ "full head", GRADE_D_FH },
	{ "fh", GRADE_D_FH },
	{ "full steps", GRADE_D_FS },
	{ "fs", GRADE_D_FS },
	{ "deep cameo", GRADE_D_DCAM },
	{ "ultra cameo", GRADE_D_DCAM },
	{ "dcam", GRADE_D_DCAM },
	{ "d cam", GRADE_D_DCAM },
	{ "ucam", GRADE_D_DCAM },
	{ "uc", GRADE_D_DCAM },
	{ "cameo", GRADE_D_CAM },
	{ "cam", GRADE_D_CAM },
	{ "cac", GRADE_D_CAC },
	{ "gold bean", GRADE_D_CAC }, /* a CAC sticker, as collectors call it */
	{ "green bean", GRADE_D_CAC },
};

static const char *const certifiers[] = { "PCGS", "NGC", "ANACS", "ICG", "CACG", "SEGS", "PCI", "ICCS" };

/* Words that make an attribution's grade a details grade; what follows them is the
 * problem, read no further. */
static const char *const details_words[] = {
	"details", "detail",	"det",	    "genuine",	"cleaned", "damaged",  "damage",  "holed",
	"bent",	   "scratched", "corroded", "polished", "tooled",  "repaired", "altered", "environmental",
};

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t
grade_fold(const char *s, size_t len, char *out, size_t max)
{
	/* The ASCII letter of each of U+00C0..U+00FF (C3 80..C3 BF in UTF-8); 0: no letter. */
	static const char latin1[] = "aaaaaaaceeeeiiiidnooooo\0ouuuuyts"
				     "aaaaaaaceeeeiiiidnooooo\0ouuuuyty";
	size_t i = 0, k = 0;

	while (i < len && k < max) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0xC3 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0xBF && latin1[(unsigned char)s[i + 1] - 0x80]) {
			out[k++] = latin1[(unsigned char)s[i + 1] - 0x80];
			i += 2;
			continue;
		}
		out[k++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
		i++;
	}
	return k;
}

/* The length of a certifier's name that starts the letters s[0..len) and is followed by
 * more letters ("NGCMS64", "pcgsms"), or 0. */
static size_t
glued_certifier(const char *s, size_t len)
{
	size_t k, j;
	char first = lower(s[0]);

	if (len < 4 ||
	    (first != 'p' && first != 'n' && first != 'a' && first != 'i' && first != 'c' && first != 's'))
		return 0;
	for (k = 0; k < sizeof(certifiers) / sizeof(certifiers[0]); k++) {
		if (first != certifiers[k][0] - 'A' + 'a')
			continue;
		for (j = 1; certifiers[k][j] && j < len && lower(s[j]) == certifiers[k][j] - 'A' + 'a'; j++)
			;
		if (certifiers[k][j] == '\0' && j < len)
			return j;
	}
	return 0;
}

size_t
grade_tokenize(const char *s, size_t len, struct grade_token *t, size_t max)
{
	size_t i = 0, n = 0, k;

	while (i < len && n < max) {
		size_t start;
		int digits;

		if (!is_alpha(s[i]) && !is_digit(s[i])) {
			i++;
			continue;
		}
		start = i;
		digits = is_digit(s[i]);
		while (i < len && (digits ? is_digit(s[i]) : is_alpha(s[i])))
			i++;
		/* "NGCMS64": the certifier and the grade, glued */
		if (!digits && (k = glued_certifier(s + start, i - start)) > 0)
			i = start + k;
		t[n].p = s + start;
		t[n].len = i - start;
		t[n].digits = digits;
		t[n].glued = n > 0 && t[n - 1].p + t[n - 1].len == s + start;
		t[n].before = start > 0 ? s[start - 1] : 0;
		t[n].after = i < len ? s[i] : 0;
		t[n].next = t[n].after;
		if (t[n].next == ' ') {
			for (k = i + 1; k < len && s[k] == ' '; k++)
				;
			t[n].next = k < len ? s[k] : 0;
		}
		n++;
	}
	return n;
}

int
grade_token_is(const struct grade_token *t, const char *w)
{
	size_t i;

	for (i = 0; i < t->len; i++) {
		char c = t->p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (w[i] != c)
			return 0;
	}
	return w[i] == '\0';
}

size_t
grade_words_at(const struct grade_token *t, size_t n, size_t i, const char *words)
{
	const char *w = words;
	size_t used = 0, k;

	for (;;) {
		const struct grade_token *tok;

		if (i + used >= n || t[i + used].digits)
			return 0;
		tok = &t[i + used];
		/* w ends ('\0') or breaks (' ') before a longer token ends: a letter differs. */
		for (k = 0; k < tok->len; k++) {
			if (w[k] != lower(tok->p[k]))
				return 0;
		}
		w += k;
		used++;
		if (*w == '\0')
			return used;
		if (*w != ' ')
			return 0;
		w++;
	}
}

int
grade_token_number(const struct grade_token *t, size_t max_digits)
{
	int v = 0;
	size_t i;

	if (!t->digits || t->len > max_digits || max_digits > 9)
		return -1;
	for (i = 0; i < t->len; i++)
		v = v * 10 + (t->p[i] - '0');
	return v;
}

int
grade_number_continues(const struct grade_token *t, size_t n, size_t i)
{
	return (t[i].after == ',' || t[i].after == '.') && i + 1 < n && t[i + 1].digits &&
	       t[i + 1].p == t[i].p + t[i].len + 1;
}

static int
is_sheldon(int v)
{
	size_t i;

	for (i = 0; i < sizeof(sheldon) / sizeof(sheldon[0]); i++)
		if (sheldon[i] == v)
			return 1;
	return 0;
}

/* Units and counts that make the number before them something other than a grade. */
static int
is_unit(const struct grade_token *t)
{
	static const char *const units[] = { "c",	"cent",	  "cents",   "oz",    "ounce", "ounces",
					     "g",	"gram",	  "grams",   "gr",    "mm",    "pc",
					     "pcs",	"pieces", "piece",   "coins", "coin",  "dollar",
					     "dollars", "x",	  "ct",	     "count", "th",    "st",
					     "nd",	"rd",	  "percent", "k",     "kt",    "troy",
					     "lb",	"lbs",	  "years",   "year",  "yr" };
	size_t i;
	char first = lower(t->p[0]);

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (units[i][0] == first && grade_token_is(t, units[i]))
			return 1;
	return 0;
}

/* The Sheldon number at t[j] that may follow a grade word of class cls, or -1. */
static int
number_after(const struct grade_token *t, size_t n, size_t j, int cls)
{
	const struct grade_class *c = &classes[cls];
	int v;
	size_t used;

	if (j >= n || (v = grade_token_number(&t[j], 2)) < 0 || !is_sheldon(v) || v < c->num_lo ||
	    v > c->num_hi)
		return -1;
	if (t[j].before == '$' || t[j].before == '#' || t[j].after == '%' || grade_number_continues(t, n, j))
		return -1;
	/* "MS 20 coins" counts; "MS63 x 2" is two coins in MS63 */
	if (j + 1 < n && !t[j + 1].digits && grade_designation_at(t, n, j + 1, &used) == 0 &&
	    (t[j + 1].glued || is_unit(&t[j + 1])) && grade_certifier(&t[j + 1]) == NULL &&
	    !(grade_token_is(&t[j + 1], "x") && !t[j + 1].glued && j + 2 < n && t[j + 2].digits))
		return -1;
	return v;
}

/* Whether a token is a number of three digits or more that is no year (1700-2099). */
static int
fineness(const struct grade_token *t)
{
	int v = grade_token_number(t, 9);

	return t->digits && t->len >= 3 && !(t->len == 4 && v >= 1700 && v <= 2099);
}

/* Whether the grade word at t[i] (taking used tokens) is something else here. */
static int
word_refused(const struct grade_token *t, size_t n, size_t i, size_t used, int flags)
{
	size_t next = i + used;
	size_t k;

	if ((flags & W_PROOF) &&
	    ((next < n && grade_token_is(&t[next], "like")) ||
	     (i > 0 && (grade_token_is(&t[i - 1], "not") || grade_token_is(&t[i - 1], "non")))))
		return 1; /* "Proof Like" is a designation; "Not Proof" a business strike */
	if (flags & W_FINE) {
		static const char *const metals[] = {
			"silver", "gold", "platinum", "palladium", "troy", "oz"
		};

		if (i > 0 && t[i - 1].digits)
			return 1;
		for (k = 0; next < n && k < sizeof(metals) / sizeof(metals[0]); k++)
			if (grade_token_is(&t[next], metals[k]))
				return 1;
	}
	/* "AU .9999", "999 AU": gold's fineness; "AU 1921-S" is a grade before a year. A
	 * grade's number after it makes it a grade wherever it stands: "$5 Liberty Gold AU58",
	 * "Morgan Silver AG-3". */
	if ((flags & W_AU) && number_after(t, n, next, C_AU) < 0) {
		if ((next < n && (grade_token_is(&t[next], "gold") || fineness(&t[next]))) ||
		    (i > 0 && (grade_token_is(&t[i - 1], "gold") || fineness(&t[i - 1]))))
			return 1;
	}
	if ((flags & W_AG) && number_after(t, n, next, C_AG) < 0) {
		if ((next < n && (grade_token_is(&t[next], "silver") || fineness(&t[next]))) ||
		    (i > 0 && (grade_token_is(&t[i - 1], "silver") || fineness(&t[i - 1]))))
			return 1;
	}
	if ((flags & W_PRAISED) && i > 0) {
		static const char *const praise[] = { "a",	   "an",	 "nice",   "beautiful",
						      "lovely",	   "great",	 "superb", "gorgeous",
						      "stunning",  "attractive", "pretty", "excellent",
						      "wonderful", "fantastic",	 "fine",   "amazing" };

		for (k = 0; k < sizeof(praise) / sizeof(praise[0]); k++)
			if (grade_token_is(&t[i - 1], praise[k]))
				return 1;
	}
	if ((flags & W_GOOD) && next < n) {
		static const char *const about[] = { "condition", "shape",  "deal",   "price", "strike",
						     "quality",	  "luster", "lustre", "eye",   "photo",
						     "photos",	  "pics",   "offer",  "value", "man" };

		for (k = 0; k < sizeof(about) / sizeof(about[0]); k++)
			if (grade_token_is(&t[next], about[k]))
				return 1;
	}
	return 0;
}

/* Whether a "+" standing apart before t[i] joins two coins ("MS63 + 1922 MS64") rather
 * than raising the grade before it ("MS64 +", "MS64 + CAC"). */
static int
plus_joins(const struct grade_token *t, size_t n, size_t i)
{
	static const char *const grades[] = {
		"ms", "pr", "pf", "proof", "au", "xf", "ef", "vf", "bu", "unc"
	};
	size_t k;

	if (i >= n)
		return 0;
	if (t[i].digits)
		return 1;
	for (k = 0; k < sizeof(grades) / sizeof(grades[0]); k++)
		if (grade_token_is(&t[i], grades[k]))
			return 1;
	return 0;
}

/* g->text = qualifier abbr, or abbr number (number > 0). No snprintf: this runs per title. */
static void
set_text(struct grade *g, const char *qualifier, const char *abbr, int number)
{
	size_t q = strlen(qualifier), a = strlen(abbr);

	memcpy(g->text, qualifier, q);
	memcpy(g->text + q, abbr, a);
	q += a;
	if (number >= 10)
		g->text[q++] = (char)('0' + number / 10);
	if (number > 0)
		g->text[q++] = (char)('0' + number % 10);
	g->text[q] = '\0';
}

size_t
grade_scan(const struct grade_token *t, size_t n, size_t i, int in_title, struct grade *g)
{
	enum { Q_NONE, Q_CHOICE, Q_GEM, Q_SUPERB } q = Q_NONE;
	size_t start = i, used = 0, k, last;
	const struct grade_class *c;
	int cls = -1, flags = 0, v;
	char first;

	if (i >= n)
		return 0;
	if (t[i].digits) {
		/* A bare number: an attribution's "63"; in a title only the caller knows. */
		if (in_title || (v = grade_token_number(&t[i], 2)) < 0 || !is_sheldon(v))
			return 0;
		for (cls = C_PO; cls < C_MS; cls++)
			if (v >= classes[cls].num_lo && v <= classes[cls].num_hi)
				break;
		if (number_after(t, n, i, cls) != v)
			return 0;
		memset(g, 0, sizeof(*g));
		g->lo = g->hi = v;
		set_text(g, "", classes[cls].abbr, v);
		return 1;
	}
	first = lower(t[i].p[0]);
	if (first != 's' && first != 'g' && first != 'c') {
		/* no qualifier */
	} else if ((k = grade_words_at(t, n, i, "superb gem")) || (k = grade_words_at(t, n, i, "superb"))) {
		q = Q_SUPERB;
		i += k;
	} else if ((k = grade_words_at(t, n, i, "gem"))) {
		q = Q_GEM;
		i += k;
	} else if ((k = grade_words_at(t, n, i, "choice")) || (k = grade_words_at(t, n, i, "ch"))) {
		q = Q_CHOICE;
		i += k;
	}
	if (i >= n)
		return 0;
	first = lower(t[i].p[0]);
	for (k = 0; k < sizeof(grade_words) / sizeof(grade_words[0]); k++) {
		if (grade_words[k].words[0] == first &&
		    (used = grade_words_at(t, n, i, grade_words[k].words)) > 0) {
			cls = grade_words[k].cls;
			flags = grade_words[k].flags;
			break;
		}
	}
	if (cls < 0 || (in_title && word_refused(t, n, i, used, flags)))
		return 0;
	c = &classes[cls];
	memset(g, 0, sizeof(*g));
	g->proof = c->proof;
	last = i + used - 1;
	v = number_after(t, n, i + used, cls);
	if (v > 0) {
		g->lo = g->hi = v;
		set_text(g, "", c->abbr, v);
		last = i + used;
	} else {
		/* "G+", "Good+": a plus makes a lone letter a grade; "MS" still needs its number */
		if ((flags & W_NUMBER_ALWAYS) ||
		    (in_title && (flags & W_NUMBER_IN_TITLE) && !(t[last].after == '+' && cls < C_MS)))
			return 0;
		g->lo = c->lo;
		g->hi = c->hi;
		if (q == Q_CHOICE && c->choice_lo > 0) {
			g->lo = c->choice_lo;
			g->hi = c->choice_hi;
			set_text(g, "Choice ", cls == C_MS ? "BU" : c->abbr, 0);
		} else if (q == Q_GEM && c->gem) {
			g->lo = 65;
			g->hi = 66;
			set_text(g, "Gem ", cls == C_MS ? "BU" : c->abbr, 0);
		} else if (q == Q_SUPERB && c->gem) {
			g->lo = 67;
			g->hi = 70;
			set_text(g, "Superb Gem ", cls == C_MS ? "BU" : c->abbr, 0);
		} else {
			if (q != Q_NONE && in_title)
				return 0; /* "Gem VF" is no grade anyone writes: read no guess */
			set_text(g, "", c->abbr, 0);
		}
	}
	if (flags & W_PROOFLIKE)
		g->designations |= GRADE_D_PL;
	if (t[last].after == '+' || (t[last].next == '+' && !plus_joins(t, n, last + 1))) {
		g->designations |= GRADE_D_PLUS;
	} else if (v > 0 && last + 1 < n && grade_token_is(&t[last + 1], "plus")) {
		g->designations |= GRADE_D_PLUS; /* "MS 64 Plus" */
		last++;
	}
	return last + 1 - start;
}

unsigned
grade_designation_at(const struct grade_token *t, size_t n, size_t i, size_t *used)
{
	size_t k, u;
	char first;

	if (i >= n)
		return 0;
	first = lower(t[i].p[0]);
	for (k = 0; k < sizeof(designation_words) / sizeof(designation_words[0]); k++) {
		if (designation_words[k].words[0] != first ||
		    (u = grade_words_at(t, n, i, designation_words[k].words)) == 0)
			continue;
		/* "3rd" is no colour: glued to a number, a designation follows a grade's number. */
		if (i > 0 && t[i].glued && t[i - 1].digits && designation_words[k].bit != GRADE_D_FS &&
		    (grade_token_number(&t[i - 1], 2) < 60 || grade_token_number(&t[i - 1], 2) > 70))
			return 0;
		/* "Semi PL" is a seller's word for a coin no grader called prooflike */
		if ((designation_words[k].bit & (GRADE_D_PL | GRADE_D_DMPL)) && i > 0 &&
		    grade_token_is(&t[i - 1], "semi"))
			return 0;
		/* FS-101 is a variety's number; UC only right after a grade's number. */
		if (designation_words[k].bit == GRADE_D_FS && u == 1 && i + 1 < n && t[i + 1].digits)
			return 0;
		if (grade_token_is(&t[i], "uc") && (i == 0 || !t[i - 1].digits))
			return 0;
		/* A colour or a torch written out is a designation right after an uncirculated
		 * or proof grade's number only ("MS65 Red", "MS65FT"): elsewhere it is a book,
		 * a toning, a box or a measure. */
		if (u == 1 &&
		    (grade_token_is(&t[i], "red") || grade_token_is(&t[i], "brown") ||
		     grade_token_is(&t[i], "ft")) &&
		    (i == 0 || grade_token_number(&t[i - 1], 2) < 60))
			return 0;
		*used = u;
		return designation_words[k].bit;
	}
	return 0;
}

const char *
grade_certifier(const struct grade_token *t)
{
	size_t k;
	char w[8];

	for (k = 0; k < sizeof(certifiers) / sizeof(certifiers[0]); k++) {
		size_t j, len = strlen(certifiers[k]);

		for (j = 0; j < len; j++)
			w[j] = (char)(certifiers[k][j] - 'A' + 'a');
		w[len] = '\0';
		if (grade_token_is(t, w))
			return certifiers[k];
	}
	return NULL;
}

const char *
grade_designation_name(int i)
{
	return i >= 0 && i < GRADE_NDESIGNATIONS ? designation_names[i] : NULL;
}

static int
is_details_word(const struct grade_token *t)
{
	size_t k;

	for (k = 0; k < sizeof(details_words) / sizeof(details_words[0]); k++)
		if (grade_token_is(t, details_words[k]))
			return 1;
	return 0;
}

int
grade_parse(const char *s, size_t len, struct grade *g)
{
	struct grade_token t[48];
	char folded[256];
	size_t n, i = 0, used;
	unsigned d;

	n = grade_tokenize(folded, grade_fold(s, len, folded, sizeof(folded)), t, sizeof(t) / sizeof(t[0]));
	if (n > 0 && grade_certifier(&t[0]) != NULL)
		i++;
	if ((used = grade_scan(t, n, i, 0, g)) == 0)
		return -1;
	for (i += used; i < n; i += used) {
		if (is_details_word(&t[i])) {
			g->details = 1;
			break;
		}
		if ((d = grade_designation_at(t, n, i, &used)) != 0) {
			g->designations |= d;
			if (t[i + used - 1].after == '+')
				g->designations |= GRADE_D_PLUS;
		} else if (grade_certifier(&t[i]) != NULL) {
			used = 1;
		} else {
			return -1;
		}
	}
	return 0;
}

const char *
grade_vocabulary(size_t i)
{
	static const char *const qualifiers[] = { "gem", "choice", "ch", "superb" };
	static char word[32];
	const char *w;
	size_t k;

	if (i < sizeof(grade_words) / sizeof(grade_words[0]))
		w = grade_words[i].words;
	else if ((i -= sizeof(grade_words) / sizeof(grade_words[0])) <
		 sizeof(designation_words) / sizeof(designation_words[0]))
		w = designation_words[i].words;
	else if ((i -= sizeof(designation_words) / sizeof(designation_words[0])) <
		 sizeof(qualifiers) / sizeof(qualifiers[0]))
		w = qualifiers[i];
	else
		return NULL;
	k = strcspn(w, " ");
	memcpy(word, w, k);
	word[k] = '\0';
	return word;
}
