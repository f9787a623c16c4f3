/*
 * Exact decimal money. Amounts arrive as decimal strings ("45.00") and leave as
 * integer US cents; nothing in between is ever a binary float.
 */
#ifndef MONEY_H
#define MONEY_H

#include <stddef.h>
#include <stdint.h>

/* A non-negative decimal: digits / 10^scale. */
struct money_dec {
	uint64_t digits;
	int scale; /* 0..MONEY_MAX_SCALE */
};

#define MONEY_MAX_SCALE 18

/*
 * Parse a non-negative decimal string of the form D+ or D+.D+ (len bytes). Trailing
 * zeros after the point are dropped. Returns 0, or -1 when the text is not of that
 * form or does not fit (more than 19 significant digits, or a scale over 18 after
 * trailing zeros are dropped).
 */
int money_parse(const char *s, size_t len, struct money_dec *out);

/*
 * cents = amount * rate * 100, rounded to whole cents, halves away from zero. rate
 * may be NULL for 1. Returns 0, or -1 when the result does not fit in an int64.
 */
int money_to_cents(const struct money_dec *amount, const struct money_dec *rate, int64_t *cents);

/* Round num / den (den > 0) to the nearest integer, halves away from zero. */
__int128 money_div_round(__int128 num, __int128 den);

/*
 * Write a decimal in its shortest exact form ("1.2712", "45"), into buf of size n
 * (at least 42 bytes).
 */
void money_format(const struct money_dec *d, char *buf, size_t n);

/* Write cents as dollars for people: "$2,400.00", "-$3.05". buf: at least 32 bytes. */
void money_format_dollars(int64_t cents, char *buf, size_t n);

#endif
