#!/usr/bin/env bash
# stages: ebay-fetch
# ebay-fetch against the fake eBay server (tests/fake_ebay.py), started for this run.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

fake_log=$scratch/fake.log
/usr/bin/python3 "$here/fake_ebay.py" --port-file "$scratch/port" --log "$fake_log" 2>"$scratch/fake.err" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null; rm -rf "$scratch"' EXIT
for _ in $(seq 50); do [ -s "$scratch/port" ] && break; sleep 0.1; done
port=$(cat "$scratch/port")
export EBAY_API_BASE=http://127.0.0.1:$port
export EBAY_APP_ID=TestApp-PRD-5ec7e7000-a1b2c3d4 EBAY_CERT_ID=PRD-ce7t5ecret-9f8e-4d3c
export EBAY_CALLS_PER_MINUTE=60000 EBAY_RETRY_BASE_MS=50 EBAY_TIMEOUT_SECONDS=5
token=$(jq -r .access_token "$here/data/ebay/oauth-token.json")
manifest=$here/data/ebay/manifest.json

# A job record for the seeded intake with this adapter.
job() {
	jq -c --arg a "$1" '.source.adapter_type = $a' <<'JSON'
{"kind":"job","job_id":"6f1d2c3b-0000-4000-8000-000000000001","intake_id":"7a2e3d4c-0000-4000-8000-000000000001","source_id":"8b3f4e5d-0000-4000-8000-000000000001","attempt":1,"worker_id":"w1","source":{"name":"eBay","adapter_type":"x","reputation_weight":0.9,"config":{"category_id":"39464"}},"attribution":{"year":1921,"mintmark":"S","denomination":"dollar","series":"Morgan","title":"Morgan Dollar","grade":"VF","variety":null},"rules":[],"fx_rates":{}}
JSON
}

# Each test gets its own state folder (token cache, rate limit) and a clean fake log.
fresh() {
	export COIN_PRICER_STATE_DIR=$PWD/state
	fault '{"clear": true}'
	: >"$fake_log"
}

calls_to() { grep -c "\"path\": \"$1" "$fake_log"; }

fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }

finding_exact() {
	fresh
	job ebay_finding | ebay-fetch >out.ndjson 2>err.txt || return 1
	jq -cS 'select(.kind == "price_point")' out.ndjson >got.ndjson
	jq -cS . "$here/data/finding-points.ndjson" | jq -cS '.reputation_weight = 0.9' >want.ndjson
	expect_file_eq want.ndjson got.ndjson || return 1
	expect_eq "job_end" '2 2 29' "$(jq -r 'select(.kind == "job_end") | "\(.pages) \(.calls) \(.items)"' out.ndjson)" || return 1
	expect_eq "first line is the job" job "$(head -n 1 out.ndjson | jq -r .kind)" || return 1
	/usr/bin/python3 "$here/validate.py" out.ndjson
}

# Every item of the manifest (but the unsold) is one point with its amount, currency and
# eBay's USD figure.
against_manifest() {
	local api=$1 adapter=$2 price_type=$3
	fresh
	job "$adapter" | ebay-fetch >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	/usr/bin/python3 "$here/validate.py" out.ndjson || return 1
	jq -c --arg api "$api" '.[$api][] | select(.kind != "unsold") | [.itemId, (.amount | tonumber), .currency, (.converted_usd | if . then tonumber else null end)]' "$manifest" | sort >want.txt
	jq -c 'select(.kind == "price_point") | [(.external_id | sub("^v1\\|"; "") | sub("\\|0$"; "")), (.amount | tonumber), .currency, (.converted_usd | if . then tonumber else null end)]' out.ndjson | sort >got.txt
	expect_file_eq want.txt got.txt || return 1
	expect_eq "price types" "$price_type" "$(jq -r 'select(.kind == "price_point") | .price_type' out.ndjson | sort -u)"
}

finding_skips_unsold() {
	fresh
	job ebay_finding | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "unsold items out" 0 "$(grep -c -e '"192100000006"' -e '"192100000015"' -e '"192100000027"' out.ndjson)"
}

