/*
 * A listing's title read as a collector reads it, and the checks of what it says against
 * the coin being priced. Grades and designations are grade.c's grammar; this file adds
 * counts, problems, years, mint marks, series, denominations and strikes.
 */
#include "title.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 96

enum series {
	S_MORGAN,
	S_PEACE,
	S_WALKING,
	S_MERCURY,
	S_LINCOLN,
	S_BUFFALO,
	S_INDIAN,
	S_KENNEDY,
	S_BARBER,
	S_FRANKLIN,
	S_WASHINGTON,
	S_JEFFERSON,
	S_ROOSEVELT,
	S_STANDING,
	S_SEATED,
	S_EISENHOWER,
	S_ANTHONY,
	S_SACAGAWEA,
	S_PRESIDENTIAL,
	S_TRADE,
	S_SAINT,
	S_EAGLE,
	S_CAPPED,
	S_DRAPED,
	S_FLOWING,
	S_LIBERTY_NICKEL,
	S_FLYING_EAGLE,
	S_GOLD_EAGLE,
	S_LIBERTY_GOLD,
	S_NONE /* words that look like a series and are not one ("Franklin Mint") */
};

static const char *const series_names[] = {
	"Morgan",
	"Peace",
	"Walking Liberty",
	"Mercury",
	"Lincoln",
	"Buffalo",
	"Indian",
	"Kennedy",
	"Barber",
	"Franklin",
	"Washington",
	"Jefferson",
	"Roosevelt",
	"Standing Liberty",
	"Seated Liberty",
	"Eisenhower",
	"Susan B. Anthony",
	"Sacagawea",
	"Presidential",
	"Trade",
	"Saint-Gaudens",
	"Silver Eagle",
	"Capped Bust",
	"Draped Bust",
	"Flowing Hair",
	"Liberty Nickel",
	"Flying Eagle",
	"Gold Eagle",
	"Liberty Head gold",
};

static const struct {
	const char *words;
	int id;
} series_words[] = {
	{ "franklin mint", S_NONE },
	{ "indian head nickel", S_BUFFALO },
	{ "indian nickel", S_BUFFALO },
	{ "walking liberty", S_WALKING },
	{ "liberty walking", S_WALKING },
	{ "liberty standing", S_STANDING },
	{ "liberty seated", S_SEATED },
	{ "slq", S_STANDING },
	{ "merc", S_MERCURY },
	{ "flying eagle", S_FLYING_EAGLE },
	{ "gold eagle", S_GOLD_EAGLE },
	{ "gold american eagle", S_GOLD_EAGLE },
	{ "walker", S_WALKING },
	{ "walkers", S_WALKING },
	{ "winged liberty", S_MERCURY },
	{ "mercury", S_MERCURY },
	{ "mercurys", S_MERCURY },
	{ "standing liberty", S_STANDING },
	{ "seated liberty", S_SEATED },
	{ "seated", S_SEATED },
	{ "morgan", S_MORGAN },
	{ "morgans", S_MORGAN },
	{ "peace", S_PEACE },
	{ "lincoln", S_LINCOLN },
	{ "lincolns", S_LINCOLN },
	{ "wheat", S_LINCOLN },
	{ "wheatie", S_LINCOLN },
	{ "wheaties", S_LINCOLN },
	{ "buffalo", S_BUFFALO },
	{ "buffalos", S_BUFFALO },
	{ "indian", S_INDIAN },
	{ "kennedy", S_KENNEDY },
	{ "kennedys", S_KENNEDY },
	{ "jfk", S_KENNEDY },
	{ "barber", S_BARBER },
	{ "barbers", S_BARBER },
	{ "franklin", S_FRANKLIN },
	{ "franklins", S_FRANKLIN },
	{ "washington", S_WASHINGTON },
	{ "jefferson", S_JEFFERSON },
	{ "roosevelt", S_ROOSEVELT },
	{ "eisenhower", S_EISENHOWER },
	{ "ike", S_EISENHOWER },
	{ "susan b anthony", S_ANTHONY },
	{ "susan b", S_ANTHONY },
	{ "sba", S_ANTHONY },
	{ "sacagawea", S_SACAGAWEA },
	{ "presidential", S_PRESIDENTIAL },
	{ "trade dollar", S_TRADE },
	{ "trade", S_TRADE },
	{ "mercs", S_MERCURY },
	{ "war nickel", S_JEFFERSON },
	{ "steel cent", S_LINCOLN },
	{ "native american", S_SACAGAWEA },
	{ "saint gaudens", S_SAINT },
	{ "st gaudens", S_SAINT },
	{ "silver eagle", S_EAGLE },
	{ "ase", S_EAGLE },
	{ "capped bust", S_CAPPED },
	{ "draped bust", S_DRAPED },
	{ "flowing hair", S_FLOWING },
	{ "liberty nickel", S_LIBERTY_NICKEL },
	{ "v nickel", S_LIBERTY_NICKEL },
	/* Liberty Head (Coronet) gold, 1838-1908: only where the title is about gold (a
	 * "Liberty Head" quarter is a Barber, a "Coronet" cent a large cent); see title_read */
	{ "liberty head", S_LIBERTY_GOLD },
	{ "liberty gold", S_LIBERTY_GOLD },
	{ "coronet", S_LIBERTY_GOLD },
	{ "liberty double eagle", S_LIBERTY_GOLD },
	{ "liberty half eagle", S_LIBERTY_GOLD },
	{ "liberty quarter eagle", S_LIBERTY_GOLD },
	{ "liberty eagle", S_LIBERTY_GOLD },
};

enum denomination {
	D_CENT,
	D_TWO_CENT,
	D_THREE_CENT,
	D_NICKEL,
	D_HALF_DIME,
	D_DIME,
	D_TWENTY_CENT,
	D_QUARTER,
	D_HALF,
	D_DOLLAR,
	D_G2_5,
	D_G3,
	D_G5,
	D_G10,
	D_G20,
	D_HALF_CENT,
	D_NONE
};

static const char *const denomination_names[] = {
	"cent",	       "2 cent", "3 cent", "nickel", "half dime", "dime", "20 cent", "quarter",
	"half dollar", "dollar", "$2.50",  "$3",     "$5",	  "$10",  "$20",     "half cent",
};

static const struct {
	const char *words;
	int id;
} denomination_words[] = {
	{ "copper nickel", D_NONE },
	{ "cupro nickel", D_NONE },
	{ "half dollar", D_HALF },
	{ "half dollars", D_HALF },
	{ "half dime", D_HALF_DIME },
	{ "half cent", D_HALF_CENT },
	{ "half cents", D_HALF_CENT },
	{ "demi dollar", D_HALF },
	{ "half eagle", D_G5 },
	{ "quarter eagle", D_G2_5 },
	{ "double eagle", D_G20 },
	{ "half", D_HALF },
	{ "halves", D_HALF },
	{ "quarter dollar", D_QUARTER },
	{ "quarter", D_QUARTER },
	{ "quarters", D_QUARTER },
	{ "qtr", D_QUARTER },
	{ "dime", D_DIME },
	{ "dimes", D_DIME },
	{ "nickel", D_NICKEL },
	{ "nickels", D_NICKEL },
	{ "penny", D_CENT },
	{ "pennies", D_CENT },
	{ "one cent", D_CENT },
	{ "two cent", D_TWO_CENT },
	{ "three cent", D_THREE_CENT },
	{ "five cent", D_NICKEL },
	{ "ten cent", D_DIME },
	{ "twenty cent", D_TWENTY_CENT },
	{ "twenty five cent", D_QUARTER },
	{ "fifty cent", D_HALF },
	{ "cent", D_CENT },
	{ "cents", D_CENT },
	{ "twenty dollar", D_G20 },
	{ "ten dollar", D_G10 },
	{ "five dollar", D_G5 },
	{ "three dollar", D_G3 },
	{ "one dollar", D_DOLLAR },
	{ "dollar", D_DOLLAR },
	{ "dollars", D_DOLLAR },
};

