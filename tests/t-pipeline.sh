#!/usr/bin/env bash
# stages: pipeline
# pipeline.sh, the worker, against a real PostgreSQL and the fake eBay server: jobs run
# to completion, SIGTERM stops it cleanly, a crashed stage returns the job to the queue.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

start_services
start_pgbouncer
export WORKER_ID=t-worker
pipeline=$root/pipeline.sh

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }
# The processes named NAME of the workers of supervisor P (each worker is a session of
# its own), so that the tests never touch other pipelines' stages.
descendants() {
	local w
	for w in $(pgrep -P "$2"); do
		pgrep -s "$w" -x "$1"
	done
}
# Wait until a job is running (claimed), up to 20 s.
wait_running() {
	local i
	for i in $(seq 200); do
		[ "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'running'")" -gt 0 ] && return 0
		sleep 0.1
	done
	echo "no job started"
	return 1
}
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

# SIGTERM while the supervisor still checks its settings (psql made slow holds it there):
# status 0 as for any stop, no job touched (bash's default for SIGTERM ended it, 143).
term_while_starting() {
	local pid i
	reset || return 1
	mkdir slow && printf '#!/bin/sh\nsleep 2\nexec %s "$@"\n' "$(command -v psql)" >slow/psql &&
		chmod +x slow/psql || return 1
	PATH=$PWD/slow:$PATH "$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		pgrep -f "$PWD/slow/psql" >/dev/null && break
		sleep 0.1
	done
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 "$?" || { cat err.txt; return 1; }
	expect_eq "job" "pending 0" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")"
}

term_finishes_the_job() {
	local pid
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 2, "times": 1}'
	"$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	wait_running || return 1
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 "$?" || return 1
	expect_eq "job" "completed" "$(sql -c "SELECT status FROM scrape_jobs")" || { cat err.txt; return 1; }
	expect_grep "stopping after the current job" err.txt
}

crash_returns_job() {
	local pid
	reset || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 3, "times": 1}'
	"$pipeline" --once --env /dev/null 2>err.txt &
	pid=$!
	wait_running || return 1
	sleep 0.5
	i=$(descendants ebay-fetch "$pid")
	if [ -z "$i" ]; then echo "no ebay-fetch to kill"; return 1; fi
	kill -KILL "$i"
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

# A job no collector can do, at the best priority, with 5 others behind it: it ends
# failed with a reason, and the 5 others run (issue: it cycled forever and starved them).
bad_job_does_not_starve() {
	local i
	reset || return 1
	sql -c "UPDATE scrape_jobs SET priority = 10;
		INSERT INTO sources (id, name, adapter_type) VALUES
			('8b3f4e5d-0000-4000-8000-0000000000ff', 'A shop', 'shop_scraper');
		INSERT INTO scrape_jobs (intake_id, source_id, priority, max_attempts)
		VALUES ('7a2e3d4c-0000-4000-8000-000000000001', '8b3f4e5d-0000-4000-8000-0000000000ff', 1, 3)" || return 1
	for i in 2 3 4 5; do
		sql -c "INSERT INTO intakes (id) VALUES ('7a2e3d4c-0000-4000-8000-00000000000$i');
			INSERT INTO attributions (intake_id, year, mintmark, denomination, series)
			VALUES ('7a2e3d4c-0000-4000-8000-00000000000$i', 1921, 'S', 'dollar', 'Morgan');
			INSERT INTO scrape_jobs (intake_id, source_id, priority)
			VALUES ('7a2e3d4c-0000-4000-8000-00000000000$i', '8b3f4e5d-0000-4000-8000-000000000001', 10)" || return 1
	done
	timeout 120 "$pipeline" --once --env /dev/null 2>err.txt || { tail -n 20 err.txt; return 1; }
	expect_eq "good jobs" "completed 5" "$(sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs WHERE priority = 10 GROUP BY 1")" || return 1
	expect_eq "bad job" "failed" "$(sql -c "SELECT status FROM scrape_jobs WHERE priority = 1")" || return 1
	sql -c "SELECT error_message FROM scrape_jobs WHERE priority = 1" >reason.txt
	[ -s reason.txt ] || { echo "the bad job failed with no reason"; return 1; }
	expect_eq "attempts within max_attempts" t "$(sql -c "SELECT attempts <= max_attempts FROM scrape_jobs WHERE priority = 1")"
}