insights_details() {
	fresh
	job ebay_insights | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "506 sold 3 units: no quantity, and filter-junk keeps it" "null ok" "$(jq -c 'select(.external_id == "v1|192100000506|0")' out.ndjson | filter-junk | jq -r '"\(.quantity) \(.filter_reason // "ok")"')" || return 1
	expect_eq "pages, calls (not counting the token), items" "2 2 15" "$(jq -r 'select(.kind == "job_end") | "\(.pages) \(.calls) \(.items)"' out.ndjson)" || return 1
	expect_grep '"marketplace": "EBAY_US"' "$fake_log" || return 1
	expect_grep 'q=US%2Ccoin%2C1921%2CS%2CMorgan%2Cdollar&category_ids=39464' "$fake_log"
}

browse_details() {
	fresh
	job ebay_browse | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "shipping of 804 as listed" "14.00 GBP" "$(jq -r 'select(.external_id == "v1|192100000804|0") | "\(.shipping_amount) \(.shipping_currency)"' out.ndjson)" || return 1
	expect_eq "no shipping for 810" "null" "$(jq -r 'select(.external_id == "v1|192100000810|0") | .shipping_amount' out.ndjson)" || return 1
	expect_grep 'filter=buyingOptions%3A%7BAUCTION%7CFIXED_PRICE%7D' "$fake_log" || return 1
	expect_grep 'q=US%20coin%201921%20S%20Morgan%20dollar' "$fake_log"
}

# One listing with a date, an amount or bytes that PostgreSQL would refuse costs the job
# no other point: the date or amount becomes null (or the point is skipped when it is
# the price), with a warning naming the item.
bad_fields_mapped_safely() {
	local want r=$'\xef\xbf\xbd'
	fresh
	jq '.itemSales[0].lastSoldDate = "not a date" | .itemSales[1].lastSoldDate = "2026-02-30T10:00:00.000Z"
		| .itemSales[2].lastSoldDate = "0000-01-01T00:00:00Z" | .itemSales[3].lastSoldPrice.value = "12,50"
		| .itemSales[4].title = "bad SURROGATE BYTES" | .itemSales[0].title = "nul NUL kept"' \
		"$here/data/ebay/insights-item-sales-p2.json" |
		sed 's/SURROGATE/\\ud800/; s/NUL/\\u0000/; s/BYTES/\xff\xfe/' >sales.json
	fault "{\"path\": \"/buy/marketplace\", \"kind\": \"body\", \"file\": \"$PWD/sales.json\"}"
	job ebay_insights | ebay-fetch >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	/usr/bin/python3 "$here/validate.py" out.ndjson || return 1
	filter-junk <out.ndjson >/dev/null || return 1
	want='v1|192100000511|0 null
v1|192100000512|0 null
v1|192100000513|0 null
v1|192100000515|0 2026-09-04T12:00:00.000Z'
	expect_eq "points and dates" "$want" "$(jq -r 'select(.kind == "price_point") | "\(.external_id) \(.sold_at)"' out.ndjson)" || return 1
	expect_eq "titles" "nul $r kept|bad $r $r$r" "$(jq -r 'select(.kind == "price_point") | .title' out.ndjson | sed -n '1p;4p' | paste -sd '|')" || return 1
	expect_eq "job_end items" 4 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)" || return 1
	expect_grep 'item v1|192100000511|0: sold_at "not a date" is not an RFC 3339' err.txt || return 1
	expect_grep 'item v1|192100000512|0: sold_at "2026-02-30T10:00:00.000Z"' err.txt || return 1
	expect_grep 'item v1|192100000513|0: sold_at "0000-01-01T00:00:00Z"' err.txt || return 1
	expect_grep 'item v1|192100000514|0: no usable itemId, price or currency' err.txt || return 1
	expect_eq "warnings" 4 "$(wc -l <err.txt)" || return 1
	fresh
	jq '.findCompletedItemsResponse[0].searchResult[0].item[0].listingInfo[0].endTime[0] = "2026-13-01T00:00:00.000Z"' \
		"$here/data/ebay/finding-completed-p1.json" >p1.json
	fault "{\"path\": \"/services\", \"kind\": \"body\", \"file\": \"$PWD/p1.json\"}"
	job ebay_finding | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "Finding points" 29 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)" || return 1
	expect_eq "Finding: the bad date is null" null "$(jq -r 'select(.external_id == "192100000001") | .sold_at' out.ndjson)" || return 1
	expect_grep 'item 192100000001: sold_at "2026-13-01T00:00:00.000Z"' err.txt
}

# A job that ebay-fetch can never do ends in a job_error that is not retryable (so that
# it fails once, instead of coming back as a bad line would), and the next job runs.
job_it_cannot_do() {
	fresh
	{ job heritage_auctions; job ebay_finding | jq -c 'del(.attribution)'; job ebay_finding; } |
		ebay-fetch >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "kinds" "job job_error job job_error job job_end" "$(jq -r .kind out.ndjson | grep -v price_point | paste -sd ' ')" || return 1
	expect_eq "retryable" "false false" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson | paste -sd ' ')" || return 1
	expect_grep 'cannot do a job of adapter type \\"heritage_auctions\\"' out.ndjson || return 1
	expect_grep 'no \\"attribution\\" object' out.ndjson || return 1
	expect_eq "job_error's job_id" 6f1d2c3b-0000-4000-8000-000000000001 "$(jq -r 'select(.kind == "job_error") | .job_id' out.ndjson | head -n 1)" || return 1
	expect_eq "Finding calls, for the last job only" 2 "$(calls_to /services)" || return 1
	jq -c 'select(.kind != "job")' out.ndjson >records.ndjson
	/usr/bin/python3 "$here/validate.py" records.ndjson
}

# valgrind sees what the sanitizers miss: reads inside libcjson, which is not
# instrumented. An ASan build cannot run under valgrind; there the runs go without it.
# ldd's output is read whole: under pipefail, `ldd | grep -q` fails whenever grep quits
# before ldd has written its last line (SIGPIPE), and the ASan build went to valgrind.
under_valgrind() {
	case "$(ldd "$(command -v ebay-fetch)")" in
	*libasan*) "$@" ;;
	*) valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "$@" ;;
	esac
}

rest_paging_memory() {
	fresh
	fault '{"path": "/buy/browse", "status": 500, "times": 2}'
	fault '{"path": "/buy/browse", "kind": "cut"}'
	fault '{"path": "/buy/marketplace", "kind": "cut"}'
	{ job ebay_insights; job ebay_browse; job ebay_insights; job ebay_browse; } |
		under_valgrind ebay-fetch >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "items" "15 15 15 15" "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson | paste -sd ' ')" || return 1
	expect_eq "calls" "3 4 2 1" "$(jq -r 'select(.kind == "job_end") | .calls' out.ndjson | paste -sd ' ')"
}

