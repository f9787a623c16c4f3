#!/usr/bin/env bash
# The test runner. Runs the data-driven cases of every stage (tests/cases/STAGE/NAME.*),
# then every shell test file (tests/t-*.sh), prints one block per failure, and ends
# with "N passed, N failed". Exit status 1 when anything failed.
#
# A case is NAME.in (stdin) and NAME.out (expected stdout, byte for byte), with
# optional NAME.args (one argument per line), NAME.rc (exit status, default 0) and
# NAME.err (expected stderr; without it stderr must be empty). Its output is checked
# against schemas/ unless NAME.noschema exists. It runs in its own folder.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export BIN=${BIN:-$here/../bin}
export LOG_FORMAT=text
unset LOG_LEVEL
pass=0
fail=0
only=${1:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

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

for dir in "$here"/cases/*/; do
	stage=$(basename "$dir")
	[ -n "$only" ] && [ "$only" != "$stage" ] && continue
	for input in "$dir"*.in; do
		[ -e "$input" ] || continue
		run_case "$stage" "${dir%/}" "$(basename "$input" .in)"
	done
done

for file in "$here"/t-*.sh; do
	[ -e "$file" ] || continue
	[ -n "$only" ] && [[ "$(basename "$file")" != *"$only"* ]] && continue
	if ! bash "$file" >"$tmp/tap" 2>&1; then
		echo "not ok - $(basename "$file") ended with status $? before its last test" >>"$tmp/tap"
	fi
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) pass=$((pass + 1)) ;;
		"not ok - "*)
			fail=$((fail + 1))
			printf 'FAIL %s: %s\n' "$(basename "$file")" "${line#not ok - }"
			;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$tmp/tap"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