# A source rule a person typed wrong fails that source's jobs at once, with the rule named,
# and the other jobs go on: it used to lose the job record in normalize-usd, so that the
# job was claimed again until its attempts ran out with no reason given.
bad_rule_fails_its_job() {
	reset || return 1
	sql -c "UPDATE scrape_jobs SET priority = 10;
		INSERT INTO sources (id, name, adapter_type, config) SELECT '8b3f4e5d-0000-4000-8000-0000000000fe',
			'eBay, typed wrong', adapter_type, config FROM sources
			WHERE id = '8b3f4e5d-0000-4000-8000-000000000001';
		INSERT INTO source_rules (source_id, rule_type, rule_value, priority)
		VALUES ('8b3f4e5d-0000-4000-8000-0000000000fe', 'min_price_cents', '\$10', 1);
		INSERT INTO scrape_jobs (intake_id, source_id, priority)
		VALUES ('7a2e3d4c-0000-4000-8000-000000000001', '8b3f4e5d-0000-4000-8000-0000000000fe', 1)" || return 1
	timeout 120 "$pipeline" --once --env /dev/null 2>err.txt || { tail -n 20 err.txt; return 1; }
	expect_eq "good job" "completed" "$(sql -c "SELECT status FROM scrape_jobs WHERE priority = 10")" || return 1
	expect_eq "bad job" "failed 1" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs WHERE priority = 1")" || return 1
	sql -c "SELECT error_message FROM scrape_jobs WHERE priority = 1" >reason.txt
	expect_grep 'min_price_cents: "[$]10" is not a whole number of cents' reason.txt
}