# A Retry-After longer than EBAY_MAX_RETRY_AFTER_SECONDS is not slept through with the
# job locked: the job ends at once, retryable, with retry_after_seconds for its backoff.
retry_after_capped() {
	local start when seconds
	fresh
	fault '{"path": "/buy/browse", "status": 429, "retry_after": 86400}'
	start=$(date +%s)
	job ebay_browse | timeout 30 ebay-fetch >out.ndjson 2>err.txt || { echo "status $?"; return 1; }
	[ $(($(date +%s) - start)) -lt 10 ] || { echo "took $(($(date +%s) - start)) s"; return 1; }
	expect_eq "job_error" "true 86400" "$(jq -r 'select(.kind == "job_error") | "\(.retryable) \(.retry_after_seconds)"' out.ndjson)" || return 1
	expect_grep "asked to wait 86400 s" out.ndjson || return 1
	expect_eq "browse calls" 1 "$(calls_to /buy/browse)" || return 1
	/usr/bin/python3 "$here/validate.py" out.ndjson || return 1
	# An HTTP date, and a lower cap.
	fresh
	when=$(date -u -d '+1 hour' '+%a, %d %b %Y %H:%M:%S GMT')
	fault "{\"path\": \"/services\", \"status\": 500, \"retry_after\": \"$when\"}"
	job ebay_finding | EBAY_MAX_RETRY_AFTER_SECONDS=5 ebay-fetch >out.ndjson 2>err.txt || return 1
	seconds=$(jq -r 'select(.kind == "job_error") | .retry_after_seconds' out.ndjson)
	if [ "$seconds" -lt 3590 ] || [ "$seconds" -gt 3600 ]; then
		echo "retry_after_seconds $seconds"
		return 1
	fi
}

max_pages() {
	fresh
	job ebay_finding | ebay-fetch --max-pages 1 >out.ndjson 2>/dev/null || return 1
	expect_eq "pages calls items (2 of page 1 unsold)" "1 1 18" "$(jq -r 'select(.kind == "job_end") | "\(.pages) \(.calls) \(.items)"' out.ndjson)" || return 1
	expect_eq "Finding calls" 1 "$(calls_to /services)"
}

retry_429_honours_retry_after() {
	local t1 t2
	fresh
	fault '{"path": "/buy/browse", "status": 429, "retry_after": 1, "times": 1}'
	job ebay_browse | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "browse calls" 2 "$(calls_to /buy/browse)" || return 1
	t1=$(grep /buy/browse "$fake_log" | sed -n 1p | jq .t)
	t2=$(grep /buy/browse "$fake_log" | sed -n 2p | jq .t)
	[ "$(echo "$t2 - $t1 >= 0.95" | bc -l)" = 1 ] || { echo "retried after $(echo "$t2 - $t1" | bc -l) s"; return 1; }
	expect_eq "items" 15 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)" || return 1
	expect_grep "HTTP 429; try 2 of 4" err.txt
}

retry_500_then_ok() {
	fresh
	fault '{"path": "/services", "status": 500, "times": 2}'
	job ebay_finding | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "Finding calls" 4 "$(calls_to /services)" || return 1
	expect_eq "pages calls items" "2 4 29" "$(jq -r 'select(.kind == "job_end") | "\(.pages) \(.calls) \(.items)"' out.ndjson)"
}

retries_exhausted() {
	fresh
	fault '{"path": "/services", "status": 500, "times": 10}'
	job ebay_finding | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "Finding calls" 4 "$(calls_to /services)" || return 1
	expect_eq "job_error" "true" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_eq "no points of a failed job" 0 "$(grep -c price_point out.ndjson)" || return 1
	/usr/bin/python3 "$here/validate.py" out.ndjson
}

# A body that is not JSON at every try is named so, not as an HTTP status that never came.
garbled_every_try() {
	local api path
	for api in finding:/services insights:/buy/marketplace; do
		path=${api#*:} api=${api%%:*}
		fresh
		fault "{\"path\": \"$path\", \"kind\": \"invalid_json\", \"times\": 50}"
		job "ebay_$api" | ebay-fetch >out.ndjson 2>/dev/null || return 1
		expect_eq "retryable ($api)" true "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
		expect_grep 'answered HTTP 200 with a body that is not JSON' out.ndjson || return 1
		if grep -q 'HTTP 502' out.ndjson; then cat out.ndjson; return 1; fi
	done
}

# An answer larger than EBAY_MAX_RESPONSE_BYTES, with a Content-Length and in chunks: the
# job fails at once (another try would bring as much again), and says so.
too_large() {
	local kind
	for kind in status:200 chunked; do
		fresh
		if [ "$kind" = chunked ]; then
			fault '{"path": "/buy/browse", "kind": "chunked", "times": 5}'
		else
			fault '{"path": "/buy/browse", "kind": "body", "file": "browse-item-summary.json", "times": 5}'
		fi
		job ebay_browse | EBAY_MAX_RESPONSE_BYTES=2000 ebay-fetch >out.ndjson 2>/dev/null || return 1
		expect_eq "browse calls ($kind)" 1 "$(calls_to /buy/browse)" || return 1
		expect_eq "retryable ($kind)" false "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
		expect_grep 'more than EBAY_MAX_RESPONSE_BYTES allows (the answer is larger than 2000 bytes)' out.ndjson || return 1
		expect_eq "points ($kind)" 0 "$(grep -c '"kind":"point"' out.ndjson)" || return 1
	done
	# The default takes the page.
	fresh
	fault '{"path": "/buy/browse", "kind": "chunked", "times": 5}'
	job ebay_browse | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "items (chunked, default limit)" 15 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)"
}

# The token endpoint down (5xx at every try) is an outage, not a credentials problem.
token_endpoint_down() {
	fresh
	fault '{"path": "/identity", "status": 503, "times": 1000}'
	job ebay_browse | EBAY_MAX_TRIES=2 ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "retryable" true "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep "eBay's token endpoint is unavailable (HTTP 503" out.ndjson || return 1
	if grep -q 'check EBAY_APP_ID' out.ndjson; then cat out.ndjson; return 1; fi
}

finding_bad_app_id() {
	fresh
	fault '{"path": "/services", "status": 500, "body": "finding-error-auth.json", "times": 5}'
	job ebay_finding | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "Finding calls (no retry)" 1 "$(calls_to /services)" || return 1
	expect_eq "retryable" "false" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep "check EBAY_APP_ID" out.ndjson
}