/* The problems a title names, each with the name its reason gives; the last few are the
 * same in the languages of eBay's other sites (accents folded: "nettoyée"). */
static const struct {
	const char *word;
	const char *problem;
	int generic; /* says there is a problem, not which: a specific word wins */
} problem_words[] = {
	{ "cleaned", "cleaned", 0 },
	{ "cleaning", "cleaned", 0 },
	{ "holed", "holed", 0 },
	{ "hole", "holed", 0 },
	{ "drilled", "holed", 0 },
	{ "plugged", "plugged", 0 },
	{ "bent", "bent", 0 },
	{ "damaged", "damaged", 0 },
	{ "damage", "damaged", 0 },
	{ "dmg", "damaged", 0 },
	{ "ding", "damaged", 0 },
	{ "dings", "damaged", 0 },
	{ "scratched", "scratched", 0 },
	{ "scratch", "scratched", 0 },
	{ "scratches", "scratched", 0 },
	{ "corroded", "corroded", 0 },
	{ "corrosion", "corroded", 0 },
	{ "environmental", "environmental", 0 },
	{ "polished", "polished", 0 },
	{ "tooled", "tooled", 0 },
	{ "repaired", "repaired", 0 },
	{ "altered", "altered", 0 },
	{ "graffiti", "graffiti", 0 },
	{ "whizzed", "whizzed", 0 },
	{ "jewelry", "jewelry", 0 },
	{ "details", "details", 1 },
	{ "detail", "details", 1 },
	{ "det", "details", 1 },
	{ "problem", "problem", 1 },
	{ "problems", "problem", 1 },
	{ "cull", "cull", 1 },
	{ "culls", "cull", 1 },
	{ "env", "environmental", 0 },
	{ "pvc", "pvc", 0 },
	{ "artificial", "altered", 0 },
	{ "acid", "altered", 0 },
	{ "dent", "damaged", 0 },
	{ "dented", "damaged", 0 },
	{ "dents", "damaged", 0 },
	{ "nick", "damaged", 0 },
	{ "nicks", "damaged", 0 },
	{ "bump", "damaged", 0 },
	{ "bumps", "damaged", 0 },
	{ "gouge", "damaged", 0 },
	{ "gouges", "damaged", 0 },
	{ "pierced", "holed", 0 },
	{ "wiped", "cleaned", 0 },
	{ "pitted", "corroded", 0 },
	{ "pitting", "corroded", 0 },
	{ "porous", "corroded", 0 },
	{ "engraved", "graffiti", 0 },
	{ "mounted", "jewelry", 0 },
	{ "mount", "jewelry", 0 },
	{ "bezel", "jewelry", 0 },
	{ "counterstamped", "counterstamped", 0 },
	{ "counterstamp", "counterstamped", 0 },
	{ "countermarked", "counterstamped", 0 },
	{ "countermark", "counterstamped", 0 },
	{ "chopmarked", "chopmarked", 0 },
	{ "chopmark", "chopmarked", 0 },
	{ "chopmarks", "chopmarked", 0 },
	{ "chop", "chopmarked", 0 },
	{ "nettoye", "cleaned", 0 },
	{ "nettoyee", "cleaned", 0 },
	{ "gereinigt", "cleaned", 0 },
	{ "pulita", "cleaned", 0 },
	{ "limpiada", "cleaned", 0 },
	{ "troue", "holed", 0 },
	{ "trouee", "holed", 0 },
	{ "gelocht", "holed", 0 },
	{ "forata", "holed", 0 },
	{ "perforada", "holed", 0 },
	{ "perforado", "holed", 0 },
	{ "agujereada", "holed", 0 },
	{ "agujereado", "holed", 0 },
	{ "bucata", "holed", 0 },
	{ "bucato", "holed", 0 },
	{ "beschadigt", "damaged", 0 },
	{ "golpes", "damaged", 0 },
	{ "colpi", "damaged", 0 },
	{ "kratzer", "scratched", 0 },
	{ "rayure", "scratched", 0 },
	{ "rayures", "scratched", 0 },
	{ "rayee", "scratched", 0 },
	{ "rayada", "scratched", 0 },
	{ "graffi", "scratched", 0 },
	{ "graffiato", "scratched", 0 },
	{ "poliert", "polished", 0 },
	{ "henkelspur", "jewelry", 0 },
	{ "gehenkelt", "jewelry", 0 },
	{ "fassung", "jewelry", 0 },
	{ "appiccagnolo", "jewelry", 0 },
	{ "montata", "jewelry", 0 },
	{ "montee", "jewelry", 0 },
	{ "bijou", "jewelry", 0 },
	{ "pendentif", "jewelry", 0 },
	{ "ciondolo", "jewelry", 0 },
	{ "colgante", "jewelry", 0 },
	{ "jewellery", "jewelry", 0 },
	{ "loop", "jewelry", 0 },
	{ "looped", "jewelry", 0 },
	{ "randfehler", "damaged", 0 },
	{ "randschaden", "damaged", 0 },
	{ "dettagli", "details", 1 },
};

static const struct {
	const char *words;
	char mark[3];
} mark_words[] = {
	{ "san francisco", "S" }, { "denver", "D" },	 { "carson city", "CC" }, { "new orleans", "O" },
	{ "philadelphia", "" },	  { "west point", "W" }, { "s mint", "S" },	  { "d mint", "D" },
	{ "o mint", "O" },	  { "cc mint", "CC" },	 { "w mint", "W" },	  { "p mint", "" },
	{ "no mint mark", "" },	  { "no mintmark", "" }, { "no mm", "" },
};

/* Words after which several coins of no stated count are for sale. */
static const char *const variation_words[] = {
	"you pick",    "you choose", "u pick", "u choose",  "pick your", "choose your",
	"your choice", "random",     "mixed",  "assorted",  "various",	 "bulk",
	"set",	       "sets",	     "rolls",  "full roll", "konvolut",	 "monster box",
};

/* Words that count the coins: "lot of 5", "roll of 20", "qty 3". */
static const char *const count_words[] = { "lot",  "set", "roll",     "bag",   "box",
					   "tube", "qty", "quantity", "lotto", "lote" };

/* What stands between a count word and its number: "lot of 5", "lot de 5", "lotto di 4". */
static const char *const count_of[] = { "of", "de", "di", "da", "von" };

static const char *const number_words[] = { "two",   "three", "four", "five", "six",
					    "seven", "eight", "nine", "ten" };
static const char *const pieces[] = { "coin",	 "coins",  "pcs",   "pc",   "pieces", "piece",
				      "ct",	 "count",  "stuck", "stk",  "munzen", "monete",
				      "monedas", "piezas", "pezzi", "pack", "pk" };

static const char *const negators[] = { "not", "no",   "non",	"never", "without", "nothing",
					"un",  "zero", "nicht", "kein",	 "keine",   "ohne",
					"pas", "sans", "senza", "sin" };
