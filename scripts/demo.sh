#!/usr/bin/env bash
# The quick start's demo: price the recorded 1921-S Morgan dollar sales with no
# credentials and no network. Today it runs the three pure stages over the price
# points of the recorded eBay Finding responses (tests/data/finding-points.ndjson);
# database and eBay stages join as they are built.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/bin
points=$here/tests/data/finding-points.ndjson

echo "== recorded eBay sales of a 1921-S Morgan dollar: $(wc -l <"$points") sold listings"
echo
echo "== filter-junk | normalize-usd | valuate"
"$bin/filter-junk" <"$points" | "$bin/normalize-usd" | tee "${TMPDIR:-/tmp}/coin-pricer-demo.ndjson" |
	"$bin/valuate" | jq .
echo
echo "== why each listing was left out"
jq -r 'select(.filtered_out) | "  \(.external_id)  \(.filter_reason)  \(.title)"' \
	"${TMPDIR:-/tmp}/coin-pricer-demo.ndjson"
rm -f "${TMPDIR:-/tmp}/coin-pricer-demo.ndjson"
