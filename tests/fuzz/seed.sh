#!/usr/bin/env bash
# Seed a fuzz target's corpus: tests/fuzz/seed.sh NAME DIR FILE...: each file one seed.
# A stage's test case with arguments (NAME.args) becomes "#!ARGS\n" + NAME.in, the
# convention of the stage targets (tests/fuzz/harness.h).
set -euo pipefail
name=$1 dir=$2
shift 2
for f in "$@"; do
	args=${f%.in}.args
	if [ "$name" != ndjson ] && [ "${f%.in}" != "$f" ] && [ -f "$args" ]; then
		{ printf '#!%s\n' "$(tr '\n' ' ' <"$args" | sed 's/ $//')"; cat "$f"; } >"$dir/seed-$(basename "$f")"
	else
		cp "$f" "$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
	fi
done
# The NDJSON target reads one line: every line of the data is a seed too.
if [ "$name" = ndjson ]; then
	cat "$@" | head -c 2000000 | split -l 1 -a 5 - "$dir/line-"
fi