static const char *const fillers[] = { "a",	"an",	 "any",	  "been",    "ever",	"is",
				       "was",	"has",	 "have",  "or",	     "and",	"nor",
				       "other", "signs", "sign",  "of",	     "the",	"evidence",
				       "rim",	"edge",	 "major", "visible", "obvious", "real" };

/* Which tables a word can start an entry of: most words start none, and are passed by
 * with one lookup. */
enum {
	K_GRADE = 1,
	K_CERTIFIER = 2,
	K_SERIES = 4,
	K_DENOMINATION = 8,
	K_PROBLEM = 16,
	K_COUNT = 32,
	K_VARIATION = 64,
	K_MARK = 128,
	K_OTHER = 256, /* a word with a meaning of its own below ("x", "pair", "business") */
};

struct lexeme {
	char word[24]; /* "" for an empty slot */
	unsigned kinds;
};

/* An open-addressed hash table of the first words of every table, filled once. */
#define LEXICON_SLOTS 1024
static struct lexeme lexicon[LEXICON_SLOTS];
static int lexicon_ready;

static size_t
lexicon_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	return h & (LEXICON_SLOTS - 1);
}

/* The slot of the word p[0..len): where it is, or the empty slot where it would go. */
static struct lexeme *
lexicon_slot(const char *p, size_t len)
{
	size_t h = lexicon_hash(p, len);

	while (lexicon[h].word[0] != '\0' &&
	       !(strncmp(lexicon[h].word, p, len) == 0 && lexicon[h].word[len] == '\0'))
		h = (h + 1) & (LEXICON_SLOTS - 1);
	return &lexicon[h];
}

/* Add the first word of words under kind. */
static void
lexicon_add(const char *words, unsigned kind)
{
	size_t k = strcspn(words, " ");
	struct lexeme *l;

	if (k == 0 || k >= sizeof(lexicon[0].word))
		abort(); /* a table's word does not fit: a programming error */
	l = lexicon_slot(words, k);
	if (l->word[0] == '\0')
		memcpy(l->word, words, k);
	l->kinds |= kind;
}

#define ADD_ALL(table, field, kind)                                                                          \
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)                                               \
	lexicon_add(table[i] field, kind)

static void
lexicon_init(void)
{
	static const char *const certifiers[] = {
		"pcgs", "ngc", "anacs", "icg", "cacg", "segs", "pci", "iccs"
	};
	static const char *const others[] = { "x",   "pair",	"business", "pcs",   "coins",
					      "vdb", "legged",	"legs",	    "leg",   "overdate",
					      "sms", "special", "paar",	    "paire", "gold" };
	const char *w;
	size_t i;

	if (lexicon_ready)
		return;
	lexicon_ready = 1;
	for (i = 0; (w = grade_vocabulary(i)) != NULL; i++)
		lexicon_add(w, K_GRADE);
	ADD_ALL(certifiers, , K_CERTIFIER);
	ADD_ALL(series_words, .words, K_SERIES);
	ADD_ALL(denomination_words, .words, K_DENOMINATION);
	ADD_ALL(problem_words, .word, K_PROBLEM);
	ADD_ALL(count_words, , K_COUNT);
	ADD_ALL(variation_words, , K_VARIATION);
	ADD_ALL(mark_words, .words, K_MARK);
	ADD_ALL(others, , K_OTHER);
	ADD_ALL(number_words, , K_OTHER);
}

static unsigned
lexicon_kinds(const struct grade_token *t)
{
	if (t->digits || t->len >= sizeof(lexicon[0].word))
		return 0;
	return lexicon_slot(t->p, t->len)->kinds;
}

int
title_word_in(const char *const *list, size_t n, const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strncmp(list[i], w, len) == 0 && list[i][len] == '\0')
			return 1;
	return 0;
}

int
title_is_negator(const char *w, size_t len)
{
	return title_word_in(negators, sizeof(negators) / sizeof(negators[0]), w, len);
}

int
title_is_filler(const char *w, size_t len)
{
	return title_word_in(fillers, sizeof(fillers) / sizeof(fillers[0]), w, len);
}

/* Whether "details" at t[i] is a details grade ("XF Details", "NGC Details", "... Details")
 * and not the listing's ("see photos for details", "nice details"). */
static int
details_grade(const struct grade_token *t, size_t i, size_t after_grade)
{
	static const char *const describing[] = { "for",       "more",	  "see",  "nice",  "great",
						  "sharp",     "strong",  "good", "full",  "all",
						  "excellent", "amazing", "bold", "crisp", "fine",
						  "original",  "the",	  "with" };

	if (i == after_grade)
		return 1;
	return i == 0 || !title_word_in(describing, sizeof(describing) / sizeof(describing[0]), t[i - 1].p,
					t[i - 1].len);
}

static int
problem_index(const struct grade_token *t)
{
	size_t k;

	for (k = 0; k < sizeof(problem_words) / sizeof(problem_words[0]); k++)
		if (grade_token_is(t, problem_words[k].word))
			return (int)k;
	return -1;
}

/* Whether the problem word k at t[i] means that problem here: "PVC" of a flip, "Mount
 * Rushmore", "acid tested" gold and a "chop" that is no chop mark do not. */
static int
problem_in_context(const struct grade_token *t, size_t n, size_t i, int k)
{
	static const char *const pvc_things[] = { "flip",    "flips", "free",  "holder", "holders", "sleeve",
						  "sleeves", "page",  "pages", "album",	 "safe" };
	static const char *const holders[] = { "slab",	  "slabs", "holder", "holders", "case",
					       "capsule", "flip",  "label",  "insert",	"box" };
	static const char *const linking[] = { "on", "to", "has", "have", "in", "of" };
	const char *w = problem_words[k].word;
	const struct grade_token *next = i + 1 < n ? &t[i + 1] : NULL;
	size_t nh = sizeof(holders) / sizeof(holders[0]), nl = sizeof(linking) / sizeof(linking[0]);

	/* "scratched slab", "slab scratched", "scratch on slab", "holder has scratches": the
	 * holder's problem, not the coin's */
	if ((next != NULL && title_word_in(holders, nh, next->p, next->len)) ||
	    (i > 0 && title_word_in(holders, nh, t[i - 1].p, t[i - 1].len)) ||
	    (i + 2 < n && title_word_in(linking, nl, t[i + 1].p, t[i + 1].len) &&
	     title_word_in(holders, nh, t[i + 2].p, t[i + 2].len)) ||
	    (i > 1 && title_word_in(linking, nl, t[i - 1].p, t[i - 1].len) &&
	     title_word_in(holders, nh, t[i - 2].p, t[i - 2].len)))
		return 0;

	if (strcmp(w, "pvc") == 0)
		return next == NULL || !title_word_in(pvc_things, sizeof(pvc_things) / sizeof(pvc_things[0]),
						      next->p, next->len);
	if (strcmp(w, "mount") == 0 || strcmp(w, "loop") == 0) /* not "Loop of Luster" */
		return (i > 0 && grade_token_is(&t[i - 1], "ex")) ||
		       (next != NULL && (grade_token_is(next, "removed") || grade_token_is(next, "mark") ||
					 grade_token_is(next, "marks") || grade_token_is(next, "traces")));
	if (strcmp(w, "acid") == 0)
		return next != NULL && (grade_token_is(next, "date") || grade_token_is(next, "treated") ||
					grade_token_is(next, "restored") || grade_token_is(next, "etched"));
	if (strcmp(w, "chop") == 0)
		return next != NULL && (grade_token_is(next, "mark") || grade_token_is(next, "marks") ||
					grade_token_is(next, "marked"));
	return 1;
}

