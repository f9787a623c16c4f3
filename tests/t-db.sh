#!/usr/bin/env bash
# stages: claim-job store
# claim-job and store against a real PostgreSQL, started for this run by
# scripts/local-pg.sh and removed at the end.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(cd "$here/.." && pwd)
export PGSTATE=$scratch/pg
DATABASE_URL=$("$root/scripts/local-pg.sh" start 2>"$scratch/pg-start.log") || {
	echo "not ok - start a local PostgreSQL"
	sed 's/^/    /' "$scratch/pg-start.log"
	exit 0
}
export DATABASE_URL
trap '"$root/scripts/local-pg.sh" stop >/dev/null 2>&1; rm -rf "$scratch"' EXIT
export PGOPTIONS="-c client_min_messages=warning"
job=6f1d2c3b-0000-4000-8000-000000000001
intake=7a2e3d4c-0000-4000-8000-000000000001
source=8b3f4e5d-0000-4000-8000-000000000001

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }

reset_db() {
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql"
}

# N jobs for the seeded intake and source (random ids).
add_jobs() {
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, priority)
		SELECT '$intake', '$source', 100 FROM generate_series(1, $1)"
}

# The input of a whole job: claim it as WORKER, then the recorded points, then job_end.
job_stream() {
	claim-job --worker "$1" 2>/dev/null || return 1
	cat "$here/data/finding-points.ndjson"
	printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"
}

claims_each_job_once() {
	local i
	reset_db && sql -c "DELETE FROM scrape_jobs" && add_jobs 20000 || return 1
	for i in 1 2 3 4 5 6 7 8; do
		(
			while claim-job --worker "w$i" --limit 50 >>"claims.$i" 2>/dev/null; do
				[ "$(wc -l <"claims.$i")" -eq "${last:-x}" ] && break
				last=$(wc -l <"claims.$i")
			done
		) &
	done
	wait
	expect_eq "claimed, with duplicates" 20000 "$(cat claims.* | wc -l)" || return 1
	expect_eq "distinct jobs claimed" 20000 "$(cat claims.* | jq -r .job_id | sort -u | wc -l)" || return 1
	expect_eq "running in the database" 20000 "$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'running' AND attempts = 1")" || return 1
	expect_eq "workers that got some" 8 "$(for f in claims.*; do [ -s "$f" ] && echo; done | wc -l)"
}

job_record_is_complete() {
	reset_db || return 1
	claim-job --worker w1 >job.ndjson 2>err.txt || return 1
	/usr/bin/python3 "$here/validate.py" job.ndjson || return 1
	expect_eq "job" "$job 1 w1 eBay Sold Listings 1921 S dollar 1 GBP 1.2712" \
		"$(jq -r '[.job_id, .attempt, .worker_id, .source.name, .attribution.year, .attribution.mintmark, .attribution.denomination, (.rules | length), "GBP", .fx_rates.GBP.usd_per_unit] | join(" ")' job.ndjson)" || return 1
	expect_grep "as role coin_pricer (bypasses row-level security: yes)" err.txt || return 1
	claim-job --worker w2 >again.ndjson 2>/dev/null || return 1
	expect_eq "a second claim" "" "$(cat again.ndjson)"
}

not_due_not_claimed() {
	reset_db || return 1
	sql -c "UPDATE scrape_jobs SET run_at = now() + interval '1 hour'" || return 1
	expect_eq "claim of a job not due" "" "$(claim-job --worker w1 2>/dev/null)" || return 1
	sql -c "UPDATE scrape_jobs SET run_at = now() - interval '1 second'" || return 1
	expect_eq "claim of a due job" "$job" "$(claim-job --worker w1 2>/dev/null | jq -r .job_id)"
}

priority_then_age() {
	reset_db && sql -c "DELETE FROM scrape_jobs" || return 1
	sql -c "INSERT INTO scrape_jobs (id, intake_id, source_id, priority, run_at) VALUES
		('00000000-0000-4000-8000-000000000001', '$intake', '$source', 5, now() - interval '1 minute'),
		('00000000-0000-4000-8000-000000000002', '$intake', '$source', 1, now() - interval '1 minute'),
		('00000000-0000-4000-8000-000000000003', '$intake', '$source', 1, now() - interval '2 minutes'),
		('00000000-0000-4000-8000-000000000004', '$intake', '$source', 0, now() + interval '1 hour')" || return 1
	expect_eq "order" "3 2 1" "$(claim-job --worker w1 --limit 10 2>/dev/null | jq -r '.job_id[-1:]' | tr '\n' ' ' | sed 's/ $//')"
}

