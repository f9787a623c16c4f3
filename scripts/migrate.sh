#!/usr/bin/env bash
# Apply schemas/sql/NNN_*.sql in order to the database of DATABASE_URL (else libpq's
# PG* variables), each once, recorded in schema_migrations. Safe to rerun; each file is
# itself idempotent and runs in one transaction with its record.
# usage: scripts/migrate.sh [DATABASE_URL]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
url=${1:-${DATABASE_URL:-}}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_args=(-X -q -v ON_ERROR_STOP=1)
[ -n "$url" ] && psql_args+=(-d "$url")

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
