# Shared helpers of the shell test files (tests/t-*.sh). A test is a function that
# returns 0 when it passes; what it prints is shown only when it fails.
# shellcheck shell=bash

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${BIN:-$here/../bin}
export LOG_FORMAT=text
export PATH="$BIN:$PATH"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# run_test NAME FUNCTION [ARGS...]: run one test in a subshell, report ok / not ok.
run_test() {
	local name=$1 out rc dir
	shift
	dir=$(mktemp -d "$scratch/test.XXXXXX")
	out=$( (set -o pipefail; cd "$dir" && "$@") 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		printf 'ok - %s\n' "$name"
	else
		printf 'not ok - %s\n' "$name"
		printf '%s\n' "$out" | head -n 40 | sed 's/^/    /'
	fi
	rm -rf "$dir"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" != "$3" ]; then
		printf '%s: expected [%s], got [%s]\n' "$1" "$2" "$3"
		return 1
	fi
}

# expect_file_eq EXPECTED_FILE ACTUAL_FILE: byte for byte, with a diff when not.
expect_file_eq() {
	if ! cmp -s "$1" "$2"; then
		diff -u "$1" "$2" | head -n 30
		return 1
	fi
}

# expect_grep PATTERN FILE: FILE has a line matching PATTERN.
expect_grep() {
	if ! grep -q -- "$1" "$2"; then
		printf 'no line matching [%s] in:\n' "$1"
		head -c 2000 "$2"
		return 1
	fi
}
