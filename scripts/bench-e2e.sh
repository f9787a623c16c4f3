#!/usr/bin/env bash
# End-to-end speed of the worker: jobs per second through pipeline.sh --once with 1, 2 and
# 4 workers, against the fake eBay server with no rate limit, side by side with the same
# stages run once over the same jobs as one batch (the limit of this design), and the
# statements per job the stages send (pg_stat_statements' calls; connecting included).
# A throwaway PostgreSQL and fake eBay; figures are printed, not asserted.
# usage: scripts/bench-e2e.sh [JOBS]   (default 300)
set -euo pipefail
usage='usage: scripts/bench-e2e.sh [JOBS]   (default 300)'
case "${1:-}" in
-h | --help) echo "$usage" && exit 0 ;;
esac
if [ $# -gt 1 ] || ! [[ ${1:-1} =~ ^[1-9][0-9]*$ ]]; then
	echo "$usage" >&2
	exit 64
fi
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-300}
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

# CPU time (user + system, in clock ticks) of the PostgreSQL server so far: the postmaster, its
# live processes and the backends it has reaped; and of the fake eBay server.
pg_ticks() {
	local pm pid sum=0
	pm=$(head -n 1 "$pgdir/data/postmaster.pid")
	for pid in "$pm" $(ps -o pid= --ppid "$pm"); do
		# shellcheck disable=SC2046 # the fields of /proc/PID/stat after the command name
		set -- $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || echo)
		[ $# -ge 15 ] || continue
		sum=$((sum + ${12} + ${13}))
		[ "$pid" = "$pm" ] && sum=$((sum + ${14} + ${15}))
	done
	echo "$sum"
}
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

# Run a command over freshly seeded jobs; print jobs/s, the ratio to the first run (the
# batch), statements per job and the load average (1 min) as it ended; then the CPU time
# per job of the command's processes, the PostgreSQL server and the fake eBay.
measure() {
	local label=$1 t0 t1 x0 x1 finished rate p0 p1 f0 f1
	shift
	seed
	x0=$(statements)
	rm -f "$work"/cpu.* "$work"/times.*
	p0=$(pg_ticks) f0=$(fake_ticks)
	t0=$(date +%s%N)
	(timed all "$@") >/dev/null 2>"$work/err" || { grep -v "^ " "$work/err" | tail -n 8 >&2; return 1; }
	t1=$(date +%s%N)
	p1=$(pg_ticks) f1=$(fake_ticks)
	x1=$(statements)
	finished=$(sql -c "SELECT count(*) FROM scrape_jobs WHERE status = 'completed'")
	rate=$(echo "$finished * 1000000000 / ($t1 - $t0)" | bc -l)
	[ -n "$batch_rate" ] || batch_rate=$rate
	printf '%-34s %5d jobs done  %7.1f jobs/s  %4.2f of the batch  %5.2f statements/job  load %s\n' \
		"$label" "$finished" "$rate" "$(echo "$rate / $batch_rate" | bc -l)" \
		"$(echo "($x1 - $x0 - 1) / $finished" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
	cpu_line "$finished" $((p1 - p0)) $((f1 - f0))
}

# CPU ms per job: each process timed into $work/cpu.NAME (the batch's stages), the command
# as a whole, the PostgreSQL server and the fake eBay; the product's total leaves the fake out.
cpu_line() {
	local n=$1 pg fk name line="" stages=0 all
	[ "$n" -gt 0 ] || return 0
	pg=$(echo "$2 * 1000 / $hz / $n" | bc -l)
	fk=$(echo "$3 * 1000 / $hz / $n" | bc -l)
	all=$(echo "$(cat "$work/cpu.all") * 1000 / $n" | bc -l)
	for name in claim-job ebay-fetch filter-junk normalize-usd store-1 valuate store-2; do
		[ -f "$work/cpu.$name" ] || continue
		line+=$(printf ' %s %.2f' "$name" "$(echo "$(cat "$work/cpu.$name") * 1000 / $n" | bc -l)")
		stages=1
	done
	[ "$stages" = 1 ] || line=$(printf ' processes %.2f' "$all")
	printf '  CPU ms/job:%s | PostgreSQL %.2f | product %.2f | fake eBay %.2f (not product)\n' \
		"$line" "$pg" "$(echo "$all + $pg" | bc -l)" "$fk"
}
batch_rate=

batch() {
	timed claim-job claim-job --limit "$jobs" --worker batch | timed ebay-fetch ebay-fetch |
		timed filter-junk filter-junk | timed normalize-usd normalize-usd |
		timed store-1 store --worker batch | timed valuate valuate | timed store-2 store --worker batch
}

echo "== $jobs jobs, $((jobs / 4)) intakes, 29 listings a job, fake eBay, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "stages once over all jobs (batch)" batch
for w in 1 2 4; do
	measure "pipeline.sh --once --workers $w" "$here/pipeline.sh" --once --workers "$w" --env /dev/null
done
echo "process starts per job in pipeline.sh: 0 (each worker starts its 7 stages once)"