# browse_fault_then_ok FAULT [STDERR_PATTERN]: one browse request meets FAULT, the retry
# gets the page.
browse_fault_then_ok() {
	fresh
	fault "$1"
	job ebay_browse | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "browse calls" 2 "$(calls_to /buy/browse)" || return 1
	[ -z "${2:-}" ] || expect_grep "$2" err.txt || return 1
	expect_eq "items" 15 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)"
}

unauthorized_once_refreshes_token() {
	fresh
	fault '{"path": "/buy/browse", "kind": "unauthorized", "times": 1}'
	job ebay_browse | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "token requests" 2 "$(calls_to /identity)" || return 1
	expect_eq "browse calls" 2 "$(calls_to /buy/browse)" || return 1
	expect_eq "items" 15 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)"
}

unauthorized_twice_fails() {
	fresh
	fault '{"path": "/buy/browse", "kind": "unauthorized", "times": 2}'
	job ebay_browse | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "retryable" "false" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep "check EBAY_APP_ID and EBAY_CERT_ID" out.ndjson
}

insights_not_approved() {
	fresh
	fault '{"path": "/identity", "kind": "not_approved", "times": 1}'
	job ebay_insights | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "retryable" "false" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep "not approved" out.ndjson || return 1
	fresh
	fault '{"path": "/buy/marketplace", "kind": "not_approved", "times": 1}'
	job ebay_insights | ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "retryable" "false" "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep "not approved for the Marketplace Insights API" out.ndjson
}

token_cached_across_calls_and_processes() {
	local mode
	fresh
	{ job ebay_browse; job ebay_browse; job ebay_browse; } | ebay-fetch >out.ndjson 2>/dev/null || return 1
	job ebay_browse | ebay-fetch >>out.ndjson 2>/dev/null || return 1
	expect_eq "token requests for 4 jobs in 2 processes" 1 "$(calls_to /identity)" || return 1
	expect_eq "jobs done" 4 "$(grep -c job_end out.ndjson)" || return 1
	mode=$(stat -c %a state/ebay-token-*.json)
	expect_eq "token cache mode" 600 "$mode" || return 1
	expect_grep "\"authorization\": \"Bearer $token\"" "$fake_log"
}

expired_token_renewed() {
	fresh
	job ebay_browse | ebay-fetch >/dev/null 2>&1 || return 1
	# Four minutes left: less than the five-minute margin.
	jq -c ".expires_at = $(($(date +%s) + 240))" state/ebay-token-*.json >t && cat t >state/ebay-token-*.json
	job ebay_browse | ebay-fetch >/dev/null 2>&1 || return 1
	expect_eq "token requests" 2 "$(calls_to /identity)"
}

shared_rate_limit() {
	local n first last
	fresh
	# 120 calls a minute: 0.5 s apart, whichever of the two processes makes them.
	{ job ebay_finding; job ebay_finding; } | EBAY_CALLS_PER_MINUTE=120 ebay-fetch >a.ndjson 2>/dev/null &
	{ job ebay_finding; job ebay_finding; } | EBAY_CALLS_PER_MINUTE=120 ebay-fetch >b.ndjson 2>/dev/null &
	wait
	n=$(calls_to /services)
	expect_eq "calls" 8 "$n" || return 1
	first=$(grep /services "$fake_log" | head -n 1 | jq .t)
	last=$(grep /services "$fake_log" | tail -n 1 | jq .t)
	echo "8 calls over $(echo "$last - $first" | bc -l) s" >&2
	[ "$(echo "($last - $first) / ($n - 1) >= 0.45" | bc -l)" = 1 ] ||
		{ echo "calls $(echo "($last - $first) / ($n - 1)" | bc -l) s apart on average"; return 1; }
	expect_eq "both processes' jobs" "2 2" "$(grep -c job_end a.ndjson) $(grep -c job_end b.ndjson)"
}

daily_quota() {
	fresh
	{ job ebay_finding; job ebay_finding; } | EBAY_DAILY_CALL_LIMIT=3 ebay-fetch >out.ndjson 2>/dev/null || return 1
	expect_eq "kinds" "job job_end job job_error" "$(jq -r .kind out.ndjson | grep -v price_point | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "retryable" true "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)" || return 1
	expect_grep 'retry after 20[0-9-]*T0[78]:00:00Z (midnight Pacific time)' out.ndjson || return 1
	expect_eq "calls sent" 3 "$(calls_to /services)"
}

