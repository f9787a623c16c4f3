#!/usr/bin/env bash
# make lint: shellcheck on every shell script, clang-format's check on the C, and a
# small set of cppcheck checks. Quiet when clean; status 1 with the findings when not.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0

# Every shell script: *.sh, and files whose first line names a shell (.ci/run, scripts/).
shell_files=()
while IFS= read -r f; do
	case $f in
	*.sh) shell_files+=("$f") ;;
	*) head -n 1 "$f" | grep -qE '^#!.*(/|env )(ba|da)?sh( |$)' && shell_files+=("$f") ;;
	esac
done < <(git ls-files pipeline.sh .ci scripts tests | grep -v '^tests/cases/')
echo "-- shellcheck: ${#shell_files[@]} scripts"
shellcheck -x "${shell_files[@]}" || status=1

# The C of the stages, the library and the fuzz targets, in the style of .clang-format.
mapfile -t c_files < <(git ls-files 'stages/*.c' 'stages/*.h' 'tests/fuzz/*.c' 'tests/fuzz/*.h')
echo "-- clang-format: ${#c_files[@]} files"
clang-format --dry-run -Werror "${c_files[@]}" || status=1

# cppcheck, its default errors (undefined behaviour, leaks, out of bounds) plus:
#  warning      suspicious code that is probably wrong (format strings, sizeof misuse,
#               uninitialized members, wrong checks of returns);
#  portability  what breaks on another ABI (pointer/int casts, non-portable shifts).
# Left out: style (taste, many false reports), performance (C++-minded),
# nullPointerRedundantCheck (it reports "while (p && *p)" loops that advance p).
# cJSON's for-each macro comes from tests/lint/cjson.cfg, not from reading its headers.
echo "-- cppcheck"
cppcheck -q --enable=warning,portability --std=c11 --library=posix --library=gnu \
	--library=tests/lint/cjson.cfg --suppress=nullPointerRedundantCheck --inline-suppr \
	--error-exitcode=1 -Istages/lib -D_GNU_SOURCE -DFUZZ_ROOT='"."' stages tests/fuzz || status=1

[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
