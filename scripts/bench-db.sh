#!/usr/bin/env bash
# Database benchmark on a throwaway local PostgreSQL: store's rate against psql \copy of
# the same rows (first, on a fresh database; one job of 20,000 points, then 1,000 jobs of
# 20 points as the worker stores them), the cost of a job against its intake's history
# (no earlier points, then 10,000, then 100,000), the worker's steady state (1,000 jobs
# over 250 intakes that see the same 29 listings at every job, by one store and by 4 at
# once: server CPU, WAL and rows written per job), claim time with 1,000 and with
# 1,000,000 pending jobs (and with 100,000 more waiting out a backoff at a better
# priority), and 8 concurrent claimers.
# Prints figures and ratios; asserts nothing.
# usage: BIN=bin scripts/bench-db.sh [--store | --history | --reseen]
#   --store: only the store figures; --history: only the job against its intake's
#   history; --reseen: only the steady state. STORE_HISTORY_POINTS applies to store.
set -euo pipefail
usage='usage: BIN=bin scripts/bench-db.sh [--store | --history | --reseen]'
case "$*" in
"" | --store | --history | --reseen) ;;
-h | --help) echo "$usage" && exit 0 ;;
*) echo "$usage" >&2 && exit 64 ;;
esac
mode=${1:-all}
mode=${mode#--}
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../bin}
export PATH="$BIN:$PATH" LOG_LEVEL=warn PGOPTIONS="-c client_min_messages=warning"
work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-bench-db.XXXXXX")
export PGSTATE=$work/pg
DATABASE_URL=$("$here/local-pg.sh" start 2>/dev/null)
export DATABASE_URL
trap '"$here/local-pg.sh" stop >/dev/null 2>&1; rm -rf "$work"' EXIT
intake=7a2e3d4c-0000-4000-8000-000000000001
source=8b3f4e5d-0000-4000-8000-000000000001

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
now() { date +%s.%N; }
on() { [ "$mode" = all ] || [[ " $* " == *" $mode "* ]]; } # on MODE...: this run measures it

# pg_stat_statements times the statements: it is loaded at server start, so restart the
# cluster (where scripts/local-pg.sh keeps it) with it.
pgdir=$PGSTATE/cluster
[ -f "$PGSTATE/location" ] && pgdir=$(cat "$PGSTATE/location")
bindir=$(pg_config --bindir)
[ -x "$bindir/pg_ctl" ] || bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
sql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
if [ "$(id -u)" -eq 0 ]; then as_server=(runuser -u postgres --); else as_server=(); fi
"${as_server[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -m fast restart >/dev/null
sql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" \
	-c "SELECT pg_reload_conf()" >/dev/null

# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
hz=$(getconf CLK_TCK)

sql -f "$here/../tests/data/seed.sql"
sql -c "DELETE FROM scrape_jobs"

add_jobs() { # N [run_at offset] [priority]
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, priority, run_at)
		SELECT '$intake', '$source', ${3:-100}, now() + interval '${2:-0} seconds' - (g % 1000) * interval '1 ms'
		FROM generate_series(1, $1) g"
	sql -c "VACUUM ANALYZE scrape_jobs"
}

