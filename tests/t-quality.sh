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

run_test "the quality benchmark runs, and the grade method beats the plain one" small_benchmark