/* What a "free" after a problem word may be about instead: "cleaned, free shipping". */
static const char *const shipping[] = { "shipping", "ship", "shipped", "postage", "delivery", "returns",
					"return",   "p",    "s",       "us",	  "usa" };

/* Whether the problem word at t[i] is negated: "not cleaned", "no problems", "never been
 * cleaned", "not cleaned or damaged", "problem free". */
static int
problem_negated(const struct grade_token *t, size_t n, size_t i)
{
	size_t j = i;

	/* "problem free", "scratch-free"; but "cleaned Free Shipping" is a cleaned coin. */
	if (i + 1 < n && grade_token_is(&t[i + 1], "free") &&
	    (t[i].after == '-' ||
	     !(i + 2 < n &&
	       title_word_in(shipping, sizeof(shipping) / sizeof(shipping[0]), t[i + 2].p, t[i + 2].len))))
		return 1;
	while (j-- > 0) {
		if (t[j].digits)
			return 0;
		if (title_is_negator(t[j].p, t[j].len))
			return 1;
		/* "free of problems", "free from damage" */
		if (grade_token_is(&t[j], "free") && j + 1 < i &&
		    (grade_token_is(&t[j + 1], "of") || grade_token_is(&t[j + 1], "from")))
			return 1;
		if (!title_is_filler(t[j].p, t[j].len) && problem_index(&t[j]) < 0)
			return 0;
	}
	return 0;
}

static int
is_year(const struct grade_token *t, size_t n, size_t i)
{
	int v = grade_token_number(&t[i], 5);

	if (t[i].len != 4 || v < 1700 || v > 2099 || t[i].before == '$' || t[i].before == '#' ||
	    t[i].before == '.' || t[i].before == ',' || grade_number_continues(t, n, i))
		return 0;
	if (i + 1 < n && !t[i + 1].digits &&
	    (grade_token_is(&t[i + 1], "coins") || grade_token_is(&t[i + 1], "pcs") ||
	     grade_token_is(&t[i + 1], "pieces") || grade_token_is(&t[i + 1], "oz") ||
	     grade_token_is(&t[i + 1], "g")))
		return 0;
	return 1;
}

/* A count of coins at t[i] (a number, not a year, not a price): its value, or 0. */
static int
count_at(const struct grade_token *t, size_t n, size_t i)
{
	int v;

	if (i >= n || (v = grade_token_number(&t[i], 5)) <= 0 || v > 10000 || is_year(t, n, i) ||
	    t[i].before == '$' || t[i].before == '#' || t[i].before == '.' || t[i].after == '.' ||
	    t[i].after == '/' || t[i].after == '%')
		return 0;
	if (i + 1 < n && t[i + 1].glued && !grade_token_is(&t[i + 1], "x") &&
	    !grade_token_is(&t[i + 1], "pcs") && !grade_token_is(&t[i + 1], "pc") &&
	    !grade_token_is(&t[i + 1], "coins") && !grade_token_is(&t[i + 1], "ct"))
		return 0;
	return v;
}

/* Plural words for coins: "Three 1921-S Morgan Dollars", "Two Peace Dollars". */
static const char *const coins_plural[] = { "dollars", "morgans",  "cents",    "pennies",
					    "nickels", "dimes",	   "quarters", "halves",
					    "eagles",  "coins",	   "peaces",   "mercurys",
					    "walkers", "buffalos", "wheaties", "kennedys" };

/* Whether the tokens from t[i] name coins in the plural before anything else: a year,
 * mint marks and a few words of the coin ("1921-S Morgan Silver Dollars"). */
static int
counted_coins(const struct grade_token *t, size_t n, size_t i)
{
	size_t j;

	/* "Five Dollars", "Twenty Five Cents" are a denomination: a year or a series first */
	if (i >= n || !((t[i].digits && is_year(t, n, i)) || (lexicon_kinds(&t[i]) & K_SERIES)))
		return 0;
	for (j = i; j < n && j < i + 6; j++) {
		if (title_word_in(coins_plural, sizeof(coins_plural) / sizeof(coins_plural[0]), t[j].p,
				  t[j].len))
			return 1;
		if (t[j].digits && !(t[j].len == 4 && grade_token_number(&t[j], 5) >= 1700))
			return 0;
	}
	return 0;
}

/* The count the words at t[i] give ("lot of 5", "(3)", "x10", "10x", "5 coins"), or 0. */
static int
quantity_at(const struct grade_token *t, size_t n, size_t i, unsigned kinds, int *variation)
{
	size_t j, k;
	int v;

	if (t[i].digits) {
		if ((v = count_at(t, n, i)) == 0)
			return 0;
		if (t[i].before == '(' && t[i].after == ')')
			return v;
		/* "10x", "5 x Morgan", but not "2x2", a holder */
		if (i + 1 < n && grade_token_is(&t[i + 1], "x") && !(i + 2 < n && t[i + 2].glued) &&
		    !(i > 0 && t[i].glued))
			return v;
		if (i + 1 < n &&
		    title_word_in(pieces, sizeof(pieces) / sizeof(pieces[0]), t[i + 1].p, t[i + 1].len))
			return v;
		if (i + 2 < n && grade_token_is(&t[i + 1], "coin") && grade_token_is(&t[i + 2], "lot"))
			return v;
		return 0;
	}
	if (grade_token_is(&t[i], "x")) {
		if (i > 0 && t[i].glued)
			return 0; /* "2x2", a holder */
		if (i + 1 < n && (v = count_at(t, n, i + 1)) > 0 && !(i + 2 < n && t[i + 2].glued))
			return v;
		return 0;
	}
	if (grade_token_is(&t[i], "pair") || grade_token_is(&t[i], "paar") || grade_token_is(&t[i], "paire"))
		return 2;
	for (k = 0; k < sizeof(number_words) / sizeof(number_words[0]); k++)
		if (grade_token_is(&t[i], number_words[k]))
			return (i + 1 < n && title_word_in(pieces, sizeof(pieces) / sizeof(pieces[0]),
							   t[i + 1].p, t[i + 1].len)) ||
					       counted_coins(t, n, i + 1)
				       ? (int)k + 2
				       : 0;
	if (!(kinds & K_COUNT))
		return 0;
	j = i + 1;
	if (j < n && title_word_in(count_of, sizeof(count_of) / sizeof(count_of[0]), t[j].p, t[j].len))
		j++;
	if (j < n && t[j].digits) {
		if (t[j].before == '#')
			return 0; /* "Lot #12": the seller's numbering */
		if ((v = count_at(t, n, j)) > 0)
			return v;
	}
	for (k = 0; j > i + 1 && j < n && k < sizeof(number_words) / sizeof(number_words[0]); k++)
		if (grade_token_is(&t[j], number_words[k]))
			return (int)k + 2; /* "lot of three" */
	/* "lot", "roll of", "BU roll": several coins, not counted; "from an OBW roll" is one. */
	if (grade_token_is(&t[i], "roll") && j == i + 1 && j < n && grade_token_is(&t[j], "fresh"))
		return 0;
	if (grade_token_is(&t[i], "roll") && j == i + 1 && i > 0 &&
	    (grade_token_is(&t[i - 1], "from") || grade_token_is(&t[i - 1], "original") ||
	     grade_token_is(&t[i - 1], "obw") || grade_token_is(&t[i - 1], "a") ||
	     grade_token_is(&t[i - 1], "fresh")))
		return 0;
	/* a tube is a mint's tube of 20 or 25 coins, but "from a mint tube" is one of them */
	if (grade_token_is(&t[i], "tube") && j == i + 1 &&
	    ((i > 0 && (grade_token_is(&t[i - 1], "from") || grade_token_is(&t[i - 1], "a"))) ||
	     (i > 1 && (grade_token_is(&t[i - 2], "from") || grade_token_is(&t[i - 2], "a"))) ||
	     (i > 2 && grade_token_is(&t[i - 3], "from"))))
		return 0;
	if (grade_token_is(&t[i], "lot") || grade_token_is(&t[i], "roll") || grade_token_is(&t[i], "tube") ||
	    (j > i + 1 && !grade_token_is(&t[i], "qty")))
		*variation = 1;
	return 0;
}