# Median milliseconds of the claim statement over N claims (claim-job logs it at debug).
claim_ms() {
	local n=$1 i
	for ((i = 0; i < n; i++)); do
		LOG_LEVEL=debug LOG_FORMAT=text claim-job --worker bench 2>&1 >/dev/null |
			sed -n 's/.*claim statement: \([0-9.]*\) ms/\1/p'
	done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# store of NDJSON against \copy of CSV (the same rows): sets n, store_rate, copy_rate
# (points/s) and best_store (s). Each twice, alternating; the better time of each counts.
store_vs_copy() {
	local t0 t1 t2 t3 best_copy=999999
	n=$(wc -l <"$2")
	best_store=999999
	for _ in 1 2; do
		sql -c "DELETE FROM price_points" -c "VACUUM price_points"
		t0=$(now)
		store <"$1" >/dev/null
		t1=$(now)
		sql -c "DELETE FROM price_points" -c "VACUUM price_points"
		t2=$(now)
		sql -c "\\copy price_points (intake_id, source_id, job_id, external_id, title, price_type, original_amount, original_currency, price_cents, filtered_out, raw) FROM '$2' WITH (FORMAT csv)"
		t3=$(now)
		best_store=$(echo "if ($t1 - $t0 < $best_store) $t1 - $t0 else $best_store" | bc -l)
		best_copy=$(echo "if ($t3 - $t2 < $best_copy) $t3 - $t2 else $best_copy" | bc -l)
	done
	store_rate=$(echo "$n / $best_store" | bc -l)
	copy_rate=$(echo "$n / $best_copy" | bc -l)
}

# store against \copy: one job of 20,000 points.
job=$(sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at)
	VALUES ('$intake', '$source', 'running', 'bench', now()) RETURNING id")
"$here/bench-data.sh" 40 >"$work/data.ndjson"
jq -c --arg job "$job" 'select(.kind == "price_point") | .job_id = $job' "$work/data.ndjson" |
	awk 'NR <= 20000 { sub(/"external_id":"[^"]*"/, "\"external_id\":\"p" NR "\""); print }' >"$work/points.ndjson"
{ printf '{"kind":"job","job_id":"%s","intake_id":"%s","source_id":"%s","worker_id":"bench"}\n' "$job" "$intake" "$source"
  "$BIN/normalize-usd" <"$work/points.ndjson"
  printf '{"kind":"job_end","job_id":"%s"}\n' "$job"; } >"$work/job.ndjson"
jq -r --arg i "$intake" --arg s "$source" 'select(.kind == "price_point") |
	[$i, $s, .job_id, .external_id, .title, .price_type, .amount, .currency, .price_cents, false, (.raw | tojson)] | @csv' \
	"$work/job.ndjson" >"$work/points.csv"
if on store; then
	n=$(wc -l <"$work/points.csv")
	store_vs_copy "$work/job.ndjson" "$work/points.csv"
	printf 'store, one job of %d points (upsert, log, replay): %.0f points/s\n' "$n" "$store_rate"
	printf 'psql \\copy of the same rows:                       %.0f points/s   store/copy %.2f\n' \
		"$copy_rate" "$(echo "$store_rate / $copy_rate" | bc -l)"
fi
sql -c "DELETE FROM price_points" -c "DELETE FROM scrape_jobs"

# store against \copy again, as the worker stores: 1,000 jobs of 20 points each over 250
# intakes (so that most jobs find earlier points of their intake to replay), one store.
store_many() {
	sql -c "INSERT INTO intakes (id) SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
		FROM generate_series(2, 251) i"
	sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at, started_at)
		SELECT ('7a2e3d4c-0000-4000-8000-' || lpad((2 + i % 250)::text, 12, '0'))::uuid, '$source',
			'running', 'bench', now(), now() FROM generate_series(1, 1000) i
		RETURNING id, intake_id" >"$work/jobs.txt"
	jq -c 'select(.kind == "price_point")' "$work/job.ndjson" | head -n 20000 |
		awk -F'|' -v source="$source" 'NR == FNR { job[NR] = $1; intake[NR] = $2; next }
			(FNR - 1) % 20 == 0 {
				if (k) printf "{\"kind\":\"job_end\",\"job_id\":\"%s\"}\n", job[k]
				k++
				printf "{\"kind\":\"job\",\"job_id\":\"%s\",\"intake_id\":\"%s\",\"source_id\":\"%s\",\"worker_id\":\"bench\"}\n", job[k], intake[k], source
			}
			{ sub(/"job_id":"[^"]*"/, "\"job_id\":\"" job[k] "\""); sub(/"intake_id":"[^"]*"/, "\"intake_id\":\"" intake[k] "\""); print }
			END { printf "{\"kind\":\"job_end\",\"job_id\":\"%s\"}\n", job[k] }' "$work/jobs.txt" - >"$work/jobs.ndjson"
	jq -r --arg s "$source" 'select(.kind == "price_point") |
		[.intake_id, $s, .job_id, .external_id, .title, .price_type, .amount, .currency, .price_cents, false, (.raw | tojson)] | @csv' \
		"$work/jobs.ndjson" >"$work/jobs.csv"
	store_vs_copy "$work/jobs.ndjson" "$work/jobs.csv"
	printf 'store, 1,000 jobs of 20 points (%d points, 250 intakes): %.0f points/s, %.1f ms/job\n' "$n" "$store_rate" \
		"$(echo "$best_store * 1000 / 1000" | bc -l)"
	printf 'psql \\copy of the same rows:                            %.0f points/s   store/copy %.2f\n' \
		"$copy_rate" "$(echo "$store_rate / $copy_rate" | bc -l)"
	sql -c "DELETE FROM price_points" -c "DELETE FROM scrape_jobs" -c "DELETE FROM intakes WHERE id <> '$intake'"
}
on store && store_many

