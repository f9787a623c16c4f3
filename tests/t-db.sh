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
	sql -c "DROP TRIGGER IF EXISTS t_fail ON scrape_job_logs" &&
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

# claim-job --follow as WORKER in the background, its stderr at debug level in FILE.
follow_bg() {
	POLL_INTERVAL_SECONDS=60 LOG_LEVEL=debug claim-job --follow --worker "$1" >"$1.out" 2>"$2" &
}

# Claim statements claim-job logged in FILE.
claims_in() { grep -c 'claim statement' "$1"; }

follow_wakes_only_for_its_own() {
	local pid i
	reset_db && sql -c "DELETE FROM scrape_jobs" && add_jobs 2 || return 1
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at, started_at)
		SELECT '$intake', '$source', 'running', 'other', now(), now() FROM generate_series(1, 5)" || return 1
	follow_bg w1 err.txt
	pid=$!
	for i in $(seq 50); do [ -s w1.out ] && break; sleep 0.1; done
	sleep 0.5
	expect_eq "claimed at start" 1 "$(wc -l <w1.out)" || { kill $pid; return 1; }
	# Another worker's jobs end: nothing for w1 to do.
	sql -c "UPDATE scrape_jobs SET status = 'completed' WHERE worker_id = 'other'" || { kill $pid; return 1; }
	sleep 0.5
	expect_eq "claims after a claim that filled the room and 5 jobs of another worker ended" 1 \
		"$(claims_in err.txt)" || { kill $pid; return 1; }
	# Its own job ends: room for the next one, claimed at once.
	sql -c "UPDATE scrape_jobs SET status = 'completed' WHERE worker_id = 'w1'" || { kill $pid; return 1; }
	for i in $(seq 50); do [ "$(wc -l <w1.out)" -eq 2 ] && break; sleep 0.1; done
	sleep 0.3
	kill -TERM $pid
	wait $pid || return 1
	expect_eq "jobs claimed" 2 "$(wc -l <w1.out)" || return 1
	expect_eq "claim statements" 2 "$(claims_in err.txt)"
}

# Through a real PgBouncer in transaction mode: LISTEN is accepted, notifications are
# dropped. claim-job --follow says so once and polls; directly it says nothing.
follow_says_when_notifications_are_dropped() {
	local pooled
	command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (scripts/install-deps.sh)"; return 1; }
	pooled=$(PGBOUNCER_STATE=$PWD/pgb "$root/scripts/local-pgbouncer.sh" start "$DATABASE_URL") || return 1
	reset_db && sql -c "DELETE FROM scrape_jobs" && add_jobs 1 || return 1
	DATABASE_URL=$pooled POLL_INTERVAL_SECONDS=7 claim-job --follow --once --in-flight 2 --worker w1 \
		>pooled.out 2>pooled.err
	PGBOUNCER_STATE=$PWD/pgb "$root/scripts/local-pgbouncer.sh" stop
	expect_eq "claimed through the pooler" 1 "$(wc -l <pooled.out)" || return 1
	expect_eq "said once" 1 "$(grep -c 'notifications do not arrive' pooled.err)" || return 1
	expect_grep 'transaction-mode pooler.*polling for jobs every 7 s' pooled.err || return 1
	add_jobs 1 || return 1
	claim-job --follow --once --in-flight 2 --worker w2 >direct.out 2>direct.err || return 1
	expect_eq "claimed directly" 1 "$(wc -l <direct.out)" || return 1
	expect_eq "said directly" 0 "$(grep -c 'notifications do not arrive' direct.err)"
}

claims_each_job_once() {
	local i
	# A slow machine (a sanitizer build at load 25) can take longer than the default lock
	# timeout over 20,000 claims, and an expired lock is rightly claimed again.
	export JOB_LOCK_TIMEOUT_SECONDS=86400
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
	# With a 60 s poll and a 20 s wait only the notification can hand the job over in time;
	# 3 s leaves room for psql's start and a loaded machine (it was 500 ms, and failed at
	# load averages above 10 on unchanged code). The latency itself is on stderr above.
	[ "$ms" -lt 3000 ] || { echo "woke after $ms ms"; return 1; }
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
	expect_eq "points, filtered" "29 11" "$(sql -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE filtered_out) FROM price_points")" || return 1
	# The seed coin's grade is VF: priced at that grade, from the title facts store kept.
	expect_eq "valuation" "4377 9 16 grade VF" \
		"$(sql -F ' ' -c "SELECT median_cents, confidence, comps, method, target_grade FROM valuations")" || return 1
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

# A second job of the intake: its own points come back whole, the intake's earlier ones
# only with what valuate reads, and valuate prices them as it does the full records.
replay_has_what_valuate_reads() {
	local job2=6f1d2c3b-0000-4000-8000-000000000002 want got
	reset_db || return 1
	job_stream w1 | filter-junk | normalize-usd >first.ndjson || return 1
	store <first.ndjson >/dev/null 2>&1 || return 1
	sql -c "INSERT INTO scrape_jobs (id, intake_id, source_id, status, worker_id, locked_at, started_at, attempts)
		VALUES ('$job2', '$intake', '$source', 'running', 'w1', now(), now(), 1)" || return 1
	{ jq -c --arg j "$job2" '.job_id = $j' <(head -n 1 first.ndjson)
	  jq -c --arg j "$job2" 'select(.kind == "price_point") | .job_id = $j | .external_id += "-b"' first.ndjson | head -n 3
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job2"; } >second.ndjson
	store <second.ndjson >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "own points, whole" "3 3" "$(jq -s --arg j "$job2" '[.[] | select(.kind == "price_point" and .job_id == $j)] | "\(length) \([.[] | select(.title != null and .url != null)] | length)"' -r out.ndjson)" || return 1
	expect_eq "earlier points, not filtered out" "$(jq -s '[.[] | select(.kind == "price_point" and (.filtered_out | not))] | length' first.ndjson)" "$(jq -s --arg j "$job" '[.[] | select(.kind == "price_point" and .job_id == $j)] | length' out.ndjson)" || return 1
	expect_eq "earlier points' fields" "adapter certifier designations external_id filtered_out grade grade_hi grade_lo intake_id job_id kind price_cents price_type reputation_weight sold_at source_id stored" \
		"$(jq -r --arg j "$job" 'select(.kind == "price_point" and .job_id == $j) | keys_unsorted | sort | join(" ")' out.ndjson | sort -u)" || return 1
	# The same points as the collector wrote them, whole, give the same prices.
	want=$({ head -n 1 second.ndjson
		jq -c --arg j "$job2" 'select(.kind == "price_point" and (.filtered_out | not)) | .job_id = $j' first.ndjson
		sed -n '2,4p' second.ndjson; tail -n 1 second.ndjson; } | valuate | jq -c 'select(.kind == "valuation") | [.candidates, .comps, .p10_cents, .median_cents, .p90_cents, .confidence]')
	got=$(valuate <out.ndjson | jq -c 'select(.kind == "valuation") | [.candidates, .comps, .p10_cents, .median_cents, .p90_cents, .confidence]')
	expect_eq "valuation from the replay" "$want" "$got"
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
			1) if [ "$delay" -lt 23 ] || [ "$delay" -gt 36 ]; then echo "delay $delay s after attempt 1"; return 1; fi ;;
			2) if [ "$delay" -lt 47 ] || [ "$delay" -gt 72 ]; then echo "delay $delay s after attempt 2"; return 1; fi ;;
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