static const char *
mark_of(const struct grade_token *t)
{
	static const char *const marks[] = { "P", "D", "S", "O", "W", "C", "CC" };
	size_t k;
	char w[3];

	for (k = 0; k < sizeof(marks) / sizeof(marks[0]); k++) {
		w[0] = (char)(marks[k][0] - 'A' + 'a');
		w[1] = marks[k][1] ? (char)(marks[k][1] - 'A' + 'a') : '\0';
		w[2] = '\0';
		if (grade_token_is(t, w))
			return marks[k];
	}
	return NULL;
}

/* The table entry among words that starts at t[i]: its index, tokens in *used; -1 if none. */
#define FIND_WORDS(table, field)                                                                             \
	for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)                                               \
		if (table[k] field[0] == t[i].p[0] && (*used = grade_words_at(t, n, i, table[k] field)) > 0) \
			return (int)k;                                                                       \
	return -1

static int
find_series(const struct grade_token *t, size_t n, size_t i, size_t *used)
{
	size_t k;

	FIND_WORDS(series_words, .words);
}

static int
find_denomination(const struct grade_token *t, size_t n, size_t i, size_t *used)
{
	size_t k;

	FIND_WORDS(denomination_words, .words);
}

static int
find_mark(const struct grade_token *t, size_t n, size_t i, size_t *used)
{
	size_t k;

	FIND_WORDS(mark_words, .words);
}

static int
find_variation(const struct grade_token *t, size_t n, size_t i, size_t *used)
{
	size_t k;

	FIND_WORDS(variation_words, );
}

/* A denomination written as a number: "50c", "25 cents", "$1", "$2.50", "$20", "1 dollar". */
static int
number_denomination(const struct grade_token *t, size_t n, size_t i)
{
	static const struct {
		int v, id;
	} cents[] = { { 1, D_CENT },  { 2, D_TWO_CENT },     { 3, D_THREE_CENT }, { 5, D_NICKEL },
		      { 10, D_DIME }, { 20, D_TWENTY_CENT }, { 25, D_QUARTER },	  { 50, D_HALF } },
	  dollars[] = { { 1, D_DOLLAR }, { 3, D_G3 }, { 5, D_G5 }, { 10, D_G10 }, { 20, D_G20 } };
	int v = grade_token_number(&t[i], 5);
	size_t k;

	if (v <= 0 || t[i].len > 2)
		return -1;
	/* "1/2 Dollar", "1/4 Dollar", "1/2 Cent": a fraction of the unit after it */
	if (t[i].after == '/' && v == 1 && i + 2 < n && t[i + 1].digits && t[i + 1].p == t[i].p + 2) {
		int q = grade_token_number(&t[i + 1], 1);
		const struct grade_token *u = &t[i + 2];

		if (grade_token_is(u, "dollar") || grade_token_is(u, "dollars") ||
		    grade_token_is(u, "dollaro") || grade_token_is(u, "dolar"))
			return q == 2 ? D_HALF : q == 4 ? D_QUARTER : -1;
		if (grade_token_is(u, "cent") || grade_token_is(u, "cents"))
			return q == 2 ? D_HALF_CENT : -1;
		return -1;
	}
	if (t[i].before == '/' && i > 0 && grade_token_number(&t[i - 1], 1) == 1)
		return -1; /* the "2" of "1/2 Dollar" is no $2 */
	if (t[i].before == '$' ||
	    (i + 1 < n && (grade_token_is(&t[i + 1], "dollar") || grade_token_is(&t[i + 1], "dollars")))) {
		if (v == 2 && t[i].after == '.' && i + 1 < n && t[i + 1].digits && t[i + 1].p[0] == '5')
			return D_G2_5;
		for (k = 0; k < sizeof(dollars) / sizeof(dollars[0]); k++)
			if (dollars[k].v == v)
				return dollars[k].id;
		return -1;
	}
	if (i + 1 < n && (grade_token_is(&t[i + 1], "c") || grade_token_is(&t[i + 1], "cent") ||
			  grade_token_is(&t[i + 1], "cents"))) {
		for (k = 0; k < sizeof(cents) / sizeof(cents[0]); k++)
			if (cents[k].v == v)
				return cents[k].id;
	}
	return -1;
}

static const char *const variety_names[] = { "3 Legged", "VDB", "overdate", "overmintmark" };

/* The year at t[i] with what follows it: an overdate ("1942/1"), one or more mint marks
 * ("1921-S", "1921S", "1921 P D S", "1921-P & D"), an over mint mark ("1900-O/CC").
 * Adds its entries to f; returns the tokens read. */
static size_t
read_year(const struct grade_token *t, size_t n, size_t i, struct title_facts *f)
{
	int year = grade_token_number(&t[i], 5), nmarks = 0;
	size_t j = i + 1, k;
	const char *m, *last = NULL;

	if (j < n && t[i].after == '/' && t[j].digits && t[j].p == t[i].p + t[i].len + 1 && t[j].len <= 2) {
		if (t[j].p[t[j].len - 1] != t[i].p[t[i].len - 1])
			f->varieties |= TITLE_V_OVERDATE;
		j++;
	}
	/* "1943 PDS", "1964 PD": the three mints of a year, glued */
	if (j < n && (grade_token_is(&t[j], "pds") || grade_token_is(&t[j], "pd") ||
		      grade_token_is(&t[j], "ds") || grade_token_is(&t[j], "ps"))) {
		for (k = 0; k < t[j].len && f->nyears < TITLE_MAX_YEARS; k++) {
			f->years[f->nyears] = year;
			f->marks[f->nyears][0] = (char)(t[j].p[k] - 'a' + 'A');
			f->marks[f->nyears][1] = '\0';
			f->nyears++;
		}
		return j + 1 - i;
	}
	for (;;) {
		k = j;
		if (nmarks > 0 && k < n && grade_token_is(&t[k], "and"))
			k++;
		if (k >= n || (m = mark_of(&t[k])) == NULL || (nmarks > 0 && t[k].glued))
			break;
		j = k + 1;
		/* "1893 C C", "1889-C C": Carson City written apart, not Charlotte's C */
		if (strcmp(m, "C") == 0 && j < n && grade_token_is(&t[j], "c") && !t[j].glued &&
		    (t[j].before == ' ' || t[j].before == '.')) {
			m = "CC";
			j++;
		}
		if (nmarks > 0 && t[k].before == '/') {
			if (strcmp(m, last) != 0)
				f->varieties |=
					TITLE_V_OVERMARK; /* "S/S" is a repunched mark: no other coin */
			continue;
		}
		last = m;
		nmarks++;
		if (f->nyears < TITLE_MAX_YEARS) {
			f->years[f->nyears] = year;
			memcpy(f->marks[f->nyears], m, strlen(m) + 1); /* at most "CC" */
			f->nyears++;
		}
	}
	if (nmarks == 0 && f->nyears < TITLE_MAX_YEARS) {
		f->years[f->nyears] = year;
		f->marks[f->nyears][0] = '\0';
		f->nyears++;
	}
	return j - i;
}

