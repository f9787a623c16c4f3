#!/usr/bin/env bash
# End-to-end speed of the worker: jobs per second through pipeline.sh --once with 1, 2 and
# 4 workers, against the fake eBay server with no rate limit, side by side with the same
# stages run once over the same jobs as one batch (the limit of this design), and the
# statements per job the stages send (pg_stat_statements' calls; connecting included).
# Two rates per run: the wall rate (from the start of the command to its end) and the
# steady rate (from the first claim to the last completion, by the database's started_at
# and completed_at); the time before the first claim and after the last completion is
# shown apart, and so is a run of pipeline.sh over no job at all (its fixed cost). CPU ms
# per job per stage for every run: the batch's by its own shell's times, pipeline.sh's by
# scripts/proc-cpu.py looking at its processes every 50 ms ("rest": the supervisor's
# shells and the programs it starts, and what the looks missed).
# A throwaway PostgreSQL and fake eBay; figures are printed, not asserted.
# usage: scripts/bench-e2e.sh [JOBS]   (default 500)
set -euo pipefail
usage='usage: scripts/bench-e2e.sh [JOBS]   (default 500)'
case "${1:-}" in
-h | --help) echo "$usage" && exit 0 ;;
esac
if [ $# -gt 1 ] || ! [[ ${1:-1} =~ ^[1-9][0-9]*$ ]]; then
	echo "$usage" >&2
	exit 64
fi
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-500}
make -s -C "$here" -j2 >/dev/null
export PATH="$here/bin:$PATH" PGOPTIONS="-c client_min_messages=warning" LOG_LEVEL=warn LOG_FORMAT=text
work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-bench-e2e.XXXXXX")
export PGSTATE=$work/pg COIN_PRICER_STATE_DIR=$work/state
DATABASE_URL=$("$here/scripts/local-pg.sh" start 2>/dev/null)
export DATABASE_URL
python3 "$here/tests/fake_ebay.py" --port-file "$work/port" --log /dev/null 2>/dev/null &
fake=$!
trap 'kill "$fake" 2>/dev/null; "$here/scripts/local-pg.sh" stop >/dev/null 2>&1; rm -rf "$work"' EXIT
for _ in $(seq 300); do [ -s "$work/port" ] && break; sleep 0.1; done
EBAY_API_BASE=http://127.0.0.1:$(cat "$work/port")
export EBAY_API_BASE
export EBAY_APP_ID=BenchApp-PRD-000000000 EBAY_CERT_ID=PRD-bench-cert-0000 EBAY_CALLS_PER_MINUTE=100000
export EBAY_DAILY_CALL_LIMIT=100000000

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }

# pg_stat_statements counts the statements: it is loaded at server start, so restart the
# cluster (where scripts/local-pg.sh keeps it) with it.
pgdir=$PGSTATE/cluster
[ -f "$PGSTATE/location" ] && pgdir=$(cat "$PGSTATE/location")
bindir=$(pg_config --bindir)
[ -x "$bindir/pg_ctl" ] || bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
sql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
if [ "$(id -u)" -eq 0 ]; then as_server=(runuser -u postgres --); else as_server=(); fi
"${as_server[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -m fast restart >/dev/null
sql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null