# A process of an earlier attempt whose statements land late: its job went back to the
# queue and the same worker id claimed it again (a restarted worker). Its points and its
# valuation must not be written for the new attempt.
late_attempt_writes_nothing() {
	reset_db || return 1
	job_stream w1 >stream.ndjson || return 1
	claim-job --release --worker w1 2>/dev/null && claim-job --worker w1 >/dev/null 2>&1 || return 1
	expect_eq "claimed again" "running w1 2" "$(sql -F ' ' -c "SELECT status, worker_id, attempts FROM scrape_jobs")" || return 1
	{ filter-junk <stream.ndjson | normalize-usd | store >/dev/null; } 2>err.txt || return 1
	expect_eq "points of attempt 1" 0 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_grep "no longer held by w1" err.txt || return 1
	# Attempt 1 stored its points; the job went back and came again before its valuation.
	reset_db || return 1
	job_stream w1 >stream.ndjson || return 1
	{ filter-junk <stream.ndjson | normalize-usd | store >stored.ndjson; } 2>err.txt || return 1
	claim-job --release --worker w1 2>/dev/null && claim-job --worker w1 >/dev/null 2>&1 || return 1
	{ valuate <stored.ndjson | store >out.ndjson; } 2>err.txt || return 1
	expect_eq "valuations of attempt 1" 0 "$(sql -c "SELECT count(*) FROM valuations")" || return 1
	expect_eq "job" "running w1 2" "$(sql -F ' ' -c "SELECT status, worker_id, attempts FROM scrape_jobs")" || return 1
	expect_eq "job_done" "null false" "$(jq -r 'select(.kind == "job_done") | "\(.valuation_id) \(.completed)"' out.ndjson)" || return 1
	expect_grep "was not stored: the job is no longer held by w1 at attempt 1" err.txt
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

# What retrying can fix exits 75; what it cannot, 78 with what to do; never the password.
database_errors_classified() {
	local base=${DATABASE_URL%/*} url want rc
	sql -c "DROP DATABASE IF EXISTS empty" -c "CREATE DATABASE empty" || return 1
	while IFS='|' read -r want url; do
		for stage in claim-job store; do
			echo '{"kind":"note"}' | DATABASE_URL=$url "$stage" >out.txt 2>err.txt
			rc=$?
			expect_eq "$stage status for $url" "$want" "$rc" || { cat err.txt; return 1; }
			if grep -q s3cret err.txt out.txt; then echo "the password was printed for $url:"; cat err.txt; return 1; fi
		done
	done <<-EOF
		75|postgresql://coin:s3cretpw@127.0.0.1:1/coin
		78|${base/coin_pricer@/coin_pricer:s3cretpw@}/nosuchdb
		78|${base/coin_pricer@/nosuchrole:s3cretpw@}/coin_pricer
		78|$DATABASE_URL?sslmode=bogus
		78|$DATABASE_URL?sslmode=require
		78|$base/empty
		78|postgresql://coin:s3cretpw@127.0.0.1:1/coin%zz
		78|postgresql://coin:s3cret%zzpw@127.0.0.1:1/coin
		78|postgresql://coin:s3cretpw@[::1/coin
		78|host=127.0.0.1 password='s3cretpw port=1
	EOF
	DATABASE_URL=$base/empty claim-job 2>err.txt
	expect_grep "run scripts/migrate.sh" err.txt || return 1
	DATABASE_URL=$base/nosuchdb claim-job 2>err.txt
	expect_grep 'database "nosuchdb" does not exist (check the database and user names in DATABASE_URL; retrying will not help)' err.txt || return 1
	DATABASE_URL='postgresql://coin:s3cretpw@[::1/coin' claim-job 2>err.txt
	expect_grep "DATABASE_URL cannot be parsed" err.txt
}

# A signal while migrate.sh makes its scratch file (a slow mktemp holds it there, as a busy
# host does) is held until the file's removal is set up: the file is not left in TMPDIR.
migrate_scratch_not_left_by_a_signal() {
	scratch_not_left "TERM INT HUP" file "$root/scripts/migrate.sh" "$DATABASE_URL"
}

migrations_rerun() {
	local f
	"$root/scripts/migrate.sh" "$DATABASE_URL" 2>err.txt || return 1
	expect_eq "stderr" "" "$(cat err.txt)" || return 1
	expect_eq "recorded" "$(find "$root/schemas/sql" -name '[0-9][0-9][0-9]_*.sql' | wc -l)" \
		"$(sql -c "SELECT count(*) FROM schema_migrations")" || return 1
	# Each file is idempotent by itself: applied again, in order, it changes nothing.
	for f in "$root"/schemas/sql/[0-9][0-9][0-9]_*.sql; do
		sql -f "$f" >/dev/null || { echo "rerunning $f failed"; return 1; }
	done
	expect_eq "indexes on the foreign keys" "price_points_job valuations_job" \
		"$(sql -c "SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes WHERE indexname IN ('price_points_job', 'valuations_job')")"
}

# A database migrated before 006 (without the functions store calls) is not migrated: 78,
# and the message says what to run; migrate.sh puts it right.
functions_missing_is_not_migrated() {
	sql -c "DROP FUNCTION coin_pricer_store_valuation(json, text, int)" -c "DELETE FROM schema_migrations WHERE version = '006_store_functions'" || return 1
	echo '{"kind":"note"}' | store >/dev/null 2>err.txt
	expect_eq "status" 78 "$?" || return 1
	expect_grep "run scripts/migrate.sh" err.txt || return 1
	"$root/scripts/migrate.sh" "$DATABASE_URL" 2>/dev/null || return 1
	echo '{"kind":"note"}' | store >/dev/null 2>err.txt || { cat err.txt; return 1; }
}

# A job whose points carry sold_at values PostgreSQL refuses, and one point it refuses
# whatever its sold_at (an id too long for the unique index; a NUL, the other such value,
# is refused as a bad line before store): the rest are stored, the job completes.
bad_points_do_not_lose_the_job() {
	local long
	# Random, so that PostgreSQL cannot compress it under the index's row limit.
	long=$(head -c 6000 /dev/urandom | base64 -w 0 | tr -d '/+=')
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null
	  jq -c --arg long "$long" 'if .external_id == "192100000001" then .sold_at = "not a date"
		elif .external_id == "192100000002" then .sold_at = "2026-02-30T10:00:00.000Z"
		elif .external_id == "192100000003" then .sold_at = "0000-01-01T00:00:00Z"
		elif .external_id == "192100000004" then .sold_at = 17
		elif .external_id == "192100000005" then .external_id += $long
		else . end' "$here/data/finding-points.ndjson"
	  printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"; } |
		{ filter-junk | normalize-usd | store | valuate | store >out.ndjson; } 2>err.txt || { cat err.txt; return 1; }
	expect_eq "job" "completed" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_eq "points stored" 28 "$(sql -c "SELECT count(*) FROM price_points")" || return 1
	expect_eq "sold_at nulled" "192100000001 192100000002 192100000003 192100000004" \
		"$(sql -c "SELECT string_agg(external_id, ' ' ORDER BY external_id) FROM price_points WHERE sold_at IS NULL")" || return 1
	expect_eq "valuations" 1 "$(sql -c "SELECT count(*) FROM valuations")" || return 1
	expect_grep "price_point 192100000002: sold_at \"2026-02-30T10:00:00.000Z\" is not an RFC 3339 time" err.txt || return 1
	expect_grep "price_point 192100000005[A-Za-z0-9]* left out" err.txt || return 1
	expect_eq "log row" '{"new": 28, "points": 28, "changed": 0, "filtered": 11, "left_out": 1, "unchanged": 0}' \
		"$(sql -c "SELECT metadata FROM scrape_job_logs WHERE message LIKE 'stored%'")"
}

# When the points cannot be stored at all, the job is retried with the reason, never
# completed "with no price points".
store_failure_never_completes() {
	reset_db || return 1
	sql -c "CREATE OR REPLACE FUNCTION t_fail() RETURNS trigger LANGUAGE plpgsql AS
		\$\$BEGIN RAISE EXCEPTION 'disk full (a test)'; END\$\$;
		CREATE TRIGGER t_fail BEFORE INSERT ON scrape_job_logs FOR EACH ROW
		WHEN (NEW.message LIKE 'stored%') EXECUTE FUNCTION t_fail()" || return 1
	job_stream w1 | filter-junk | normalize-usd | store | valuate | store >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	sql -c "DROP TRIGGER t_fail ON scrape_job_logs" || return 1
	expect_eq "job" "pending 1" "$(sql -F ' ' -c "SELECT status, attempts FROM scrape_jobs")" || return 1
	expect_grep "could not be stored (store a price point: disk full (a test))\|could not be stored (log: disk full (a test))" \
		<(sql -c "SELECT error_message FROM scrape_jobs") || return 1
	expect_eq "points, valuations" "0 0" "$(sql -F ' ' -c "SELECT (SELECT count(*) FROM price_points), (SELECT count(*) FROM valuations)")" || return 1
	expect_eq "kinds out" "job job_error" "$(jq -r .kind out.ndjson | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "job_error" "true pending" "$(jq -r 'select(.kind == "job_error") | "\(.retryable) \(.job_status)"' out.ndjson)"
}

# A pending job that has used up its attempts (a release, or a manual change) is never
# claimed again: failed with the reason, and the next job is claimed instead.
spent_job_never_claimed() {
	reset_db || return 1
	sql -c "UPDATE scrape_jobs SET attempts = 3, max_attempts = 3, error_message = 'eBay answered 503'" || return 1
	add_jobs 1 || return 1
	expect_eq "claimed instead" 1 "$(claim-job --worker w1 2>/dev/null | jq -r .attempt)" || return 1
	expect_eq "spent job" "failed used up its 3 attempts (last error: eBay answered 503)" \
		"$(sql -F ' ' -c "SELECT status, error_message FROM scrape_jobs WHERE id = '$job'")" || return 1
	# --release of a job on its last attempt fails it rather than queueing it again.
	sql -c "DELETE FROM scrape_jobs WHERE id <> '$job'; UPDATE scrape_jobs SET status = 'pending', attempts = 2, error_message = NULL" || return 1
	claim-job --worker w1 >/dev/null 2>&1 || return 1
	claim-job --worker w1 --release 2>/dev/null || return 1
	expect_eq "released on the last attempt" "failed" "$(sql -c "SELECT status FROM scrape_jobs")" || return 1
	expect_grep "used up its 3 attempts" <(sql -c "SELECT error_message FROM scrape_jobs")
}

# A collector's Retry-After: the next try is at least that far out.
retry_after_honoured() {
	local delay
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null
	  printf '{"kind":"job_error","job_id":"%s","error":"eBay: 429, Retry-After 7200","retryable":true,"retry_after_seconds":7200}\n' "$job"; } |
		store >out.ndjson 2>/dev/null || return 1
	delay=$(sql -c "SELECT extract(epoch FROM run_at - now())::int FROM scrape_jobs")
	if [ "$delay" -lt 7190 ] || [ "$delay" -gt 7200 ]; then
		echo "run_at $delay s out, not 7200"
		return 1
	fi
	expect_eq "status" pending "$(sql -c "SELECT status FROM scrape_jobs")"
}

# The title facts and the graded valuation's fields land in their columns.
grade_fields_stored() {
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null
	  cat "$here/data/finding-points.ndjson"
	  printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"; } |
		filter-junk | jq -c 'if .external_id == "192100000002" then . + {grade: "MS63", grade_lo: 63, grade_hi: 63,
		certifier: "PCGS", designations: ["DMPL", "CAC"], quantity: 1}
		elif .kind == "price_point" then . + {grade: null, grade_lo: null, grade_hi: null, certifier: null} else . end' |
		normalize-usd | store >points.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "point" "MS63 63 63 PCGS {DMPL,CAC} 1" \
		"$(sql -F ' ' -c "SELECT grade, grade_lo, grade_hi, certifier, designations, quantity FROM price_points WHERE external_id = '192100000002'")" || return 1
	expect_eq "other points" "0" "$(sql -c "SELECT count(*) FROM price_points WHERE grade IS NOT NULL AND external_id <> '192100000002'")" || return 1
	expect_eq "replayed point" '["MS63",["DMPL","CAC"],"PCGS"]' \
		"$(jq -c 'select(.kind == "price_point" and .external_id == "192100000002") | [.grade, .designations, .certifier]' points.ndjson)" || return 1
	printf '%s\n' "$(head -n 1 points.ndjson)" \
		"{\"kind\":\"valuation\",\"intake_id\":\"$intake\",\"job_id\":\"$job\",\"p10_cents\":4000,\"median_cents\":5000,\"p90_cents\":6000,\"mean_cents\":5000,\"comps\":12,\"outliers\":1,\"candidates\":13,\"sold\":12,\"ask\":0,\"confidence\":6,\"confidence_parts\":{},\"explanation\":\"x\",\"method\":\"grade\",\"target_grade\":\"MS63\",\"n_eff\":7.4,\"grades\":{\"MS63\":7,\"ungraded\":1},\"tiers\":{\"quick_sale\":4500}}" |
		store >/dev/null 2>err.txt || { cat err.txt; return 1; }
	expect_eq "valuation" 'grade MS63 7.4 {"MS63": 7, "ungraded": 1} {"quick_sale": 4500}' \
		"$(sql -F ' ' -c "SELECT method, target_grade, n_eff, grades, tiers FROM valuations")"
}

# The intake's earlier points that valuate cannot use (filtered out, or with no price_cents:
# stored by a pipeline without normalize-usd) are not replayed; those it can use are.
replay_leaves_out_what_valuate_cannot_use() {
	reset_db || return 1
	sql -c "INSERT INTO price_points (intake_id, source_id, external_id, price_type, price_cents, filtered_out)
		VALUES ('$intake', '$source', 'old-priced', 'sold', 4500, false),
			('$intake', '$source', 'old-unpriced', 'sold', NULL, false),
			('$intake', '$source', 'old-filtered', 'sold', 4600, true)" || return 1
	{ claim-job --worker w1 2>/dev/null
	  printf '{"kind":"price_point","job_id":"%s","external_id":"new","price_type":"sold","price_cents":4500}\n' "$job"
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } | store >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "replayed" "old-priced new" \
		"$(jq -r 'select(.kind == "price_point") | .external_id' out.ndjson | tr '\n' ' ' | sed 's/ $//')"
}

# A second job of the intake that sees the same listings writes none of them again (the
# row keeps its version, updated_at and the first job's id) and rewrites only the one
# whose data changed, with its own id; its log row, its job_end and the finished job's log
# line say how many were new, changed and unchanged; its own points come out whole, with
# its id.
unchanged_points_not_rewritten() {
	local job2=6f1d2c3b-0000-4000-8000-000000000002
	reset_db || return 1
	job_stream w1 | filter-junk | normalize-usd >first.ndjson || return 1
	store <first.ndjson >/dev/null 2>err.txt || { cat err.txt; return 1; }
	sql -c "INSERT INTO scrape_jobs (id, intake_id, source_id, status, worker_id, locked_at, started_at, attempts)
		VALUES ('$job2', '$intake', '$source', 'running', 'w1', now(), now(), 1)" || return 1
	sql -c "SELECT external_id, xmin, updated_at, job_id FROM price_points ORDER BY external_id" >before.txt || return 1
	jq -c --arg j "$job2" 'if .job_id then .job_id = $j else . end
		| if .external_id == "192100000010" then .title += " (relisted)" else . end' first.ndjson >second.ndjson
	store <second.ndjson >stored.ndjson 2>err.txt || { cat err.txt; return 1; }
	{ valuate <stored.ndjson | store >out.ndjson; } 2>err.txt || { cat err.txt; return 1; }
	sql -c "SELECT external_id, xmin, updated_at, job_id FROM price_points ORDER BY external_id" >after.txt || return 1
	expect_eq "rows of the unchanged points: version, updated_at, job_id" \
		"$(grep -v '^192100000010|' before.txt)" "$(grep -v '^192100000010|' after.txt)" || return 1
	expect_eq "rows" 29 "$(wc -l <after.txt)" || return 1
	expect_eq "the changed point rewritten by the second job" "t t $job2 192100000010 (relisted)" \
		"$(sql -F ' ' -c "SELECT p.xmin::text <> '$(grep '^192100000010|' before.txt | cut -d'|' -f2)',
			p.updated_at > '$(grep '^192100000010|' before.txt | cut -d'|' -f3)', p.job_id, p.external_id,
			substring(p.title FROM '\(relisted\)')
			FROM price_points p WHERE p.title LIKE '%(relisted)'")" || return 1
	expect_eq "log row" '{"new": 0, "points": 29, "changed": 1, "filtered": 11, "unchanged": 28}' \
		"$(sql -c "SELECT metadata FROM scrape_job_logs WHERE job_id = '$job2' AND message LIKE 'stored%'")" || return 1
	expect_eq "job_end" "29 0 1 28" \
		"$(jq -r 'select(.kind == "job_end") | "\(.points) \(.new) \(.changed) \(.unchanged)"' out.ndjson)" || return 1
	expect_grep "job $job2 completed: intake $intake, 29 points (11 filtered out; 0 new, 1 changed, 28 unchanged)" err.txt || return 1
	expect_eq "the job's own points out, whole, with its id" "29 29" \
		"$(jq -s --arg j "$job2" -r '[.[] | select(.kind == "price_point" and .job_id == $j)]
			| "\(length) \([.[] | select(.title != null)] | length)"' stored.ndjson)"
}

# The replay of an intake's earlier points is bounded: with --history 3 (or
# STORE_HISTORY_POINTS=3) of 6 usable ones, the newest 3 by sold_at (a tie by id, newest
# first; a point with no sold_at last) come, with the job's own points, and the job_end
# says that more were left out; --history 0 (no bound) and a bound they fit under give
# all 6. The job's own points, stored before (it runs again), are not counted among them.
replay_bounded_newest() {
	local name points opts
	reset_db || return 1
	sql -c "INSERT INTO price_points (intake_id, source_id, external_id, price_type, price_cents, sold_at, filtered_out)
		VALUES ('$intake', '$source', 'e1', 'sold', 4500, '2026-01-01', false),
			('$intake', '$source', 'e6', 'ask', 4500, NULL, false),
			('$intake', '$source', 'e2', 'sold', 4500, '2026-01-02', false),
			('$intake', '$source', 'e4', 'sold', 4500, '2026-01-05', false),
			('$intake', '$source', 'e5', 'sold', 4500, '2026-01-05', false),
			('$intake', '$source', 'e3', 'sold', 4500, '2026-01-03', false),
			('$intake', '$source', 'f1', 'sold', 4500, '2026-02-01', true),
			('$intake', '$source', 'u1', 'sold', NULL, '2026-02-01', false)" || return 1
	{ claim-job --worker w1 2>/dev/null
	  printf '{"kind":"price_point","job_id":"%s","external_id":"own%s","price_type":"sold","price_cents":4500,"sold_at":"2026-03-01T00:00:00Z"}\n' "$job" 1 "$job" 2
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } >in.ndjson
	# NAME|STORE_HISTORY_POINTS|store's options
	while IFS='|' read -r name points opts; do
		# shellcheck disable=SC2086 # the options are words
		STORE_HISTORY_POINTS=$points store $opts <in.ndjson >out.ndjson 2>err.txt || { cat err.txt; return 1; }
		{ jq -r 'select(.kind == "price_point") | .external_id' out.ndjson | sort | tr '\n' ' '
		  jq -c 'select(.kind == "job_end") | .history' out.ndjson; } >"points.$name"
	done <<-EOF
		h3||--history 3
		env3|3|
		h0||--history 0
		h6||--history 6
		env3h5|3|--history 5
		default||
	EOF
	expect_eq "--history 3" 'e3 e4 e5 own1 own2 {"points":3,"limit":3,"more":true}' "$(cat points.h3)" || return 1
	expect_eq "STORE_HISTORY_POINTS=3" 'e3 e4 e5 own1 own2 {"points":3,"limit":3,"more":true}' "$(cat points.env3)" || return 1
	expect_eq "--history 0" 'e1 e2 e3 e4 e5 e6 own1 own2 {"points":6,"limit":null,"more":false}' "$(cat points.h0)" || return 1
	expect_eq "--history 6" 'e1 e2 e3 e4 e5 e6 own1 own2 {"points":6,"limit":6,"more":false}' "$(cat points.h6)" || return 1
	expect_eq "--history 5 over STORE_HISTORY_POINTS=3" 'e1 e2 e3 e4 e5 own1 own2 {"points":5,"limit":5,"more":true}' \
		"$(cat points.env3h5)" || return 1
	expect_eq "the default" 'e1 e2 e3 e4 e5 e6 own1 own2 {"points":6,"limit":1000,"more":false}' "$(cat points.default)" || return 1
	jq -c 'select(.kind == "job_end")' out.ndjson | /usr/bin/python3 "$here/validate.py"
}

# A bound that is not a number of points: 64 with the option, 78 with the variable, and a
# message that says what is wanted.
history_bound_checked() {
	local v rc
	for v in -1 x 1e3 "" 100000001; do
		echo '{"kind":"note"}' | store --history "$v" >out.txt 2>err.txt
		rc=$?
		expect_eq "status of --history '$v'" 64 "$rc" || return 1
		expect_grep "history wants a number of points from 0 (all) to 100000000, not \"$v\"" err.txt || return 1
		[ -z "$v" ] && continue
		echo '{"kind":"note"}' | STORE_HISTORY_POINTS=$v store >out.txt 2>err.txt
		rc=$?
		expect_eq "status of STORE_HISTORY_POINTS=$v" 78 "$rc" || return 1
		expect_grep "STORE_HISTORY_POINTS wants a number of points from 0 (all) to 100000000, not \"$v\"" err.txt || return 1
	done
	echo '{"kind":"note"}' | STORE_HISTORY_POINTS='' store >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_eq "an empty STORE_HISTORY_POINTS" '{"kind":"note"}' "$(cat out.txt)"
}

# The replay walks the intake's usable points newest first by an index, so that it reads
# about --history of them however many the intake has (EXPLAIN of store's statement, as
# auto_explain logs it; not a timing), even when its connection planned the statement
# while the table was empty (a new database: the plan is made once per connection).
replay_uses_the_index() {
	local log from pid i other=7a2e3d4c-0000-4000-8000-000000000002 job2=6f1d2c3b-0000-4000-8000-000000000002
	reset_db || return 1
	sql -c "INSERT INTO intakes (id) VALUES ('$other')" -c "INSERT INTO scrape_jobs (id, intake_id, source_id, status, worker_id, locked_at, started_at, attempts)
		VALUES ('$job2', '$other', '$source', 'running', 'w1', now(), now(), 1)" || return 1
	# Empty, as a new database's is, or one whose points were deleted.
	sql -c "INSERT INTO price_points (intake_id, source_id, external_id, price_type, price_cents)
		SELECT '$other', '$source', 'gone-' || g, 'sold', 4000 FROM generate_series(1, 1000) g" \
		-c "DELETE FROM price_points" -c "VACUUM ANALYZE price_points" || return 1
	log=$PGSTATE/cluster
	[ -f "$PGSTATE/location" ] && log=$(cat "$PGSTATE/location")
	log=$log/server.log
	mkfifo in.fifo
	PGOPTIONS="-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0
		-c auto_explain.log_nested_statements=on -c auto_explain.log_analyze=on" \
		store --history 100 <in.fifo >out.ndjson 2>err.txt &
	pid=$!
	exec 7>in.fifo
	# A first job while price_points is empty: the statement is planned now.
	printf '{"kind":"job","job_id":"%s","intake_id":"%s","source_id":"%s","worker_id":"w1","attempt":1}\n' "$job2" "$other" "$source" >&7
	printf '{"kind":"price_point","job_id":"%s","external_id":"b","price_type":"sold","price_cents":4500}\n' "$job2" >&7
	printf '{"kind":"job_end","job_id":"%s"}\n' "$job2" >&7
	for i in $(seq 100); do grep -q '"kind":"job_end"' out.ndjson && break; sleep 0.1; done
	sql -c "INSERT INTO price_points (intake_id, source_id, external_id, price_type, price_cents, sold_at, filtered_out)
		SELECT '$intake', '$source', 'old-' || g, 'sold', 4000 + g, now() - g * interval '1 minute', g % 4 = 0
		FROM generate_series(1, 20000) g" -c "ANALYZE price_points" || { exec 7>&-; wait $pid; return 1; }
	from=$(($(wc -c <"$log") + 1))
	{ claim-job --worker w1 2>/dev/null
	  printf '{"kind":"price_point","job_id":"%s","external_id":"new","price_type":"sold","price_cents":4500}\n' "$job"
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } >&7
	exec 7>&-
	wait $pid || { cat err.txt; return 1; }
	expect_eq "points out" 102 "$(grep -c '"kind":"price_point"' out.ndjson)" || return 1
	tail -c +"$from" "$log" >plans.txt
	# (rows: the 101 it wants, and one more that the window function looks at; not 15,000)
	expect_grep "Index Scan using price_points_usable_newest on price_points .*(actual time=[0-9.]*\.\.[0-9.]* rows=10[12] loops=1)" plans.txt
}

# Values of every kind, as json_to_record() reads them from the point (as store stored
# them when it sent the points as JSON): strings decoded, other values as written and
# cast, an amount that is not a plain decimal null, arrays as arrays, raw as written.
odd_values_stored_as_json_reads_them() {
	reset_db || return 1
	{ claim-job --worker w1 2>/dev/null
	  printf '%s\n' '{"kind":"price_point","external_id":"a","title":12.50,"url":{"x":  [1, "y"]},"price_type":"sold","amount":"007.50","converted_usd":"1e3","fx_rate":" 1.2","quantity":"3","price_cents":4500,"raw":"text","designations":["a\"b","c,d",null,"\u00e9",7,"NULL"],"fx_as_of":"2026-11-27","grade_lo":" 20 ","sold_at":"2026-11-08T05:13:29+02:00"}' \
		'{"kind":"price_point","external_id":"b","price_type":"ask","amount":12,"filtered_out":true,"designations":[["x"],["y"]],"raw":{"k": [1, 2.50]}}'
	  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } | store >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "stored" 'a|12.50|{"x":  [1, "y"]}|7.50|||3|4500|f|"text"|{"a\"b","c,d",NULL,é,7,"NULL"}|2026-11-27|20|2026-11-08 03:13:29
b|||12|||||t|{"k": [1, 2.50]}|{{x},{y}}|||' \
		"$(sql -c "SELECT external_id, title, url, original_amount, converted_usd, fx_rate, quantity, price_cents,
			filtered_out, raw, designations, fx_as_of, grade_lo, sold_at AT TIME ZONE 'UTC' FROM price_points ORDER BY external_id")"
}

# A database migrated before 008 (without the batch function store calls) is not
# migrated: 78, and the message says what to run; migrate.sh puts it right.
batch_function_missing_is_not_migrated() {
	sql -c "DROP FUNCTION coin_pricer_store_points" -c "DELETE FROM schema_migrations WHERE version = '008_store_unchanged_bounded_replay'" || return 1
	echo '{"kind":"note"}' | store >/dev/null 2>err.txt
	expect_eq "status" 78 "$?" || return 1
	expect_grep "run scripts/migrate.sh" err.txt || return 1
	"$root/scripts/migrate.sh" "$DATABASE_URL" 2>/dev/null || return 1
	echo '{"kind":"note"}' | store >/dev/null 2>err.txt || { cat err.txt; return 1; }
}

# coin-pricer's functions are closed to PUBLIC and to Supabase's API roles (granted EXECUTE
# there by default privileges), and a worker with a role of its own, set up as the README
# says, runs a whole job.
functions_closed_to_public() {
	local url
	reset_db || return 1
	sql -c "DO \$\$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon; END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coin_worker') THEN CREATE ROLE coin_worker LOGIN; END IF;
		END \$\$" -c "GRANT EXECUTE ON FUNCTION coin_pricer_store_batch, coin_pricer_store_points, coin_pricer_store_valuation TO anon" || return 1
	sql -f "$root/schemas/sql/007_store_batch.sql" >/dev/null || return 1
	sql -f "$root/schemas/sql/008_store_unchanged_bounded_replay.sql" >/dev/null || return 1
	expect_eq "coin_pricer functions anon or a new role may run" "0 0" \
		"$(sql -F ' ' -c "SELECT count(*) FILTER (WHERE has_function_privilege('anon', p.oid, 'EXECUTE')),
			count(*) FILTER (WHERE has_function_privilege('coin_worker', p.oid, 'EXECUTE'))
			FROM pg_proc p WHERE p.proname LIKE 'coin\_pricer\_%'")" || return 1
	# The README's GRANTs and policies, as the owner runs them.
	sed -n '/^CREATE ROLE coin_worker/,/^```$/p' "$root/README.md" | sed '1d;$d' >grants.sql
	sql -f grants.sql >/dev/null || return 1
	url=${DATABASE_URL/coin_pricer@/coin_worker@}
	{ DATABASE_URL=$url claim-job --worker w1 2>/dev/null
	  cat "$here/data/finding-points.ndjson"
	  printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$job" "$intake"; } |
		{ DATABASE_URL=$url filter-junk | normalize-usd | DATABASE_URL=$url store |
			valuate | DATABASE_URL=$url store >out.ndjson; } 2>err.txt || { cat err.txt; return 1; }
	expect_eq "job, points, valuations as coin_worker" "completed 29 1" \
		"$(sql -F ' ' -c "SELECT status, (SELECT count(*) FROM price_points), (SELECT count(*) FROM valuations) FROM scrape_jobs")"
}

# An integer out of its column's range is a bad line of its own point: the other points of
# its job and the other jobs of its batch are stored in the one statement, as usual.
integer_out_of_range_is_a_bad_line() {
	local status=0
	reset_db && batch_jobs || return 1
	{ batch_stream 1; batch_stream 2; } | filter-junk | normalize-usd |
		jq -c 'if .external_id == "192100000005-2" then .quantity = 99999999999
		elif .external_id == "192100000007-2" then .price_cents = "99999999999999999999" else . end' |
		store >out.ndjson 2>err.txt || status=$?
	expect_eq "status" 65 "$status" || { cat err.txt; return 1; }
	expect_eq "points per job" "29 27" \
		"$(for n in 1 2; do sql -c "SELECT count(*) FROM price_points WHERE job_id = '$(sed -n "${n}p" jobs.txt)'"; done | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_grep '"quantity" must be a whole number from -2147483648 to 2147483647' err.txt || return 1
	expect_grep '"price_cents" must be a whole number' err.txt || return 1
	if grep -q 'one at a time' err.txt; then cat err.txt; return 1; fi
}

# With no worker id anywhere (no worker_id in the job record, no --worker, no WORKER_ID),
# store's messages say so instead of naming an empty worker.
no_worker_id_named_sensibly() {
	reset_db || return 1
	job_stream w1 | jq -c 'del(.worker_id)' >stream.ndjson || return 1
	sql -c "UPDATE scrape_jobs SET worker_id = 'w2'" || return 1
	{ filter-junk <stream.ndjson | normalize-usd | env -u WORKER_ID store >/dev/null; } 2>err.txt || return 1
	expect_grep "no longer held by a worker with no id (none in the job record, no --worker, no WORKER_ID)" err.txt
}

# shellcheck source=tests/conventions.sh
. "$here/conventions.sh"
export LOG_LEVEL=warn # no "connected to" lines: the convention tests want a quiet stderr
# Jobs of intakes A, B, A, C, one after the other, for batch_stream: running for w1, but
# C's held by another worker. Their ids in jobs.txt, in that order.
batch_jobs() {
	local a=$intake b=7a2e3d4c-0000-4000-8000-000000000002 c=7a2e3d4c-0000-4000-8000-000000000003
	sql -c "DELETE FROM scrape_jobs; INSERT INTO intakes (id) VALUES ('$b'), ('$c')" || return 1
	sql -c "INSERT INTO scrape_jobs (id, intake_id, source_id, status, worker_id, locked_at, started_at)
		SELECT ('6f1d2c3b-0000-4000-8000-00000000010' || n)::uuid, i::uuid, '$source', 'running',
			CASE WHEN n = 4 THEN 'other' ELSE 'w1' END, now(), now()
		FROM unnest(ARRAY['$a', '$b', '$a', '$c']) WITH ORDINALITY AS x(i, n) ORDER BY n RETURNING id" >jobs.txt
}

# The stream of job N of jobs.txt (its intake from the database): job, points, job_end.
batch_stream() {
	local id intake_of
	id=$(sed -n "$1p" jobs.txt)
	intake_of=$(sql -c "SELECT intake_id FROM scrape_jobs WHERE id = '$id'")
	printf '{"kind":"job","job_id":"%s","intake_id":"%s","source_id":"%s","worker_id":"w1"}\n' "$id" "$intake_of" "$source"
	jq -c --arg j "$id" --arg i "$intake_of" --arg n "$1" '.job_id = $j | .intake_id = $i | .external_id += "-" + $n' \
		"$here/data/finding-points.ndjson"
	printf '{"kind":"job_end","job_id":"%s","intake_id":"%s"}\n' "$id" "$intake_of"
}

# Four jobs whose input waits: stored in two statements (A, B; then A again, which must
# see the first A's points, with C), each written out exactly as when stored alone, and
# C, held by another worker, left alone.
batched_jobs_as_alone() {
	local n
	reset_db && batch_jobs || return 1
	for n in 1 2 3 4; do batch_stream $n | filter-junk | normalize-usd >"in$n.ndjson" || return 1; done
	for n in 1 2 3 4; do store <"in$n.ndjson" 2>/dev/null || return 1; done >alone.ndjson
	expect_eq "stored alone: one transaction per job" 3 \
		"$(sql -c "SELECT count(DISTINCT created_at) FROM scrape_job_logs WHERE message LIKE 'stored%'")" || return 1
	reset_db && batch_jobs || return 1
	cat in1.ndjson in2.ndjson in3.ndjson in4.ndjson | store >batched.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "stored jobs, transactions" "3 2" \
		"$(sql -F ' ' -c "SELECT count(*), count(DISTINCT created_at) FROM scrape_job_logs WHERE message LIKE 'stored%'")" || return 1
	expect_eq "points per job" "29 29 29 0" \
		"$(for n in 1 2 3 4; do sql -c "SELECT count(*) FROM price_points WHERE job_id = '$(sed -n "${n}p" jobs.txt)'"; done | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "the same records out" "$(md5sum <alone.ndjson)" "$(md5sum <batched.ndjson)" || return 1
	expect_eq "the second job of intake A replays the first's unfiltered points" 18 \
		"$(jq -s --arg j "$(sed -n 1p jobs.txt)" '[.[] | select(.kind == "price_point" and .job_id == $j)] | length - 29' batched.ndjson)" || return 1
	expect_eq "C's job_end" "true true" "$(jq -r 'select(.kind == "job_end") | select(.job_id == "'"$(sed -n 4p jobs.txt)"'") | "\(.stored) \(.lock_lost)"' batched.ndjson)" || return 1
	expect_grep "no longer held by w1" err.txt
}

# A batch in which one job has a point PostgreSQL refuses: that job is stored one point
# at a time, the other as it would be alone.
batch_with_a_refused_point() {
	local long
	long=$(head -c 6000 /dev/urandom | base64 -w 0 | tr -d '/+=')
	reset_db && batch_jobs || return 1
	{ batch_stream 1; batch_stream 2 | jq -c --arg long "$long" 'if .external_id == "192100000005-2" then .external_id += $long else . end'; } |
		filter-junk | normalize-usd | store >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "points per job" "29 28" \
		"$(for n in 1 2; do sql -c "SELECT count(*) FROM price_points WHERE job_id = '$(sed -n "${n}p" jobs.txt)'"; done | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "job_ends" "29 28" "$(jq -r 'select(.kind == "job_end") | .points' out.ndjson | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_grep "price_point 192100000005-2[A-Za-z0-9]* left out" err.txt
}

# A job whose input is complete is stored and written out at once, while store waits for
# more input: never held back for a batch.
no_wait_for_a_batch() {
	local pid i
	reset_db && batch_jobs || return 1
	batch_stream 1 | filter-junk | normalize-usd >in1.ndjson || return 1
	mkfifo in.fifo
	store <in.fifo >out.ndjson 2>err.txt &
	pid=$!
	exec 7>in.fifo
	cat in1.ndjson >&7
	for i in $(seq 100); do grep -q '"kind":"job_end"' out.ndjson && break; sleep 0.1; done
	expect_eq "job_end out while input is open" 1 "$(grep -c '"kind":"job_end"' out.ndjson)" || { exec 7>&-; wait $pid; return 1; }
	exec 7>&-
	wait $pid || return 1
	expect_eq "points" 29 "$(sql -c "SELECT count(*) FROM price_points")"
}

run_convention_tests store
unset LOG_LEVEL

# Ids a hand-made file got wrong are bad lines (65), not a failed statement taken for a
# database out of reach (75, "try again"), as they were.
ids_not_uuids_are_bad_lines() {
	local rc
	make_odd_records | sed 's/0dd0dd00-0000-4000-8000-000000000001/j1/g' | store >out.ndjson 2>err.txt
	rc=$?
	expect_eq "status" 65 "$rc" || { cat err.txt; return 1; }
	expect_grep 'line 1: job j1: job_id, intake_id and source_id must be uuids' err.txt || return 1
	if grep -q 'cannot be reached' err.txt; then cat err.txt; return 1; fi
}

run_test "claim-job: --help, --version, a wrong option" help_and_version claim-job
run_test "claim-job: the job record has source, attribution, rules, newest fx rates" job_record_is_complete
run_test "claim-job: a job not yet due is not claimed" not_due_not_claimed
run_test "claim-job: best priority first, then oldest" priority_then_age
run_test "claim-job: --adapter and disabled sources" adapter_filter
run_test "claim-job: stale lock reclaimed after the timeout, not before; --touch; --release" stale_lock_touch_release
run_test "claim-job: --wait wakes on an INSERT (LISTEN/NOTIFY)" wait_wakes_on_insert
run_test "claim-job: --wait ends empty with no output and status 0" wait_ends_empty
run_test "claim-job: 8 processes, 20,000 jobs, each claimed exactly once" claims_each_job_once
run_test "claim-job --follow: woken by its own jobs ending, not by other workers' (no claim in vain)" follow_wakes_only_for_its_own
run_test "claim-job --follow: through PgBouncer (transaction mode) says once that it polls, and why" follow_says_when_notifications_are_dropped
run_test "pipeline: claim | filter-junk | normalize-usd | store | valuate | store" whole_pipeline
run_test "store: re-storing the same points updates, never duplicates" restore_is_idempotent
run_test "store: an intake's earlier points come back with what valuate reads, and price the same" replay_has_what_valuate_reads
run_test "store: quotes, backslashes, SQL and emoji stored verbatim" odd_titles_verbatim
run_test "store: killed mid-job, or input ending before job_end, stores nothing" killed_mid_job_stores_nothing
run_test "store: job_error backs off 30 s x 2^(n-1) +-20 %, then failed at max_attempts" backoff_then_failed
run_test "store: a job_error that is not retryable fails the job at once" not_retryable_fails_at_once
run_test "store: a job taken over by another worker is left alone" lost_lock_leaves_job_alone
run_test "store: a late write of an earlier attempt, the job claimed again by the same worker, writes nothing" late_attempt_writes_nothing
run_test "store: a job with no points to value is still completed" no_points_still_completes
run_test "store: reconnects after the connection is killed mid-stream" reconnects_after_connection_loss
run_test "database down: exit 75, the host named, the password not" database_down
run_test "database errors: 75 when retrying may help, 78 when not; no password shown" database_errors_classified
run_test "migrations: rerunning applies nothing twice" migrations_rerun
run_test "migrations: a signal while migrate.sh makes its scratch file leaves no file" migrate_scratch_not_left_by_a_signal
run_test "migrations: a database without store's functions is not migrated" functions_missing_is_not_migrated
run_test "store: bad sold_at values are nulled, a refused point left out, the job kept" bad_points_do_not_lose_the_job
run_test "store: points that cannot be stored send the job back, never complete it" store_failure_never_completes
run_test "claim-job: a job past max_attempts is failed, never claimed" spent_job_never_claimed
run_test "store: a job_error's retry_after_seconds pushes run_at out at least that far" retry_after_honoured
run_test "store: title facts and graded valuation fields in their columns" grade_fields_stored
run_test "store: an intake's earlier points that valuate cannot use are not replayed" replay_leaves_out_what_valuate_cannot_use
run_test "store: a second job seeing the same listings rewrites only the changed one; new, changed, unchanged counted" unchanged_points_not_rewritten
run_test "store: --history N replays the newest N earlier points (sold_at, then id), says more were left out; 0 all" replay_bounded_newest
run_test "store: a bad --history exits 64, a bad STORE_HISTORY_POINTS 78, saying what is wanted" history_bound_checked
run_test "store: the bounded replay walks an index of the intake's usable points, newest first" replay_uses_the_index
run_test "store: odd values stored as json_to_record() reads them" odd_values_stored_as_json_reads_them
run_test "store: a job record whose ids are not uuids is a bad line, not a lost database" ids_not_uuids_are_bad_lines
run_test "store: jobs whose input waits are stored together, each written out as if alone" batched_jobs_as_alone
run_test "store: a refused point in a batch sends only its job the slow way" batch_with_a_refused_point
run_test "store: a finished job is written out while input is still open" no_wait_for_a_batch
run_test "migrations: a database without 008's batch function is not migrated" batch_function_missing_is_not_migrated
run_test "migrations: coin-pricer's functions closed to PUBLIC and anon; a worker role of the README's runs a job" functions_closed_to_public
run_test "store: an integer out of its column's range is a bad line of its point, not a failed batch" integer_out_of_range_is_a_bad_line
run_test "store: no worker id anywhere is said so in messages, not an empty name" no_worker_id_named_sensibly