/* How many coins the years and mint marks count: "1921 P D S", "1921-D & 1921-S" are
 * sets; one year written twice is one coin. 0 when fewer than two. */
static int
year_mark_coins(const struct title_facts *f)
{
	int a, b, distinct = 0;

	for (a = 0; a < f->nyears; a++) {
		if (f->marks[a][0] == '\0')
			continue;
		for (b = 0; b < a; b++)
			if (f->years[b] == f->years[a] && strcmp(f->marks[b], f->marks[a]) == 0)
				break;
		distinct += b == a;
	}
	return distinct > 1 ? distinct : 0;
}

/* Whether the year at t[i] is another coin listed after the year group that ends at
 * t[from]: only words of the coin and a joining "&", "+", ",", "and" between ("1922 Peace
 * & 1923 Peace", "1922, 1923, 1924 Peace Dollars"), and no "design" after it ("2021
 * Morgan, 1921 design" is one coin). used is the tokens of the year group at t[i]. */
static int
joined_year(const struct grade_token *t, size_t n, size_t from, size_t i, size_t used)
{
	static const char *const joins[] = { "and", "und", "et", "y", "e" };
	static const char *const plain[] = { "silver", "gold", "us", "u", "s", "coin" };
	static const char *const designs[] = { "design", "designs",	"style",      "type",
					       "privy",	 "anniversary", "centennial", "to" };
	const char *p;
	int joined = 0;
	size_t j;

	if (from == 0 || i - from > 5)
		return 0;
	for (p = t[from - 1].p + t[from - 1].len; p < t[i].p; p++)
		joined |= *p == '&' || *p == '+' || *p == ',';
	for (j = from; j < i; j++) {
		if (t[j].digits)
			return 0;
		if (title_word_in(joins, sizeof(joins) / sizeof(joins[0]), t[j].p, t[j].len)) {
			joined = 1;
			continue;
		}
		if (!(lexicon_kinds(&t[j]) & (K_SERIES | K_DENOMINATION)) &&
		    !title_word_in(plain, sizeof(plain) / sizeof(plain[0]), t[j].p, t[j].len))
			return 0;
	}
	return joined && !(i + used < n && title_word_in(designs, sizeof(designs) / sizeof(designs[0]),
							 t[i + used].p, t[i + used].len));
}

/* Whether a "from" stands in the three tokens before t[i]: "from a proof set", "from an
 * OBW roll" is one coin out of several. */
static int
taken_from(const struct grade_token *t, size_t i)
{
	size_t j;

	for (j = i > 3 ? i - 3 : 0; j < i; j++)
		if (grade_token_is(&t[j], "from"))
			return 1;
	return 0;
}

/* Whether details at t[i] follow: "NGC F Details", where a lone letter is a grade. */
static int
details_follow(const struct grade_token *t, size_t n, size_t i)
{
	return i < n && (grade_token_is(&t[i], "details") || grade_token_is(&t[i], "detail") ||
			 grade_token_is(&t[i], "det"));
}

/* Keep the first numeric grade, else the first grade of any kind. */
static void
take_grade(struct title_facts *f, const struct grade *g)
{
	if (g->proof == 2)
		f->specimen = 1;
	else if (g->proof)
		f->proof = 1;
	else if (g->lo >= 60)
		f->business = 1;
	f->designations |= g->designations;
	if (!f->has_grade || (f->grade.lo != f->grade.hi && g->lo == g->hi)) {
		f->grade = *g;
		f->grade.designations = 0;
		f->has_grade = 1;
	}
}

/*
 * A bullion weight at t[i]: "1 oz", "1oz", "1/10 oz", "1/10th oz", "1/2 Unze", "5 ounce",
 * "1 once" / "onza" / "oncia" (French, Spanish, Italian). Sets *num and *den and returns
 * the tokens used, or 0.
 */
static size_t
weight_at(const struct grade_token *t, size_t n, size_t i, int *num, int *den)
{
	static const char *const units[] = { "oz",    "ozt",  "ounce", "ounces", "unze",
					     "unzen", "once", "onza",  "oncia" };
	size_t j = i + 1, k;
	int a, b = 1;

	/* most numbers are followed by no unit and no fraction: leave at once */
	if (j >= n || (t[i].after != '/' && t[j].p[0] != 'o' && t[j].p[0] != 'u' && t[j].p[0] != 't'))
		return 0;
	a = grade_token_number(&t[i], 3);
	if (a <= 0 || (i > 0 && (t[i].before == '.' || t[i].before == ',') && t[i - 1].digits))
		return 0; /* "0.5 oz", "2,5 oz": a decimal is no count of ounces we read */
	if (j < n && t[i].after == '/' && t[j].digits && t[j].before == '/') {
		b = grade_token_number(&t[j], 4);
		if (b <= 0)
			return 0;
		j++;
		if (j < n && t[j].glued && grade_token_is(&t[j], "th"))
			j++;
	}
	if (j < n && grade_token_is(&t[j], "troy"))
		j++;
	for (k = 0; j < n && k < sizeof(units) / sizeof(units[0]); k++)
		if (grade_token_is(&t[j], units[k])) {
			*num = a;
			*den = b;
			return j + 1 - i;
		}
	return 0;
}

