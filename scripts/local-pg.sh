#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development, tests and the demo.
#   scripts/local-pg.sh start    initdb (first time), start on 127.0.0.1 and a Unix socket,
#                                create the database, apply the migrations, print DATABASE_URL
#   scripts/local-pg.sh url      print DATABASE_URL of the running cluster
#   scripts/local-pg.sh stop     stop it and remove every file of it
#   scripts/local-pg.sh down [fast|smart|immediate]
#                                stop the server (fast by default), keeping its files
#   scripts/local-pg.sh up [NAME=VALUE...]
#                                start it again on the same port, with these settings
#   scripts/local-pg.sh restart [fast|smart|immediate] [NAME=VALUE...]
#                                both; a setting such as max_connections=20 holds until
#                                the next up or restart (for tests of a server that
#                                restarts or refuses connections under a worker)
# The cluster lives in .state/pg under the repository (git ignores it). As root, the
# server runs as the unprivileged "postgres" user, as PostgreSQL requires; where that user
# cannot reach the repository, the cluster goes to a private folder under /tmp instead.
# PGSTATE=DIR puts it elsewhere (tests give each run its own).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state=${PGSTATE:-$here/.state/pg}
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
	bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
fi
[ -x "$bindir/initdb" ] || { echo "local-pg: no PostgreSQL server found; run scripts/install-deps.sh" >&2; exit 69; }

as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Where the cluster's files are: $state itself, or (as root, when postgres cannot get
# there) the folder under /tmp that $state/location names.
cluster_dir() {
	if [ -f "$state/location" ]; then
		cat "$state/location"
	else
		echo "$state/cluster"
	fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() {
	local dir
	dir=$(cluster_dir)
	[ -f "$dir/url" ] || { echo "local-pg: no cluster is running (scripts/local-pg.sh start)" >&2; exit 69; }
	cat "$dir/url"
}

# server_options DIR PORT [NAME=VALUE...]: pg_ctl's -o for the server: the port, the socket
# folder, the defaults, then the settings given (which win).
server_options() {
	local dir=$1 port=$2 opts setting
	shift 2
	opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
	for setting in "$@"; do
		# One word: it goes into the server's command line.
		[[ $setting =~ ^[a-z_.]+=[A-Za-z0-9_.:-]+$ ]] || { echo "local-pg: not a NAME=VALUE setting: $setting" >&2; exit 64; }
		opts+=" -c $setting"
	done
	printf '%s\n' "$opts"
}

start() {
	local dir port
	mkdir -p "$state"
	dir=$(cluster_dir)
	if [ -f "$dir/url" ] && as_server "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		url
		return
	fi
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$state" 2>/dev/null; then
		dir=$(mktemp -d /tmp/coin-pricer-pg.XXXXXX)
		echo "$dir" >"$state/location"
	fi
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_server "$bindir/initdb" -D "$dir/data" -U coin_pricer --auth=trust -E UTF8 \
			--no-locale >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 70; }
	fi
	port=$(free_port)
	as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "$(server_options "$dir" "$port")" start >/dev/null || { tail -n 20 "$dir/server.log" >&2; exit 70; }
	as_server "$bindir/createdb" -h "$dir" -p "$port" -U coin_pricer coin_pricer 2>/dev/null || true
	echo "postgresql://coin_pricer@127.0.0.1:$port/coin_pricer" >"$dir/url.new"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir/url.new"
	mv "$dir/url.new" "$dir/url"
	"$here/scripts/migrate.sh" "$(cat "$dir/url")"
	url
}

# pg_ctl MODE... on the running cluster's server, as its owner, from / (the server's user
# may not enter the current folder).
server_ctl() {
	local dir
	dir=$(cluster_dir)
	[ -f "$dir/url" ] || { echo "local-pg: no cluster (scripts/local-pg.sh start)" >&2; exit 69; }
	(cd / && as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 "$@" >/dev/null) ||
		{ tail -n 20 "$dir/server.log" >&2; exit 70; }
}

# The server's port, from the cluster's URL.
cluster_port() {
	local url
	url=$(url) || exit
	url=${url##*:}
	printf '%s\n' "${url%%/*}"
}

# down|up|restart, with their arguments (see the top).
control() {
	local what=$1 mode=fast opts port
	shift
	if [ "$what" != up ] && [ $# -gt 0 ] && [[ $1 =~ ^(fast|smart|immediate)$ ]]; then
		mode=$1
		shift
	fi
	[ "$what" != down ] || [ $# -eq 0 ] || { echo "usage: scripts/local-pg.sh down [fast|smart|immediate]" >&2; exit 64; }
	# Checked before anything is stopped: a wrong setting leaves the server as it is.
	port=$(cluster_port)
	opts=$(server_options "$(cluster_dir)" "$port" "$@")
	case $what in
	down) server_ctl stop -m "$mode" ;;
	up) server_ctl start -o "$opts" ;;
	restart) server_ctl restart -m "$mode" -o "$opts" ;;
	esac
}

stop() {
	local dir
	dir=$(cluster_dir)
	if [ -d "$dir/data" ]; then
		as_server "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	rm -rf "$state"
}

case "${1:-}" in
start) start ;;
url) url ;;
stop) stop ;;
down | up | restart) control "$@" ;;
*)
	echo "usage: scripts/local-pg.sh start|url|stop|down|up|restart" >&2
	exit 64
	;;
esac