adapter_filter() {
	reset_db || return 1
	expect_eq "other adapter" "" "$(claim-job --worker w1 --adapter ebay_browse 2>/dev/null)" || return 1
	sql -c "UPDATE sources SET enabled = false" || return 1
	expect_eq "disabled source" "" "$(claim-job --worker w1 --adapter ebay_finding 2>/dev/null)" || return 1
	sql -c "UPDATE sources SET enabled = true" || return 1
	expect_eq "matching adapter" "$job" "$(claim-job --worker w1 --adapter ebay_finding 2>/dev/null | jq -r .job_id)"
}

stale_lock_touch_release() {
	reset_db || return 1
	export JOB_LOCK_TIMEOUT_SECONDS=2
	claim-job --worker w1 >/dev/null 2>&1 || return 1
	expect_eq "before the timeout" "" "$(claim-job --worker w2 2>/dev/null)" || return 1
	sleep 1.2
	claim-job --worker w1 --touch 2>/dev/null || return 1
	sleep 1.2
	expect_eq "touched 2.4 s after the claim" "" "$(claim-job --worker w2 2>/dev/null)" || return 1
	sleep 1.2
	expect_eq "after the timeout" "$job 2 w2" "$(claim-job --worker w2 2>/dev/null | jq -r '"\(.job_id) \(.attempt) \(.worker_id)"')" || return 1
	claim-job --worker w2 --release 2>/dev/null || return 1
	expect_eq "status after --release" "pending" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_eq "after --release" "$job 3 w3" "$(claim-job --worker w3 2>/dev/null | jq -r '"\(.job_id) \(.attempt) \(.worker_id)"')"
}

wait_wakes_on_insert() {
	local t0 t1 ms
	reset_db && sql -c "DELETE FROM scrape_jobs" || return 1
	POLL_INTERVAL_SECONDS=60 claim-job --worker w1 --wait 20 >job.ndjson 2>err.txt &
	sleep 1
	t0=$(date +%s%N)
	add_jobs 1 || return 1
	wait $! || return 1
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "pickup latency: $ms ms" >&2
	expect_eq "claimed" 1 "$(wc -l <job.ndjson)" || return 1
	[ "$ms" -lt 500 ] || { echo "woke after $ms ms"; return 1; }
}

wait_ends_empty() {
	local rc
	reset_db && sql -c "DELETE FROM scrape_jobs" || return 1
	claim-job --worker w1 --wait 1 >out.ndjson 2>/dev/null
	rc=$?
	expect_eq "status" 0 "$rc" || return 1
	expect_eq "output" "" "$(cat out.ndjson)"
}

whole_pipeline() {
	reset_db || return 1
	job_stream w1 | filter-junk | normalize-usd | store | valuate | store >out.ndjson 2>err.txt || return 1
	/usr/bin/python3 "$here/validate.py" out.ndjson || return 1
	expect_eq "kinds out" "job valuation job_done job_end" "$(jq -r .kind out.ndjson | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "job" "completed 1" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_eq "points, filtered" "29 10" "$(sql -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE filtered_out) FROM price_points")" || return 1
	expect_eq "valuation" "4999 7 17" "$(sql -F ' ' -c "SELECT median_cents, confidence, comps FROM valuations")" || return 1
	expect_eq "job_done" "true" "$(jq -r 'select(.kind == "job_done") | .completed' out.ndjson)"
}

restore_is_idempotent() {
	reset_db || return 1
	job_stream w1 | filter-junk | normalize-usd | store >/dev/null 2>&1 || return 1
	sql -c "UPDATE price_points SET title = 'changed'" || return 1
	{ printf '{"kind":"job","job_id":"%s","intake_id":"%s","source_id":"%s","worker_id":"w1"}\n' "$job" "$intake" "$source"
	  cat "$here/data/finding-points.ndjson"
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } | filter-junk | normalize-usd | store >/dev/null 2>&1 || return 1
	expect_eq "points" 29 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_eq "titles updated" 0 "$(sql -c "SELECT count(*) FROM price_points WHERE title = 'changed'")"
}