void
title_read(const char *s, size_t len, struct title_facts *f)
{
	struct grade_token t[MAX_TOKENS];
	char lower[512];
	size_t n, i, j, used;
	int specific = 0, bare = 0, v, k, listed = 0, last_year = 0, gold = 0;
	size_t year_end = 0;		 /* the token after the latest year group, 0 before any */
	size_t after_grade = (size_t)-1; /* the token after the latest grade or certifier */
	struct grade g;

	memset(f, 0, sizeof(*f));
	lexicon_init();
	/* A title longer than eBay's is read in its first 512 bytes. */
	if (len > sizeof(lower))
		len = sizeof(lower);
	n = grade_tokenize(lower, grade_fold(s, len, lower, sizeof(lower)), t, MAX_TOKENS);
	for (i = 0; i < n; i += used) {
		unsigned kinds = lexicon_kinds(&t[i]);

		used = 1;
		if (t[i].digits) {
			if (is_year(t, n, i) && i + 1 < n && t[i].after == '-' && is_year(t, n, i + 1)) {
				used = 2; /* "1878-1921": the series' years, not this coin's */
				continue;
			}
			if (is_year(t, n, i)) {
				int year = grade_token_number(&t[i], 5);

				used = read_year(t, n, i, f);
				/* a chain of years joined from the first one: listed counts them;
				 * any other year ends it (-listed) */
				if (listed == 0)
					listed = 1;
				else if (listed > 0 && year != last_year &&
					 joined_year(t, n, year_end, i, used))
					listed++;
				else if (listed > 0 && year != last_year)
					listed = -listed;
				last_year = year;
				year_end = i + used;
				continue;
			}
			if (!f->quantity && (v = quantity_at(t, n, i, 0, &f->variation)) > 0)
				f->quantity = v;
			if ((k = number_denomination(t, n, i)) >= 0)
				f->denominations |= 1u << k;
			continue;
		}
		if (kinds == 0)
			continue;
		if (kinds & K_CERTIFIER) {
			if (f->certifier == NULL)
				f->certifier = grade_certifier(&t[i]);
			j = i + 1;
			if (j < n && (grade_token_is(&t[j], "graded") || grade_token_is(&t[j], "certified")))
				j++;
			/* "NGC 64": a bare number is a grade right after a certifier only. */
			if (j < n && t[j].digits && (used = grade_scan(t, n, j, 0, &g)) > 0) {
				int business = f->business;

				if (!f->has_grade || (f->grade.lo != f->grade.hi && g.lo == g.hi))
					bare = 1; /* the grade kept is this bare number */
				take_grade(f, &g);
				/* "NGC 69" names no strike: read as MS, it may be a proof's */
				f->business = business;
				used += j - i;
				after_grade = i + used;
				continue;
			}
			/* "NGC F Details": a lone letter is a grade on a details label */
			if (j < n && !t[j].digits && (used = grade_scan(t, n, j, 0, &g)) > 0 &&
			    details_follow(t, n, j + used) && g.lo >= 1 && g.hi < 60) {
				take_grade(f, &g);
				used += j - i;
				after_grade = i + used;
				continue;
			}
			after_grade = i + 1; /* "NGC Details" */
			if (grade_token_is(&t[i], "pcgs") && j < n && grade_token_is(&t[j], "genuine") &&
			    f->problem == NULL)
				f->problem = "details";
			used = 1;
			continue;
		}
		if ((kinds & K_GRADE) && (used = grade_scan(t, n, i, 1, &g)) > 0) {
			take_grade(f, &g);
			after_grade = i + used;
			continue;
		}
		if (kinds & K_GRADE) {
			unsigned d = grade_designation_at(t, n, i, &used);

			if (d != 0) {
				f->designations |= d;
				continue;
			}
		}
		used = 1;
		if ((kinds & K_PROBLEM) && (k = problem_index(&t[i])) >= 0 && !problem_negated(t, n, i) &&
		    problem_in_context(t, n, i, k) &&
		    !(strcmp(problem_words[k].problem, "details") == 0 &&
		      !details_grade(t, i, after_grade)) &&
		    (f->problem == NULL || (!specific && !problem_words[k].generic))) {
			f->problem = problem_words[k].problem;
			specific = !problem_words[k].generic;
		}
		if ((kinds & (K_COUNT | K_OTHER)) && !f->quantity &&
		    (v = quantity_at(t, n, i, kinds, &f->variation)) > 0)
			f->quantity = v;
		if ((kinds & K_VARIATION) && find_variation(t, n, i, &used) >= 0) {
			if (!taken_from(t, i))
				f->variation = 1;
			used = 1;
		}
		if (kinds & K_OTHER) {
			if (grade_token_is(&t[i], "gold"))
				gold = 1;
			else if (grade_token_is(&t[i], "vdb") && !problem_negated(t, n, i))
				f->varieties |= TITLE_V_VDB;
			else if (grade_token_is(&t[i], "vdb"))
				f->not_varieties |= TITLE_V_VDB; /* "No VDB": the plain 1909 cent */
			else if (grade_token_is(&t[i], "overdate") && !problem_negated(t, n, i))
				f->varieties |= TITLE_V_OVERDATE;
			else if ((grade_token_is(&t[i], "legged") || grade_token_is(&t[i], "legs") ||
				  grade_token_is(&t[i], "leg")) &&
				 i > 0 &&
				 (grade_token_number(&t[i - 1], 1) == 3 ||
				  grade_token_is(&t[i - 1], "three")) &&
				 !problem_negated(t, n, i - 1))
				f->varieties |= TITLE_V_THREE_LEGGED;
		}
		if ((kinds & K_SERIES) && (k = find_series(t, n, i, &used)) >= 0) {
			if (series_words[k].id != S_NONE)
				f->series |= 1u << series_words[k].id;
			continue;
		}
		if ((kinds & K_DENOMINATION) && (k = find_denomination(t, n, i, &used)) >= 0) {
			if (denomination_words[k].id != D_NONE)
				f->denominations |= 1u << denomination_words[k].id;
			continue;
		}
		if ((kinds & K_MARK) && (k = find_mark(t, n, i, &used)) >= 0) {
			if (f->mark_word[0] == '\0')
				snprintf(f->mark_word, sizeof(f->mark_word), "%s",
					 mark_words[k].mark[0] ? mark_words[k].mark : "P");
			continue;
		}
		if (grade_token_is(&t[i], "business") && i + 1 < n && grade_token_is(&t[i + 1], "strike"))
			f->business = 1;
		/* A Special Mint Set coin (1965-67) is its own strike, whatever grade NGC gives it */
		if (grade_token_is(&t[i], "sms") || grade_words_at(t, n, i, "special mint set"))
			f->specimen = 1;
		used = 1;
	}
	if (f->has_grade && f->certifier != NULL && !f->grade.proof && f->grade.lo == f->grade.hi &&
	    f->grade.lo >= 60 && (f->proof || (bare && (f->designations & (GRADE_D_CAM | GRADE_D_DCAM))))) {
		/* "NGC Proof 69" read as "NGC 69" and "Proof": a proof grade. So is "NGC 69 DCAM":
		 * only a proof is a cameo. */
		f->proof = 1;
		f->grade.proof = 1;
		snprintf(f->grade.text, sizeof(f->grade.text), "PR%d", f->grade.lo);
	}
	if (!f->quantity)
		f->quantity = year_mark_coins(f);
	/* "Liberty Head" and "Coronet" are gold only on a gold coin (a Liberty Head quarter is
	 * a Barber, a Coronet cent a large cent) */
	if (!gold &&
	    !(f->denominations & (1u << D_G2_5 | 1u << D_G3 | 1u << D_G5 | 1u << D_G10 | 1u << D_G20)))
		f->series &= ~(1u << S_LIBERTY_GOLD);
	if (!f->quantity && listed > 1)
		f->quantity = listed; /* "1922 Peace & 1923 Peace": two coins */
	for (i = 0; i < n && f->weight_den == 0; i++)
		if (t[i].digits)
			weight_at(t, n, i, &f->weight_num, &f->weight_den);
	if (f->quantity > 1)
		f->variation = 0;
}

/* The first series or denomination index of bits, for a reason. */
static int
first_bit(unsigned bits)
{
	int i;

	for (i = 0; i < 32; i++)
		if (bits & (1u << i))
			return i;
	return -1;
}

