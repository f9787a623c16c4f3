#!/usr/bin/env bash
# stages: filter-junk normalize-usd valuate
# A small, fast run of the quality benchmark (scripts/quality.sh, the full one is `make
# quality`): it runs end to end through filter-junk | normalize-usd | valuate, and pricing
# at the attribution's grade beats the plain median. Errors, not timings, are compared.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

small_benchmark() {
	BIN=$BIN "$here/../scripts/quality.sh" --seeds "1 2" --markets 40 --sizes 20 --summary summary.json >report.txt || return 1
	expect_grep '^20 *grade *80 ' report.txt || return 1
	expect_grep '^20 *plain *80 ' report.txt || return 1
	expect_grep 'curve-jitter' report.txt || return 1
	jq -e '.grade_20.median < .plain_20.median and .grade_20.p90 < .plain_20.p90
		and .grade_20.within10 > .plain_20.within10 and .oracle_20.median < .grade_20.median' summary.json >/dev/null || {
		cat report.txt
		return 1
	}
}

# A series with no curve of its own is priced on the generic curve: still better than the
# plain median, and the oracle (the market's own curve) better still.
unguided_benchmark() {
	BIN=$BIN "$here/../scripts/quality.sh" --coins unguided --seeds "1 2" --markets 40 --sizes 20 \
		--summary summary.json >report.txt || return 1
	expect_grep '^  --coins unguided$' report.txt || return 1
	jq -e '.grade_20.median < .plain_20.median and .grade_20.p90 < .plain_20.p90
		and .oracle_20.median < .grade_20.median' summary.json >/dev/null || {
		cat report.txt
		return 1
	}
}

# --help printed nothing and ran the benchmark, which failed (cat: truth.*); an unknown
# option went to the generator and failed the same way.
help_and_wrong_option() {
	local rc=0
	BIN=$BIN "$here/../scripts/quality.sh" --help >help.txt 2>&1 || rc=$?
	expect_eq "--help exit" 0 "$rc" || return 1
	expect_grep '^usage: scripts/quality.sh ' help.txt || return 1
	expect_grep '^  --curve-jitter 0.15$' help.txt || return 1
	for bad in --bogus "--junk x" --seeds; do
		rc=0
		# shellcheck disable=SC2086 # $bad is an option and its value
		BIN=$BIN "$here/../scripts/quality.sh" $bad >out.txt 2>err.txt || rc=$?
		expect_eq "exit of quality.sh $bad" 64 "$rc" || return 1
		expect_grep '^usage: ' err.txt || return 1
	done
}

run_test "the quality benchmark runs, and the grade method beats the plain one" small_benchmark
run_test "a series with no curve of its own, on the generic curve, beats the plain median" unguided_benchmark
run_test "quality.sh --help prints its usage and knobs; a wrong option exits 64" help_and_wrong_option
