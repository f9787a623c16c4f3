#!/usr/bin/env bash
# stages: pipeline
# Chaos: pipeline.sh --workers 2 over 100 jobs against a real PostgreSQL and the fake eBay
# while processes of the worker (any stage, claim-job, a worker's shell, the supervisor)
# are killed with SIGKILL at random moments; the supervisor is started again when it was
# the one killed. Then every job has ended with its points and valuation exactly once, no
# job ran twice at the same time, and nothing of the worker is left.
# CHAOS_SEED=N replays one sequence of kills (the seed is printed when the test fails).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

start_services
export WORKER_ID=t-chaos COIN_PRICER_STATE_DIR=$scratch/state TMPDIR=$scratch/tmp
mkdir -p "$TMPDIR"
pipeline=$root/pipeline.sh
jobs=100
kills=10

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }

# One job per intake, so that a job's points are its own: none can hide another's loss.
# The history: every change of a job's status or attempt, and every point and valuation
# written, with the writing connection (its pid and when it connected), the transaction
# and the time. setup [JOBS] (default $jobs).
setup() {
	local jobs=${1:-$jobs}
	fault '{"clear": true}'
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql" &&
		sql -c "DELETE FROM scrape_jobs; DROP TABLE IF EXISTS chaos_history;
		INSERT INTO intakes (id) SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
			FROM generate_series(2, $jobs + 1) i;
		INSERT INTO attributions (intake_id, year, mintmark, denomination, series)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 1921, 'S', 'dollar', 'Morgan'
			FROM generate_series(2, $jobs + 1) i;
		INSERT INTO scrape_jobs (intake_id, source_id, priority)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
				'8b3f4e5d-0000-4000-8000-000000000001', 10
			FROM generate_series(2, $jobs + 1) i;
		CREATE OR REPLACE FUNCTION chaos_backend_start() RETURNS timestamptz LANGUAGE sql AS
			'SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()';
		CREATE TABLE chaos_history (id bigserial PRIMARY KEY, job_id uuid, what text, status text,
			old_status text, attempts int, worker text, old_worker text, job_status text,
			backend int DEFAULT pg_backend_pid(), tx bigint DEFAULT txid_current(),
			backend_start timestamptz DEFAULT chaos_backend_start(),
			at timestamptz DEFAULT clock_timestamp());
		CREATE OR REPLACE FUNCTION chaos_job() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
			IF NEW.status IS DISTINCT FROM OLD.status OR NEW.attempts IS DISTINCT FROM OLD.attempts THEN
				INSERT INTO chaos_history (job_id, what, status, old_status, attempts, worker, old_worker)
				VALUES (NEW.id, 'job', NEW.status, OLD.status, NEW.attempts, NEW.worker_id, OLD.worker_id);
			END IF;
			RETURN NULL; END \$\$;
		CREATE OR REPLACE FUNCTION chaos_write() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
			INSERT INTO chaos_history (job_id, what, job_status)
			VALUES (NEW.job_id, TG_ARGV[0], (SELECT status FROM scrape_jobs WHERE id = NEW.job_id));
			RETURN NULL; END \$\$;
		CREATE OR REPLACE TRIGGER chaos_job AFTER UPDATE ON scrape_jobs FOR EACH ROW EXECUTE FUNCTION chaos_job();
		CREATE OR REPLACE TRIGGER chaos_point AFTER INSERT ON price_points FOR EACH ROW EXECUTE FUNCTION chaos_write('point');
		CREATE OR REPLACE TRIGGER chaos_valuation AFTER INSERT ON valuations FOR EACH ROW EXECUTE FUNCTION chaos_write('valuation');
		CREATE OR REPLACE FUNCTION chaos_log() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
			INSERT INTO chaos_history (job_id, what, status) VALUES (NEW.job_id, 'log', NEW.message);
			RETURN NULL; END \$\$;
		CREATE OR REPLACE TRIGGER chaos_log AFTER INSERT ON scrape_job_logs FOR EACH ROW EXECUTE FUNCTION chaos_log();"
}

# The supervisor and every process of its workers: each worker is a session of its own,
# recorded in sessions.txt so that the end can look for what is left of any of them.
worker_processes() {
	local w
	echo "$sup"
	for w in $(pgrep -P "$sup"); do
		pgrep -s "$w" && echo "$w" >>sessions.txt
	done
}