# The server's time in store's statements so far (pg_stat_statements, ms): its calls of
# coin-pricer's functions.
store_statement_ms() {
	sql -c "SELECT coalesce(round(sum(total_exec_time + total_plan_time)::numeric, 3), 0) FROM pg_stat_statements
		WHERE query LIKE '%coin\_pricer\_store\_%'"
}

# The cost of one 20-point job against the history of its intake: jobs in a row of an
# intake with no earlier points, then of ones with 10,000 and 100,000 (each job replays
# those valuate can use, at most STORE_HISTORY_POINTS of them, DESIGN.md "Database").
# One store over 1 job and one over 11 (the same intake: never stored together), the
# difference / 10: wall, the server's CPU (its processes' clock ticks) and the server's
# time in store's statement (pg_stat_statements).
history_jobs() { # intake n first: a stream of n jobs of 20 points, numbered from first
	local i id
	for ((i = $3; i < $3 + $2; i++)); do
		id=$(sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at, started_at)
			VALUES ('$1', '$source', 'running', 'bench', now(), now()) RETURNING id")
		printf '{"kind":"job","job_id":"%s","intake_id":"%s","source_id":"%s","worker_id":"bench"}\n' "$id" "$1" "$source"
		jq -c --arg j "$id" --arg i "$1" --arg n "$i" 'select(.kind == "price_point") | .job_id = $j | .intake_id = $i | .external_id += "-h" + $n' "$work/job.ndjson" | head -n 20
		printf '{"kind":"job_end","job_id":"%s"}\n' "$id"
	done
}
history_ms() { # intake: "wall-ms cpu-ms statement-ms" per job
	local t0 t1 t2 c0 c1 c2 s0 s1 s2
	history_jobs "$1" 1 0 >"$work/h1.ndjson"
	history_jobs "$1" 11 1 >"$work/h11.ndjson"
	t0=$(now) c0=$(pg_ticks "$pgdir") s0=$(store_statement_ms)
	store <"$work/h1.ndjson" >/dev/null
	t1=$(now) c1=$(pg_ticks "$pgdir") s1=$(store_statement_ms)
	store <"$work/h11.ndjson" >"$work/h.out"
	t2=$(now) c2=$(pg_ticks "$pgdir") s2=$(store_statement_ms)
	echo "$(echo "(($t2 - $t1) - ($t1 - $t0)) * 100" | bc -l)" \
		"$(echo "(($c2 - $c1) - ($c1 - $c0)) * 100 / $hz" | bc -l)" \
		"$(echo "(($s2 - $s1) - ($s1 - $s0)) / 10" | bc -l)"
}
history() {
	local none some full out
	sql -c "INSERT INTO intakes (id) VALUES ('7a2e3d4c-0000-4000-8000-000000000900'),
		('7a2e3d4c-0000-4000-8000-000000000901'), ('7a2e3d4c-0000-4000-8000-000000000902')"
	# Earlier points: 100,000 of intake 901 and 10,000 of 902, a quarter of them filtered out
	# (valuate cannot use those: they are not replayed).
	sql -c "INSERT INTO price_points (intake_id, source_id, external_id, adapter, price_type, price_cents, sold_at, grade, grade_lo, grade_hi, filtered_out)
		SELECT i, '$source', 'old-' || g, 'ebay_finding', 'sold',
			4000 + g % 1000, now() - g * interval '1 minute', 'VF20', 20, 20, g % 4 = 0
		FROM (VALUES ('7a2e3d4c-0000-4000-8000-000000000901'::uuid, 100000), ('7a2e3d4c-0000-4000-8000-000000000902', 10000)) AS x(i, n),
			generate_series(1, n) g"
	sql -c "VACUUM ANALYZE price_points"
	printf 'store, a job of 20 points against its intake'\''s earlier points (STORE_HISTORY_POINTS=%s), per job:\n' \
		"${STORE_HISTORY_POINTS-unset}"
	for intake_n in "900 0" "902 10,000" "901 100,000"; do
		read -r none some full <<<"$(history_ms "7a2e3d4c-0000-4000-8000-000000000${intake_n%% *}")"
		out=$(($(grep -c '"kind":"price_point"' "$work/h.out") / 11))
		printf '  %7s earlier points: %7.1f ms wall, %7.1f ms server CPU, %7.2f ms in the statement, %6d points out\n' \
			"${intake_n#* }" "$none" "$some" "$full" "$out"
	done
	sql -c "DELETE FROM price_points" -c "DELETE FROM scrape_jobs" -c "DELETE FROM intakes WHERE id <> '$intake'"
}
on store history && history

