#!/usr/bin/env bash
# make test-leaks: every stage's test cases (tests/cases/STAGE/), the conventions' bad
# input of every kind (tests/t-conventions.sh), what the fuzzers found (tests/fuzz/
# regressions, build/fuzz/corpus) and the collector against the fake eBay server
# (tests/t-ebay.sh) with each stage run under valgrind:
# no definite or indirect leak, no invalid read or write, no use of uninitialized
# memory. A folder of wrappers named like the stages stands in for bin/; each execs
# valgrind on the real program with one log per process, and any error found fails.
# The sanitizer build misses what happens inside uninstrumented libraries (libcjson,
# libcurl, libpq): valgrind sees it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
real=$root/bin
# The trap first: a signal between mktemp and the trap would leave the folder behind.
work=
trap '[ -z "$work" ] || rm -rf "$work"' EXIT
work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-leaks.XXXXXX")
mkdir -p "$work/bin" "$work/logs"

for path in "$real"/*; do
	stage=$(basename "$path")
	cat >"$work/bin/$stage" <<WRAPPER
#!/bin/sh
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \\
	--show-leak-kinds=definite,indirect --error-exitcode=86 \\
	--log-file="$work/logs/$stage.%p.log" "$real/$stage" "\$@"
WRAPPER
	chmod +x "$work/bin/$stage"
done

status=0
cases=0
# The cases: the exit status each expects (the outputs are the normal suite's business;
# valgrind's own exit status 86 shows here too).
for dir in tests/cases/*/; do
	stage=$(basename "$dir")
	for input in "$dir"*.in; do
		name=$(basename "$input" .in)
		want=0 args=()
		[ -f "$dir$name.rc" ] && want=$(cat "$dir$name.rc")
		[ -f "$dir$name.args" ] && mapfile -t args <"$dir$name.args"
		rc=0
		(cd "$dir" && LOG_FORMAT=text "$work/bin/$stage" "${args[@]}" <"$name.in" >/dev/null 2>"$work/err") || rc=$?
		cases=$((cases + 1))
		if [ "$rc" != "$want" ]; then
			echo "FAIL $stage/$name: exit status $rc, expected $want"
			status=1
		fi
	done
done
echo "-- cases under valgrind: $cases"

# The collector against the fake eBay, and what t-ebay.sh pipes it into.
if ! TEST_UNDER_VALGRIND=1 BIN=$work/bin tests/run.sh t-ebay >"$work/t-ebay.out" 2>&1; then
	grep -E '^(FAIL|    )' "$work/t-ebay.out" | head -n 40
	status=1
fi
tail -n 1 "$work/t-ebay.out" | sed 's/^/-- t-ebay.sh under valgrind: /'

# The conventions every stage keeps, on every kind of bad input (t-conventions.sh; its
# lines of 50 and 256 MiB and its timing test are left to the normal suite).
if ! TEST_UNDER_VALGRIND=1 BIN=$work/bin tests/run.sh t-conventions >"$work/t-conventions.out" 2>&1; then
	grep -E '^(FAIL|    )' "$work/t-conventions.out" | head -n 40
	status=1
fi
tail -n 1 "$work/t-conventions.out" | sed 's/^/-- t-conventions.sh under valgrind: /'

# What the fuzzers found, through the stages themselves: every kept regression of a
# stage's target, and up to FUZZ_CORPUS_MAX (40) inputs of its corpus where `make fuzz`
# left one (build/fuzz/corpus/STAGE); the ndjson target's through each stage. An input's
# "#!" first line holds its options, run in the stage's case folder, as the targets do.
fuzz_inputs=0
fuzz_input() {
	local stage=$1 file=$2 args=() rc=0
	if [ "$(head -c 2 "$file")" = '#!' ]; then
		read -r -a args < <(head -n 1 "$file" | cut -c 3-)
	fi
	(cd "tests/cases/$stage" && LOG_FORMAT=text "$work/bin/$stage" "${args[@]}" \
		< <(if [ ${#args[@]} -gt 0 ]; then tail -n +2 "$root/$file"; else cat "$root/$file"; fi) \
		>/dev/null 2>"$work/err") || rc=$?
	fuzz_inputs=$((fuzz_inputs + 1))
	case $rc in
	0 | 64 | 65 | 78) ;;
	*)
		echo "FAIL $stage < $file: exit status $rc"
		head -n 5 "$work/err"
		status=1
		;;
	esac
}
for stage in filter-junk normalize-usd valuate; do
	while IFS= read -r file; do
		fuzz_input "$stage" "$file"
	done < <({
		find "tests/fuzz/regressions/$stage" "tests/fuzz/regressions/ndjson" -type f ! -name .keep 2>/dev/null
		[ ! -d "build/fuzz/corpus/$stage" ] ||
			find "build/fuzz/corpus/$stage" -type f | sort | head -n "${FUZZ_CORPUS_MAX:-40}"
	} | sort)
done
echo "-- fuzz inputs under valgrind: $fuzz_inputs"

runs=$(find "$work/logs" -name '*.log' | wc -l)
for log in "$work"/logs/*.log; do
	[ -s "$log" ] || continue
	echo "== valgrind: $(basename "$log")"
	head -n 60 "$log"
	status=1
done
echo "-- $runs processes under valgrind, $(find "$work/logs" -name '*.log' -size +0 | wc -l) with errors"
exit $status