start_supervisor() {
	"$pipeline" --once --workers 2 --env /dev/null 2>>err.txt &
	sup=$!
	echo "$sup" >>supervisors.txt
}

# The history of the jobs that did not end, for the report of a failure.
history() {
	echo "history of the jobs not ended (what, status, old status, attempt, worker, backend, at):"
	sql -F ' ' -c "SELECT h.job_id, h.what, h.status, h.old_status, h.attempts, h.worker,
			h.backend, to_char(h.at, 'HH24:MI:SS.MS') FROM chaos_history h JOIN scrape_jobs j ON j.id = h.job_id
		WHERE j.status NOT IN ('completed', 'failed') AND h.what = 'job' ORDER BY h.id"
	echo "the supervisor's log:"
	tail -n 40 err.txt
}

chaos() {
	local seed=${CHAOS_SEED:-$RANDOM} n=0 victims target what left i t0
	RANDOM=$seed
	echo "seed $seed"
	setup || return 1
	# Every eBay page takes 0.15 s: a job takes a third of a second or more, and kills
	# land in the middle of jobs.
	fault '{"path": "/services", "kind": "slow", "seconds": 0.15, "times": 100000}'
	t0=$SECONDS
	start_supervisor
	while [ "$n" -lt "$kills" ] && [ $((SECONDS - t0)) -lt 60 ]; do
		sleep "$((RANDOM % 3)).$((RANDOM % 10))"
		kill -0 "$sup" 2>/dev/null || break # --once: no job left
		mapfile -t victims < <(worker_processes)
		target=${victims[RANDOM % ${#victims[@]}]}
		what=$(ps -o comm= -p "$target") || continue
		kill -KILL "$target" 2>/dev/null || continue
		n=$((n + 1))
		echo "kill $n: $what ($target) at $((SECONDS - t0)) s ($(date +%T.%3N))"
		if [ "$target" = "$sup" ]; then
			wait "$sup" 2>/dev/null
			start_supervisor
		fi
	done
	[ "$n" -ge 5 ] || { echo "only $n kills before the jobs ran out"; return 1; }
	for ((i = 0; i < 900; i++)); do
		kill -0 "$sup" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$sup" 2>/dev/null; then
		echo "the worker did not finish within 90 s of the last kill"
		sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs GROUP BY 1"
		tail -n 20 err.txt
		kill -TERM "$sup"
		sleep 5
		kill -KILL "$sup" 2>/dev/null
		return 1
	fi
	wait "$sup" || { echo "the last supervisor exited $?"; tail -n 20 err.txt; return 1; }
	echo "done in $((SECONDS - t0)) s"

	# Every job ended: completed, or failed with its reason.
	expect_eq "jobs not ended, or failed with no reason" "" \
		"$(sql -c "SELECT id, status FROM scrape_jobs WHERE status <> 'completed'
			AND (status <> 'failed' OR coalesce(error_message, '') = '')")" || { history; return 1; }
	# Each completed job's intake has the fixture's 29 points, once each, stored by a
	# completed job of the intake (job_id: the job that first stored the point or last
	# changed its data), and one valuation of 16 comps (the fixture at its grade); a job
	# that did not complete has none.
	expect_eq "completed jobs whose points or valuation are not the fixture's" "" \
		"$(sql -c "SELECT j.id, (SELECT count(*) FROM price_points p WHERE p.intake_id = j.intake_id),
				(SELECT count(*) FROM valuations v WHERE v.job_id = j.id)
			FROM scrape_jobs j WHERE j.status = 'completed' AND (
				(SELECT count(*) FROM price_points p JOIN scrape_jobs c ON c.id = p.job_id WHERE p.intake_id = j.intake_id
					AND c.intake_id = j.intake_id AND c.status = 'completed') <> 29
				OR (SELECT count(*) FROM price_points p WHERE p.intake_id = j.intake_id) <> 29
				OR (SELECT count(*) FROM valuations v WHERE v.job_id = j.id) <> 1
				OR (SELECT count(*) FROM valuations v WHERE v.intake_id = j.intake_id AND v.comps <> 16) > 0)")" || return 1
	expect_eq "valuations of jobs that did not complete" 0 \
		"$(sql -c "SELECT count(*) FROM valuations v JOIN scrape_jobs j ON j.id = v.job_id WHERE j.status <> 'completed'")" || return 1
	expect_eq "points" "$(sql -c "SELECT 29 * count(DISTINCT intake_id) FROM scrape_jobs WHERE status = 'completed'")" \
		"$(sql -c "SELECT count(*) FROM price_points p JOIN scrape_jobs j ON j.id = p.job_id WHERE j.status = 'completed'")" || return 1
	expect_eq "attempts beyond max_attempts" 0 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE attempts > max_attempts")" || return 1

	# No job ran twice at the same time: a job is claimed only when it is not running, and
	# everything written for a job is written while it runs, by a connection of its
	# current run: none made before an earlier run of the same worker was released. (A
	# job that a late claim of a killed run took is returned by the claim-job of the run
	# that follows, whose own stores may have connected a moment before: such a release
	# completes the supervisor's and is not counted here.)
	expect_eq "claims of a running job" "" \
		"$(sql -c "SELECT job_id, at FROM chaos_history WHERE what = 'job' AND status = 'running' AND old_status = 'running'")" || return 1
	expect_eq "writes for a job that was not running" "" \
		"$(sql -c "SELECT w.job_id, w.what, w.job_status, w.at FROM chaos_history w
			WHERE w.what IN ('point', 'valuation') AND w.job_status <> 'running'
			AND NOT EXISTS (SELECT 1 FROM chaos_history c WHERE c.tx = w.tx AND c.job_id = w.job_id
				AND c.what = 'job' AND c.status = 'completed' AND c.old_status = 'running')")" || return 1
	expect_eq "writes by a connection older than the release of an earlier run" "" \
		"$(sql -c "SELECT w.job_id, w.what, w.backend, w.at FROM chaos_history w
			CROSS JOIN LATERAL (SELECT c.worker FROM chaos_history c WHERE c.job_id = w.job_id
				AND c.what = 'job' AND c.status = 'running' AND c.id < w.id ORDER BY c.id DESC LIMIT 1) run
			WHERE (w.what IN ('point', 'valuation') OR (w.what = 'job' AND w.status = 'completed'))
			AND EXISTS (SELECT 1 FROM chaos_history r WHERE r.job_id = w.job_id AND r.what = 'job'
				AND r.old_status = 'running' AND r.status <> 'completed' AND r.worker IS NULL
				AND r.old_worker = run.worker AND r.id < w.id AND w.backend_start < r.at
				AND NOT EXISTS (SELECT 1 FROM chaos_history l WHERE l.tx = r.tx AND l.job_id = r.job_id
					AND l.what = 'log' AND l.status LIKE '%claimed by an earlier run%'))")" || return 1

	# Nothing of the worker left: no process of any worker's session, no supervisor, no
	# temporary folder.
	sleep 0.5
	left=$(ps -e -o sid=,pid=,comm= | awk 'NR == FNR { s[$1] = 1; next } ($1 in s)' sessions.txt -)
	expect_eq "processes of the workers left" "" "$left" || return 1
	while read -r i; do
		! kill -0 "$i" 2>/dev/null || { echo "supervisor $i left"; return 1; }
	done <supervisors.txt
	expect_eq "temporary files left" "" "$(find "$TMPDIR" -mindepth 1)"
}

# wait_for WHAT COMMAND...: until COMMAND succeeds, up to 20 s.
wait_for() {
	local what=$1 i
	shift
	for ((i = 0; i < 200; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	echo "waited 20 s for $what"
	return 1
}

# A process forked just as its parent dies asks for the parent-death signal too late,
# and would run on with no supervisor. setpriv made slow (3 s) holds a worker in that
# moment while its supervisor is killed: the worker must end, never claim.
supervisor_killed_while_starting() {
	local w
	setup 3 || return 1
	mkdir slow && printf '#!/bin/sh\nsleep 3\nexec %s "$@"\n' "$(command -v setpriv)" >slow/setpriv &&
		chmod +x slow/setpriv || return 1
	PATH=$PWD/slow:$PATH "$pipeline" --once --env /dev/null 2>err.txt &
	sup=$!
	wait_for "the worker" pgrep -P "$sup" -x setpriv >/dev/null || return 1
	w=$(pgrep -P "$sup" -x setpriv)
	kill -KILL "$sup"
	wait "$sup" 2>/dev/null
	sleep 6
	left=$(pgrep -s "$w")
	pkill -KILL -s "$w"
	expect_eq "processes of the worker left" "" "$left" || return 1
	expect_eq "jobs" "pending 3 0" "$(sql -F ' ' -c "SELECT status, count(*), max(attempts) FROM scrape_jobs GROUP BY 1")"
}

# fx_rates_lock CONDITION: a lock on fx_rates is held or asked for as CONDITION says.
fx_rates_lock() {
	[ "$(sql -c "SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE c.relname = 'fx_rates' AND $1")" = t ]
}

# worker_shell SUPERVISOR: the pid of its worker's shell, the child that leads a session.
worker_shell() {
	ps -o pid=,sid=,comm= --ppid "$1" | awk '$1 == $2 && $3 == "bash" { print $1; f = 1 } END { exit !f }'
}

# slow_stages: in slow/, stand-ins for the stages that wait 3 s before they become the
# stage (COIN_PRICER_STAGES=$PWD/slow): a worker's stages held in the moment between the
# fork and the stage's start, before any parent-death signal is asked for.
slow_stages() {
	local s
	mkdir -p slow || return 1
	for s in claim-job ebay-fetch filter-junk normalize-usd store valuate; do
		printf '#!/bin/sh\nsleep 3\nexec %s "$@"\n' "$(command -v "$s")" >"slow/$s" && chmod +x "slow/$s" || return 1
	done
}

# starting_pipeline WORKER: the pid of its pipeline's shell while its stages start (a
# child of it still in the stand-in's sleep).
starting_pipeline() {
	local c g
	for c in $(pgrep -P "$1" -x bash); do
		for g in $(pgrep -P "$c"); do
			pgrep -P "$g" -x sleep >/dev/null && echo "$c" && return 0
		done
	done
	return 1
}

# The same one level down: the pipeline's shell killed while its stages start. The
# supervisor returns the worker's jobs only once nothing of the old pipeline runs.
pipeline_killed_while_starting() {
	local w p left i
	setup 3 || return 1
	fault '{"path": "/services", "kind": "slow", "seconds": 10, "times": 100}'
	slow_stages || return 1
	COIN_PRICER_STAGES=$PWD/slow "$pipeline" --once --env /dev/null 2>err.txt &
	sup=$!
	wait_for "the worker" worker_shell "$sup" >/dev/null || return 1
	w=$(worker_shell "$sup")
	for ((i = 0; i < 200; i++)); do
		p=$(starting_pipeline "$w") && break
		sleep 0.1
	done
	[ -n "$p" ] || { echo "no pipeline started"; return 1; }
	kill -KILL "$p"
	wait_for "the release" grep -q "returning the job to the queue" err.txt || return 1
	# The release follows once no process of the session is left (else within 5 s);
	# left alone, the old stages would run on for good.
	for ((i = 0; i < 30; i++)); do
		pgrep -s "$w" >/dev/null || break
		sleep 0.1
	done
	left=$(pgrep -s "$w")
	kill -TERM "$sup"
	wait "$sup"
	pkill -KILL -s "$w"
	fault '{"clear": true}'
	expect_eq "processes of the old pipeline when its jobs were returned" "" "$left"
}

# The supervisor killed while its worker's stages start: the worker and the pipeline
# shell end with it, and each stage, started after its parent died (too late for the
# parent-death signal), ends at once on its own: none runs, nothing is claimed. Before,
# claim-job took the process that adopted it for its parent and claimed the jobs.
supervisor_killed_while_stages_start() {
	local w left
	setup 3 || return 1
	slow_stages || return 1
	COIN_PRICER_STAGES=$PWD/slow "$pipeline" --once --env /dev/null 2>err.txt &
	sup=$!
	wait_for "the worker" worker_shell "$sup" >/dev/null || return 1
	w=$(worker_shell "$sup")
	wait_for "the stages to start" starting_pipeline "$w" >/dev/null || return 1
	kill -KILL "$sup"
	wait "$sup" 2>/dev/null
	sleep 6
	left=$(ps -o pid=,comm= -s "$w")
	pkill -KILL -s "$w"
	expect_eq "processes of the worker left" "" "$left" || return 1
	expect_eq "jobs" "pending 3 0" "$(sql -F ' ' -c "SELECT status, count(*), max(attempts) FROM scrape_jobs GROUP BY 1")"
}

# The supervisor killed while its worker waits out the backoff after a broken pipeline:
# the wait (a sleep) ends with the worker. Before, it ran on for the rest of the delay.
supervisor_killed_during_backoff() {
	local w left s
	setup 3 || return 1
	mkdir -p broken && printf '#!/bin/sh\nexit 70\n' >broken/filter-junk && chmod +x broken/filter-junk || return 1
	for s in claim-job ebay-fetch normalize-usd store valuate; do
		ln -s "$(command -v "$s")" "broken/$s" || return 1
	done
	COIN_PRICER_STAGES=$PWD/broken "$pipeline" --env /dev/null 2>err.txt &
	sup=$!
	wait_for "a backoff of 4 s" grep -q "starting again in 4 s" err.txt || return 1
	wait_for "the worker" worker_shell "$sup" >/dev/null || return 1
	w=$(worker_shell "$sup")
	kill -KILL "$sup"
	wait "$sup" 2>/dev/null
	sleep 1
	# Ended ones may wait a while for init to reap them (state Z): they are gone.
	left=$(ps -o pid=,stat=,comm= -s "$w" | awk '$2 !~ /^Z/')
	pkill -KILL -s "$w"
	expect_eq "processes of the worker left" "" "$left"
}

# A claim on its way when its supervisor is killed lands after the next supervisor has
# released the worker's jobs (held here by a lock on fx_rates, which the claim reads and
# the release does not): the new run of the worker returns those jobs to the queue and
# runs them, and --once leaves none running.
late_claim_of_a_killed_worker() {
	setup 3 || return 1
	sql -c "BEGIN; LOCK TABLE fx_rates IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" >/dev/null 2>&1 &
	wait_for "the lock" fx_rates_lock "l.mode = 'AccessExclusiveLock' AND l.granted" || return 1
	"$pipeline" --once --env /dev/null 2>err.txt &
	sup=$!
	wait_for "the claim to wait" fx_rates_lock "NOT l.granted" || return 1
	kill -KILL "$sup"
	wait "$sup" 2>/dev/null
	timeout 60 "$pipeline" --once --env /dev/null 2>err2.txt &
	sup=$!
	wait_for "the new supervisor" grep -q "started 1 worker" err2.txt || return 1
	sql -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)' AND pid <> pg_backend_pid()" >/dev/null
	wait "$sup" || { echo "the supervisor exited $?"; tail -n 20 err2.txt; return 1; }
	expect_eq "jobs" "completed 3" "$(sql -F ' ' -c "SELECT status, count(*) FROM scrape_jobs GROUP BY 1")" || return 1
	expect_eq "claims of a running job" "" \
		"$(sql -c "SELECT job_id, at FROM chaos_history WHERE what = 'job' AND status = 'running' AND old_status = 'running'")"
}

# CHAOS_KEEP=DIR: after a failure, the supervisors' log, the kills and the history are kept
# there for a look.
chaos_kept() {
	local rc
	chaos | tee kills.txt
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && [ -n "${CHAOS_KEEP:-}" ]; then
		mkdir -p "$CHAOS_KEEP" && cp err.txt kills.txt "$CHAOS_KEEP/"
		sql -c "\\copy chaos_history TO '$CHAOS_KEEP/history.csv' CSV HEADER"
		sql -c "\\copy (SELECT * FROM scrape_job_logs ORDER BY id) TO '$CHAOS_KEEP/job_logs.csv' CSV HEADER"
	fi
	return "$rc"
}

run_test "the supervisor killed while it starts a worker: the worker ends too, nothing claimed" \
	supervisor_killed_while_starting
run_test "the pipeline killed while its stages start: its jobs return once none of it runs" \
	pipeline_killed_while_starting
run_test "the supervisor killed while the stages start: none of them runs, nothing claimed" \
	supervisor_killed_while_stages_start
run_test "the supervisor killed while a worker waits out its backoff: nothing of it left" \
	supervisor_killed_during_backoff
run_test "a claim that lands after the release of a killed worker: its jobs run, none left running" \
	late_claim_of_a_killed_worker
run_test "kill -9 at random ($kills times, any process of the worker): every job done once, nothing left" chaos_kept