odd_titles_verbatim() {
	local titles
	reset_db || return 1
	titles=$(printf '%s\n' "it's a \"quote\"" 'back\slash \\ \n' "'); DROP TABLE price_points; --" '🪙 Morgan dollar ★ schön')
	{ claim-job --worker w1 2>/dev/null
	  printf '%s\n' "$titles" | jq -Rc --arg j "$job" '{kind: "price_point", job_id: $j, adapter: "ebay_finding", external_id: ., title: ., price_type: "sold", amount: "45.00", currency: "USD"}'
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } | store >/dev/null 2>err.txt || return 1
	expect_eq "stored titles" "$(printf '%s\n' "$titles" | sort)" "$(sql -c "SELECT title FROM price_points" | sort)" || return 1
	expect_eq "raw kept" 4 "$(sql -c "SELECT count(*) FROM price_points WHERE raw IS NULL AND title = external_id")"
}

killed_mid_job_stores_nothing() {
	local pid
	reset_db || return 1
	mkfifo in.fifo
	store <in.fifo >/dev/null 2>err.txt &
	pid=$!
	exec 7>in.fifo
	claim-job --worker w1 2>/dev/null >&7
	head -n 20 "$here/data/finding-points.ndjson" >&7
	sleep 0.5
	kill -9 "$pid"
	exec 7>&-
	wait "$pid" 2>/dev/null
	expect_eq "points after kill -9" 0 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	claim-job --worker w1 --release >/dev/null 2>&1 || return 1
	job_stream w1 >full.ndjson || return 1
	head -n 25 full.ndjson | store >/dev/null 2>err.txt || return 1
	expect_eq "points after input ended before job_end" 0 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_grep "were not stored" err.txt
}

backoff_then_failed() {
	local attempt delay
	reset_db && sql -c "UPDATE scrape_jobs SET max_attempts = 3" || return 1
	for attempt in 1 2 3; do
		sql -c "UPDATE scrape_jobs SET run_at = now() - interval '1 second'" || return 1
		{ claim-job --worker w1 2>/dev/null
		  printf '{"kind":"job_error","job_id":"%s","error":"eBay answered 503","retryable":true}\n' "$job"; } |
			store >out.ndjson 2>/dev/null || return 1
		if [ "$attempt" -lt 3 ]; then
			delay=$(sql -c "SELECT extract(epoch FROM run_at - now())::int FROM scrape_jobs")
			expect_eq "status after attempt $attempt" "pending" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
			# 30 s x 2^(attempt-1), +-20 %.
			case $attempt in
			1) [ "$delay" -ge 23 ] && [ "$delay" -le 36 ] || { echo "delay $delay s after attempt 1"; return 1; } ;;
			2) [ "$delay" -ge 47 ] && [ "$delay" -le 72 ] || { echo "delay $delay s after attempt 2"; return 1; } ;;
			esac
			expect_eq "job_error passed on" "pending true" "$(jq -r '"\(.job_status) \(.stored)"' out.ndjson | tail -n 1)" || return 1
		fi
	done
	expect_eq "after the last attempt" "failed eBay answered 503" "$(sql -F ' ' -c "SELECT status, error_message FROM scrape_jobs")" || return 1
	expect_eq "log rows" "3 3" "$(sql -F ' ' -c "SELECT count(*) FILTER (WHERE message LIKE 'claimed%'), count(*) FILTER (WHERE message = 'eBay answered 503') FROM scrape_job_logs")"
}

not_retryable_fails_at_once() {
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null
	  printf '{"kind":"job_error","job_id":"%s","error":"bad app id","retryable":false}\n' "$job"; } | store >/dev/null 2>&1 || return 1
	expect_eq "status" "failed 1" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")"
}

lost_lock_leaves_job_alone() {
	reset_db || return 1
	job_stream w1 >stream.ndjson || return 1
	# Another worker took the job over after w1's lock expired.
	sql -c "UPDATE scrape_jobs SET worker_id = 'w2', attempts = 2" || return 1
	{ filter-junk <stream.ndjson | normalize-usd | store | valuate | store >out.ndjson; } 2>err.txt || return 1
	expect_eq "points" 0 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_eq "job" "running w2" "$(sql -F ' ' -c "SELECT status, worker_id FROM scrape_jobs")" || return 1
	expect_grep "no longer held by w1" err.txt
}

