#!/usr/bin/env bash
# stages: pipeline claim-job store
# The database going away under a worker that runs on (no --once) and coming back: stopped
# for 15 s, restarted (immediate) twice, refusing every new connection (too many clients)
# for 20 s, its sessions killed again and again for 20 s. Each time, every job ends
# completed once (or back in the queue, never past its attempts), no point is lost or
# stored twice, and the same worker, untouched, goes on with the jobs queued afterwards.
# Real PostgreSQL (scripts/local-pg.sh down/up/restart), real processes.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

start_services
export WORKER_ID=t-restart COIN_PRICER_STAGES=$BIN
pipeline=$root/pipeline.sh

pg() { "$root/scripts/local-pg.sh" "$@" >/dev/null; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }

# fresh JOBS INTAKES: a queue of JOBS pending jobs over INTAKES intakes, eBay answering
# each page after 0.2 s so that jobs are in flight whenever the database goes.
fresh() {
	export COIN_PRICER_STATE_DIR=$PWD/state
	fault '{"clear": true}'
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql" &&
		sql -c "DELETE FROM scrape_jobs" && add_batch "$1" "$2" || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 0.2, "times": 100000}'
}

# Two workers that run until stopped, logging JSON to err.txt; the supervisor in $worker.
start_worker() {
	# shellcheck disable=SC2030,SC2031 # DB_RECONNECT_SECONDS=N start_worker: for the worker alone
	LOG_FORMAT=json "$pipeline" --workers 2 --in-flight 4 --grace 5 --env /dev/null 2>err.txt &
	worker=$!
}

count() { sql -c "SELECT count(*) FROM scrape_jobs WHERE status = '$1'"; }

# wait_completed N SECONDS: until N jobs are completed; 1 when time runs out.
wait_completed() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		[ "$(count completed 2>/dev/null || echo 0)" -ge "$1" ] && return 0
		sleep 0.2
	done
	echo "$(count completed) of $1 jobs completed after $2 s:"
	sql -c "SELECT status, attempts, error_message FROM scrape_jobs WHERE status <> 'completed'" | head -n 5
	grep -v '"level":"info"' err.txt | tail -n 15
	return 1
}

# After the fault: the same worker, still running, does JOBS more jobs queued now
# (one per intake of the batch), then stops on SIGTERM with status 0 and leaves no
# process behind.
carries_on() {
	local total=$1 more=$2
	kill -0 "$worker" 2>/dev/null || { echo "the worker is gone"; tail -n 20 err.txt; return 1; }
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, priority)
		SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
			'8b3f4e5d-0000-4000-8000-000000000001', 10 FROM generate_series(2, $more + 1) i" || return 1
	wait_completed $((total + more)) 120 || return 1
	kill -TERM "$worker"
	wait "$worker"
	expect_eq "the worker's status" 0 $? || { tail -n 20 err.txt; return 1; }
	expect_eq "processes left" "" "$(pgrep -f -- "--worker $WORKER_ID-" || true)" || return 1
	# The server's notices and the reconnections go through the log: every line is JSON.
	if grep -v '^{' err.txt | grep -q .; then echo "lines that are not JSON:"; grep -v '^{' err.txt | head -n 3; return 1; fi
}

# every_job_once JOBS INTAKES: every job completed, none past its attempts; each intake
# has its 29 points once; one valuation per job.
every_job_once() {
	expect_eq "jobs" "completed $1" "$(sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs GROUP BY 1")" || return 1
	expect_eq "jobs past max_attempts" 0 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE attempts > max_attempts")" || return 1
	expect_eq "points" "$(($2 * 29)) $(($2 * 29)) $2 0" "$(sql -F ' ' -c "SELECT count(*),
		count(DISTINCT (intake_id, source_id, external_id)), count(DISTINCT intake_id), count(*) FILTER (WHERE job_id IS NULL)
		FROM price_points")" || return 1
	expect_eq "valuations" "$1 $1" "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT job_id) FROM valuations")"
}

# ---- the server stopped, or restarted -----------------------------------------------------

# Stopped (fast) for 15 s while jobs are in flight, then started again: the worker rides it
# out and finishes the jobs with no one's help.
stopped_for_15_s() {
	fresh 24 6 || return 1
	start_worker
	wait_completed 4 120 || return 1
	pg down fast || { echo "local-pg.sh down failed"; return 1; }
	sleep 15
	pg up || { echo "local-pg.sh up failed"; return 1; }
	wait_completed 24 120 || return 1
	carries_on 24 6 || return 1
	every_job_once 30 6 || return 1
	expect_grep 'lost the connection\|connection to .* lost\|cannot connect to PostgreSQL' err.txt
}

