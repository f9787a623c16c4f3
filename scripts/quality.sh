#!/usr/bin/env bash
# The quality benchmark: synthetic markets with a known truth (tests/quality/gen.py) run
# through filter-junk | normalize-usd | valuate, priced at the attribution's grade and,
# for comparison, by the plain method (the same listings, the attribution's grade
# removed), beside an oracle that knows the clean comps, their true grades and the
# market's own curve. Prints, per number of comps, the median and p90 absolute error of
# the median, the share of markets within 10 %, and the median error by confidence.
# Asserts nothing; figures, not timings.
# usage: scripts/quality.sh [--seeds "1 2 3"] [--markets N] [--sizes "8 20 50"] [--summary FILE] [GEN KNOBS...]
#   GEN KNOBS are passed to the generator (tests/quality/gen.py --help), e.g. --junk 0.5
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
gen=$here/../tests/quality/gen.py
usage='usage: scripts/quality.sh [--seeds "1 2 3"] [--markets N] [--sizes "8 20 50"] [--summary FILE] [GEN KNOBS...]'
seeds="1 2 3"
markets=200
sizes="8 20 50"
summary=
knobs=()
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		echo "$usage"
		echo
		echo "Synthetic markets with a known price, priced by filter-junk | normalize-usd | valuate at"
		echo "the attribution's grade, by the plain method and by an oracle; prints the error table."
		echo "  --seeds LIST     generator seeds (default \"1 2 3\")"
		echo "  --markets N      markets per seed and size (default 200)"
		echo "  --sizes LIST     comps of the coin per market (default \"8 20 50\")"
		echo "  --summary FILE   also write the figures as JSON"
		echo "GEN KNOBS (tests/quality/gen.py), with their defaults:"
		/usr/bin/python3 "$gen" gen --print-knobs | sed 's/^/  /'
		exit 0
		;;
	--seeds | --markets | --sizes | --summary)
		[ $# -ge 2 ] || { echo "quality.sh: $1 wants a value" >&2 && echo "$usage" >&2 && exit 64; }
		case $1 in
		--seeds) seeds=$2 ;;
		--markets) markets=$2 ;;
		--sizes) sizes=$2 ;;
		--summary) summary=$2 ;;
		esac
		shift 2
		;;
	*) knobs+=("$1") && shift ;;
	esac
done
# A knob the generator does not know, or a bad value, is a usage error.
/usr/bin/python3 "$gen" gen --markets "$markets" "${knobs[@]}" --print-knobs >/dev/null 2>&1 || {
	/usr/bin/python3 "$gen" gen --markets "$markets" "${knobs[@]}" --print-knobs 2>&1 >/dev/null | tail -n 1 >&2 || true
	echo "$usage" >&2
	exit 64
}
work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-quality.XXXXXX")
trap 'rm -rf "$work"' EXIT

for n in $sizes; do
	for seed in $seeds; do
		/usr/bin/python3 "$gen" gen --seed "$seed" --markets "$markets" --comps "$n" "${knobs[@]}" \
			--truth "$work/truth.$n.$seed" >"$work/stream.$n.$seed"
	done
done
cat "$work"/truth.* >"$work/truth.ndjson"
cat "$work"/stream.* >"$work/stream.ndjson"
# The plain method: the same stream without the attribution's grade.
jq -c 'if .kind == "job" then del(.attribution.grade) else . end' "$work/stream.ndjson" >"$work/plain-in.ndjson"
for method in grade plain; do
	in=$work/stream.ndjson
	[ "$method" = plain ] && in=$work/plain-in.ndjson
	"$BIN/filter-junk" <"$in" | "$BIN/normalize-usd" | "$BIN/valuate" |
		grep '"kind":"valuation"' >"$work/$method.ndjson"
done

echo "quality benchmark: seeds [$seeds], $markets markets per seed and size, generator knobs:"
/usr/bin/python3 "$gen" gen --markets "$markets" "${knobs[@]}" --print-knobs | sed 's/^/  /'
echo "command: scripts/quality.sh --seeds \"$seeds\" --markets $markets --sizes \"$sizes\" ${knobs[*]}"
echo
/usr/bin/python3 "$gen" score "$work/truth.ndjson" "$work/grade.ndjson" "$work/plain.ndjson" ${summary:+--summary "$summary"}