static const char *
json_string(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
title_attribution_read(const char *json, size_t len, struct title_attribution *a)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const cJSON *year;
	const char *s;
	struct title_facts f;
	char *end;
	long v;

	memset(a, 0, sizeof(*a));
	a->series = a->denomination = a->strike = -1;
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return -1;
	}
	year = cJSON_GetObjectItemCaseSensitive(o, "year");
	if (cJSON_IsNumber(year) && year->valuedouble >= 1 && year->valuedouble <= 9999)
		a->year = (int)year->valuedouble;
	else if (cJSON_IsString(year) && (v = strtol(year->valuestring, &end, 10)) >= 1 && v <= 9999 &&
		 *end == '\0')
		a->year = (int)v;
	/* No "mintmark" at all: not known, no check. null, "" or "P": no mint mark. */
	a->mark_known = cJSON_GetObjectItemCaseSensitive(o, "mintmark") != NULL;
	if ((s = json_string(o, "mintmark")) != NULL) {
		size_t k = strspn(s, " ");

		if ((s[k] == 'c' || s[k] == 'C') && (s[k + 1] == 'c' || s[k + 1] == 'C'))
			snprintf(a->mark, sizeof(a->mark), "CC");
		else if (s[k] && s[k] != 'P' && s[k] != 'p' && s[k] != '-')
			snprintf(a->mark, sizeof(a->mark), "%c",
				 s[k] >= 'a' && s[k] <= 'z' ? s[k] - 'a' + 'A' : s[k]);
	}
	if ((s = json_string(o, "grade")) != NULL && grade_parse(s, strlen(s), &a->grade) == 0) {
		a->has_grade = 1;
		a->strike = a->grade.proof;
		a->details = a->grade.details;
		a->designations = a->grade.designations;
	}
	if ((s = json_string(o, "series")) != NULL) {
		title_read(s, strlen(s), &f);
		a->weight_num = f.weight_num;
		a->weight_den = f.weight_den;
		a->series = first_bit(f.series);
		if (a->denomination < 0)
			a->denomination = first_bit(f.denominations);
	}
	if ((s = json_string(o, "denomination")) != NULL) {
		title_read(s, strlen(s), &f);
		if (f.denominations)
			a->denomination = first_bit(f.denominations);
	}
	if ((s = json_string(o, "title")) != NULL) {
		title_read(s, strlen(s), &f);
		if (a->weight_den == 0) {
			a->weight_num = f.weight_num;
			a->weight_den = f.weight_den;
		}
		if (a->series < 0)
			a->series = first_bit(f.series);
		if (a->denomination < 0)
			a->denomination = first_bit(f.denominations);
		if (f.proof)
			a->strike = 1;
		if (f.specimen)
			a->strike = 2;
		a->designations |= f.designations & ~(unsigned)GRADE_D_PLUS;
		a->varieties |= f.varieties;
	}
	if ((s = json_string(o, "variety")) != NULL) {
		title_read(s, strlen(s), &f);
		a->varieties |= f.varieties;
		if (f.proof)
			a->strike = 1;
		if (f.specimen)
			a->strike = 2;
		a->designations |= f.designations & ~(unsigned)GRADE_D_PLUS;
	}
	cJSON_Delete(o);
	return 0;
}

static int
wrong_coin(const struct title_facts *f, const struct title_attribution *a, char *out, size_t outlen)
{
	int i, k, year_seen = 0, other = -1, ours = 0;
	unsigned extra;

	if (a->year > 0 && f->nyears > 0) {
		/* The coin's year comes first; a later one may be its pair's or its design's
		 * ("1921 Morgan and 1922 Peace Pair", "2021 Morgan, 1921 design"). */
		for (i = 0; i < f->nyears; i++)
			year_seen |= f->years[i] == a->year;
		if (!year_seen || f->years[0] != a->year)
			return snprintf(out, outlen, "wrong_coin:year %d", f->years[0]), 1;
		/* Another mint mark only when none written after our year is ours ("1921 P D S"
		 * is a set that holds ours). */
		for (i = 0; a->mark_known && i < f->nyears; i++) {
			if (f->years[i] != a->year || !f->marks[i][0])
				continue;
			if (strcmp(strcmp(f->marks[i], "P") == 0 ? "" : f->marks[i], a->mark) == 0)
				ours = 1;
			else if (other < 0)
				other = i;
		}
		if (other >= 0 && !ours)
			return snprintf(out, outlen, "wrong_coin:mintmark %s", f->marks[other]), 1;
	}
	if (a->year > 0 && a->mark_known && f->mark_word[0] &&
	    strcmp(f->mark_word[0] == 'P' ? "" : f->mark_word, a->mark) != 0)
		return snprintf(out, outlen, "wrong_coin:mintmark %s", f->mark_word), 1;
	if (a->series >= 0 && f->series && !(f->series & (1u << a->series)) &&
	    !(a->series == S_BUFFALO && f->series == 1u << S_INDIAN)) {
		k = first_bit(f->series);
		return snprintf(out, outlen, "wrong_coin:series %s", series_names[k]), 1;
	}
	if (a->denomination >= 0 && f->denominations && !(f->denominations & (1u << a->denomination))) {
		k = first_bit(f->denominations);
		return snprintf(out, outlen, "wrong_coin:denomination %s", denomination_names[k]), 1;
	}
	/* a bullion coin of another weight: a 1/10 oz Gold Eagle is not the 1 oz one */
	if (a->weight_den > 0 && f->weight_den > 0 &&
	    (long)a->weight_num * f->weight_den != (long)f->weight_num * a->weight_den) {
		if (f->weight_den == 1)
			return snprintf(out, outlen, "wrong_coin:weight %d oz", f->weight_num), 1;
		return snprintf(out, outlen, "wrong_coin:weight %d/%d oz", f->weight_num, f->weight_den), 1;
	}
	if (a->strike != 2 && a->strike >= 0 && f->specimen)
		return snprintf(out, outlen, "wrong_coin:strike specimen"), 1;
	if (a->strike != 1 && a->strike >= 0 && f->proof && !f->specimen)
		return snprintf(out, outlen, "wrong_coin:strike proof"), 1;
	if (a->strike >= 1 && !f->proof && !f->specimen && f->business)
		return snprintf(out, outlen, "wrong_coin:strike business"), 1;
	if ((extra = f->varieties & ~a->varieties) != 0)
		return snprintf(out, outlen, "wrong_coin:variety %s", variety_names[first_bit(extra)]), 1;
	if ((extra = f->not_varieties & a->varieties) != 0)
		return snprintf(out, outlen, "wrong_coin:variety no %s", variety_names[first_bit(extra)]), 1;
	return 0;
}

int
title_check(const struct title_facts *f, int quantity, const struct title_attribution *a, char *out,
	    size_t outlen)
{
	unsigned ours, theirs, extra, missing;
	int q = f->quantity ? f->quantity : quantity;

	if (a != NULL && wrong_coin(f, a, out, outlen))
		return 1;
	if (q > 1)
		return snprintf(out, outlen, "lot:%d", q), 1;
	if (f->variation)
		return snprintf(out, outlen, "lot:variation"), 1;
	if (a != NULL && a->details) {
		if (f->problem == NULL)
			return snprintf(out, outlen, "problem_coin:none"), 1;
	} else if (f->problem != NULL) {
		return snprintf(out, outlen, "problem_coin:%s", f->problem), 1;
	}
	if (a == NULL)
		return 0;
	ours = f->designations & ~(unsigned)(GRADE_D_CAC | GRADE_D_PLUS);
	theirs = a->designations & ~(unsigned)(GRADE_D_CAC | GRADE_D_PLUS);
	/* Brown is a copper coin's natural colour: with no colour named, a BN comp is no other coin. */
	if (!(theirs & (GRADE_D_RD | GRADE_D_RB | GRADE_D_BN)))
		ours &= ~(unsigned)GRADE_D_BN;
	extra = ours & ~theirs;
	missing = theirs & ~ours;
	if (extra)
		return snprintf(out, outlen, "designation:%s", grade_designation_name(first_bit(extra))), 1;
	if (missing)
		return snprintf(out, outlen, "designation:no %s", grade_designation_name(first_bit(missing))),
		       1;
	return 0;
}
