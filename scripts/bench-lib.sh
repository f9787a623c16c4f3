# Shared helpers of the benchmark scripts (bench-db.sh, bench-e2e.sh), sourced by them.
# shellcheck shell=bash

# pg_ticks DIR: CPU time (user + system, in clock ticks) so far of the PostgreSQL server of the
# local cluster in DIR (scripts/local-pg.sh): the postmaster, its live processes and the
# backends it has reaped.
pg_ticks() {
	local pm pid sum=0
	pm=$(head -n 1 "$1/data/postmaster.pid")
	for pid in "$pm" $(ps -o pid= --ppid "$pm"); do
		# shellcheck disable=SC2046 # the fields of /proc/PID/stat after the command name
		set -- $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || echo)
		[ $# -ge 15 ] || continue
		sum=$((sum + ${12} + ${13}))
		[ "$pid" = "$pm" ] && sum=$((sum + ${14} + ${15}))
	done
	echo "$sum"
}