secrets_never_shown() {
	local f
	fresh
	fault '{"path": "/buy/browse", "status": 500, "times": 1}'
	{ job ebay_finding; job ebay_browse; job ebay_insights; } | LOG_LEVEL=debug ebay-fetch --record rec >out.ndjson 2>err.txt || return 1
	fault '{"path": "/services", "status": 500, "body": "finding-error-auth.json", "times": 1}'
	job ebay_finding | ebay-fetch >>out.ndjson 2>>err.txt || return 1
	for f in out.ndjson err.txt rec/*; do
		if grep -q -e "$EBAY_APP_ID" -e "$EBAY_CERT_ID" -e "$token" "$f"; then
			echo "a secret in $f"
			return 1
		fi
	done
	expect_grep 'SECURITY-APPNAME=\[redacted\]' "$(grep -l SECURITY-APPNAME rec/*.meta.json | head -n 1)"
}

# eBay's error text may echo the request's credentials: the job_error (and so the
# database) and the recordings get it masked, as the log lines always did.
secrets_echoed_by_ebay() {
	local f
	fresh
	printf '{"errors":[{"errorId":1001,"message":"Invalid access token for app %s cert %s"}]}' \
		"$EBAY_APP_ID" "$EBAY_CERT_ID" >echo.json
	fault "{\"path\": \"/buy/browse\", \"kind\": \"body\", \"status\": 401, \"file\": \"$PWD/echo.json\", \"times\": 10}"
	fault "{\"path\": \"/services\", \"kind\": \"body\", \"status\": 500, \"file\": \"$PWD/echo.json\", \"times\": 10}"
	{ job ebay_browse; job ebay_finding; } | ebay-fetch --record rec >out.ndjson 2>err.txt || return 1
	expect_eq "job_errors" 2 "$(grep -c '"kind":"job_error"' out.ndjson)" || return 1
	expect_grep 'Invalid access token for app \[redacted\] cert \[redacted\]' out.ndjson || return 1
	for f in out.ndjson err.txt rec/*; do
		if grep -q -e "$EBAY_APP_ID" -e "$EBAY_CERT_ID" "$f"; then
			echo "a secret in $f:"
			grep -e "$EBAY_APP_ID" -e "$EBAY_CERT_ID" "$f" | head -n 3
			return 1
		fi
	done
}

# The keyset as it goes on the wire, "Basic " and base64 of "app:cert", echoed in an error
# (by the token endpoint, or by an API echoing the request's headers): masked as the keyset
# itself is, in the job_error, the log and the recordings (anyone decodes base64).
basic_credentials_echoed_are_masked() {
	local b64 f status
	b64=$(printf '%s' "$EBAY_APP_ID:$EBAY_CERT_ID" | base64 -w0)
	for status in 401 500; do
		fresh
		printf '{"error":"invalid_client: Basic %s","error_description":"no client for %s"}' "$b64" "$b64" >token.json
		fault "{\"path\": \"/identity\", \"kind\": \"body\", \"status\": $status, \"file\": \"$PWD/token.json\", \"times\": 10}"
		job ebay_browse | EBAY_MAX_TRIES=2 ebay-fetch --record rec >out.ndjson 2>err.txt || return 1
		expect_grep "invalid_client: Basic \[redacted\]" out.ndjson || return 1
		rm -rf state
	done
	fresh
	printf '{"errors":[{"errorId":1001,"message":"Invalid access token; your request said Basic %s"}]}' "$b64" >echo.json
	fault "{\"path\": \"/buy/browse\", \"kind\": \"body\", \"status\": 401, \"file\": \"$PWD/echo.json\", \"times\": 10}"
	job ebay_browse | ebay-fetch --record rec >>out.ndjson 2>>err.txt || return 1
	expect_grep "your request said Basic \[redacted\]" out.ndjson || return 1
	for f in out.ndjson err.txt rec/*; do
		if grep -q -e "$b64" "$f"; then
			echo "the base64 keyset in $f:"
			grep -e "$b64" "$f" | head -n 3
			return 1
		fi
	done
}

# What eBay sends reaches log messages (an item id, a date that is not one): in the text
# format a newline in it forged a log line of its own and an escape sequence drove the
# operator's terminal. Control characters are written as \xNN.
control_characters_logged_escaped() {
	fresh
	jq -c '.findCompletedItemsResponse[0].searchResult[0].item[0] |= (.itemId = ["12\u001b[31m"]
		| .listingInfo[0].endTime = ["\u001b[2J\nebay-fetch: info: forged\u0085"])' \
		"$here/data/ebay/finding-completed-p1.json" >evil.json || return 1
	fault "{\"path\": \"/services\", \"kind\": \"body\", \"file\": \"$PWD/evil.json\", \"times\": 1}"
	job ebay_finding | jq -c '.source.config.max_pages = 1' | LOG_FORMAT=text ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "lines on stderr" 1 "$(wc -l <err.txt)" || { cat -v err.txt; return 1; }
	expect_eq "the line" 'ebay-fetch: warn: job "6f1d2c3b-0000-4000-8000-000000000001": item 12\x1b[31m: sold_at "\x1b[2J\x0aebay-fetch: info: forged\u0085" is not an RFC 3339 UTC timestamp; null instead' \
		"$(cat err.txt)" || return 1
	# The point itself keeps the bytes eBay sent (JSON escapes them).
	expect_eq "item id kept" '12\u001b[31m' "$(jq -r 'select(.kind == "price_point") | .external_id' out.ndjson | head -n 1 | jq -Rr '@json' | sed 's/^"//; s/"$//')"
}

# Each secret is remembered once: a job's config secret (or a cached token) registered
# again for every job made the list, and every message's search through it, grow with the
# jobs of a long-lived worker (20 MB more for 270 more jobs with a 75 kB app id).
secrets_registered_once() {
	local big n rss=() libs
	# ASan keeps freed memory in quarantine, so the peak grows with the work done there:
	# the normal build answers this (read whole: see paging_under_valgrind's note on -q).
	libs=$(ldd "$BIN/ebay-fetch" 2>/dev/null || true)
	if [[ $libs == *libasan* ]]; then
		echo "# skipped: an ASan build's peak memory grows with its quarantine"
		return 0
	fi
	big=$(head -c 75000 /dev/zero | tr '\0' k)
	for n in 30 300; do
		jq -nc --arg a "$big" --argjson n "$n" 'range($n) | {kind: "job", job_id: null, intake_id: null,
			source_id: null, attempt: 1, source: {name: "e", adapter_type: "ebay_finding", reputation_weight: 1,
			config: {category_id: "39464", app_id: $a}}, attribution: {year: 1921, mintmark: "S",
			denomination: "dollar", series: "Morgan"}, rules: [], fx_rates: {}}' >jobs.ndjson
		# The peak memory of the stage, from getrusage (no /usr/bin/time needed).
		rss+=("$(python3 -c 'import resource, subprocess, sys
with open(sys.argv[1]) as i, open(sys.argv[2], "w") as o:
    rc = subprocess.run(sys.argv[3:], stdin=i, stdout=o).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)' jobs.ndjson out.ndjson \
			"$BIN/ebay-fetch" --replay "$here/data/replay")")
		expect_eq "job_ends of $n jobs" "$n" "$(grep -c '"kind":"job_end"' out.ndjson)" || return 1
	done
	if [ "${rss[0]}" -le 0 ] || [ "${rss[1]}" -le 0 ]; then echo "ebay-fetch failed"; return 1; fi
	[ $((rss[1] - rss[0])) -lt 5000 ] || { echo "peak memory: ${rss[0]} kB for 30 jobs, ${rss[1]} kB for 300"; return 1; }
}

# A source's credentials in its config are used, and never go on: not in the job record
# passed on, nor in any log line or recording.
config_secrets_removed() {
	local a f s secrets='CfgApp-PRD-77aa11 CfgCert-PRD-88bb22 CfgDev-99cc33 cl1ent-s3cret-44 r3fresh-tok-55 hunter2-pw-66 ApiKey-777'
	fresh
	fault '{"path": "/buy/browse", "status": 500, "times": 1}'
	for a in ebay_finding ebay_browse ebay_insights heritage_auctions; do
		job "$a" | jq -c '.source.config += {app_id: "CfgApp-PRD-77aa11", cert_id: "CfgCert-PRD-88bb22",
			dev_id: "CfgDev-99cc33", client_secret: "cl1ent-s3cret-44", oauth: {refresh_token: "r3fresh-tok-55"},
			mirrors: [{url: "https://m.example", Password: "hunter2-pw-66"}], "X-Api-Key": "ApiKey-777"}'
	done >jobs.ndjson
	env -u EBAY_APP_ID -u EBAY_CERT_ID LOG_LEVEL=debug ebay-fetch --record rec <jobs.ndjson >out.ndjson 2>err.txt || { cat err.txt; return 1; }
	expect_eq "jobs done" "3 1" "$(grep -c '"kind":"job_end"' out.ndjson) $(grep -c '"kind":"job_error"' out.ndjson)" || return 1
	expect_grep "Basic $(printf '%s' CfgApp-PRD-77aa11:CfgCert-PRD-88bb22 | base64 -w0)" "$fake_log" || return 1
	for f in out.ndjson err.txt rec/*; do
		for s in $secrets; do
			if grep -q -- "$s" "$f"; then
				echo "$s in $f"
				return 1
			fi
		done
	done
	expect_eq "config passed on" '{"category_id":"39464","mirrors":[{"url":"https://m.example"}]}' \
		"$(jq -c 'select(.kind == "job") | .source.config' out.ndjson | sort -u)" || return 1
	expect_eq "the rest of the job as it came" "$(jq -c 'del(.source)' jobs.ndjson)" "$(jq -c 'select(.kind == "job") | del(.source)' out.ndjson)"
}

# The token cache is written through a new private file renamed into place: a symlink or
# a 0644 file planted at the old temporary name (<cache>.<pid>) gets nothing, and a
# cache that is a symlink or readable by others is never used.
token_cache_files_safe() {
	local cache
	fresh
	job ebay_browse | ebay-fetch >/dev/null 2>&1 || return 1
	cache=$(echo "$PWD"/state/ebay-token-*.json)
	expect_eq "state folder mode" 700 "$(stat -c %a state)" || return 1
	rm "$cache"
	: >victim
	job ebay_browse | bash -c 'ln -s "$PWD/victim" "$1.$$" && exec ebay-fetch' _ "$cache" >out.ndjson 2>err.txt || return 1
	expect_eq "victim of a planted symlink" "" "$(cat victim)" || return 1
	if [ ! -f "$cache" ] || [ -L "$cache" ]; then
		ls -l state
		return 1
	fi
	expect_eq "cache mode" 600 "$(stat -c %a "$cache")" || return 1
	rm -f "$cache" state/ebay-token-*.json.*
	job ebay_browse | bash -c 'install -m 644 /dev/null "$1.$$" && exec ebay-fetch' _ "$cache" >out.ndjson 2>err.txt || return 1
	expect_eq "cache mode after a planted 0644 file" 600 "$(stat -c %a "$cache")" || return 1
	rm -f "$cache" state/ebay-token-*.json.*
	jq -cn '{access_token: "forged-token", expires_at: 4000000000}' >forged.json
	ln -s "$PWD/forged.json" "$cache"
	job ebay_browse | ebay-fetch >out.ndjson 2>err.txt || return 1
	chmod 644 "$cache"
	jq -c '.access_token = "forged-token"' "$cache" >forged.json && cat forged.json >"$cache"
	job ebay_browse | ebay-fetch >>out.ndjson 2>>err.txt || return 1
	if grep -q "Bearer forged-token" "$fake_log"; then
		echo "a cache through a symlink or readable by others was used"
		return 1
	fi
	expect_eq "jobs done" 2 "$(grep -c job_end out.ndjson)"
}

# The rate-limit state file is never opened through a symlink.
rate_file_not_through_symlink() {
	fresh
	mkdir -p state
	: >victim
	ln -s "$PWD/victim" state/ebay-rate
	job ebay_finding | ebay-fetch >out.ndjson 2>err.txt || return 1
	expect_eq "victim" "" "$(cat victim)" || return 1
	expect_grep "rate limit file .*: a symlink, refused" err.txt || return 1
	expect_eq "job_end" 1 "$(grep -c job_end out.ndjson)"
}

# Recordings are private files in a private folder, and never written through a symlink.
recordings_private() {
	local one
	fresh
	job ebay_finding | ebay-fetch --record rec/new >/dev/null 2>&1 || return 1
	expect_eq "folder mode" 700 "$(stat -c %a rec/new)" || return 1
	expect_eq "file modes" 600 "$(stat -c %a rec/new/* | sort -u)" || return 1
	one=$(find rec/new -name '*.body' | sort | head -n 1)
	: >victim
	rm "$one"
	ln -s "$PWD/victim" "$one"
	job ebay_finding | ebay-fetch --record rec/new >/dev/null 2>&1 || return 1
	expect_eq "victim" "" "$(cat victim)" || return 1
	if [ ! -f "$one" ] || [ -L "$one" ]; then
		ls -l rec/new
		return 1
	fi
	expect_eq "files" 4 "$(find rec/new -type f | wc -l)"
}

record_then_replay() {
	fresh
	{ job ebay_finding; job ebay_browse; job ebay_insights; } >jobs.ndjson
	fault '{"path": "/buy/browse", "status": 429, "times": 1}'
	ebay-fetch --record rec <jobs.ndjson >recorded.ndjson 2>/dev/null || return 1
	: >"$fake_log"
	env -u EBAY_APP_ID -u EBAY_CERT_ID EBAY_API_BASE=http://127.0.0.1:9 ebay-fetch --replay rec <jobs.ndjson >replayed.ndjson 2>err.txt || { cat err.txt; return 1; }
	env -u EBAY_APP_ID -u EBAY_CERT_ID ebay-fetch --replay rec <jobs.ndjson >again.ndjson 2>/dev/null || return 1
	expect_eq "requests during replay" 0 "$(wc -l <"$fake_log")" || return 1
	expect_file_eq replayed.ndjson again.ndjson || return 1
	# The record run's durations are wall-clock; everything else is the same, byte for byte.
	sed 's/"duration_ms":[0-9]*/"duration_ms":0/' recorded.ndjson >recorded0.ndjson
	expect_file_eq recorded0.ndjson replayed.ndjson || return 1
	expect_eq "browse calls in the replay (with the 429)" 2 "$(jq -r 'select(.kind == "job_end" and .pages == 1) | .calls' replayed.ndjson | head -n 1)"
}

