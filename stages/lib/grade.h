/* grade.h: coin grades as collectors write them ("MS63", "MS-63", "PR69", "XF 40",
 * "Gem BU", "Choice AU", "Good-4") read into a Sheldon interval. One parser for titles
 * (filter-junk) and for an attribution's own grade (filter-junk and valuate). */
#ifndef GRADE_H
#define GRADE_H

#include <stddef.h>

struct grade {
	int lo, hi;    /* Sheldon interval 1..70; lo == hi for a numeric grade */
	int proof;     /* 1 for a proof grade (PR, PF), 2 for a specimen (SP), else 0 */
	char text[16]; /* canonical form: "MS63", "XF40", "PR69", "Choice BU", "AU" */
	/* Filled by grade_parse only (a title's are the title parser's to find): */
	int details;	       /* 1 for a details grade ("AU Details", "VF Det. Cleaned") */
	unsigned designations; /* GRADE_D_* bits written after the grade ("MS64 DMPL", "MS63+") */
};

/* grade_parse reads s[0..len), a grade written on its own (an attribution's `grade`
 * field). Returns 0 and fills *g, or -1 when s is not a grade. An optional certifier
 * before the grade, designations after it and a details part ("Details", "Det.",
 * "Genuine", a problem word, and anything after those) are accepted. A bare legal
 * Sheldon number is read in the range it belongs to ("63" is MS63, "40" XF40). */
int grade_parse(const char *s, size_t len, struct grade *g);

/* Designations, in the order DESIGN.md lists them (and filter-junk writes them). */
enum {
	GRADE_D_PL = 1u << 0,
	GRADE_D_DMPL = 1u << 1,
	GRADE_D_RD = 1u << 2,
	GRADE_D_RB = 1u << 3,
	GRADE_D_BN = 1u << 4,
	GRADE_D_FB = 1u << 5,
	GRADE_D_FBL = 1u << 6,
	GRADE_D_FH = 1u << 7,
	GRADE_D_FS = 1u << 8,
	GRADE_D_CAM = 1u << 9,
	GRADE_D_DCAM = 1u << 10,
	GRADE_D_CAC = 1u << 11,
	GRADE_D_PLUS = 1u << 12,
};
#define GRADE_NDESIGNATIONS 13

/* The name of designation bit number i (0 .. GRADE_NDESIGNATIONS-1): "PL", ..., "+". */
const char *grade_designation_name(int i);

/*
 * The tokens of a text, shared with the title parser: runs of ASCII letters and runs of
 * ASCII digits ("MS63" is two tokens, glued). Every other byte separates tokens.
 */
struct grade_token {
	const char *p; /* into the text, case as written */
	size_t len;
	int digits;  /* 1: a run of digits, 0: a run of letters */
	int glued;   /* 1: nothing between this token and the one before */
	char before; /* the byte just before the token, 0 at the start */
	char after;  /* the byte just after it, 0 at the end */
	char next;   /* the first byte after it that is no space, 0 at the end ("MS64 +") */
};

/* Copy s[0..len) into out[0..max) in lower case, the accented Latin letters of UTF-8 as
 * their plain ASCII letter ("Détails" is "details"); returns the bytes written. */
size_t grade_fold(const char *s, size_t len, char *out, size_t max);

/* Split s[0..len) into at most max tokens; returns how many (later ones are ignored). */
size_t grade_tokenize(const char *s, size_t len, struct grade_token *t, size_t max);

/* How many tokens the words w (lower-case ASCII, separated by single spaces) take at
 * t[i], or 0 when they are not there. */
size_t grade_words_at(const struct grade_token *t, size_t n, size_t i, const char *w);

/* The first words of every grade and designation (one per call, i from 0 until NULL;
 * lower-case; a static buffer overwritten by the next call): for a caller that skips
 * the words no grade starts at without asking grade_scan. */
const char *grade_vocabulary(size_t i);

/* The value of a token of at most max_digits (≤ 9) digits, or -1 for another token. */
int grade_token_number(const struct grade_token *t, size_t max_digits);

/* Whether the number at t[i] goes on after a ',' or '.' ("63,000", "63.5"): then it is
 * no grade and no year. A comma or period after it that ends a clause ("MS-63, nice",
 * "1921.") does not. */
int grade_number_continues(const struct grade_token *t, size_t n, size_t i);

/* Whether token t is the word w (lower-case ASCII), ignoring case. */
int grade_token_is(const struct grade_token *t, const char *w);

/*
 * Read a grade that starts at t[i] of n tokens. In a title (in_title = 1) the readings
 * that would be guesses are refused: a bare number, a lone F, G or P, an AG that
 * is silver, a lone "Good", a "Fine" that is a metal's fineness, "Fair price". Returns the number of tokens read and
 * fills *g (its designations only with "+"), or 0 when no grade starts at t[i].
 */
size_t grade_scan(const struct grade_token *t, size_t n, size_t i, int in_title, struct grade *g);

/* The designation bits of the words at t[i] ("DMPL", "Deep Cameo", "Full Bands"), with
 * the number of tokens they take in *used; 0 when none starts there. */
unsigned grade_designation_at(const struct grade_token *t, size_t n, size_t i, size_t *used);

/* The certifier a token names ("PCGS", "NGC", "ANACS", "ICG", "CACG", "SEGS", "PCI"), or NULL. */
const char *grade_certifier(const struct grade_token *t);

#endif
