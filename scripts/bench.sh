#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs, meant literally
# Benchmark of the pure stages against jq doing the same job in the same run, and
# their peak memory. Prints figures and ratios; asserts nothing (no timed tests).
# usage: BIN=bin scripts/bench.sh [MB]   (MB of input, default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
mb=${1:-100}
work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# jq programs doing each stage's job (simplified: the same keyword list as one
# regular expression; USD only with floats; a median per group).
jq_filter='if .kind == "price_point" then
  ((.title // "") | ascii_downcase | [match("\\b(replicas?|copy|copies|reproductions?|repro|fake|counterfeit|plated|tokens?|novelty|fantasy|tribute|souvenir|holder only|empty holder|capsule only|capsules|album|folder|display case|lot of|roll of|bag of|set of|bulk|cleaned|damaged|holed|details|bent)\\b")] | first | .string) as $m
  | . + {filtered_out: ($m != null), filter_reason: (if $m then "exclude_keywords:" + $m else null end)}
  else . end'
jq_normalize='if .kind == "price_point" then
  . + {price_cents: ((.amount | tonumber) * 100 | round),
       shipping_cents: (if .shipping_amount then (.shipping_amount | tonumber) * 100 | round else null end),
       fx_rate: null, fx_as_of: null, fx_source: "usd"}
  else . end'
jq_valuate='reduce (inputs | select(.kind == "price_point" and (.filtered_out | not) and .price_cents != null)) as $p
  ({}; .[$p.intake_id] += [$p.price_cents])
  | to_entries[] | (.value | sort) as $v
  | {kind: "valuation", intake_id: .key, comps: ($v | length), median_cents: $v[($v | length) / 2 | floor]}'

seconds() { date +%s.%N; }

# run_timed OUTFILE CMD...: run CMD three times with stdin from $input; print the best
# time in seconds and the peak RSS in KB of that run (the best of three is the figure least
# disturbed by whatever else the machine does).
run_timed() {
	local out=$1 t0 t1 best=999999 rss=0
	shift
	for _ in 1 2 3; do
		t0=$(seconds)
		/usr/bin/time -f '%M' -o "$work/rss" "$@" <"$input" >"$out"
		t1=$(seconds)
		if [ "$(echo "$t1 - $t0 < $best" | bc -l)" = 1 ]; then
			best=$(echo "$t1 - $t0" | bc -l)
			rss=$(cat "$work/rss")
		fi
	done
	echo "$best $rss"
}

echo "generating ${mb} MB of price points..."
"$here/bench-data.sh" "$mb" >"$work/raw.ndjson"
"$BIN/filter-junk" <"$work/raw.ndjson" >"$work/filtered.ndjson"
"$BIN/normalize-usd" <"$work/filtered.ndjson" >"$work/normalized.ndjson"
size_mb=$(($(stat -c %s "$work/raw.ndjson") / 1000000))
echo "input: $size_mb MB, $(wc -l <"$work/raw.ndjson") lines"
echo
printf '%-14s %10s %10s %10s %10s %8s %12s\n' stage "stage MB/s" "jq MB/s" "ratio" "stage RSS" "" "jq RSS"
bench_one() {
	local stage=$1 in=$2 program=$3 flags=$4 s j
	input=$in
	s=$(run_timed "$work/out.stage" "$BIN/$stage")
	# shellcheck disable=SC2086
	j=$(run_timed "$work/out.jq" jq $flags "$program")
	read -r st srss <<<"$s"
	read -r jt jrss <<<"$j"
	printf '%-14s %10.1f %10.1f %9.1fx %8s KB %8s %9s KB\n' "$stage" \
		"$(echo "$size_mb / $st" | bc -l)" "$(echo "$size_mb / $jt" | bc -l)" \
		"$(echo "$jt / $st" | bc -l)" "$srss" "" "$jrss"
}
bench_one filter-junk "$work/raw.ndjson" "$jq_filter" "-c"
bench_one normalize-usd "$work/filtered.ndjson" "$jq_normalize" "-c"
bench_one valuate "$work/normalized.ndjson" "$jq_valuate" "-c -n"

echo
echo "peak RSS on 10 MB and on 1 GB of input (the same 10 MB, 100 times, through a pipe):"
"$here/bench-data.sh" 10 >"$work/ten.ndjson"
for stage in filter-junk normalize-usd valuate; do
	small=$(/usr/bin/time -f '%M' "$BIN/$stage" <"$work/ten.ndjson" 2>&1 >/dev/null | tail -n 1)
	big=$( { for _ in $(seq 100); do cat "$work/ten.ndjson"; done | /usr/bin/time -f '%M' "$BIN/$stage" >/dev/null; } 2>&1 | tail -n 1)
	printf '  %-14s 10 MB: %6s KB   1 GB: %6s KB\n' "$stage" "$small" "$big"
done

echo
echo "valuate's peak RSS against the size of the largest open group:"
# Every point in one intake and no job_end: the whole input is one open group.
grep '"kind":"price_point"' "$work/normalized.ndjson" |
	sed 's/"intake_id":"[^"]*"/"intake_id":"one"/; s/"job_id":"[^"]*"/"job_id":"one"/' >"$work/one.ndjson"
for n in 1000 10000 50000; do
	head -n "$n" "$work/one.ndjson" >"$work/one-part.ndjson"
	rss=$(/usr/bin/time -f '%M' "$BIN/valuate" <"$work/one-part.ndjson" 2>&1 >/dev/null | tail -n 1)
	printf '  one group of %6d points: %7s KB\n' "$n" "$rss"
done