replay_missing() {
	mkdir empty
	job ebay_finding | ebay-fetch --replay empty >out.ndjson 2>/dev/null || return 1
	expect_grep "no recorded response" out.ndjson || return 1
	# A recording does not grow between tries: the job fails instead of cycling.
	expect_eq "retryable" false "$(jq -r 'select(.kind == "job_error") | .retryable' out.ndjson)"
}

# The shared rate limit's next slot, an hour ahead (the wall clock set back by an hour) or
# garbage: no call waits for it. It made every call sleep that hour with its job locked.
rate_state_far_ahead() {
	local next
	for next in "$(($(date +%s) * 1000 + 3600000))" 1e300 inf; do
		fresh
		mkdir -p state
		printf '%s 0 0\n' "$next" >state/ebay-rate
		job ebay_finding | timeout 60 ebay-fetch >out.ndjson 2>err.txt
		expect_eq "status with next slot $next" 0 $? || { cat err.txt; return 1; }
		expect_eq "job_end with next slot $next" 1 "$(grep -c '"kind":"job_end"' out.ndjson)" || return 1
	done
}

# A recording comes with a bug report, from anyone: numbers out of range in its meta file
# are a broken recording, said so, not an HTTP status of -9223372036854775808.
replay_numbers_checked() {
	local f
	fresh
	cp -r "$here/data/replay" rec
	for f in rec/*-1.meta.json; do
		jq -c '.status = 1e999 | .retry_after = 1e999 | .elapsed_ms = -1e999' "$f" >"$f.new" && mv "$f.new" "$f"
	done
	job ebay_finding | LOG_FORMAT=text ebay-fetch --replay rec >out.ndjson 2>err.txt || return 1
	expect_grep '"status" is not an HTTP status: not a recording' err.txt || return 1
	expect_eq "job_error" 'false eBay did not answer: no recorded response for this request in rec' \
		"$(jq -r 'select(.kind == "job_error") | "\(.retryable) \(.error)"' out.ndjson)" || return 1
	if grep -q 9223372036854775808 out.ndjson err.txt; then echo "a status from an undefined conversion"; return 1; fi
}

print_query_cases() {
	local attribution want got
	while IFS='|' read -r attribution want; do
		got=$(jq -cn --argjson a "$attribution" '{kind: "job", job_id: "j", source: {adapter_type: "ebay_finding"}, attribution: $a}' | ebay-fetch --print-query)
		expect_eq "query of $attribution" "$want" "$got" || return 1
	done <<'CASES'
{"year":1921,"denomination":"dollar"}|US coin 1921 dollar
{"year":1921,"mintmark":"S","denomination":"dollar","series":"Morgan","title":"Morgan Dollar"}|US coin 1921 S Morgan dollar
{"year":1943,"mintmark":"D","denomination":"penny","series":"Lincoln","title":"Lincoln Wheat Cent - Steel!"}|US coin 1943 D Lincoln 1 cent Wheat
{"year":1916,"mintmark":"","denomination":"dime","series":"Mercury","title":"The Mercury Dime of 1916, a rare key date"}|US coin 1916 Mercury 10 cent Dime key
{"year":1942,"denomination":"half_dollar","series":"Walking Liberty","title":"Walking Liberty Half Dollar AU Details Cleaned Toned Beautiful Coin"}|US coin 1942 Walking Liberty half dollar AU
{"title":"us COIN Coin coin"}|US coin
{}|US coin
CASES
}

bad_base() {
	local rc
	job ebay_finding | EBAY_API_BASE=http://example.com ebay-fetch >out.ndjson 2>err.txt
	rc=$?
	expect_eq "status" 78 "$rc" || return 1
	expect_grep "loopback" err.txt
}

# An error about EBAY_API_BASE comes before any job: the secrets must be known by then.
bad_base_shows_no_secret() {
	local rc
	job ebay_finding | EBAY_API_BASE="http://robot:Pa55word-9x@$EBAY_APP_ID.example.com" ebay-fetch >out.ndjson 2>err.txt
	rc=$?
	expect_eq "status" 78 "$rc" || return 1
	expect_grep "loopback" err.txt || return 1
	if grep -q -e "$EBAY_APP_ID" -e Pa55word-9x err.txt; then
		cat err.txt
		return 1
	fi
}

ad_hoc_query() {
	fresh
	ebay-fetch --query '1921 S morgan dollar' --api browse >out.ndjson 2>/dev/null || return 1
	expect_eq "items" 15 "$(jq -r 'select(.kind == "job_end") | .items' out.ndjson)" || return 1
	expect_eq "ids" null "$(jq -r 'select(.kind == "price_point") | .job_id' out.ndjson | sort -u)" || return 1
	expect_grep 'q=1921%20S%20morgan%20dollar' "$fake_log"
}

adhoc_pipeline() {
	fresh
	ebay-fetch --query '1921 S morgan dollar' --api browse 2>/dev/null | filter-junk | normalize-usd | valuate >out.ndjson || return 1
	expect_eq "valuation" "11 2 ask" "$(jq -r 'select(.kind == "valuation") | "\(.comps) \(.outliers) \(if .sold == 0 then "ask" else "sold" end)"' out.ndjson)"
}

# shellcheck source=tests/conventions.sh
. "$here/conventions.sh"
run_convention_tests ebay-fetch
run_test "Finding: the recorded pages give exactly the expected points" finding_exact
run_test "Finding: items that ended without a sale are skipped" finding_skips_unsold
run_test "Finding: every sold item of the manifest, as listed" against_manifest finding ebay_finding sold
run_test "Insights: every item of the manifest, amounts as listed" against_manifest insights ebay_insights sold
run_test "Browse: every item of the manifest, amounts as listed" against_manifest browse ebay_browse ask
run_test "Insights: quantity, pagination by offset, marketplace header, comma query" insights_details
run_test "Browse: shipping as listed, buying options filter" browse_details
run_test "a date, amount or bytes PostgreSQL would refuse cost no other point" bad_fields_mapped_safely
run_test "a job of another adapter type: a job_error, not retryable, and on to the next" job_it_cannot_do
run_test "Insights and Browse paging, after 500s and cut bodies, clean under valgrind" rest_paging_memory
run_test "pagination stops at --max-pages" max_pages
run_test "429 with Retry-After: one retry, after the time it asks" retry_429_honours_retry_after
run_test "Retry-After past EBAY_MAX_RETRY_AFTER_SECONDS: a retryable job_error at once" retry_after_capped
run_test "500 twice, then the page" retry_500_then_ok
run_test "500 every time: 4 tries, then a retryable job_error and no points" retries_exhausted
run_test "Finding's invalid app id: no retry, job_error not retryable" finding_bad_app_id
EBAY_TIMEOUT_SECONDS=1 run_test "a response slower than the timeout is retried" browse_fault_then_ok \
	'{"path": "/buy/browse", "kind": "slow", "seconds": 3}' "Timeout was reached"
run_test "a body cut short is retried" browse_fault_then_ok '{"path": "/buy/browse", "kind": "cut"}'
run_test "a body that is not JSON at every try is named so, not HTTP 502" garbled_every_try
run_test "an answer larger than EBAY_MAX_RESPONSE_BYTES fails the job at once, with or without a length" too_large
run_test "the token endpoint down is told as an outage, retryable, not as bad keys" token_endpoint_down
run_test "credentials echoed in eBay's error text are masked in job_error and recordings" secrets_echoed_by_ebay
run_test "invalid JSON is retried" browse_fault_then_ok '{"path": "/buy/browse", "kind": "invalid_json"}'
run_test "401 once: a fresh token, then OK" unauthorized_once_refreshes_token
run_test "401 after a fresh token: job_error, not retryable" unauthorized_twice_fails
run_test "Insights not approved: a plain job_error, not retryable" insights_not_approved
run_test "one token for many calls and processes, cached with mode 0600" token_cached_across_calls_and_processes
run_test "a token about to expire is renewed" expired_token_renewed
run_test "two processes share the rate limit" shared_rate_limit
run_test "the daily quota stops before eBay's limit, retryable after Pacific midnight" daily_quota
run_test "app id, cert id and token appear in no output, log or record" secrets_never_shown
run_test "a source's secrets in its config: used, and in no record, log or recording" config_secrets_removed
run_test "the keyset echoed as Basic base64 is masked in job_error, log and recordings" basic_credentials_echoed_are_masked
run_test "each secret remembered once: memory stays flat over jobs with the same secrets" secrets_registered_once
run_test "the shared rate limit's next slot far ahead (clock set back, garbage): no call waits for it" rate_state_far_ahead
run_test "replay: out-of-range numbers in a recording are a broken recording, said so" replay_numbers_checked
run_test "control characters from eBay are escaped in text logs: no forged line, no terminal escape" control_characters_logged_escaped
run_test "token cache: no write through a planted symlink or 0644 file, no read of an unsafe one" token_cache_files_safe
run_test "the rate-limit state file is never opened through a symlink" rate_file_not_through_symlink
run_test "recordings: 0600 files in a 0700 folder, never written through a symlink" recordings_private
run_test "--replay reproduces a --record run with no network" record_then_replay
run_test "--replay without a recording: a job_error that says so" replay_missing
run_test "--print-query: query construction, table-driven" print_query_cases
run_test "EBAY_API_BASE over plain HTTP must be loopback" bad_base
run_test "an EBAY_API_BASE error shows no secret" bad_base_shows_no_secret
run_test "--query: ad-hoc use with no job input" ad_hoc_query
run_test "ad hoc: ebay-fetch --query | filter-junk | normalize-usd | valuate" adhoc_pipeline
