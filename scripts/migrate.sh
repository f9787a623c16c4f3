#!/usr/bin/env bash
# Apply schemas/sql/NNN_*.sql in order to the database of DATABASE_URL (else libpq's
# PG* variables), each once, recorded in schema_migrations. Safe to rerun; each file is
# itself idempotent and runs in one transaction with its record.
# usage: scripts/migrate.sh [DATABASE_URL]
# Exit 0 done; 75 the database cannot be reached now (try again); 78 its settings are wrong;
# 69 another failure to use it; 1 a migration failed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DATABASE_URL=${1:-${DATABASE_URL:-}}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
# The password goes to psql in PGPASSWORD, never on its command line (ps shows that), and
# psql's messages (libpq quotes a URL it cannot parse) come redacted.
# shellcheck source=scripts/db-url.sh
. "$here/scripts/db-url.sh"
db_setup
psql_args=(-X -q -v ON_ERROR_STOP=1)
[ -n "$db_conninfo" ] && psql_args+=(-d "$db_conninfo")
# The EXIT trap first, then the file: a TERM, INT or HUP while mktemp runs is held until the
# file's name is known, then raised again, so that no empty file is left in TMPDIR.
err=
trap 'rm -f "$err"' EXIT
held_signal=
trap 'held_signal=${held_signal:-TERM}' TERM
trap 'held_signal=${held_signal:-INT}' INT
trap 'held_signal=${held_signal:-HUP}' HUP
err=$(mktemp "${TMPDIR:-/tmp}/coin-pricer-migrate.XXXXXX")
trap - TERM INT HUP
[ -z "$held_signal" ] || kill -s "$held_signal" $$
psql() {
	local rc=0
	command psql "$@" 2>"$err" || rc=$?
	[ ! -s "$err" ] || redact <"$err" >&2
	return "$rc"
}

# First reach the database, and when it cannot be reached say so in sysexits' terms (psql's
# own status, 2, says neither whether to try again nor what to fix): 75 when it may answer
# later (refused, starting up or shutting down, too many connections, a timeout), 78 when
# the settings must change (a URL that does not parse, no such database or role, a wrong
# password), 69 for anything else.
if ! command psql "${psql_args[@]}" -At -c "SELECT 1" >/dev/null 2>"$err"; then
	why=$(redact <"$err" | sed -e 's/^psql: error: //' -e 's/^[[:space:]]*//' | tr '\n' ' ' | sed 's/ *$//')
	case $why in
	*"Connection refused"* | *"No such file or directory"* | *"starting up"* | *"shutting down"* | \
		*"too many clients"* | *"timeout expired"* | *"Connection timed out"* | *"recovery mode"* | *"remaining connection slots"* | \
		*"Temporary failure in name resolution"*)
		echo "migrate: cannot reach the database now: $why; start it (or wait until it accepts connections) and run migrate.sh again" >&2
		exit 75
		;;
	*"does not exist"* | *"authentication failed"* | *"no password supplied"* | *"invalid "* | \
		*"end of string"* | *"missing "* | *"unexpected "* | *"could not translate host name"* | *sslmode*)
		echo "migrate: the database settings are wrong: $why; fix DATABASE_URL (or the PG* variables) and run migrate.sh again" >&2
		exit 78
		;;
	*)
		echo "migrate: cannot use the database: $why" >&2
		exit 69
		;;
	esac
fi

psql "${psql_args[@]}" -c "CREATE TABLE IF NOT EXISTS schema_migrations (
	version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null

for file in "$here"/schemas/sql/[0-9][0-9][0-9]_*.sql; do
	version=$(basename "$file" .sql)
	done_already=$(echo "SELECT count(*) FROM schema_migrations WHERE version = :'v'" |
		psql "${psql_args[@]}" -At -v v="$version")
	if [ "$done_already" != "0" ]; then
		continue
	fi
	{
		echo "BEGIN;"
		cat "$file"
		echo "INSERT INTO schema_migrations (version) VALUES ('$version') ON CONFLICT DO NOTHING;"
		echo "COMMIT;"
	} | psql "${psql_args[@]}" >/dev/null
	echo "migrate: applied $version" >&2
done