# JOBS pending jobs over JOBS/4 intakes.
seed() {
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" -f "$here/tests/data/seed.sql" \
		-c "DELETE FROM scrape_jobs" \
		-c "INSERT INTO intakes (id) SELECT ('7a2e3d4c-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid
			FROM generate_series(2, $((jobs / 4 + 1))) i;
		INSERT INTO attributions (intake_id, year, mintmark, denomination, series)
			SELECT id, 1921, 'S', 'dollar', 'Morgan' FROM intakes
			WHERE id <> '7a2e3d4c-0000-4000-8000-000000000001';
		INSERT INTO scrape_jobs (intake_id, source_id)
			SELECT ('7a2e3d4c-0000-4000-8000-' || lpad((2 + i % $((jobs / 4)))::text, 12, '0'))::uuid,
				'8b3f4e5d-0000-4000-8000-000000000001'
			FROM generate_series(1, $jobs) i" >/dev/null
}

# Statements run in this database so far (this query included).
statements() {
	sql -c "SELECT sum(calls) FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# The claims so far: calls and their milliseconds in the server (planning and running,
# pg_stat_statements' times: on a busy host these include waiting for a core).
claims() {
	sql -F ' ' -c "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time + total_plan_time), 0)
		FROM pg_stat_statements WHERE query LIKE '%coin_pricer_claim(%'
		AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# CPU time (user + system, in clock ticks) of the PostgreSQL server so far (pg_ticks, in
# bench-lib.sh) and of the fake eBay server.
# shellcheck source=scripts/bench-lib.sh
. "$here/scripts/bench-lib.sh"
fake_ticks() {
	# shellcheck disable=SC2046
	set -- $(sed 's/.*) //' "/proc/$fake/stat")
	echo $((${12} + ${13}))
}
hz=$(getconf CLK_TCK)

# Run a command, writing the CPU time (user + system, seconds) of it and everything it
# started and waited for to $work/cpu.NAME: timed NAME CMD...
timed() {
	local name=$1 rc=0
	shift
	"$@" || rc=$?
	times >"$work/times.$name" # not in a pipeline: that would be a subshell's times
	tail -n 1 "$work/times.$name" |
		awk '{ for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } print s }' >"$work/cpu.$name"
	return "$rc"
}

# Run a command (timed as "all") while scripts/proc-cpu.py looks at its processes, into
# PROCS; its output is dropped, its errors shown when it fails: sampled PROCS CMD...
sampled() {
	local procs=$1 run sampler rc=0
	shift
	rm -f "$work"/cpu.* "$work"/times.* "$procs"
	(timed all "$@") >/dev/null 2>"$work/err" &
	run=$!
	python3 "$here/scripts/proc-cpu.py" "$run" "$procs" &
	sampler=$!
	wait "$run" || rc=$?
	wait "$sampler" || true
	[ "$rc" = 0 ] || { grep -v "^ " "$work/err" | tail -n 8 >&2 && return 1; }
}

# Run a command over freshly seeded jobs; print the jobs done, the wall rate and the steady
# rate (first claim to last completion) with their ratio to the first run's (the batch),
# the seconds before the first claim and after the last completion, statements per job and
# the load average (1 min) as it ended; then the CPU time per job of the command's
# processes, the PostgreSQL server and the fake eBay.
measure() {
	local label=$1 t0 t1 x0 x1 finished rate steady p0 p1 f0 f1 span c0 c1
	shift
	seed
	c0=$(claims)
	x0=$(statements)
	p0=$(pg_ticks "$pgdir") f0=$(fake_ticks)
	t0=$(date +%s%N)
	sampled "$work/procs" "$@" || return 1
	t1=$(date +%s%N)
	p1=$(pg_ticks "$pgdir") f1=$(fake_ticks)
	x1=$(statements)
	c1=$(claims)
	# jobs done, then the first claim and the last completion in ns since the epoch
	read -r finished span <<<"$(sql -F ' ' -c "SELECT count(*),
		round(extract(epoch FROM min(started_at)) * 1e9)::bigint || ' ' ||
		round(extract(epoch FROM max(completed_at)) * 1e9)::bigint
		FROM scrape_jobs WHERE status = 'completed'")"
	[ "$finished" -gt 0 ] || { echo "$label: no job completed" >&2 && return 1; }
	# shellcheck disable=SC2086 # two numbers
	set -- $span
	rate=$(echo "$finished * 1000000000 / ($t1 - $t0)" | bc -l)
	steady=$(echo "$finished * 1000000000 / ($2 - $1)" | bc -l)
	[ -n "$batch_rate" ] || batch_rate=$rate batch_steady=$steady
	printf '%-34s %5d jobs  wall %6.1f jobs/s (%4.2f of the batch)  steady %6.1f jobs/s (%4.2f)\n' \
		"$label" "$finished" "$rate" "$(echo "$rate / $batch_rate" | bc -l)" \
		"$steady" "$(echo "$steady / $batch_steady" | bc -l)"
	printf '  %.2f s to the first claim, %.2f s after the last completion  %5.2f statements/job  load %s\n' \
		"$(echo "($1 - $t0) / 1000000000" | bc -l)" "$(echo "($t1 - $2) / 1000000000" | bc -l)" \
		"$(echo "($x1 - $x0 - 1) / $finished" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
	cpu_line "$finished" $((p1 - p0)) $((f1 - f0))
	# shellcheck disable=SC2086 # calls and milliseconds
	set -- $c0 $c1
	[ "$3" = "$1" ] || printf '  claims: %d, %.2f jobs each, %.2f ms each in the server\n' $(($3 - $1)) \
		"$(echo "$finished / ($3 - $1)" | bc -l)" "$(echo "($4 - $2) / ($3 - $1)" | bc -l)"
	rm -f "$work/procs.empty" "$work/fixed.cpu"
}

# CPU ms per job: each stage (timed into $work/cpu.NAME for the batch, else as
# scripts/proc-cpu.py saw them), the rest of the command's processes, the PostgreSQL server
# and the fake eBay; the product's total leaves the fake out. For pipeline.sh a second
# line: the same beyond its fixed cost (what the same command spent over no job).
cpu_line() {
	local n=$1 pg=$2 fk=$3 line
	line=$(stage_cpu "$n" "$(cat "$work/cpu.all")" "$work/procs")
	printf '  CPU ms/job:%s | PostgreSQL %.2f | product %.2f | fake eBay %.2f (not product)\n' \
		"$line" "$(echo "$pg * 1000 / $hz / $n" | bc -l)" \
		"$(echo "$(cat "$work/cpu.all") * 1000 / $n + $pg * 1000 / $hz / $n" | bc -l)" \
		"$(echo "$fk * 1000 / $hz / $n" | bc -l)"
	[ -f "$work/procs.empty" ] || return 0
	line=$(stage_cpu "$n" "$(echo "$(cat "$work/cpu.all") - $(cat "$work/fixed.cpu")" | bc -l)" \
		"$work/procs" "$work/procs.empty")
	printf '  beyond the fixed cost:%s | PostgreSQL %.2f\n' "$line" \
		"$(echo "($pg - $(cat "$work/pg.empty")) * 1000 / $hz / $n" | bc -l)"
}

# " NAME ms ..." per stage and the rest, "= total", over N jobs, for a command whose
# processes spent ALL seconds: the stages as PROCS says (minus BASELINE's), or as the
# batch timed them into $work/cpu.NAME: stage_cpu N ALL PROCS [BASELINE]
stage_cpu() {
	local n=$1 all=$2 procs=$3 base=${4:-/dev/null} name ticks b sum=0 line=""
	for name in claim-job ebay-fetch filter-junk normalize-usd store-1 valuate store-2; do
		if [ -f "$work/cpu.$name" ]; then
			ticks=$(echo "$(cat "$work/cpu.$name") * $hz" | bc -l)
		else
			ticks=$(awk -v n="$name" '$1 == n { print $2 }' "$procs")
			[ -n "$ticks" ] || continue
			b=$(awk -v n="$name" '$1 == n { print $2 }' "$base")
			ticks=$((ticks - ${b:-0}))
		fi
		sum=$(echo "$sum + $ticks" | bc -l)
		line+=$(printf ' %s %.2f' "$name" "$(echo "$ticks * 1000 / $hz / $n" | bc -l)")
	done
	printf '%s rest %.2f = %.2f' "$line" "$(echo "($all * $hz - $sum) * 1000 / $hz / $n" | bc -l)" \
		"$(echo "$all * 1000 / $n" | bc -l)"
}

# pipeline.sh --once over no job: its fixed cost (start, checks, stop), wall and CPU, and
# per stage into $work/procs.empty, $work/cpu.empty and $work/pg.empty for cpu_line.
empty_run() {
	local w=$1 t0 t1 p0 p1
	sql -c "DELETE FROM scrape_jobs"
	p0=$(pg_ticks "$pgdir")
	t0=$(date +%s%N)
	sampled "$work/procs.empty" "$here/pipeline.sh" --once --workers "$w" --env /dev/null || return 1
	t1=$(date +%s%N)
	p1=$(pg_ticks "$pgdir")
	echo $((p1 - p0)) >"$work/pg.empty"
	cp "$work/cpu.all" "$work/fixed.cpu"
	printf '  the fixed cost, a run over no job: %.2f s, CPU ms:%s | PostgreSQL %.0f\n' \
		"$(echo "($t1 - $t0) / 1000000000" | bc -l)" "$(stage_cpu 1 "$(cat "$work/cpu.all")" "$work/procs.empty")" \
		"$(echo "($p1 - $p0) * 1000 / $hz" | bc -l)"
}
batch_rate=
batch_steady=

batch() {
	timed claim-job claim-job --limit "$jobs" --worker batch | timed ebay-fetch ebay-fetch |
		timed filter-junk filter-junk | timed normalize-usd normalize-usd |
		timed store-1 store --worker batch | timed valuate valuate | timed store-2 store --worker batch
}

echo "== $jobs jobs, $((jobs / 4)) intakes, 29 listings a job, fake eBay, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "stages once over all jobs (batch)" batch
for w in 1 2 4; do
	echo "pipeline.sh --once --workers $w"
	empty_run "$w"
	measure "  over the jobs" "$here/pipeline.sh" --once --workers "$w" --env /dev/null
done
echo "process starts per job in pipeline.sh: 0 (each worker starts its 7 stages once)"
