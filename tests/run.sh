#!/usr/bin/env bash
# The test runner. Runs the data-driven cases of every stage (tests/cases/STAGE/NAME.*),
# then every shell test file (tests/t-*.sh), prints a line per group as it finishes and a
# block per failure, and ends with "N passed, N failed". Exit status 1 when anything failed.
#
# usage: tests/run.sh [NAME]
# NAME runs one part alone: a stage (its cases and every test file that names it on its
# "# stages:" line), or one test file (t-ebay, t-ebay.sh). An unknown NAME exits 64.
#
# A case is NAME.in (stdin) and NAME.out (expected stdout, byte for byte), with
# optional NAME.args (one argument per line), NAME.rc (exit status, default 0) and
# NAME.err (expected stderr; without it stderr must be empty). Its output is checked
# against schemas/ unless NAME.noschema exists. It runs in its own folder.
#
# A test file says which stages it tests on a line "# stages: NAME..." near its top; it
# gets the name asked for in TEST_STAGE, so that a file testing several stages can run
# the tests of one (t-conventions.sh does).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export BIN=${BIN:-$here/../bin}
export LOG_FORMAT=text
unset LOG_LEVEL
pass=0
fail=0
only=${1:-}
# The trap first: a signal between mktemp and the trap would leave the folder behind.
tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
tmp=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-run.XXXXXX")

# The stages a test file names on its "# stages:" line.
file_stages() {
	sed -n 's/^# stages: *//p' "$1" | head -n 1
}

# progress GROUP PASSED FAILED START: one line per finished group, as it finishes.
progress() {
	local secs
	secs=$(awk -v s="$4" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	printf -- '-- %-28s %4d ok %4d not ok %7s s\n' "$1" "$2" "$3" "$secs"
}

report_fail() {
	fail=$((fail + 1))
	printf 'FAIL %s\n' "$1"
	sed 's/^/    /' "$tmp/why" | head -n 40
}

run_case() {
	local stage=$1 dir=$2 name=$3 want_rc=0 rc args=()
	[ -f "$dir/$name.rc" ] && want_rc=$(cat "$dir/$name.rc")
	[ -f "$dir/$name.args" ] && mapfile -t args <"$dir/$name.args"
	(cd "$dir" && "$BIN/$stage" "${args[@]}" <"$name.in" >"$tmp/out" 2>"$tmp/err")
	rc=$?
	: >"$tmp/why"
	if [ "$rc" != "$want_rc" ]; then
		echo "exit status $rc, expected $want_rc" >>"$tmp/why"
	fi
	if ! cmp -s "$dir/$name.out" "$tmp/out"; then
		diff -u "$dir/$name.out" "$tmp/out" | head -n 30 >>"$tmp/why"
	fi
	if [ -f "$dir/$name.err" ]; then
		cmp -s "$dir/$name.err" "$tmp/err" || diff -u "$dir/$name.err" "$tmp/err" | head -n 20 >>"$tmp/why"
	elif [ -s "$tmp/err" ]; then
		{ echo "unexpected stderr:"; head -n 20 "$tmp/err"; } >>"$tmp/why"
	fi
	if [ ! -f "$dir/$name.noschema" ] && [ -s "$tmp/out" ]; then
		/usr/bin/python3 "$here/validate.py" "$tmp/out" >>"$tmp/why" 2>&1
	fi
	if [ -s "$tmp/why" ]; then
		report_fail "$stage/$name"
	else
		pass=$((pass + 1))
	fi
}

run_cases() {
	local dir=${1%/} stage input p0=$pass f0=$fail start
	stage=$(basename "$dir")
	start=$(date +%s.%N)
	for input in "$dir"/*.in; do
		[ -e "$input" ] || continue
		run_case "$stage" "$dir" "$(basename "$input" .in)"
	done
	progress "cases/$stage" $((pass - p0)) $((fail - f0)) "$start"
}

# run_file FILE STAGE: one test file; STAGE (may be empty) is passed as TEST_STAGE.
run_file() {
	local file=$1 name p0=$pass f0=$fail start line
	name=$(basename "$file")
	start=$(date +%s.%N)
	if [ -z "$(file_stages "$file")" ]; then
		fail=$((fail + 1))
		printf 'FAIL %s: no "# stages:" line naming the stages it tests\n' "$name"
	fi
	if ! TEST_STAGE=$2 bash "$file" >"$tmp/tap" 2>&1; then
		echo "not ok - $name ended with status $? before its last test" >>"$tmp/tap"
	fi
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) pass=$((pass + 1)) ;;
		"not ok - "*)
			fail=$((fail + 1))
			printf 'FAIL %s: %s\n' "$name" "${line#not ok - }"
			;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$tmp/tap"
	progress "$name" $((pass - p0)) $((fail - f0)) "$start"
}

# Which groups run: all of them, one stage's, or one file.
found=0
for dir in "$here"/cases/*/; do
	if [ -z "$only" ] || [ "$only" = "$(basename "$dir")" ]; then
		run_cases "$dir"
		found=1
	fi
done
for file in "$here"/t-*.sh; do
	[ -e "$file" ] || continue
	base=$(basename "$file" .sh)
	if [ -z "$only" ]; then
		run_file "$file" ""
	elif [ "$only" = "$base" ] || [ "$only" = "$base.sh" ] || [ "$only" = "${base#t-}" ]; then
		run_file "$file" ""
		found=1
	elif [[ " $(file_stages "$file") " == *" $only "* ]]; then
		run_file "$file" "$only"
		found=1
	fi
done
if [ -n "$only" ] && [ "$found" = 0 ]; then
	names=$( (
		ls "$here/cases"
		for file in "$here"/t-*.sh; do
			file_stages "$file" | tr ' ' '\n'
			basename "$file" .sh
		done
	) | sort -u | tr '\n' ' ')
	echo "run.sh: no tests named '$only'; names: $names" >&2
	exit 64
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
