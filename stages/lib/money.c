/*
 * Decimal arithmetic on integers. A product of two 64-bit mantissas fits in 128 bits,
 * which is what lets amount x rate x 100 be computed exactly before one rounding.
 */
#include "money.h"

#include <stdio.h>
#include <string.h>

/* Append the digits in [p, end) to *digits, skipping leading zeros. */
static int
add_digits(const char *p, const char *end, uint64_t *digits, int *significant)
{
	for (; p < end; p++) {
		if (*digits == 0 && *p == '0')
			continue;
		if (++*significant > 19 || *digits > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		*digits = *digits * 10 + (uint64_t)(*p - '0');
	}
	return 0;
}

int
money_parse(const char *s, size_t len, struct money_dec *out)
{
	const char *p = s, *end = s + len, *int_end, *frac, *frac_end;
	uint64_t digits = 0;
	int significant = 0;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	int_end = p;
	if (int_end == s)
		return -1;
	frac = frac_end = end;
	if (p < end) {
		if (*p != '.')
			return -1;
		frac = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == frac || p != end)
			return -1;
		/* Trailing zeros of the fraction change nothing but the scale. */
		frac_end = end;
		while (frac_end > frac && frac_end[-1] == '0')
			frac_end--;
	}
	if (frac_end - frac > MONEY_MAX_SCALE || add_digits(s, int_end, &digits, &significant) < 0 ||
	    add_digits(frac, frac_end, &digits, &significant) < 0)
		return -1;
	out->digits = digits;
	out->scale = (int)(frac_end - frac);
	return 0;
}

static unsigned __int128
pow10_u128(int n)
{
	unsigned __int128 v = 1;

	while (n-- > 0)
		v *= 10;
	return v;
}

__int128
money_div_round(__int128 num, __int128 den)
{
	__int128 q = num / den, r = num % den;

	if (r < 0)
		r = -r;
	if (2 * r >= den)
		q += num < 0 ? -1 : 1;
	return q;
}

int
money_to_cents(const struct money_dec *amount, const struct money_dec *rate, int64_t *cents)
{
	unsigned __int128 product = amount->digits, den, q, r;
	int scale = amount->scale;

	if (rate != NULL) {
		product *= rate->digits;
		scale += rate->scale;
	}
	/* x 100: two fewer decimal places. */
	scale -= 2;
	if (scale < 0) {
		unsigned __int128 mul = pow10_u128(-scale);

		if (product > (unsigned __int128)INT64_MAX / mul)
			return -1;
		q = product * mul;
	} else {
		den = pow10_u128(scale);
		q = product / den;
		r = product % den;
		if (2 * r >= den)
			q++;
	}
	if (q > (unsigned __int128)INT64_MAX)
		return -1;
	*cents = (int64_t)q;
	return 0;
}

void
money_format(const struct money_dec *d, char *buf, size_t n)
{
	char digits[24];
	int len, intlen;

	len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)d->digits);
	if (d->scale == 0 || d->digits == 0) {
		snprintf(buf, n, "%s", digits);
		return;
	}
	intlen = len - d->scale;
	if (intlen > 0)
		snprintf(buf, n, "%.*s.%s", intlen, digits, digits + intlen);
	else
		/* No integer digits: "0." then -intlen zeros (none for 0.72), then the digits. */
		snprintf(buf, n, "0.%.*s%s", -intlen, "000000000000000000", digits);
}

void
money_format_dollars(int64_t cents, char *buf, size_t n)
{
	uint64_t abs = cents < 0 ? 0 - (uint64_t)cents : (uint64_t)cents;
	char digits[24], grouped[40];
	int len, i, j = 0;

	len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)(abs / 100));
	for (i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			grouped[j++] = ',';
		grouped[j++] = digits[i];
	}
	grouped[j] = '\0';
	snprintf(buf, n, "%s$%s.%02u", cents < 0 ? "-" : "", grouped, (unsigned)(abs % 100));
}
