#!/usr/bin/env bash
# filter-junk against the title table (tests/titles/titles.tsv): what it reads from
# each title as sellers write them, and the reason it gives against a job's attribution.
# stages: filter-junk
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

run_test "filter-junk reads every title of the table as expected" \
	/usr/bin/python3 "$here/titles/check.py" "$BIN/filter-junk"

# A case that fails must show: a wrong expectation added to a copy of the table.
wrong_case_fails() {
	{ cat "$here/titles/titles.tsv"; printf 'm21s\t1921-S Morgan Dollar MS63\tMS64\t64\t-\t-\t-\t-\n'; } >table.tsv
	if /usr/bin/python3 "$here/titles/check.py" "$BIN/filter-junk" table.tsv >out; then
		cat out
		return 1
	fi
	expect_grep "grade: want 'MS64' got 'MS63'" out
}
run_test "a wrong expectation in the table fails, naming the line" wrong_case_fails
