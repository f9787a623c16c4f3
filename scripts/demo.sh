#!/usr/bin/env bash
# The quick start's demo: the whole worker on an embedded default, with no credentials
# and no network. A throwaway PostgreSQL cluster (removed at the end), one intake (a
# 1921-S Morgan dollar) with a pending job, and eBay answering from recorded responses
# (tests/data/replay, made by ebay-fetch --record against the fake eBay server).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
make -s -C "$here" -j2 >/dev/null
export PGSTATE=$here/.state/demo-pg
export PATH="$here/bin:$PATH" PGOPTIONS="-c client_min_messages=warning"

echo "== a throwaway PostgreSQL, migrated"
# The trap first: interrupted while the cluster starts, the demo still removes it.
trap '"$here/scripts/local-pg.sh" stop >/dev/null 2>&1' EXIT
DATABASE_URL=$("$here/scripts/local-pg.sh" start)
export DATABASE_URL
echo "   $DATABASE_URL"
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f "$here/tests/data/seed.sql"
echo "== one pending job: price intake 7a2e3d4c… (1921-S Morgan dollar, VF) on eBay"
echo
echo "== pipeline.sh --once: claim-job | ebay-fetch | filter-junk | normalize-usd | store | valuate | store"
EBAY_REPLAY_DIR=$here/tests/data/replay WORKER_ID=demo-worker LOG_FORMAT=text LOG_LEVEL=warn \
	"$here/pipeline.sh" --once --env /dev/null
echo
echo "== what the database holds now"
psql -X -d "$DATABASE_URL" -c "SELECT status, attempts, worker_id FROM scrape_jobs" \
	-c "SELECT count(*) AS price_points, count(*) FILTER (WHERE filtered_out) AS filtered_out FROM price_points" \
	-c "SELECT filter_reason, count(*) FROM price_points WHERE filtered_out GROUP BY 1 ORDER BY 2 DESC, 1" \
	-c "SELECT method, target_grade, median_cents, p10_cents, p90_cents, confidence FROM valuations" \
	-c "SELECT explanation FROM valuations"
echo
echo "== coin-pricer show 7a2e3d4c-0000-4000-8000-000000000001: the answer, as a person reads it"
"$here/scripts/coin-pricer" show 7a2e3d4c-0000-4000-8000-000000000001