# The worker's steady state: 1,000 jobs over 250 intakes, 4 a intake, each seeing the same 29
# listings (the fixture after filter-junk and normalize-usd), fed to K stores at once (job i
# to store i % K) one job at a time, as a live pipeline feeds it (scripts/feed-jobs.py
# waits for each job's job_end). Rows written in price_points, WAL, the server's CPU and
# its time in store's statements per job (the call, then the statements it runs, each
# with the WAL it wrote), and what the stores' connections waited on (pg_stat_activity
# sampled every 10 ms: CPU when they waited on nothing, or on a core).
reseen() {
	local k i t0 t1 c0 c1 w0 sampler spid feeders ins upd hot wal
	sql -c "INSERT INTO intakes (id) SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
		FROM generate_series(2, 251) i ON CONFLICT DO NOTHING"
	sql -c "DELETE FROM scrape_jobs" -f "$here/../tests/data/seed.sql"
	{ claim-job --worker bench
	  cat "$here/../tests/data/finding-points.ndjson"
	  printf '{"kind":"job_end","job_id":"6f1d2c3b-0000-4000-8000-000000000001"}\n'; } |
		filter-junk | normalize-usd | jq -c 'select(.kind == "price_point")' >"$work/fixture.ndjson"
	printf 'steady state: 1,000 jobs over 250 intakes, the same %d listings at each job, one job per statement (STORE_HISTORY_POINTS=%s):\n' \
		"$(wc -l <"$work/fixture.ndjson")" "${STORE_HISTORY_POINTS-unset}"
	for k in 1 4; do
		sql -c "DELETE FROM price_points" -c "DELETE FROM scrape_jobs" -c "VACUUM ANALYZE price_points"
		sql -c "INSERT INTO scrape_jobs (intake_id, source_id, status, worker_id, locked_at, started_at, attempts)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad((2 + i % 250)::text, 12, '0'))::uuid, '$source',
				'running', 'bench', now(), now(), 1 FROM generate_series(1, 1000) i ORDER BY i
			RETURNING id, intake_id" >"$work/jobs.txt"
		rm -f "$work"/reseen.*.ndjson
		awk -F'|' -v source="$source" -v k="$k" -v out="$work/reseen" 'NR == FNR { p[++np] = $0; next }
			{
				f = out "." (FNR % k) ".ndjson"
				printf "{\"kind\":\"job\",\"job_id\":\"%s\",\"intake_id\":\"%s\",\"source_id\":\"%s\",\"worker_id\":\"bench\",\"attempt\":1}\n", $1, $2, source >f
				for (i = 1; i <= np; i++) {
					line = p[i]
					sub(/"job_id":"[^"]*"/, "\"job_id\":\"" $1 "\"", line)
					sub(/"intake_id":"[^"]*"/, "\"intake_id\":\"" $2 "\"", line)
					print line >f
				}
				printf "{\"kind\":\"job_end\",\"job_id\":\"%s\",\"intake_id\":\"%s\"}\n", $1, $2 >f
			}' "$work/fixture.ndjson" "$work/jobs.txt"
		sql -c "SELECT pg_stat_statements_reset()" -c "SELECT pg_stat_reset()" >/dev/null
		w0=$(sql -c "SELECT pg_current_wal_insert_lsn()")
		printf '%s \\watch 0.01\n' "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
			FROM pg_stat_activity WHERE application_name = 'coin-pricer' AND state = 'active'" |
			psql -X -q -At -d "$DATABASE_URL" >"$work/waits" 2>/dev/null &
		sampler=$!
		t0=$(now) c0=$(pg_ticks "$pgdir")
		feeders=()
		for ((i = 0; i < k; i++)); do
			python3 "$here/feed-jobs.py" "$work/reseen.$i.ndjson" store &
			feeders+=($!)
		done
		wait "${feeders[@]}"
		t1=$(now) c1=$(pg_ticks "$pgdir")
		# less what the sampler's own connection spent (some 10 % of a core)
		spid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%wait_event_type%' AND pid <> pg_backend_pid()")
		# shellcheck disable=SC2046 # the fields of /proc/PID/stat after the command name
		set -- $(sed 's/.*) //' "/proc/$spid/stat")
		c1=$((c1 - ${12} - ${13}))
		kill "$sampler"
		wait "$sampler" 2>/dev/null || true
		sql -F ' ' -c "SELECT s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd,
			round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$w0') / 1000 / 1024.0, 1)
			FROM pg_stat_user_tables s WHERE s.relname = 'price_points'" >"$work/rows"
		read -r ins upd hot wal <"$work/rows"
		printf '  %d store(s): %d jobs/s wall (load %s); rows %d inserted, %d updated (%d HOT); WAL %.1f KB/job; server CPU %.2f ms/job\n' \
			"$k" "$(echo "1000 / ($t1 - $t0)" | bc)" "$(cut -d' ' -f1 /proc/loadavg)" "$ins" "$upd" "$hot" "$wal" \
			"$(echo "($c1 - $c0) * 1000 / $hz / 1000" | bc -l)"
		sql -F ' ' -c "SELECT calls, round((total_exec_time + total_plan_time)::numeric / 1000, 2),
			round(wal_bytes / 1000 / 1024.0, 1), regexp_replace(left(query, 60), '\s+', ' ', 'g')
			FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND query NOT LIKE '%pg_stat%' AND calls > 0
			ORDER BY total_exec_time DESC LIMIT 5" |
			while read -r calls ms walk query; do
				printf '    %5d calls %6.2f ms/job %6.1f KB WAL/job  %s\n' "$calls" "$ms" "$walk" "$query"
			done
		printf '    waits (share of samples of an active store connection):'
		sort "$work/waits" | grep . | uniq -c | sort -rn | head -n 5 |
			awk -v n="$(grep -c . "$work/waits")" '{ printf " %s %.0f%%", $2, 100 * $1 / n } END { print "" }'
	done
	sql -c "DELETE FROM price_points" -c "DELETE FROM scrape_jobs" -c "DELETE FROM intakes WHERE id <> '$intake'"
}
on store reseen && reseen
[ "$mode" = all ] || exit 0

