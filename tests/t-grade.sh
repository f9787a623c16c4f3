#!/usr/bin/env bash
# grade_parse() against the table tests/grades/grades.tsv: one grade as written, then
# what it must read as. The driver is built here from the library's source, with the
# sanitizers when the suite runs the sanitizer build.
# stages: filter-junk valuate
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(cd "$here/.." && pwd)
flags=(-std=gnu11 -Wall -Wextra -Werror -O1 -g)
case "$BIN" in
*-san) flags+=("-fsanitize=address,undefined" -fno-sanitize-recover=all -fno-omit-frame-pointer) ;;
esac
cc "${flags[@]}" -I"$root/stages/lib" -o "$scratch/grade-parse" \
	"$here/grades/grade-parse.c" "$root/stages/lib/grade.c" || exit 1

# grades_table: every line of the table, read and compared; one failure line per case.
grades_table() {
	local table=$here/grades/grades.tsv
	grep -v '^#' "$table" >cases
	cut -f1 cases | "$scratch/grade-parse" >got || return 1
	[ "$(wc -l <cases)" = "$(wc -l <got)" ] || return 1
	paste cases got | awk -F'\t' '$2 != $3 { printf "[%s]: expected [%s], got [%s]\n", $1, $2, $3; bad = 1 }
		END { exit bad }'
}

run_test "grade_parse reads every grade of the table as expected" grades_table
