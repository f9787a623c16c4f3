/*
 * The query of a job: what a collector would type into eBay's search box for the
 * coin, built from its attribution. Table-driven, so that --print-query can show it.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ebay.h"

#define MAX_KEYWORDS	8
#define MAX_QUERY_CHARS 100

static const char *const noise_words[] = {
	"a",  "an", "and",  "the", "of",   "for",  "with", "in",   "on",  "at",	  "to",
	"by", "or", "from", "no",  "very", "nice", "rare", "look", "wow", "l@@k",
};

static const struct {
	const char *denomination, *words;
} denomination_words[] = {
	{ "penny", "1 cent" },	  { "nickel", "5 cent" },	    { "dime", "10 cent" },
	{ "quarter", "25 cent" }, { "half_dollar", "half dollar" }, { "dollar", "dollar" },
};

static int
is_noise(const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(noise_words) / sizeof(noise_words[0]); i++)
		if (strlen(noise_words[i]) == len && strncasecmp(noise_words[i], w, len) == 0)
			return 1;
	return 0;
}

/* Whether the query already holds the word (case-insensitively). */
static int
has_word(const struct buf *q, const char *w, size_t len)
{
	const char *p = q->data;

	while (p && *p) {
		size_t n = strcspn(p, " ");

		if (n == len && strncasecmp(p, w, len) == 0)
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* Add the words of text: letters and digits, split at anything else. */
static void
add_words(struct buf *q, int *nwords, const char *text, int drop_noise)
{
	const char *p = text;

	while (p && *p) {
		size_t len;

		while (*p && !isalnum((unsigned char)*p))
			p++;
		len = 0;
		while (isalnum((unsigned char)p[len]))
			len++;
		if (len == 0)
			break;
		if (*nwords < MAX_KEYWORDS && !(drop_noise && is_noise(p, len)) && !has_word(q, p, len) &&
		    q->len + 1 + len <= MAX_QUERY_CHARS) {
			if (q->len)
				buf_addc(q, ' ');
			buf_add(q, p, len);
			(*nwords)++;
		}
		p += len;
	}
}

/* "US coin", year, mintmark, series, denomination, then the title's words. */
void
ebay_build_query(const cJSON *attribution, struct buf *q)
{
	const cJSON *year = cJSON_GetObjectItemCaseSensitive(attribution, "year");
	const char *denomination = ebay_string(attribution, "denomination");
	int nwords = 0;
	char number[32];
	size_t i;

	buf_reset(q);
	buf_grow(q, 0);
	add_words(q, &nwords, "US coin", 0);
	if (cJSON_IsNumber(year)) {
		snprintf(number, sizeof(number), "%d", (int)year->valuedouble);
		add_words(q, &nwords, number, 0);
	} else if (cJSON_IsString(year)) {
		add_words(q, &nwords, year->valuestring, 0);
	}
	add_words(q, &nwords, ebay_string(attribution, "mintmark"), 0);
	add_words(q, &nwords, ebay_string(attribution, "series"), 1);
	for (i = 0; denomination && i < sizeof(denomination_words) / sizeof(denomination_words[0]); i++)
		if (strcmp(denomination, denomination_words[i].denomination) == 0)
			add_words(q, &nwords, denomination_words[i].words, 0);
	add_words(q, &nwords, ebay_string(attribution, "title"), 1);
}