no_points_still_completes() {
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null; printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"; } |
		store | valuate | store >out.ndjson 2>/dev/null || return 1
	expect_eq "job" "completed" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_eq "job_done" "null true" "$(jq -r 'select(.kind == "job_done") | "\(.valuation_id) \(.completed)"' out.ndjson)" || return 1
	/usr/bin/python3 "$here/validate.py" out.ndjson
}

reconnects_after_connection_loss() {
	reset_db || return 1
	mkfifo in.fifo
	DB_RECONNECT_SECONDS=20 store <in.fifo >out.ndjson 2>err.txt &
	exec 7>in.fifo
	job_stream w1 | head -n 10 >&7
	sleep 0.5
	sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'coin-pricer'" >/dev/null
	job_stream_tail >&7
	exec 7>&-
	wait $! || { cat err.txt; return 1; }
	expect_eq "points" 29 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_grep "reconnected" err.txt
}
job_stream_tail() {
	tail -n +10 "$here/data/finding-points.ndjson"
	printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"
}

database_down() {
	local rc
	DATABASE_URL="postgresql://coin:s3cretpw@127.0.0.1:1/coin" claim-job >out.txt 2>err.txt
	rc=$?
	expect_eq "claim-job status" 75 "$rc" || return 1
	expect_grep "127.0.0.1:1/coin" err.txt || return 1
	if grep -q s3cretpw err.txt out.txt; then echo "the password was printed"; return 1; fi
	echo '{"kind":"note"}' | DATABASE_URL="postgresql://coin:s3cretpw@127.0.0.1:1/coin" store >out.txt 2>err.txt
	rc=$?
	expect_eq "store status" 75 "$rc" || return 1
	if grep -q s3cretpw err.txt out.txt; then echo "the password was printed"; return 1; fi
}

migrations_rerun() {
	"$root/scripts/migrate.sh" "$DATABASE_URL" 2>err.txt || return 1
	expect_eq "stderr" "" "$(cat err.txt)" || return 1
	local files=("$root"/schemas/sql/[0-9][0-9][0-9]_*.sql)
	expect_eq "recorded" "${#files[@]}" "$(sql -c "SELECT count(*) FROM schema_migrations")"
}

# shellcheck source=tests/conventions.sh
. "$here/conventions.sh"
export LOG_LEVEL=warn # no "connected to" lines: the convention tests want a quiet stderr
run_convention_tests store
unset LOG_LEVEL

run_test "claim-job: --help, --version, a wrong option" help_and_version claim-job
run_test "claim-job: the job record has source, attribution, rules, newest fx rates" job_record_is_complete
run_test "claim-job: a job not yet due is not claimed" not_due_not_claimed
run_test "claim-job: best priority first, then oldest" priority_then_age
run_test "claim-job: --adapter and disabled sources" adapter_filter
run_test "claim-job: stale lock reclaimed after the timeout, not before; --touch; --release" stale_lock_touch_release
run_test "claim-job: --wait wakes on an INSERT (LISTEN/NOTIFY)" wait_wakes_on_insert
run_test "claim-job: --wait ends empty with no output and status 0" wait_ends_empty
run_test "claim-job: 8 processes, 20,000 jobs, each claimed exactly once" claims_each_job_once
run_test "pipeline: claim | filter-junk | normalize-usd | store | valuate | store" whole_pipeline
run_test "store: re-storing the same points updates, never duplicates" restore_is_idempotent
run_test "store: quotes, backslashes, SQL and emoji stored verbatim" odd_titles_verbatim
run_test "store: killed mid-job, or input ending before job_end, stores nothing" killed_mid_job_stores_nothing
run_test "store: job_error backs off 30 s x 2^(n-1) +-20 %, then failed at max_attempts" backoff_then_failed
run_test "store: a job_error that is not retryable fails the job at once" not_retryable_fails_at_once
run_test "store: a job taken over by another worker is left alone" lost_lock_leaves_job_alone
run_test "store: a job with no points to value is still completed" no_points_still_completes
run_test "store: reconnects after the connection is killed mid-stream" reconnects_after_connection_loss
run_test "database down: exit 75, the host named, the password not" database_down
run_test "migrations: rerunning applies nothing twice" migrations_rerun
