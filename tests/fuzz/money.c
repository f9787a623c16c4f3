/*
 * money_parse, money_format and money_to_cents against a model written separately:
 * decimal strings handled as digit strings. Input: "AMOUNT" or "AMOUNT|RATE".
 * - what parses formats to the canonical text (no leading zeros before the point, no
 *   trailing zeros after it, "0." for no integer digits) and parses back to the same;
 * - cents = AMOUNT x RATE x 100 rounded half away from zero, by long multiplication.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The canonical text of a decimal string D+ or D+.D+, by string edits only. */
static void
canonical(const char *s, size_t len, char *out)
{
	const char *dot = memchr(s, '.', len), *ip = s, *iend = dot ? dot : s + len;
	const char *fp = dot ? dot + 1 : s + len, *fend = s + len;
	size_t o = 0;

	while (ip < iend - 1 && *ip == '0')
		ip++;
	while (fend > fp && fend[-1] == '0')
		fend--;
	memcpy(out, ip, (size_t)(iend - ip));
	o = (size_t)(iend - ip);
	if (fend > fp) {
		out[o++] = '.';
		memcpy(out + o, fp, (size_t)(fend - fp));
		o += (size_t)(fend - fp);
	}
	out[o] = '\0';
}

/* The digits of a canonical decimal without its point, and its scale. */
static size_t
digits_of(const char *canon, unsigned char *d, int *scale)
{
	size_t n = 0;
	const char *dot = strchr(canon, '.');

	*scale = dot ? (int)strlen(dot + 1) : 0;
	for (; *canon; canon++)
		if (*canon != '.')
			d[n++] = (unsigned char)(*canon - '0');
	return n;
}

/* round(a x b x 100), halves up, as a decimal digit string, or "" when it has over 19 digits. */
static void
model_cents(const char *a, const char *b, char *out)
{
	unsigned char da[64], db[64];
	int prod[130] = { 0 };
	int sa, sb, scale, i, j, n, keep, start;
	size_t na = digits_of(a, da, &sa), nb = digits_of(b, db, &sb);

	/* Long multiplication, least significant digit last. */
	n = (int)(na + nb);
	for (i = (int)na - 1; i >= 0; i--)
		for (j = (int)nb - 1; j >= 0; j--)
			prod[i + j + 1] += da[i] * db[j];
	for (i = n - 1; i > 0; i--) {
		prod[i - 1] += prod[i] / 10;
		prod[i] %= 10;
	}
	scale = sa + sb - 2; /* x 100 */
	keep = n - (scale > 0 ? scale : 0);
	if (scale < 0) {
		for (i = 0; i < -scale; i++)
			prod[n++] = 0;
		keep = n;
	}
	if (keep < 0) {
		strcpy(out, "0"); /* under 0.1 cent */
		return;
	}
	/* Round at digit keep (the first dropped one). */
	if (keep < n && prod[keep] >= 5) {
		for (i = keep - 1; i >= 0; i--) {
			if (++prod[i] < 10)
				break;
			prod[i] = 0;
		}
		if (i < 0) {
			memmove(prod + 1, prod, (size_t)keep * sizeof(prod[0]));
			prod[0] = 1;
			keep++;
		}
	}
	for (start = 0; start < keep - 1 && prod[start] == 0; start++)
		;
	if (keep - start > 19 || keep == 0) {
		if (keep == 0)
			strcpy(out, "0");
		else
			out[0] = '\0';
		return;
	}
	for (i = start; i < keep; i++)
		out[i - start] = (char)('0' + prod[i]);
	out[keep - start] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *bar = memchr(data, '|', size);
	size_t alen = bar ? (size_t)(bar - s) : size;
	struct money_dec a, b, again;
	char text[64], canon[128], canon_b[128], want[40], got[40];
	int64_t cents;

	if (size > 100 || money_parse(s, alen, &a) < 0)
		return 0;
	money_format(&a, text, sizeof(text));
	canonical(s, alen, canon);
	if (strcmp(text, canon) != 0) {
		fprintf(stderr, "money_format: %.*s written as %s, expected %s\n", (int)alen, s, text, canon);
		abort();
	}
	if (money_parse(text, strlen(text), &again) < 0 || again.digits != a.digits || again.scale != a.scale)
		abort();
	if (bar == NULL || money_parse(bar + 1, size - alen - 1, &b) < 0)
		return 0;
	canonical(bar + 1, size - alen - 1, canon_b);
	model_cents(canon, canon_b, want);
	/* The model says "" for more than 19 digits; int64 holds some 19-digit numbers. */
	if (money_to_cents(&a, &b, &cents) == 0) {
		snprintf(got, sizeof(got), "%lld", (long long)cents);
		if (strcmp(got, want) != 0) {
			fprintf(stderr, "money_to_cents: %s x %s x 100 = %s, expected %s\n", canon, canon_b,
				got, want);
			abort();
		}
	} else if (want[0] != '\0' && (strlen(want) < 19 || strcmp(want, "9223372036854775807") <= 0)) {
		fprintf(stderr, "money_to_cents: %s x %s overflowed, expected %s\n", canon, canon_b, want);
		abort();
	}
	return 0;
}