echo

add_jobs 1000
small=$(claim_ms 200)
sql -c "DELETE FROM scrape_jobs"
add_jobs 1000000
big=$(claim_ms 200)
add_jobs 100000 3600 0
backoff=$(claim_ms 200)
printf 'claim statement, median of 200 claims:\n'
printf '  1,000 pending:                        %6.2f ms\n' "$small"
printf '  1,000,000 pending:                    %6.2f ms   ratio %.2f\n' "$big" "$(echo "$big / $small" | bc -l)"
printf '  ... and 100,000 in backoff, priority 0: %4.2f ms   ratio %.2f\n' "$backoff" "$(echo "$backoff / $small" | bc -l)"

sql -c "DELETE FROM scrape_jobs"
add_jobs 20000
t0=$(now)
# shellcheck disable=SC2034
for i in 1 2 3 4 5 6 7 8; do
	( while [ -n "$(claim-job --worker "w$i" --limit 10 | tee -a "$work/claims.$i")" ]; do :; done ) &
done
wait
t1=$(now)
total=$(cat "$work"/claims.* | wc -l)
distinct=$(cat "$work"/claims.* | jq -r .job_id | sort -u | wc -l)
printf '\n8 concurrent claimers, --limit 10, 20,000 jobs: %d claimed (%d distinct) in %.1f s: %.0f jobs/s\n' \
	"$total" "$distinct" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$total / ($t1 - $t0)" | bc -l)"

