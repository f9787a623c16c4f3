#!/usr/bin/env bash
# A throwaway PgBouncer in transaction mode (what Supabase's transaction pooler does) in
# front of a local PostgreSQL, for tests and benchmarks: notifications through it are
# dropped without an error, so the tests see what a worker behind such a pooler sees.
#   scripts/local-pgbouncer.sh start DATABASE_URL   start it on a free port on 127.0.0.1
#                                                   and print the URL that goes through it
#   scripts/local-pgbouncer.sh url                  print that URL again
#   scripts/local-pgbouncer.sh stop                 stop it and remove its files
# DATABASE_URL is postgresql://USER@HOST:PORT/DBNAME with no password (the local cluster's
# trust authentication). Its files live in PGBOUNCER_STATE (default .state/pgbouncer
# under the repository; as root, a private folder under /tmp that the postgres user, who
# runs it, can reach). Needs Debian's pgbouncer (scripts/install-deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state=${PGBOUNCER_STATE:-$here/.state/pgbouncer}

die() {
	echo "local-pgbouncer: $*" >&2
	exit "${2:-69}"
}

as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Where its files are: $state itself, or the folder under /tmp that $state/location names.
bouncer_dir() {
	if [ -f "$state/location" ]; then
		cat "$state/location"
	else
		echo "$state/run"
	fi
}

url() {
	local dir
	dir=$(bouncer_dir)
	[ -f "$dir/url" ] || die "none is running (scripts/local-pgbouncer.sh start DATABASE_URL)"
	cat "$dir/url"
}

start() {
	local target=$1 dir port user host pgport dbname i
	local re='^postgres(ql)?://([^@:/]+)@([^:/]+):([0-9]+)/([^?/]+)$'
	[[ $target =~ $re ]] || die "wants postgresql://USER@HOST:PORT/DBNAME, with no password" 64
	user=${BASH_REMATCH[2]} host=${BASH_REMATCH[3]} pgport=${BASH_REMATCH[4]} dbname=${BASH_REMATCH[5]}
	command -v pgbouncer >/dev/null || die "pgbouncer is not installed; run scripts/install-deps.sh"
	mkdir -p "$state"
	dir=$(bouncer_dir)
	if [ -f "$dir/url" ] && [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
		url
		return
	fi
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$state" 2>/dev/null; then
		dir=$(mktemp -d /tmp/coin-pricer-pgbouncer.XXXXXX)
		echo "$dir" >"$state/location"
	fi
	mkdir -p "$dir"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	printf '"%s" ""\n' "$user" >"$dir/userlist.txt"
	# options: PGOPTIONS (e.g. client_min_messages) is a startup parameter PgBouncer
	# would refuse; in transaction mode it could not keep it per client anyway.
	cat >"$dir/pgbouncer.ini" <<-EOF
		[databases]
		$dbname = host=$host port=$pgport dbname=$dbname user=$user
		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $port
		unix_socket_dir =
		auth_type = trust
		auth_file = $dir/userlist.txt
		pool_mode = transaction
		max_client_conn = 500
		default_pool_size = 20
		ignore_startup_parameters = extra_float_digits,options
		logfile = $dir/pgbouncer.log
		pidfile = $dir/pgbouncer.pid
	EOF
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
	as_server pgbouncer -d -q "$dir/pgbouncer.ini" || { tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null; exit 70; }
	for ((i = 0; i < 100; i++)); do
		if psql -X -q -At -d "postgresql://$user@127.0.0.1:$port/$dbname" -c 'SELECT 1' >/dev/null 2>&1; then
			echo "postgresql://$user@127.0.0.1:$port/$dbname" >"$dir/url"
			url
			return
		fi
		sleep 0.1
	done
	tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
	die "PgBouncer did not answer on port $port within 10 s" 70
}

stop() {
	local dir pid i
	dir=$(bouncer_dir)
	if [ -f "$dir/pgbouncer.pid" ]; then
		pid=$(cat "$dir/pgbouncer.pid")
		kill -INT "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir" "$state"
}

case "${1:-}" in
start)
	[ $# -eq 2 ] || die "usage: scripts/local-pgbouncer.sh start DATABASE_URL" 64
	start "$2"
	;;
url) url ;;
stop) stop ;;
*) die "usage: scripts/local-pgbouncer.sh start DATABASE_URL|url|stop" 64 ;;
esac
