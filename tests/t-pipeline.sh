#!/usr/bin/env bash
# stages: pipeline
# pipeline.sh, the worker, against a real PostgreSQL and the fake eBay server: jobs run
# to completion, SIGTERM stops it cleanly, a crashed stage returns the job to the queue.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

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
trap 'kill "$fake_pid" 2>/dev/null; "$root/scripts/local-pg.sh" stop >/dev/null 2>&1; rm -rf "$scratch"' EXIT
for _ in $(seq 50); do [ -s "$scratch/port" ] && break; sleep 0.1; done
export EBAY_API_BASE=http://127.0.0.1:$(cat "$scratch/port")
export EBAY_APP_ID=TestApp-PRD-5ec7e7000 EBAY_CERT_ID=PRD-ce7t5ecret-9f8e
export EBAY_CALLS_PER_MINUTE=60000 EBAY_RETRY_BASE_MS=50 WORKER_ID=t-worker LOG_FORMAT=text
pipeline=$root/pipeline.sh

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }
reset() {
	export COIN_PRICER_STATE_DIR=$PWD/state
	fault '{"clear": true}'
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql"
}

once_runs_every_job() {
	reset || return 1
	# A second intake with its own job.
	sql -c "INSERT INTO intakes (id) VALUES ('7a2e3d4c-0000-4000-8000-000000000002');
		INSERT INTO attributions (intake_id, year, mintmark, denomination, series)
		VALUES ('7a2e3d4c-0000-4000-8000-000000000002', 1921, 'D', 'dollar', 'Morgan');
		INSERT INTO scrape_jobs (intake_id, source_id)
		VALUES ('7a2e3d4c-0000-4000-8000-000000000002', '8b3f4e5d-0000-4000-8000-000000000001')" || return 1
	"$pipeline" --once --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_eq "jobs" "completed 2" "$(sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs GROUP BY 1")" || return 1
	expect_eq "valuations" 2 "$(sql -c "SELECT count(*) FROM valuations")" || return 1
	expect_eq "points" 58 "$(sql -c "SELECT count(*) FROM price_points")"
}

env_file_read() {
	reset || return 1
	printf '# settings\nexport WORKER_ID="from-env-file"\nLOG_LEVEL=warn\nBAD KEY=1\n' >my.env
	env -u WORKER_ID "$pipeline" --once --env my.env 2>err.txt || { cat err.txt; return 1; }
	expect_eq "worker" "from-env-file" "$(sql -c "SELECT worker_id FROM scrape_jobs")"
}

term_while_waiting() {
	local pid t0 t1
	reset && sql -c "DELETE FROM scrape_jobs" || return 1
	POLL_INTERVAL_SECONDS=30 "$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	sleep 1
	t0=$(date +%s%N)
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 "$?" || return 1
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -lt 3000 ] || { echo "took $(((t1 - t0) / 1000000)) ms to stop"; return 1; }
	expect_grep "stopped" err.txt
}

term_finishes_the_job() {
	local pid
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 2, "times": 1}'
	"$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	sleep 1
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 "$?" || return 1
	expect_eq "job" "completed" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_grep "stopping after the current job" err.txt
}

crash_returns_job() {
	local pid i
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 3, "times": 1}'
	"$pipeline" --once --env /dev/null 2>err.txt &
	pid=$!
	for i in $(seq 50); do pgrep -x ebay-fetch >/dev/null && break; sleep 0.1; done
	sleep 0.5
	pkill -KILL -x ebay-fetch || { echo "no ebay-fetch to kill"; return 1; }
	wait "$pid" || { cat err.txt; return 1; }
	expect_grep "returning the job to the queue" err.txt || return 1
	# --once went on: the job was claimed again and done on the second attempt.
	expect_eq "job" "completed 2" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_eq "points" 29 "$(sql -c "SELECT count(*) FROM price_points")"
}

ebay_down_job_retried_later() {
	reset || return 1
	fault '{"path": "/services", "status": 503, "times": 10}'
	"$pipeline" --once --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_eq "job" "pending 1" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_eq "backed off" t "$(sql -c "SELECT run_at > now() + interval '20 seconds' FROM scrape_jobs")" || return 1
	expect_grep "eBay Finding answered HTTP 503" err.txt
}

run_test "pipeline.sh --once runs every pending job to completion" once_runs_every_job
run_test "pipeline.sh reads the env file literally" env_file_read
run_test "SIGTERM while waiting for jobs: stops at once, status 0" term_while_waiting
run_test "SIGTERM during a job: the job completes, then it stops" term_finishes_the_job
run_test "a stage killed mid-job: the job goes back to the queue and is done again" crash_returns_job
run_test "eBay down: the job waits out its backoff, the worker goes on" ebay_down_job_retried_later
