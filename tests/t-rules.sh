#!/usr/bin/env bash
# stages: filter-junk
# Rule files (--rules FILE) are read with cJSON after the record scanner's checks, so
# that a rule reads the same in a file as in a job record: a duplicate key is refused.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

rules_file_duplicate_key() {
	local rc
	printf '%s\n' '{"rule_type":"exclude_keywords","rule_value":"silver","rule_type":"include_keywords"}' >rules.ndjson
	printf '{"kind":"note"}\n' | filter-junk --rules rules.ndjson >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status" 78 "$rc" || return 1
	expect_grep 'rules.ndjson:1: not a JSON rule object: duplicate key "rule_type" in the record' err.txt
}

run_test "filter-junk: a rules file line with a duplicate key is refused (78)" rules_file_duplicate_key
