#!/usr/bin/env bash
# stages: normalize-usd
# The money parser and formatter (stages/lib/money.c) through normalize-usd, against
# Python's decimal module: thousands of random rates and amounts, fixed seeds so a
# failure can be replayed. A rate must come back in fx_rate as the same number, in its
# shortest form; price_cents must be amount x rate x 100 rounded half away from zero,
# or bad_amount when the amount is not a decimal the parser takes or the cents overflow.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# round_trip SEED: writes rates.csv and points.ndjson, runs normalize-usd, compares.
round_trip() {
	local seed=$1
	python3 - "$seed" gen <<'PY' || return 1
import random, sys
from decimal import Decimal, getcontext
getcontext().prec = 200
rng = random.Random(int(sys.argv[1]))

def digits(n):
    return ''.join(rng.choice('0123456789') for _ in range(n))

def decimal_text():
    # Shapes that stress the formatter: no integer digits, leading and trailing zeros,
    # long fractions, the edges of 19 significant digits and 18 decimals.
    shape = rng.random()
    if shape < 0.3:
        text = '0.' + '0' * rng.randint(0, 17) + digits(rng.randint(1, 4))
    elif shape < 0.5:
        text = '0' * rng.randint(0, 3) + digits(rng.randint(1, 10))
    elif shape < 0.9:
        text = digits(rng.randint(1, 8)) + '.' + digits(rng.randint(1, 12)) + '0' * rng.randint(0, 3)
    else:
        text = digits(rng.randint(1, 20)) + '.' + digits(rng.randint(1, 20))
    return text

def parses(text):
    # money_parse: D+ or D+.D+, trailing zeros of the fraction dropped, at most 18
    # decimals and 19 significant digits, fitting in 64 bits.
    whole, _, frac = text.partition('.')
    frac = frac.rstrip('0')
    n = int(whole + frac)
    return len(frac) <= 18 and len(str(n)) <= 19 and n < 2**64 if n else len(frac) <= 18

letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
rates = {}
while len(rates) < 3000:
    code = ''.join(rng.choice(letters) for _ in range(3))
    if code == 'USD' or code in rates:
        continue
    text = decimal_text()
    if parses(text) and Decimal(text) != 0:
        rates[code] = text
codes = sorted(rates)
with open('rates.csv', 'w') as f:
    f.write('currency,usd_per_unit,as_of\n')
    for c in codes:
        f.write(f'{c},{rates[c]},2026-11-27\n')
with open('points.ndjson', 'w') as f, open('expect.tsv', 'w') as e:
    for i in range(20000):
        c = rng.choice(codes)
        amount = decimal_text()
        f.write('{"kind":"price_point","external_id":"%d","amount":"%s","currency":"%s"}\n' % (i, amount, c))
        rate = Decimal(rates[c])
        cents = None
        if parses(amount):
            v = Decimal(amount) * rate * 100
            q = int(v)  # v >= 0: truncation, then half away from zero
            if v - q >= Decimal('0.5'):
                q += 1
            cents = q if q <= 2**63 - 1 else None
        # An amount the parser refuses is never converted: no rate is shown.
        e.write('%d\t%s\t%s\t%s\n' % (i, rates[c] if parses(amount) else '',
                                        'null' if cents is None else cents,
                                        'false' if cents else 'true'))  # 0 cents is no price
PY
	normalize-usd --rates rates.csv <points.ndjson >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	# Python, not jq: jq reads integers as doubles, and cents go up to 2^63 - 1.
	python3 -c '
import json, sys
for line in sys.stdin:
    p = json.loads(line)
    cents = "null" if p["price_cents"] is None else p["price_cents"]
    print("%s\t%s\t%s\t%s" % (p["external_id"], p["fx_rate"] or "", cents, str(p["filtered_out"]).lower()))
' <out.ndjson >got.tsv || return 1
	python3 - <<'PY' || return 1
import re, sys
from decimal import Decimal
bad = 0
shortest = re.compile(r'^(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$')
with open('expect.tsv') as e, open('got.tsv') as g:
    for want, got in zip(e, g):
        i, rate, cents, filtered = want.rstrip('\n').split('\t')
        gi, grate, gcents, gfiltered = got.rstrip('\n').split('\t')
        why = None
        if rate == '' and grate != '':
            why = f'a rate ({grate}) for an amount that does not parse'
        elif rate != '' and (not shortest.match(grate) or Decimal(grate) != Decimal(rate)):
            why = f'rate {rate} written as {grate}'
        elif str(gcents) != cents or gfiltered != filtered:
            why = f'cents {gcents} ({gfiltered}), expected {cents} ({filtered})'
        if why:
            bad += 1
            if bad <= 5:
                print(f'point {i}: {why}')
if bad:
    print(f'{bad} wrong')
sys.exit(1 if bad else 0)
PY
	expect_eq "lines out" 20000 "$(wc -l <got.tsv)"
}

run_test "money: rates round-trip through fx_rate, cents exact (seed 1)" round_trip 1
run_test "money: rates round-trip through fx_rate, cents exact (seed 2)" round_trip 2
run_test "money: rates round-trip through fx_rate, cents exact (seed 3)" round_trip 3
