#!/usr/bin/env bash
# stages: pipeline coin-pricer
# Faults an operator meets, by hand no longer: the database restarted under a running
# worker (fast and immediate, repeatedly) or down when it starts, eBay storms (Retry-After
# as an HTTP date, errors at every try), settings typed wrong, a full disk, coin-pricer
# killed while it waits, migrate.sh with no database, a .env as pipeline.sh reads it.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

start_services
export WORKER_ID=t-faults
pipeline=$root/pipeline.sh
cp=$root/scripts/coin-pricer
export COIN_PRICER_STAGES=$BIN

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }
reset() {
	export COIN_PRICER_STATE_DIR=$PWD/state
	fault '{"clear": true}'
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql"
}
# The test cluster's server, driven as its owner: pg_ctl stop/start/restart with the
# options local-pg.sh started it with.
cluster=$(if [ -f "$PGSTATE/location" ]; then cat "$PGSTATE/location"; else echo "$PGSTATE/cluster"; fi)
pg_bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bindir/pg_ctl" ] || pg_bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
pg_port=${DATABASE_URL##*:}
pg_port=${pg_port%%/*}
pgctl() {
	local as=()
	[ "$(id -u)" -ne 0 ] || as=(runuser -u postgres --)
	# From / : the server's user cannot enter the test's folder.
	(cd / && "${as[@]}" "$pg_bindir/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 \
		-o "-p $pg_port -k $cluster -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" \
		"$@" >/dev/null)
}
# Every job completed once, at its first attempt, with its intake's points and one
# valuation: nothing lost, nothing run twice.
all_done_once() {
	expect_eq "jobs" "completed $1 1" "$(sql -F ' ' -c "SELECT status, count(*), max(attempts) FROM scrape_jobs GROUP BY 1")" || return 1
	expect_eq "points" "$(($2 * 29)) $2" "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT intake_id) FROM price_points")" || return 1
	expect_eq "valuations" "$1 $1" "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT job_id) FROM valuations")"
}
# Wait up to 30 s for the one job to be in STATUS.
wait_status() {
	for _ in $(seq 300); do
		[ "$(sql -c "SELECT status FROM scrape_jobs")" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# A TCP server that accepts and never answers (a hung eBay or database); its port in
# hung.port, its pid in hung_pid.
start_hung() {
	python3 -c 'import socket, os, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open("hung.port.tmp", "w").write(str(s.getsockname()[1])); os.rename("hung.port.tmp", "hung.port")
held = []
while True: held.append(s.accept()[0])' &
	hung_pid=$!
	for _ in $(seq 50); do [ -s hung.port ] && return 0; sleep 0.1; done
	return 1
}

# ---- the database ------------------------------------------------------------------------

# PostgreSQL restarted under two running workers: once with -m fast (sessions told to
# end), then twice with -m immediate (no goodbye; crash recovery at start). Every job
# completes once, at its first attempt (held up by hand before this test was written).
db_restarted_under_worker() {
	local pid mode
	reset && sql -c "DELETE FROM scrape_jobs" && add_batch 40 10 || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 0.3, "times": 1000}'
	LOG_FORMAT=json timeout 240 "$pipeline" --once --workers 2 --env /dev/null 2>err.txt &
	pid=$!
	# Each restart once more jobs have completed, so that it lands while jobs are in flight
	# however slowly the workers start on a busy host.
	for mode in fast:2 immediate:10 immediate:20; do
		for _ in $(seq 600); do
			[ "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'completed'")" -ge "${mode#*:}" ] && break
			sleep 0.1
		done
		pgctl restart -m "${mode%:*}" || { echo "pg_ctl restart -m ${mode%:*} failed"; return 1; }
	done
	wait "$pid"
	expect_eq "status" 0 $? || { grep -v completed err.txt | tail -n 20; return 1; }
	all_done_once 40 10 || return 1
	# The server's notices go through the log: every line is JSON.
	if grep -v '^{' err.txt | grep -q .; then echo "lines that are not JSON:"; grep -v '^{' err.txt | head -n 3; return 1; fi
}

# The database down when the worker starts, up 5 s later: the worker waits it out (its
# stages exit 75, it starts them again after its backoff) and does the job.
db_down_at_start() {
	local pid
	reset || return 1
	pgctl stop -m fast || return 1
	timeout 120 "$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	sleep 5
	pgctl start || { echo "pg_ctl start failed"; return 1; }
	wait_status completed
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 $? || { tail -n 20 err.txt; return 1; }
	expect_grep "a stage failed (status 75)" err.txt || return 1
	all_done_once 1 1
}

# migrate.sh with no database to reach: 75 (try again) with what to do, 78 for settings
# that must change, the password never shown (it was psql's own status, 2).
migrate_without_database() {
	local rc
	"$root/scripts/migrate.sh" 'postgresql://bob:S3cretPW@127.0.0.1:1/db' 2>err.txt
	rc=$?
	expect_eq "refused" 75 "$rc" || { cat err.txt; return 1; }
	expect_grep '^migrate: cannot reach the database now: connection to server at "127.0.0.1", port 1 failed: Connection refused' err.txt || return 1
	expect_grep 'run migrate.sh again$' err.txt || return 1
	"$root/scripts/migrate.sh" 'postgresql://bob:S3cretPW@[::1/db' 2>>err.txt
	expect_eq "a URL that does not parse" 78 $? || { cat err.txt; return 1; }
	"$root/scripts/migrate.sh" "${DATABASE_URL%/*}/no_such_db" 2>>err.txt
	expect_eq "no such database" 78 $? || { cat err.txt; return 1; }
	expect_grep 'database "no_such_db" does not exist; fix DATABASE_URL' err.txt || return 1
	if grep -q S3cret err.txt; then echo "the password was shown:"; cat err.txt; return 1; fi
	"$root/scripts/migrate.sh" 2>err.txt || { echo "a reachable database: exit $?"; cat err.txt; return 1; }
}

# ---- eBay --------------------------------------------------------------------------------

# 429 with Retry-After as an HTTP date, 200 s away: the job waits in the queue at least
# that long, with the reason (held up by hand).
retry_after_http_date() {
	local when
	reset || return 1
	when=$(TZ=GMT date -d '+200 seconds' '+%a, %d %b %Y %H:%M:%S GMT')
	fault "{\"path\": \"/services\", \"status\": 429, \"retry_after\": \"$when\"}"
	timeout 60 "$pipeline" --once --env /dev/null 2>err.txt || { tail err.txt; return 1; }
	expect_eq "job" "pending 1 t" "$(sql -F ' ' -c "SELECT status, attempts,
		run_at > now() + interval '180 seconds' AND run_at < now() + interval '300 seconds' FROM scrape_jobs")" || return 1
	# 200 s when the request goes out within the second the date was made
	expect_grep 'eBay asked to wait \(1[89][0-9]\|200\) s' err.txt
}

# eBay failing at every try: the job goes back with backoff, then fails at max_attempts
# with the reason, and is never claimed again (held up by hand).
ebay_always_failing() {
	reset && sql -c "UPDATE scrape_jobs SET max_attempts = 2" || return 1
	fault '{"path": "/services", "status": 503, "times": 1000}'
	for _ in 1 2 3; do
		EBAY_MAX_TRIES=2 timeout 60 "$pipeline" --once --env /dev/null 2>err.txt || { tail err.txt; return 1; }
		sql -c "UPDATE scrape_jobs SET run_at = now() WHERE status = 'pending'" || return 1
	done
	expect_eq "job" "failed 2" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_grep "HTTP 503" <(sql -c "SELECT error_message FROM scrape_jobs")
}

# ---- settings ----------------------------------------------------------------------------

# Numbers typed wrong: each stage that reads one says so and uses its default; the job
# is done. WORKER_IDs with blanks, quotes and non-ASCII letters are kept as they are.
odd_settings_work() {
	local kv want
	for kv in POLL_INTERVAL_SECONDS=0 POLL_INTERVAL_SECONDS=-1 JOB_LOCK_TIMEOUT_SECONDS=abc \
		EBAY_CALLS_PER_MINUTE=0 "WORKER_ID=a b \"q\" 'x' wörker✓"; do
		reset || return 1
		env "$kv" timeout 60 "$pipeline" --once --env /dev/null 2>err.txt || { echo "$kv: exit $?"; tail err.txt; return 1; }
		want=t-faults
		[[ $kv != WORKER_ID=* ]] || want=${kv#WORKER_ID=}
		expect_eq "$kv" "completed $want" "$(sql -F ' ' -c "SELECT status, worker_id FROM scrape_jobs")" || return 1
		[[ $kv == WORKER_ID=* ]] || expect_grep "${kv%%=*}=${kv#*=} is not a number" err.txt || return 1
	done
	# DB_RECONNECT_SECONDS=abc: warned about, 60 used (--once never gave up, with a bash error).
	DATABASE_URL=postgresql://x:pw@127.0.0.1:1/db DB_RECONNECT_SECONDS=abc timeout 100 \
		"$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "DB_RECONNECT_SECONDS=abc, no database" 75 $? || return 1
	expect_grep "DB_RECONNECT_SECONDS=abc is not a number from 1 to 86400; using 60" err.txt || return 1
}

# coin-pricer reads .env as pipeline.sh does, so that `coin-pricer worker` passes it
# nothing the worker would read otherwise: a comment after a value (it became part of
# LOG_LEVEL, and the worker refused it with 78; of DATABASE_URL's database name), CRLF.
dotenv_as_the_worker_reads_it() {
	reset || return 1
	printf 'export LOG_LEVEL=warn  # quieter\r\nDATABASE_URL="%s" # the test cluster\r\nPATH=/nowhere\r\n' \
		"$DATABASE_URL" >.env
	env -u LOG_LEVEL -u DATABASE_URL "$cp" status >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep '^Jobs: ' out.txt || return 1
	env -u LOG_LEVEL -u DATABASE_URL timeout 60 "$cp" worker --once 2>err.txt || { echo "worker: exit $?"; cat err.txt; return 1; }
	expect_eq "job" completed "$(sql -c "SELECT status FROM scrape_jobs")"
}

# ---- coin-pricer itself ------------------------------------------------------------------

# A full disk (/dev/full): exit 74 with a message, whatever the command (it was 1, with
# bash's or cat's "write error").
full_disk() {
	local c
	reset || return 1
	for c in --help "help price" --version status sources "price 1921-S Morgan dollar VF --api finding --category 39464 --replay $here/data/replay"; do
		# shellcheck disable=SC2086 # a command and its arguments
		"$cp" $c >/dev/full 2>err.txt
		expect_eq "coin-pricer $c >/dev/full" 74 $? || { cat err.txt; return 1; }
		expect_grep "coin-pricer: cannot write the output" err.txt || return 1
	done
	"$cp" --help >out.txt || return 1
	expect_grep '^usage: coin-pricer' out.txt || return 1
	"$cp" --help | head -n 1 >/dev/null
	expect_eq "| head" "0 0" "${PIPESTATUS[*]}" || return 1
	"$pipeline" --help >/dev/full 2>/dev/null
	expect_eq "pipeline.sh --help >/dev/full" 74 $? || return 1
	"$pipeline" --version >/dev/full 2>/dev/null
	expect_eq "pipeline.sh --version >/dev/full" 74 $? || return 1
}

# coin-pricer ended by a signal while its psql waits on a server that never answers: its
# children end with it (psql waited on for ever, a fetch went on asking eBay) and its
# scratch folder goes.
killed_while_waiting() {
	local sig p kids
	start_hung || { echo "no hung server"; return 1; }
	mkdir tmp
	for sig in TERM HUP PIPE; do
		TMPDIR=$PWD/tmp DATABASE_URL=postgresql://x@127.0.0.1:$(cat hung.port)/db setsid "$cp" status >/dev/null 2>err.txt &
		p=$!
		for _ in $(seq 100); do pgrep -s "$p" -x psql >/dev/null && break; sleep 0.1; done
		pgrep -s "$p" -x psql >/dev/null || { echo "no psql started"; cat err.txt; kill "$hung_pid"; return 1; }
		kill -"$sig" "$p"
		wait "$p"
		for _ in $(seq 50); do pgrep -s "$p" >/dev/null || break; sleep 0.1; done
		kids=$(pgrep -s "$p" | tr '\n' ' ')
		# shellcheck disable=SC2086 # one pid a word
		[ -z "$kids" ] || kill -KILL $kids
		expect_eq "SIG$sig: processes left" "" "$kids" || { kill "$hung_pid"; return 1; }
		expect_eq "SIG$sig: left in TMPDIR" "" "$(ls tmp)" || { kill "$hung_pid"; return 1; }
	done
	kill "$hung_pid"
}

# SIGHUP (a closed terminal): the worker stops as for SIGTERM and its job goes back to
# the queue (it died with 129, the job left running for JOB_LOCK_TIMEOUT_SECONDS).
hup_returns_jobs() {
	local pid
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 3, "times": 1}'
	"$pipeline" --grace 0 --env /dev/null 2>err.txt &
	pid=$!
	wait_status running
	kill -HUP "$pid"
	wait "$pid"
	expect_eq "status" 0 $? || return 1
	expect_eq "job" pending "$(sql -c "SELECT status FROM scrape_jobs")"
}

# SIGQUIT: the supervisor stops at once (131), its workers' processes end and the job
# goes back to the queue (it stayed running until the lock timed out).
quit_returns_jobs() {
	local pid
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 3, "times": 1}'
	# (a script's background command starts with SIGQUIT ignored, which no trap can undo)
	env --default-signal=QUIT "$pipeline" --grace 0 --env /dev/null 2>err.txt &
	pid=$!
	wait_status running
	kill -QUIT "$pid"
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null && { echo "still running 30 s after SIGQUIT"; return 1; }
	wait "$pid"
	expect_eq "status" 131 $? || return 1
	expect_eq "job" pending "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_eq "processes left" "" "$(pgrep -f -- "--worker t-faults" || true)"
}

run_test "the database restarted under two workers (fast, immediate twice): every job done once" db_restarted_under_worker
run_test "the database down at start, up later: the worker waits and does the job" db_down_at_start
run_test "migrate.sh without a database: 75 to try again, 78 to fix, no password shown" migrate_without_database
run_test "429 with Retry-After as an HTTP date: the job waits that long in the queue" retry_after_http_date
run_test "eBay failing at every try: failed at max_attempts with the reason" ebay_always_failing
run_test "settings typed wrong: warned about, defaults used; odd WORKER_IDs kept" odd_settings_work
run_test "coin-pricer reads .env as the worker does (comments, CRLF, export)" dotenv_as_the_worker_reads_it
run_test "coin-pricer > /dev/full: exit 74 with a message" full_disk
run_test "coin-pricer killed while it waits: no process and no scratch folder left" killed_while_waiting
run_test "SIGHUP: the worker stops as for SIGTERM, its job back in the queue" hup_returns_jobs
run_test "SIGQUIT: the worker stops at once, its job back in the queue, no process left" quit_returns_jobs