# Stopped for longer than the stages wait (DB_RECONNECT_SECONDS=3, down 20 s): the stages
# give up with 75, the worker starts them again and again after its backoff, and once
# the server is back its jobs are returned and done; the outage costs no job an attempt
# that ends it as failed.
stopped_longer_than_the_stages_wait() {
	fresh 24 6 || return 1
	DB_RECONNECT_SECONDS=3 start_worker
	wait_completed 4 120 || return 1
	pg down fast || { echo "local-pg.sh down failed"; return 1; }
	sleep 20
	pg up || { echo "local-pg.sh up failed"; return 1; }
	wait_completed 24 150 || return 1
	carries_on 24 6 || return 1
	every_job_once 30 6 || return 1
	expect_grep 'a stage failed (status 75)' err.txt
}

# Restarted with -m immediate (no goodbye, crash recovery at start) twice while jobs
# are in flight.
restarted_immediate_twice() {
	local n
	fresh 24 6 || return 1
	start_worker
	for n in 4 12; do
		wait_completed "$n" 120 || return 1
		pg restart immediate || { echo "local-pg.sh restart failed"; return 1; }
	done
	wait_completed 24 120 || return 1
	carries_on 24 6 || return 1
	every_job_once 30 6
}

# ---- the server refusing connections ------------------------------------------------------

# Every connection slot taken for 20 s (max_connections 20, none reserved) just as the
# worker's sessions are ended: each of its connection attempts meets "too many clients"
# until the slots free up. The worker is paused (SIGSTOP) while its sessions are ended
# and the slots taken, so that it cannot win a slot back before the others are held.
too_many_clients_for_20_s() {
	local sids holders=() p i
	pg restart fast max_connections=20 superuser_reserved_connections=0 || { echo "restart with 20 connections failed"; return 1; }
	fresh 24 6 || return 1
	start_worker
	wait_completed 4 120 || return 1
	sids=$(pgrep -f -- "--worker $WORKER_ID-" | xargs -r ps -o sid= -p | sort -u | tr -d ' ')
	[ -n "$sids" ] || { echo "no worker sessions"; return 1; }
	for p in $sids; do pkill -STOP -s "$p"; done
	sql -c "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = 'coin-pricer'" >/dev/null
	for ((i = 0; i < 20; i++)); do
		psql -X -q -d "$DATABASE_URL" -c "SELECT pg_sleep(20)" >/dev/null 2>>holders.err &
		holders+=($!)
	done
	sleep 2
	psql -X -q -d "$DATABASE_URL" -c "SELECT 1" >/dev/null 2>full.err
	for p in $sids; do pkill -CONT -s "$p"; done
	expect_grep 'too many clients' full.err || return 1
	wait "${holders[@]}"
	wait_completed 24 120 || { pg restart fast; return 1; }
	carries_on 24 6 || { pg restart fast; return 1; }
	pg restart fast || { echo "restart with the default settings failed"; return 1; }
	every_job_once 30 6 || return 1
	# Said while it waits, not a silent minute.
	expect_grep '"level":"warn","program":"store","msg":"cannot reconnect to 127.0.0.1:[0-9]*/coin_pricer yet: .*too many clients' err.txt
}

# Every session of the worker killed (pg_terminate_backend) twice a second for 20 s, as
# an operator's clean-up loop or a pooler's limits do: each reconnection is ended again.
sessions_killed_for_20_s() {
	local i
	fresh 24 6 || return 1
	start_worker
	wait_completed 4 120 || return 1
	for ((i = 0; i < 40; i++)); do
		sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'coin-pricer'" >/dev/null
		sleep 0.5
	done
	wait_completed 24 120 || return 1
	carries_on 24 6 || return 1
	every_job_once 30 6 || return 1
	expect_grep 'lost the connection to 127.0.0.1:[0-9]*/coin_pricer; reconnecting' err.txt
}

run_test "the database stopped for 15 s under a running worker: it carries on, every job done once" stopped_for_15_s
run_test "the database stopped for longer than the stages wait: the worker starts them again, every job done once" stopped_longer_than_the_stages_wait
run_test "the database restarted (immediate) twice under a running worker: every job done once" restarted_immediate_twice
run_test "too many clients for 20 s under a running worker: it waits, every job done once" too_many_clients_for_20_s
run_test "the worker's sessions killed twice a second for 20 s: every job done once" sessions_killed_for_20_s