# --once gives up after a bounded wait when the database cannot be reached, and a
# configuration error stops the worker at once.
once_gives_up_without_database() {
	local rc t0
	t0=$(date +%s)
	DATABASE_URL=postgresql://coin:s3cretpw@127.0.0.1:1/coin DB_RECONNECT_SECONDS=2 \
		timeout 60 "$pipeline" --once --env /dev/null 2>err.txt
	rc=$?
	expect_eq "status, unreachable" 75 "$rc" || { tail err.txt; return 1; }
	[ $(($(date +%s) - t0)) -le 10 ] || { echo "took $(($(date +%s) - t0)) s"; return 1; }
	DATABASE_URL=${DATABASE_URL%/*}/nosuchdb timeout 60 "$pipeline" --env /dev/null 2>err.txt
	rc=$?
	expect_eq "status, no such database" 78 "$rc" || { tail err.txt; return 1; }
	if grep -q s3cretpw err.txt; then echo "the password was printed"; return 1; fi
}

# 200 jobs over 50 intakes through two long-lived pipelines: every job completed once,
# each intake's 29 points stored once, one valuation and one log line per job.
batch_two_workers() {
	reset && sql -c "DELETE FROM scrape_jobs" && add_batch 200 50 || return 1
	LOG_LEVEL=info timeout 300 "$pipeline" --once --workers 2 --env /dev/null 2>err.txt || { tail -n 20 err.txt; return 1; }
	expect_eq "jobs" "completed 200 1" "$(sql -F ' ' -c "SELECT status, count(*), max(attempts) FROM scrape_jobs GROUP BY 1")" || { grep -v "completed: intake" err.txt | tail -n 30; return 1; }
	expect_eq "points" "1450 50" "$(sql -F ' ' -c "SELECT count(*), count(DISTINCT intake_id) FROM price_points")" || return 1
	expect_eq "valuations" "200 4804" "$(sql -F ' ' -c "SELECT count(*), min(median_cents) FILTER (WHERE comps = 16) FROM valuations")" || return 1
	expect_eq "log lines" 200 "$(grep -c "store: job .* completed: intake" err.txt)" || return 1
	expect_eq "workers" "t-worker-1 t-worker-2" "$(sql -c "SELECT string_agg(DISTINCT worker_id, ' ' ORDER BY worker_id) FROM scrape_jobs")"
}

batch_polling() {
	POLL_INTERVAL_SECONDS=1 batch_two_workers
}

# Through a transaction pooler no notification arrives, and claim-job polls. A backlog
# drains at full speed all the same: after a full claim it claims again as soon as half
# of its jobs have ended, not a poll interval later (it took --in-flight jobs per poll
# interval: 40 jobs, 8 in flight, a poll every 10 s were 4 waits of 10 s).
backlog_drains_polling() {
	reset && sql -c "DELETE FROM scrape_jobs" && add_batch 40 10 || return 1
	POLL_INTERVAL_SECONDS=10 timeout 300 "$pipeline" --once --in-flight 8 --env /dev/null 2>err.txt ||
		{ tail -n 20 err.txt; return 1; }
	expect_grep "notifications do not arrive" err.txt || return 1
	expect_eq "jobs" "completed 40 1" "$(sql -F ' ' -c "SELECT status, count(*), max(attempts) FROM scrape_jobs GROUP BY 1")" || return 1
	# One claim's jobs share their started_at: a gap of half a poll interval or more
	# between one claim and the next is a poll interval waited out.
	expect_eq "claims that waited out a poll interval" 0 "$(sql -c "SELECT count(*) FROM (
		SELECT started_at - lag(started_at) OVER (ORDER BY started_at) AS gap
		FROM (SELECT DISTINCT started_at FROM scrape_jobs) c) g WHERE gap >= interval '5 seconds'")"
}

# SIGTERM with eBay hung: the jobs in flight get --grace seconds, then go back to the queue.
term_with_ebay_hung() {
	local pid t0 ms
	reset && sql -c "DELETE FROM scrape_jobs" && add_batch 6 3 || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 60, "times": 100}'
	"$pipeline" --workers 2 --grace 2 --env /dev/null 2>err.txt &
	pid=$!
	wait_running || return 1
	sleep 0.5
	t0=$(date +%s%N)
	kill -TERM "$pid"
	wait "$pid"
	expect_eq "status" 0 "$?" || { tail err.txt; return 1; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -lt 6000 ] || { echo "took $ms ms with --grace 2"; return 1; }
	expect_eq "running" 0 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'running'")" || return 1
	expect_grep "after the grace period" err.txt
}

# kill -9 of the supervisor ends every process of its workers; started again with the
# same id, it runs the jobs to completion, no point stored twice.
supervisor_killed() {
	local pid left i
	reset && sql -c "DELETE FROM scrape_jobs" && add_batch 10 5 || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 1, "times": 4}'
	"$pipeline" --workers 2 --env /dev/null 2>err.txt &
	pid=$!
	wait_running || return 1
	sleep 0.3
	mapfile -t left < <(for w in $(pgrep -P "$pid"); do pgrep -s "$w"; done)
	[ "${#left[@]}" -ge 14 ] || { echo "expected 2 pipelines, found ${#left[@]} processes"; return 1; }
	kill -KILL "$pid"
	for i in $(seq 50); do
		kill -0 "${left[@]}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${left[@]}" 2>/dev/null; then echo "processes outlived the supervisor"; ps -o pid,cmd -p "${left[@]}"; return 1; fi
	timeout 120 "$pipeline" --once --workers 2 --env /dev/null 2>err2.txt || { tail err2.txt; return 1; }
	expect_eq "jobs" "completed 10" "$(sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs GROUP BY 1")" || return 1
	expect_eq "points" "145" "$(sql -c "SELECT count(*) FROM price_points")"
}

# claim-job --follow whose parent is PID 1 (a container's init, here of a PID namespace of
# its own): the parent is alive, so it claims (it took getppid() == 1 for "the supervisor
# is gone" and stopped before claiming anything).
claim_follow_child_of_pid1() {
	reset || return 1
	POLL_INTERVAL_SECONDS=1 timeout 60 unshare --pid --fork sh -c \
		'claim-job --follow --once --in-flight 5 --worker t-pid1 >claimed.txt; echo "status $?"' >out.txt 2>err.txt
	expect_eq "status" "status 0" "$(cat out.txt)" || { cat err.txt; return 1; }
	expect_eq "claimed" "6f1d2c3b-0000-4000-8000-000000000001" "$(jq -r .job_id claimed.txt)" || { cat err.txt; return 1; }
	expect_eq "job" "running t-pid1" "$(sql -F ' ' -c "SELECT status, worker_id FROM scrape_jobs")"
}

# Under a subreaper (systemd --user, tini, a container runtime) an orphan is adopted by
# it, not by init: claim-job --follow still ends when the process that started it dies.
claim_follow_under_subreaper() {
	reset && sql -c "DELETE FROM scrape_jobs" || return 1
	# PR_SET_CHILD_SUBREAPER is 36; the setting survives the exec of the shell.
	# shellcheck disable=SC2016 # expanded by that shell
	python3 -c 'import ctypes, os, sys; ctypes.CDLL(None).prctl(36, 1, 0, 0, 0); os.execvp("sh", sys.argv[1:])' sh -c '
		sh -c "claim-job --follow --worker t-sub >/dev/null 2>err.txt & echo \$! >claimer.pid; sleep 1"
		for i in $(seq 50); do kill -0 "$(cat claimer.pid)" 2>/dev/null || exit 0; sleep 0.1; done
		kill -KILL "$(cat claimer.pid)"; exit 1' || { echo "claim-job outlived its parent under a subreaper"; cat err.txt; return 1; }
}

help_and_version() {
	local section
	"$pipeline" --help >out.txt || return 1
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT SIGNALS 'EXIT STATUS'; do
		expect_grep "^$section\$" out.txt || return 1
	done
	expect_grep '^    78  configuration' out.txt || return 1
	expect_eq "-h" "$(cat out.txt)" "$("$pipeline" -h)" || return 1
	# The version of the stages it runs, in their shape.
	expect_eq "--version" "$(claim-job --version | sed 's/^claim-job/pipeline.sh/')" "$("$pipeline" --version)" || return 1
	"$pipeline" --frobnicate >out.txt 2>err.txt
	expect_eq "wrong option" 64 $? || return 1
	expect_eq "nothing on stdout" "" "$(cat out.txt)" || return 1
	expect_grep "unknown option --frobnicate" err.txt || return 1
	expect_grep '^    pipeline.sh \[--once\]' err.txt || return 1
	"$pipeline" --workers 0 2>err.txt
	expect_eq "--workers 0" 64 $? || return 1
	"$pipeline" --env 2>err.txt
	expect_eq "--env without a file" 64 $? || return 1
	"$pipeline" --env no-such.env 2>err.txt
	expect_eq "--env with no such file" 66 $?
}

# A copy of pipeline.sh in a folder of its own with stand-ins for the stages beside it
# (an installation's layout): each stand-in writes its environment to env.STAGE and ends.
fake_install() {
	local s
	mkdir -p inst
	cp "$pipeline" inst/pipeline.sh
	for s in claim-job ebay-fetch filter-junk normalize-usd store valuate; do
		printf '#!/bin/sh\nenv >"%s/env.%s"\n' "$PWD" "$s" >"inst/$s"
		chmod +x "inst/$s"
	done
}

# The settings file as dotenv reads it: every shape of line, warnings naming file and
# line, nothing executed; the environment wins.
# shellcheck disable=SC2016 # the file's dollars and backticks must stay as written
env_file_dotenv() {
	# The stages beside the copied pipeline.sh are the ones to run.
	unset COIN_PRICER_STAGES
	local want
	fake_install
	cat >my.env <<-'EOF'
		# a comment line
		   # an indented one

		export WORKER_ID="from-env-file"
		PLAIN=plain value  # a comment after a space
		HASH=a#b
		HASH_AT_START=#not-a-comment
		EMPTY=
		SPACED = around the sign
		SINGLE='it is $HOME and \n # as written' # comment
		DOUBLE="tab\there \"quoted\" # kept"
		TOUCH=$(touch executed)
		BACKTICK=`touch executed2`
		BAD KEY=1
		no equals sign here
		UNCLOSED="never closed
		FROM_ENV=from the file
		LD_PRELOAD=/tmp/evil.so
		BASH_ENV=/tmp/evil.sh
	EOF
	printf 'CRLF=windows\r\nLAST=no newline' >>my.env
	FROM_ENV=from-the-environment LOG_LEVEL=warn env -u WORKER_ID PATH=/usr/bin:/bin \
		inst/pipeline.sh --once --env my.env 2>err.txt || { cat err.txt; return 1; }
	[ -s env.claim-job ] || { echo "claim-job did not run"; cat err.txt; return 1; }
	want=$(printf '%s\n' 'BACKTICK=`touch executed2`' CRLF=windows EMPTY= FROM_ENV=from-the-environment \
		HASH=a#b HASH_AT_START=#not-a-comment LAST='no newline' PLAIN='plain value' \
		"SINGLE=it is \$HOME and \\n # as written" SPACED='around the sign' 'TOUCH=$(touch executed)' \
		WORKER_ID=from-env-file)
	expect_eq "settings" "$want" "$(grep -E '^(BACKTICK|CRLF|EMPTY|FROM_ENV|HASH|HASH_AT_START|LAST|PLAIN|SINGLE|SPACED|TOUCH|WORKER_ID)=' env.claim-job | sort)" || return 1
	expect_eq "double quotes" "$(printf 'DOUBLE=tab\there "quoted" # kept')" "$(grep '^DOUBLE=' env.claim-job)" || return 1
	if grep -q '^\(UNCLOSED\|LD_PRELOAD\|BASH_ENV\)=' env.claim-job || [ -e executed ] || [ -e executed2 ]; then
		echo "a line was executed or a skipped key set"
		return 1
	fi
	expect_grep "my.env:14: not KEY=VALUE: line skipped" err.txt || return 1
	expect_grep "my.env:15: not KEY=VALUE: line skipped" err.txt || return 1
	expect_grep "my.env:16: UNCLOSED: a double quote not closed" err.txt || return 1
	expect_grep "my.env:5: PLAIN is not a coin-pricer setting (misspelled?)" err.txt || return 1
	expect_grep "my.env:18: LD_PRELOAD is not a coin-pricer setting and would change how programs run" err.txt || return 1
	expect_grep "my.env:19: BASH_ENV" err.txt
}

# Without --env: .env beside pipeline.sh, else in the current folder; it says which.
env_file_fallback() {
	# The stages beside the copied pipeline.sh are the ones to run.
	unset COIN_PRICER_STAGES
	fake_install
	mkdir -p cwd
	echo WORKER_ID=from-cwd >cwd/.env
	(cd cwd && env -u WORKER_ID LOG_LEVEL=info ../inst/pipeline.sh --once 2>../err.txt) || { cat err.txt; return 1; }
	expect_grep "^WORKER_ID=from-cwd$" env.claim-job || return 1
	expect_grep "settings read from $PWD/cwd/.env" err.txt || return 1
	echo WORKER_ID=from-beside >inst/.env
	(cd cwd && env -u WORKER_ID LOG_LEVEL=info ../inst/pipeline.sh --once 2>../err.txt) || { cat err.txt; return 1; }
	expect_grep "^WORKER_ID=from-beside$" env.claim-job || return 1
	expect_grep "settings read from $PWD/inst/.env" err.txt || return 1
	rm inst/.env cwd/.env
	(cd cwd && LOG_LEVEL=info ../inst/pipeline.sh --once 2>../err.txt) || { cat err.txt; return 1; }
	expect_grep "no settings file" err.txt
}

# Nothing was claimed, released or changed: the seed's job pending with no attempt, and a
# job this worker left running stays as it was.
jobs_untouched() {
	expect_eq "jobs untouched" "pending 0 running 1" \
		"$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs ORDER BY status" | tr '\n' ' ' | sed 's/ $//')"
}
leave_a_running_job() {
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, attempts, worker_id, locked_at, started_at)
		VALUES ('7a2e3d4c-0000-4000-8000-000000000001', '8b3f4e5d-0000-4000-8000-000000000001',
			'running', 1, '$WORKER_ID', now(), now())"
}

# SIGTERM while the supervisor returns its workers' jobs at start (the release held on a
# lock of the job left running): status 0, no worker started. Before, the supervisor's
# loop over its workers found none and failed on set -u (an associative array declared
# but never set): status 1.
term_during_release() {
	local locker pid i rc=0 held="SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.query LIKE '%released%'"
	reset && sql -c "DELETE FROM scrape_jobs" && leave_a_running_job || return 1
	psql -X -q -At -d "$DATABASE_URL" -c "BEGIN" -c "SELECT id FROM scrape_jobs FOR UPDATE" \
		-c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
	locker=$!
	# The lock taken before the supervisor starts (its sleep runs once the lock is held):
	# else the supervisor's release may pass first and a worker's own release meet the lock.
	for i in $(seq 300); do
		[ "$(sql -c "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%'
			AND state = 'active' AND pid <> pg_backend_pid()")" = t ] && break
		sleep 0.1
	done
	"$pipeline" --env /dev/null 2>err.txt &
	pid=$!
	for i in $(seq 300); do
		[ "$(sql -c "$held")" = t ] && break
		sleep 0.1
	done
	expect_eq "the release waiting for the lock" t "$(sql -c "$held")" || rc=1
	kill -TERM "$pid"
	sleep 0.5
	sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%'
		AND pid <> pg_backend_pid()" >/dev/null
	[ "$rc" = 0 ] || { kill -KILL "$pid" 2>/dev/null; wait "$pid" "$locker"; return 1; }
	wait "$pid" || rc=$?
	wait "$locker" || true
	expect_eq "status" 0 "$rc" || { tail -n 3 err.txt; return 1; }
	expect_eq "jobs left running" 0 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'running'")"
}

# SIGTERM to claim-job --follow while a statement of it runs (its first claim, held here
# by a lock on fx_rates, which the claim reads): it stops once the statement is done, not
# at the next poll (POLL_INTERVAL_SECONDS=30). A signal during a statement set the stop
# flag before the wait began, and nothing ended that wait: pipeline.sh, stopped as it
# started, then waited out its whole grace period.
claim_term_during_statement() {
	local locker claim t0 ms i held="SELECT count(*) > 0 FROM pg_locks WHERE relation = 'fx_rates'::regclass"
	reset && sql -c "DELETE FROM scrape_jobs" || return 1
	psql -X -q -At -d "$DATABASE_URL" -c "BEGIN" -c "LOCK fx_rates IN ACCESS EXCLUSIVE MODE" \
		-c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
	locker=$!
	for i in $(seq 300); do
		[ "$(sql -c "$held AND granted")" = t ] && break
		sleep 0.1
	done
	POLL_INTERVAL_SECONDS=30 claim-job --follow --worker term-w >/dev/null 2>err.txt &
	claim=$!
	for i in $(seq 300); do
		[ "$(sql -c "$held AND NOT granted")" = t ] && break
		sleep 0.1
	done
	expect_eq "claim-job waiting for the lock" t "$(sql -c "$held AND NOT granted")" || return 1
	kill -TERM "$claim"
	sleep 0.5
	# The lock goes with the locker's backend; the claim then ends.
	sql -c "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.relation = 'fx_rates'::regclass
		AND l.granted" >/dev/null
	t0=$(date +%s%N)
	wait "$claim"
	expect_eq "claim-job's status" 0 "$?" || { cat err.txt; return 1; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	wait "$locker" || true
	# The poll interval is 30 s.
	[ "$ms" -lt 15000 ] || { echo "claim-job took $ms ms to stop"; return 1; }
}

# claim-job --release with --worker twice returns both workers' jobs over one connection
# (pipeline.sh --workers K releases its K workers so at start); --worker twice is a usage
# error anywhere else. A worker named neither keeps its job.
release_several_workers() {
	local w
	reset || return 1
	for w in rel-1 rel-2 rel-3; do
		sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, attempts, worker_id, locked_at, started_at)
			VALUES ('7a2e3d4c-0000-4000-8000-000000000001', '8b3f4e5d-0000-4000-8000-000000000001',
				'running', 1, '$w', now(), now())" || return 1
	done
	LOG_LEVEL=info claim-job --release --worker rel-1 --worker rel-2 2>err.txt || { cat err.txt; return 1; }
	expect_grep "released 1 job(s) of rel-1" err.txt || return 1
	expect_grep "released 1 job(s) of rel-2" err.txt || return 1
	expect_eq "jobs after the release" "pending - pending - running rel-3" \
		"$(sql -F ' ' -c "SELECT status, coalesce(worker_id, '-') FROM scrape_jobs WHERE attempts = 1
			ORDER BY status" | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "pending jobs" 3 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'pending'")" || return 1
	local rc=0
	claim-job --touch --worker rel-1 --worker rel-3 2>/dev/null || rc=$?
	expect_eq "--touch with --worker twice" 64 "$rc" || return 1
	rc=0
	claim-job --worker rel-1 --worker rel-3 >/dev/null 2>&1 || rc=$?
	expect_eq "a claim with --worker twice" 64 "$rc" || return 1
	expect_eq "claimed by the refused commands" 3 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'pending'")"
}

bad_log_settings_refused() {
	reset && leave_a_running_job || return 1
	LOG_LEVEL=verbose "$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "LOG_LEVEL" 78 $? || return 1
	expect_grep "LOG_LEVEL=verbose is not a level: set debug, info, warn (or warning) or error" err.txt || return 1
	LOG_FORMAT=yaml "$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "LOG_FORMAT" 78 $? || return 1
	expect_grep "LOG_FORMAT=yaml is not a format: set json or text" err.txt || return 1
	printf 'LOG_LEVEL=Warning\nLOG_FORMAT=JSON\n' >ok.env
	env -u LOG_FORMAT "$pipeline" --check --env ok.env 2>err.txt || { cat err.txt; return 1; }
	jobs_untouched
}

# A collector's credentials missing or refused: exit 78 before anything is claimed,
# saying what to set.
credentials_checked_at_start() {
	local asked
	reset && leave_a_running_job || return 1
	asked=$(grep -c '"/identity/v1/oauth2/token"' "$scratch/fake.log")
	env -u EBAY_APP_ID "$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "no app id, Finding" 78 $? || return 1
	expect_grep 'source "eBay Sold Listings" (eBay Finding) needs an application id: set EBAY_APP_ID' err.txt || return 1
	expect_grep "not starting" err.txt || return 1
	jobs_untouched || return 1
	# The same with the application id in the source's config; or answered from recordings.
	env -u EBAY_APP_ID EBAY_REPLAY_DIR="$here/data/replay" "$pipeline" --check --env /dev/null 2>err.txt ||
		{ cat err.txt; return 1; }
	sql -c "UPDATE sources SET config = config || '{\"app_id\": \"Own-App-Id-1\"}'" || return 1
	env -u EBAY_APP_ID "$pipeline" --check --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	# Browse needs the cert id too, and a token: refused, then not approved for Insights.
	sql -c "INSERT INTO sources (name, adapter_type) VALUES ('eBay Asking Prices', 'ebay_browse')" || return 1
	env -u EBAY_CERT_ID "$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "no cert id, Browse" 78 $? || return 1
	expect_grep 'source "eBay Asking Prices" (eBay browse) needs eBay credentials: set EBAY_APP_ID and EBAY_CERT_ID' err.txt || return 1
	fault '{"path": "/identity", "status": 401, "times": 1}'
	"$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "refused" 78 $? || return 1
	expect_grep 'source "eBay Asking Prices": eBay refused the credentials (HTTP 401' err.txt || return 1
	if grep -q "$EBAY_CERT_ID" err.txt; then echo "the cert id was printed"; return 1; fi
	# A token endpoint that echoes the request's keyset in its error: not shown.
	printf '{"error": "invalid_client %s %s Basic %s"}' "$EBAY_APP_ID" "$EBAY_CERT_ID" \
		"$(printf %s "$EBAY_APP_ID:$EBAY_CERT_ID" | base64 -w0)" >echo.json
	fault "{\"path\": \"/identity\", \"kind\": \"body\", \"status\": 401, \"file\": \"$PWD/echo.json\", \"times\": 1}"
	"$pipeline" --check --env /dev/null 2>err.txt
	expect_eq "refused, the keyset echoed" 78 $? || return 1
	expect_grep 'eBay refused the credentials (HTTP 401): check' err.txt || return 1
	if grep -q -e "$EBAY_CERT_ID" -e "$EBAY_APP_ID" -e "$(printf %s "$EBAY_APP_ID:$EBAY_CERT_ID" | base64 -w0)" err.txt; then
		echo "the keyset was printed"
		return 1
	fi
	jobs_untouched || return 1
	sql -c "UPDATE sources SET adapter_type = 'ebay_insights' WHERE name = 'eBay Asking Prices'" || return 1
	fault '{"path": "/identity", "kind": "not_approved", "times": 1}'
	"$pipeline" --once --env /dev/null 2>err.txt
	expect_eq "not approved" 78 $? || return 1
	expect_grep 'eBay refused the Marketplace Insights scope' err.txt || return 1
	jobs_untouched || return 1
	# eBay unreachable is no reason to refuse: the jobs retry later.
	fault '{"path": "/identity", "status": 503, "times": 1}'
	"$pipeline" --check --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_grep 'could not ask eBay for a token now (HTTP 503)' err.txt || return 1
	"$pipeline" --check --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_eq "token requests" $((asked + 5)) "$(grep -c '"/identity/v1/oauth2/token"' "$scratch/fake.log")"
}

# A job leaving "running" is told on its worker's own channel (migration 009), so that
# the claim-job of another worker is not woken by it: before, all of them were, on
# coin_pricer_done.
done_told_on_the_workers_channel() {
	local chan
	reset && sql -c "DELETE FROM scrape_jobs" || return 1
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at, started_at)
		SELECT '7a2e3d4c-0000-4000-8000-000000000001', '8b3f4e5d-0000-4000-8000-000000000001',
			'running', w, now(), now() FROM unnest(ARRAY['w:1', 'w:2', 'w:2']) w" || return 1
	chan=coin_pricer_done_$(printf %s 'w:1' | sha256sum | cut -c1-32)
	sql -c "LISTEN coin_pricer_done" -c "LISTEN $chan" \
		-c "UPDATE scrape_jobs SET status = 'completed' WHERE worker_id = 'w:2'" -c "SELECT 'w:2 done'" \
		-c "UPDATE scrape_jobs SET status = 'completed' WHERE worker_id = 'w:1'" -c "SELECT 'w:1 done'" >out.txt 2>&1 || return 1
	expect_eq "notifications" "w:2 done|Asynchronous notification \"$chan\" with payload \"w:1\" received|w:1 done" \
		"$(sed 's/ from server process.*//' out.txt | tr '\n' '|' | sed 's/|$//')"
}

# A database without migration 009 (the claim function): claim-job and the worker stop
# with 78 and say what to run, and no job is touched.
claim_needs_migration_009() {
	local rc=0
	reset && sql -c "DROP FUNCTION coin_pricer_claim" || return 1
	claim-job --worker no-009 >out.txt 2>err.txt || rc=$?
	"$pipeline" --once --env /dev/null 2>perr.txt
	expect_eq "pipeline.sh without 009" 78 $? || { sql -f "$root/schemas/sql/009_claim_function.sql"; return 1; }
	sql -f "$root/schemas/sql/009_claim_function.sql" || return 1
	expect_eq "claim-job without 009" 78 "$rc" || return 1
	expect_grep "lacks migration 009 (the claim function coin_pricer_claim): run scripts/migrate.sh" err.txt || return 1
	expect_grep "lacks migration 009" perr.txt || return 1
	expect_eq "jobs" "pending 0" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")"
}

# Sessions made to the test database so far (counted as each ends, this one's included).
sessions() { sql -c "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"; }

# claim-job --follow over a direct connection opens one connection: the notifications
# check (a NOTIFY sent to itself from a second connection) is for poolers, and the server
# naming the process id that libpq got says there is none. Before, two; the check still
# runs through PgBouncer (t-db's notifications check).
follow_connects_once() {
	local s0 i n=0
	reset && sql -c "DELETE FROM scrape_jobs" || return 1
	sleep 0.5 # the sessions above counted
	s0=$(sessions)
	LOG_LEVEL=debug claim-job --follow --once --worker one-conn 2>err.txt || { cat err.txt; return 1; }
	# A session is counted when its server process ends, a moment after the client left.
	for i in $(seq 50); do
		n=$(($(sessions) - s0 - i))
		[ "$n" -ge 1 ] && break
		sleep 0.1
	done
	sleep 0.5
	expect_eq "connections of claim-job --follow" 1 $(($(sessions) - s0 - i - 1)) || return 1
	expect_grep "a direct connection to .*: notifications arrive, no check needed" err.txt
}

# A stage ends with its parent only under the worker, which names itself in
# COIN_PRICER_PARENT_PID: then the stage asks for SIGKILL when that parent dies, and ends
# at once (70) when its parent is already another (the parent died between the fork and
# the stage's start). Started by hand (an ad-hoc pipeline, nohup) it runs on when its
# parent ends. Before, the stages had no parent-death signal of their own (setpriv gave
# it to them): under the variable too they ran on.
stage_dies_with_its_parent() {
	local s args pid i rc
	reset || return 1
	mkfifo in.fifo || return 1
	exec {hold}<>in.fifo # a writer that never writes: each stage waits for input
	for s in claim-job ebay-fetch filter-junk normalize-usd store valuate; do
		args=()
		[ "$s" = claim-job ] && args=(--wait 60 --adapter t-none --worker t-parent)
		# By hand: the parent (sh) ends at once; the stage runs on.
		# shellcheck disable=SC2016 # expanded by sh
		sh -c '"$@" <in.fifo >/dev/null 2>>err.txt & echo $! >pid' sh "$s" "${args[@]}"
		sleep 1
		pid=$(cat pid)
		kill -0 "$pid" 2>/dev/null || { echo "$s started by hand ended with its parent"; cat err.txt; return 1; }
		kill -KILL "$pid"
		# Under the worker: the parent names itself, and ends after a second.
		# shellcheck disable=SC2016 # expanded by sh
		sh -c 'COIN_PRICER_PARENT_PID=$$ "$@" <in.fifo >/dev/null 2>>err.txt & echo $! >pid; sleep 1' sh "$s" "${args[@]}"
		pid=$(cat pid)
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid"
			echo "$s outlived the parent named in COIN_PRICER_PARENT_PID"
			return 1
		fi
		# The parent named is not the parent: it ends at once, reading nothing.
		COIN_PRICER_PARENT_PID=1 timeout 10 "$s" "${args[@]}" <in.fifo >out.txt 2>>err.txt
		rc=$?
		expect_eq "$s whose parent is not the one named: status" 70 "$rc" || return 1
		expect_eq "$s whose parent is not the one named: output" "" "$(cat out.txt)" || return 1
	done
	exec {hold}>&-
	expect_eq "jobs claimed" "pending 0" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")"
}

# COIN_PRICER_PARENT_PID is the pipeline shell's word to its stages: one in the
# supervisor's environment is dropped, else the programs the supervisor starts itself
# (the release of its workers' jobs at start) would end at once, their parent not the
# one named. The job a previous run left running is released at start as ever.
parent_pid_not_inherited() {
	reset && sql -c "DELETE FROM scrape_jobs" && leave_a_running_job || return 1
	COIN_PRICER_PARENT_PID=1 "$pipeline" --once --env /dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_eq "job" "completed 2" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_eq "released at start" 1 \
		"$(sql -c "SELECT count(*) FROM scrape_job_logs WHERE message LIKE '%(worker restart or a failed stage)'")"
}

run_test "pipeline.sh --once runs every pending job to completion" once_runs_every_job
run_test "claim-job --follow over a direct connection connects once (no notifications check)" \
	follow_connects_once
run_test "a job leaving running is told on its worker's channel alone" done_told_on_the_workers_channel
run_test "without migration 009: claim-job and pipeline.sh stop with 78, saying to migrate" claim_needs_migration_009
run_test "pipeline.sh --workers 2: 200 jobs over 50 intakes, each done once, one log line each" batch_two_workers
# The same through PgBouncer in transaction mode: notifications do not pass, claim-job polls.
run_test "through PgBouncer (transaction mode): --once runs every pending job" pooled once_runs_every_job
run_test "through PgBouncer (transaction mode): 200 jobs, two workers (polling every second)" pooled batch_polling
run_test "through PgBouncer (transaction mode): a backlog drains with no poll interval waited out" \
	pooled backlog_drains_polling
run_test "SIGTERM with eBay hung: exits 0 within --grace, nothing left running" term_with_ebay_hung
run_test "kill -9 of the supervisor: no process left; a restart finishes every job" supervisor_killed
run_test "a job no collector can do fails with a reason and starves no other" bad_job_does_not_starve
run_test "a source rule typed wrong fails its jobs at once, the rule named" bad_rule_fails_its_job
run_test "no database: --once gives up (75); a configuration error stops at once (78)" once_gives_up_without_database
run_test "pipeline.sh reads the env file literally" env_file_read
run_test "claim-job --follow as a child of PID 1 (a container's init) claims" claim_follow_child_of_pid1
run_test "claim-job --follow under a subreaper ends when its parent dies" claim_follow_under_subreaper
run_test "a stage ends with the parent COIN_PRICER_PARENT_PID names, and only then" stage_dies_with_its_parent
run_test "COIN_PRICER_PARENT_PID in the supervisor's environment is dropped" parent_pid_not_inherited
run_test "pipeline.sh --help is a manual; --version; wrong options exit 64" help_and_version
run_test "the settings file is read as dotenv reads it, never executed" env_file_dotenv
run_test "without --env: .env beside pipeline.sh, else in the current folder" env_file_fallback
run_test "LOG_LEVEL / LOG_FORMAT not known: refused (78), jobs untouched" bad_log_settings_refused
run_test "eBay credentials missing or refused: refused at start (78), jobs untouched" credentials_checked_at_start
run_test "SIGTERM while waiting for jobs: stops at once, status 0" term_while_waiting
run_test "SIGTERM while it starts: status 0, no job touched" term_while_starting
run_test "SIGTERM while the supervisor releases its workers' jobs at start: status 0" term_during_release
run_test "SIGTERM to claim-job --follow during a statement: it stops after it, not at the next poll" \
	claim_term_during_statement
run_test "claim-job --release --worker A --worker B returns both workers' jobs; twice elsewhere is 64" \
	release_several_workers
run_test "SIGTERM during a job: the job completes, then it stops" term_finishes_the_job
run_test "a stage killed mid-job: the job goes back to the queue and is done again" crash_returns_job
run_test "eBay down: the job waits out its backoff, the worker goes on" ebay_down_job_retried_later
