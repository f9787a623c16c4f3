#!/usr/bin/env bash
# Write a case's expected files (NAME.out, and NAME.err / NAME.rc when they are not
# empty / 0) from what the current build does. For new cases: read what it wrote
# before you commit it, since a blessed mistake is a test that passes for the wrong reason.
# usage: tests/bless.sh STAGE NAME...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
export LOG_FORMAT=text
stage=$1
shift
cd "$here/cases/$stage"
for name in "$@"; do
	args=()
	[ -f "$name.args" ] && mapfile -t args <"$name.args"
	rc=0
	"$BIN/$stage" "${args[@]}" <"$name.in" >"$name.out" 2>"$name.err" || rc=$?
	[ -s "$name.err" ] || rm -f "$name.err"
	if [ "$rc" -ne 0 ]; then echo "$rc" >"$name.rc"; else rm -f "$name.rc"; fi
	echo "$stage/$name: exit $rc, $(wc -l <"$name.out") lines out"
done
