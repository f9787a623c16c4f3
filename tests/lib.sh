# Shared helpers of the shell test files (tests/t-*.sh). A test is a function that
# returns 0 when it passes; what it prints is shown only when it fails.
# shellcheck shell=bash

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${BIN:-$here/../bin}
export LOG_FORMAT=text
export PATH="$BIN:$PATH"
# The worker runs the stages under test (pipeline.sh puts COIN_PRICER_STAGES first).
export COIN_PRICER_STAGES=$BIN
# The trap first: a signal between mktemp and the trap would leave the folder behind.
scratch=
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT
scratch=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-test.XXXXXX")

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

# start_services: a throwaway PostgreSQL (DATABASE_URL) and the fake eBay server
# (EBAY_API_BASE, test credentials), both stopped when the test file ends. Without
# PostgreSQL the file reports one failure and stops.
start_services() {
	root=$(cd "$here/.." && pwd)
	export PGSTATE=$scratch/pg PGOPTIONS="-c client_min_messages=warning"
	DATABASE_URL=$("$root/scripts/local-pg.sh" start 2>"$scratch/pg-start.log") || {
		echo "not ok - start a local PostgreSQL"
		sed 's/^/    /' "$scratch/pg-start.log"
		exit 0
	}
	export DATABASE_URL
	/usr/bin/python3 "$here/fake_ebay.py" --port-file "$scratch/port" --log "$scratch/fake.log" 2>/dev/null &
	fake_pid=$!
	trap 'stop_services' EXIT
	for _ in $(seq 50); do [ -s "$scratch/port" ] && break; sleep 0.1; done
	EBAY_API_BASE=http://127.0.0.1:$(cat "$scratch/port")
	export EBAY_API_BASE
	export EBAY_APP_ID=TestApp-PRD-5ec7e7000 EBAY_CERT_ID=PRD-ce7t5ecret-9f8e
	export EBAY_CALLS_PER_MINUTE=60000 EBAY_RETRY_BASE_MS=50 LOG_FORMAT=text
}

# add_batch JOBS INTAKES, after start_services: INTAKES intakes of a 1921-S Morgan dollar
# and JOBS pending jobs of the seeded source (tests/data/seed.sql) spread over them in turn.
add_batch() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "
		INSERT INTO intakes (id) SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
			FROM generate_series(2, $2 + 1) i;
		INSERT INTO attributions (intake_id, year, mintmark, denomination, series)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 1921, 'S', 'dollar', 'Morgan'
			FROM generate_series(2, $2 + 1) i;
		INSERT INTO scrape_jobs (intake_id, source_id, priority)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad((2 + i % $2)::text, 12, '0'))::uuid,
				'8b3f4e5d-0000-4000-8000-000000000001', 10
			FROM generate_series(1, $1) i"
}

# start_pgbouncer, after start_services: a PgBouncer in transaction mode in front of that
# PostgreSQL (what Supabase's transaction pooler is), stopped with it. PGBOUNCER_URL goes
# through it, DATABASE_URL stays direct; `pooled CMD...` runs CMD with DATABASE_URL through
# it. Without PgBouncer the file reports one failure and stops.
start_pgbouncer() {
	export PGBOUNCER_STATE=$scratch/pgbouncer
	PGBOUNCER_URL=$("$root/scripts/local-pgbouncer.sh" start "$DATABASE_URL" 2>"$scratch/pgb-start.log") || {
		echo "not ok - start a local PgBouncer in transaction mode"
		sed 's/^/    /' "$scratch/pgb-start.log"
		exit 0
	}
	export PGBOUNCER_URL
}

# shellcheck disable=SC2317 # called by the trap
stop_services() {
	kill "$fake_pid" 2>/dev/null
	[ -z "${PGBOUNCER_URL:-}" ] || "$root/scripts/local-pgbouncer.sh" stop >/dev/null 2>&1
	"$root/scripts/local-pg.sh" stop >/dev/null 2>&1
	rm -rf "$scratch"
}

# pooled CMD...: CMD with DATABASE_URL through PgBouncer (start_pgbouncer).
pooled() {
	DATABASE_URL=$PGBOUNCER_URL "$@"
}

# scratch_not_left SIGNALS WHAT CMD...: CMD, with a mktemp that waits 2 s after making its
# file, is sent each of SIGNALS (e.g. "TERM INT HUP") once its scratch WHAT (file or folder)
# exists; nothing may be left in TMPDIR. CMD runs as a job of its own with INT not ignored (a
# shell without job control starts background jobs with INT ignored).
scratch_not_left() {
	local sigs=$1 what=$2 sig p i
	shift 2
	mkdir slow tmp || return 1
	printf '#!/bin/sh\n"%s" "$@" && exec sleep 2\n' "$(command -v mktemp)" >slow/mktemp && chmod +x slow/mktemp || return 1
	for sig in $sigs; do
		(trap - INT && exec env TMPDIR="$PWD/tmp" PATH="$PWD/slow:$PATH" "$@") >/dev/null 2>&1 &
		p=$!
		for ((i = 0; i < 100; i++)); do
			[ -z "$(ls tmp)" ] || break
			sleep 0.1
		done
		[ -n "$(ls tmp)" ] || { echo "no scratch $what made"; return 1; }
		kill -s "$sig" "$p"
		wait "$p"
		expect_eq "left in TMPDIR after SIG$sig" "" "$(ls tmp)" || return 1
	done
}
