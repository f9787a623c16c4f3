#!/usr/bin/env bash
# stages: coin-pricer
# coin-pricer, the command for people, against a real PostgreSQL and the fake eBay server:
# price (replay and fake eBay), add, the worker, status, show, requeue, export, plot,
# doctor, the row-level security migration, make install, the systemd unit, the image.
# shellcheck source=tests/lib.sh disable=SC2016 # dollars in single quotes are dollars
. "$(dirname "$0")/lib.sh"

start_services
export WORKER_ID=t-cli
cp=$root/scripts/coin-pricer
export COIN_PRICER_STAGES=$BIN
export COIN_PRICER_STATE_DIR=$scratch/state
replay=$root/tests/data/replay
seed_intake=7a2e3d4c-0000-4000-8000-000000000001
seed_job=6f1d2c3b-0000-4000-8000-000000000001

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
fault() { curl -s -X POST -d "$1" "$EBAY_API_BASE/_fault" >/dev/null; }
reset() {
	fault '{"clear": true}'
	sql -c "TRUNCATE sources, intakes, fx_rates CASCADE" && sql -f "$here/data/seed.sql"
}
# A worked intake: the seed's job run by the worker.
worked() {
	reset || return 1
	"$cp" worker --once --env /dev/null 2>worker.err || { cat worker.err; return 1; }
}

help_everywhere() {
	local c out
	"$cp" --help >out.txt || return 1
	expect_grep '^usage: coin-pricer \[--version\]' out.txt || return 1
	expect_eq "--version" "coin-pricer 0.1.0" "$("$cp" --version)" || return 1
	expect_eq "-V, as the stages take it" "coin-pricer 0.1.0" "$("$cp" -V 2>&1)" || return 1
	# worker and migrate exec their script: the scratch folder goes first, not left in TMPDIR.
	mkdir tmp
	TMPDIR=$PWD/tmp "$cp" worker --version >/dev/null || return 1
	TMPDIR=$PWD/tmp "$cp" migrate postgresql://nobody@127.0.0.1:1/none >/dev/null 2>&1
	expect_eq "left in TMPDIR" "" "$(ls tmp)" || return 1
	for c in price add status show requeue export plot doctor sources migrate; do
		out=$("$cp" "$c" --help) || { echo "$c --help failed"; return 1; }
		[[ $out == "usage: coin-pricer $c"* ]] || { echo "$c --help: $out"; return 1; }
	done
	expect_eq "plot --version" "coin-pricer 0.1.0" "$("$cp" plot --version)" || return 1
	expect_eq "help plot" "$("$cp" plot --help)" "$("$cp" help plot)" || return 1
	"$cp" frobnicate 2>err.txt
	expect_eq "unknown command" 64 $? || return 1
	expect_grep "no such command: frobnicate" err.txt || return 1
	"$cp" status --bogus 2>err.txt
	expect_eq "wrong option" 64 $? || return 1
	expect_grep "^usage: coin-pricer status" err.txt || return 1
	"$cp" >/dev/null 2>&1
	expect_eq "no command" 64 $?
}

parses_coins() {
	local text want got
	while IFS='|' read -r text want; do
		# shellcheck disable=SC2086 # the words of the coin, as a person types them
		got=$("$cp" price --print-job $text | jq -c '.attribution | [.year, .mintmark, .series, .denomination, .grade]')
		expect_eq "$text" "$want" "$got" || return 1
	done <<-'EOF'
		1921-S Morgan dollar MS63|[1921,"S","Morgan","dollar","MS63"]
		1944 D Mercury dime|[1944,"D","Mercury","dime",null]
		1935-S walking liberty half dollar Gem BU|[1935,"S","Walking Liberty","half_dollar","Gem BU"]
		1878-CC Morgan $1 PCGS MS-64 DMPL|[1878,"CC","Morgan","dollar","PCGS MS-64 DMPL"]
		1909 S VDB Lincoln cent VF-20|[1909,"S","VDB Lincoln","penny","VF20"]
		1964 Kennedy half Proof 69 DCAM|[1964,null,"Kennedy","half_dollar","Proof 69 DCAM"]
		1916-D Mercury 10 cent Good-4|[1916,"D","Mercury","dime","Good-4"]
		1921 Peace dollar NGC 64|[1921,null,"Peace","dollar","NGC 64"]
		1921 P Morgan dollar ef 45|[1921,"P","Morgan","dollar","XF45"]
	EOF
	got=$("$cp" price --print-job --year 1922 --mint d --series Peace --denomination '$1' --grade 'AU 58' 1923)
	expect_eq "options win" '{"kind":"job","job_id":null,"intake_id":null,"source_id":null,"attempt":1,"source":{"name":"eBay","adapter_type":"ebay_insights","reputation_weight":1,"config":{}},"attribution":{"year":1922,"mintmark":"D","denomination":"dollar","series":"Peace","title":null,"grade":"AU 58","variety":null},"rules":[],"fx_rates":{}}' "$got" || return 1
	"$cp" price --print-job 1921 --mint X 2>err.txt
	expect_eq "bad mint" 64 $? || return 1
	"$cp" price --print-job 2>err.txt
	expect_eq "no coin" 64 $? || return 1
	expect_grep "which coin" err.txt || return 1
	# A grade valuate cannot read is refused, not priced by the plain median unsaid.
	for text in "1921 Morgan dollar MS99" "1921 Morgan dollar --grade MS63/64" "1921 Morgan --grade Nice"; do
		# shellcheck disable=SC2086 # the words of the coin, as a person types them
		"$cp" price --print-job $text >out.txt 2>err.txt
		expect_eq "$text: status" 64 $? || return 1
		expect_grep "not a grade: " err.txt || return 1
	done
	"$cp" add --max-attempts 0 1921 Morgan dollar >out.txt 2>err.txt
	expect_eq "--max-attempts 0" 64 $? || return 1
	expect_grep "max-attempts needs 1 or more" err.txt
}

price_replay() {
	env -u EBAY_APP_ID -u EBAY_CERT_ID -u EBAY_API_BASE "$cp" price 1921-S Morgan dollar \
		--api finding --category 39464 --replay "$replay" --quiet >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_eq "header" "1921-S Morgan dollar" "$(sed -n 1p out.txt)" || return 1
	expect_eq "median" '  Median price:   $48.04   (16 comps)' "$(sed -n 2p out.txt)" || return 1
	expect_eq "range" '  Range p10-p90:  $39.25 - $74.50, mean $53.62' "$(sed -n 3p out.txt)" || return 1
	expect_grep '^  Confidence:     7/10 (comps 2, reputation 2, sold ratio 2, spread 1)$' out.txt || return 1
	expect_grep '^Comps (18 considered; outliers marked):$' out.txt || return 1
	expect_eq "outliers" 2 "$(grep -c '\[outlier\]$' out.txt)" || return 1
	expect_grep '^Left out (11):$' out.txt || return 1
	expect_grep '^       \$9.99  exclude_keywords:replica        REPLICA 1921-S' out.txt || return 1
	expect_grep '^      \$78.00  MS63     2026-11-02  sold  1921-S Morgan Silver Dollar PCGS MS63$' out.txt || return 1
	# No stage noise (--quiet: the progress line comes whenever the machine is slow).
	[ ! -s err.txt ] || { echo "stderr:"; cat err.txt; return 1; }
	# With a grade: priced at the grade when valuate can, the plain median otherwise.
	"$cp" price 1921-S Morgan dollar MS63 --api finding --category 39464 --replay "$replay" >out.txt 2>err.txt ||
		{ cat err.txt; return 1; }
	expect_eq "graded header" "1921-S Morgan dollar, MS63" "$(sed -n 1p out.txt)" || return 1
	grep -Eq '^  (Price at MS63|Median price): +\$[0-9,]+\.[0-9]{2} ' out.txt || { cat out.txt; return 1; }
}

price_json_and_plot() {
	"$cp" price 1921-S Morgan dollar --api finding --category 39464 --replay "$replay" --json >p.ndjson || return 1
	expect_eq "kinds" '{"job":1,"job_end":1,"price_point":29,"valuation":1}' \
		"$(jq -sc 'group_by(.kind) | map({(.[0].kind): length}) | add' p.ndjson)" || return 1
	expect_eq "median" 4804 "$(jq 'select(.kind == "valuation") | .median_cents' p.ndjson)" || return 1
	# Every record as its schema says. An ad-hoc job has no ids (null, as in every other
	# kind's schema) and, with no worker, no worker_id at all.
	/usr/bin/python3 "$here/validate.py" p.ndjson || return 1
	expect_eq "worker_id" false "$(jq -s '.[0] | has("worker_id")' p.ndjson)" || return 1
	expect_eq "printed" "out.png" "$("$cp" plot - --output out.png <p.ndjson)" || return 1
	expect_eq "png" "89504e470d0a1a0a" "$(head -c 8 out.png | od -An -tx1 | tr -d ' \n')" || return 1
	"$cp" plot - --format svg -o - <p.ndjson >out.svg || return 1
	xmllint --noout out.svg || return 1
	expect_eq "svg root" svg "$(python3 -c 'import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().tag.split("}")[-1])' out.svg)" || return 1
	echo '{"kind":"valuation"}' | "$cp" plot - -o none.png 2>err.txt
	expect_eq "nothing to plot" 65 $? || return 1
	"$cp" plot - --format gif </dev/null 2>err.txt
	expect_eq "bad format" 64 $?
}

# A failure of plot's gnuplot with the output to a file: gnuplot's status and message, not
# a full disk (the exit path, under write_plot's IFS, killed the output's copier); an output
# folder that is not there is named as such, before gnuplot's parse error in a scratch file.
plot_failures_said_as_they_are() {
	local rc
	"$cp" price 1921-S Morgan dollar --api finding --category 39464 --replay "$replay" --json >p.ndjson || return 1
	mkdir fake && printf '#!/bin/sh\necho "gnuplot: broken" >&2\nexit 1\n' >fake/gnuplot && chmod +x fake/gnuplot
	PATH=$PWD/fake:$PATH "$cp" plot - --output out.svg <p.ndjson >out.txt 2>err.txt
	rc=$?
	expect_eq "gnuplot failed: status" 70 "$rc" || { cat err.txt; return 1; }
	expect_grep 'gnuplot failed' err.txt || return 1
	expect_eq "a full disk said" "" "$(grep 'disk' err.txt)" || return 1
	"$cp" plot - --output "$PWD/nodir/x.svg" <p.ndjson >out.txt 2>err.txt
	rc=$?
	expect_eq "no folder: status" 74 "$rc" || return 1
	expect_eq "no folder: message" "coin-pricer: cannot write $PWD/nodir/x.svg: no folder $PWD/nodir" "$(cat err.txt)"
}

# What price says when it cannot price: a wrong LOG_LEVEL is not a wrong grade; a --replay
# folder that is not there is a usage error; a recording of other requests names the
# options it was made with.
price_failures_say_what_to_do() {
	local rc
	LOG_LEVEL=loud "$cp" price 1921-S Morgan dollar VF --api finding --category 39464 --replay "$replay" >out.txt 2>err.txt
	rc=$?
	expect_eq "LOG_LEVEL=loud: status" 78 "$rc" || { cat err.txt; return 1; }
	expect_grep 'LOG_LEVEL=loud is not a log level' err.txt || return 1
	expect_eq "said to be a grade" "" "$(grep 'not a grade' err.txt)" || return 1
	"$cp" price 1921-S Morgan dollar VF --api finding --category 39464 --replay "$PWD/none" >out.txt 2>err.txt
	rc=$?
	expect_eq "--replay none: status" 64 "$rc" || return 1
	expect_grep "^coin-pricer: --replay: no such folder: $PWD/none\$" err.txt || return 1
	"$cp" price 1921-S Morgan dollar VF --replay "$replay" >out.txt 2>err.txt
	rc=$?
	expect_eq "other requests: status" 69 "$rc" || return 1
	expect_grep '^  --api finding --category 39464 (query "US coin 1921 S Morgan dollar")$' err.txt || return 1
	# Said once, by coin-pricer: ebay-fetch's own line for the job's error is not repeated,
	# in either log format.
	expect_eq "the error, once" 1 "$(grep -c 'no recorded response' err.txt)" || { cat err.txt; return 1; }
	expect_grep "^coin-pricer: eBay: eBay did not answer: no recorded response for this request in $replay\$" err.txt || return 1
	LOG_FORMAT=json "$cp" price 1921-S Morgan dollar VF --replay "$replay" >out.txt 2>err.txt
	expect_eq "the error, once (json logs)" 1 "$(grep -c 'no recorded response' err.txt)" || { cat err.txt; return 1; }
	mkdir empty
	"$cp" price 1921-S Morgan dollar VF --replay "$PWD/empty" >out.txt 2>err.txt
	expect_grep "empty holds no recordings (ebay-fetch --record DIR makes them)" err.txt
}

# A signal while coin-pricer makes its scratch folder (a slow mktemp holds it there, as a
# busy host does) is held until the folder's removal is set up: the folder is not left.
scratch_not_left_by_a_signal() {
	scratch_not_left "TERM HUP" folder "$cp" price 1921-S Morgan dollar --print-job
}

# Fields valuate adds in grade mode are shown when present (and omitted when not).
show_graded_valuation() {
	printf '%s\n' '{"kind":"job","attribution":{"year":1921,"mintmark":"S","series":"Morgan","denomination":"dollar","grade":"MS63"}}' \
		'{"kind":"price_point","external_id":"1","price_type":"sold","price_cents":8000,"sold_at":"2026-11-02T00:00:00Z","grade":"MS63","filtered_out":false,"title":"a"}' \
		'{"kind":"price_point","external_id":"2","price_type":"sold","price_cents":500,"filtered_out":true,"filter_reason":"exclude_keywords:replica","title":"b"}' \
		'{"kind":"valuation","candidates":1,"outliers":0,"comps":1,"sold":1,"ask":0,"p10_cents":7000,"median_cents":8000,"p90_cents":9000,"mean_cents":8000,"confidence":3,"confidence_parts":{"comps":0,"reputation":2,"sold_ratio":2,"spread":0,"capped":"few_comps"},"explanation":"x.","method":"grade","target_grade":"MS63","n_eff":1.0,"grades":{"MS63":1},"tiers":{"quick_sale":7200,"fair_low":7600,"fair_high":8400,"premium":8800}}' |
		"$cp" show - >out.txt || return 1
	cat >want.txt <<-'EOF'
		1921-S Morgan dollar, MS63
		  Price at MS63:  $80.00   (1 comps)
		  Range p10-p90:  $70.00 - $90.00, mean $80.00
		  Tiers:          quick sale $72.00 · fair $76.00-$84.00 · premium $88.00
		  Confidence:     3/10 (comps 0, reputation 2, sold ratio 2, spread 0, capped: few_comps)
		  Why:            x.
		  Method:         grade (effective comps 1)
		  Comps by grade: MS63 1
		  Counted:        1 candidates, 0 outliers, 1 comps (1 sold, 0 asking)

		Comps (1 considered):
		       PRICE  GRADE    SOLD        TYPE  TITLE
		      $80.00  MS63     2026-11-02  sold  a

		Left out (1):
		       PRICE  REASON                          TITLE
		       $5.00  exclude_keywords:replica        b
	EOF
	expect_file_eq want.txt out.txt
}

price_fake_ebay() {
	reset || return 1
	"$cp" price 1921-S Morgan dollar --api insights --quiet >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep '^  Median price: ' out.txt || return 1
	expect_grep '"path": "/buy/marketplace_insights' "$scratch/fake.log" || return 1
	# Progress on stderr once it takes more than a moment.
	fault '{"path": "/buy/marketplace_insights", "kind": "slow", "seconds": 2, "times": 1}'
	"$cp" price 1921-S Morgan dollar --api insights >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_eq "progress" "coin-pricer: asking eBay (insights) for sales of 1921-S Morgan dollar..." "$(cat err.txt)" || return 1
	# No credentials: a configuration error that says what to set.
	env -u EBAY_APP_ID -u EBAY_CERT_ID "$cp" price 1921-S Morgan dollar >out.txt 2>err.txt
	expect_eq "no credentials" 78 $? || return 1
	expect_grep "eBay: no eBay credentials: set EBAY_APP_ID" err.txt || return 1
	# Not approved for Insights: the job's error, not retryable.
	fault '{"path": "/buy/marketplace_insights", "kind": "not_approved", "times": 5}'
	"$cp" price 1921-S Morgan dollar --api insights >out.txt 2>err.txt
	expect_eq "not approved" 69 $? || { cat err.txt; return 1; }
	expect_grep "coin-pricer: eBay: " err.txt || return 1
	# eBay asks to wait longer than a job may: there is no queue here, so say when to retry.
	fault '{"clear": true}'
	fault '{"path": "/buy/marketplace_insights", "status": 429, "retry_after": 120, "times": 5}'
	"$cp" price 1921-S Morgan dollar --api insights >out.txt 2>err.txt
	expect_eq "asked to wait" 75 $? || { cat err.txt; return 1; }
	expect_grep '^coin-pricer: eBay: .*; try again in 120 s$' err.txt || return 1
	if grep -q '^coin-pricer: .*waits in the queue' err.txt; then echo "a queue that price has not"; return 1; fi
	fault '{"clear": true}'
}

add_creates_rows() {
	local out intake job
	reset || return 1
	sql -c "INSERT INTO sources (name, adapter_type, enabled) VALUES ('eBay Browse', 'ebay_browse', true),
		('Off', 'ebay_browse', false)" || return 1
	out=$("$cp" add 1921-S Morgan dollar MS63 --priority 7) || return 1
	intake=$(sed -n 's/^intake //p' <<<"$out")
	expect_eq "lines" 3 "$(wc -l <<<"$out")" || return 1
	expect_eq "attribution" "1921|S|dollar|Morgan||MS63|" \
		"$(sql -c "SELECT year, mintmark, denomination, series, title, grade, variety FROM attributions WHERE intake_id = '$intake'")" || return 1
	expect_eq "jobs" "eBay Browse|pending|7
eBay Sold Listings|pending|7" "$(sql -c "SELECT s.name, j.status, j.priority FROM scrape_jobs j JOIN sources s ON s.id = j.source_id
		WHERE j.intake_id = '$intake' ORDER BY 1")" || return 1
	job=$(sed -n 's/^job \([^ ]*\) eBay Browse$/\1/p' <<<"$out")
	expect_eq "job id printed" "eBay Browse" "$(sql -c "SELECT s.name FROM scrape_jobs j JOIN sources s ON s.id = j.source_id WHERE j.id = '$job'")" || return 1
	# One source by name; quotes in the text go in as text.
	out=$("$cp" add --source 'eBay Browse' --series "O'Brien'); DROP TABLE intakes; --" --year 1900) || return 1
	expect_eq "one job" 1 "$(grep -c '^job ' <<<"$out")" || return 1
	expect_eq "series kept" "O'Brien'); DROP TABLE intakes; --" "$(sql -c "SELECT series FROM attributions WHERE year = 1900")" || return 1
	# A disabled or unknown source: nothing is created.
	"$cp" add 1921 Morgan dollar --source Off 2>err.txt
	expect_eq "disabled source" 66 $? || return 1
	expect_grep "no enabled source named: Off" err.txt || return 1
	expect_eq "intakes" 3 "$(sql -c "SELECT count(*) FROM intakes")" || return 1
	sql -c "UPDATE sources SET enabled = false" || return 1
	"$cp" add 1921 Morgan dollar 2>err.txt
	expect_eq "no source" 78 $? || return 1
	expect_eq "intakes still" 3 "$(sql -c "SELECT count(*) FROM intakes")"
}

worker_status_show() {
	worked || return 1
	"$cp" status >out.txt || return 1
	expect_eq "jobs" "Jobs: pending 0, running 0, completed 1, failed 0, cancelled 0 (0 pending due now)" "$(sed -n 1p out.txt)" || return 1
	expect_grep '^Oldest pending: none$' out.txt || return 1
	expect_grep '^  t-cli  *0  *20[0-9-]*T' out.txt || return 1
	"$cp" status --json >s.json || return 1
	expect_eq "workers" '[{"worker_id":"t-cli","running":0}]' "$(jq -c '[.workers[] | {worker_id, running}]' s.json)" || return 1
	"$cp" show "${seed_intake:0:8}" >show.txt || return 1
	expect_eq "intake line" "intake $seed_intake" "$(sed -n 1p show.txt)" || return 1
	expect_eq "coin" "1921-S Morgan dollar, VF" "$(sed -n 2p show.txt)" || return 1
	expect_grep '^Left out (11):$' show.txt || return 1
	# Grades lowest first, as valuate writes them (the database keeps no key order).
	expect_eq "comps by grade" "$("$cp" export "$seed_intake" | "$BIN/valuate" |
		jq -r 'select(.kind == "valuation") | .grades | to_entries | map("\(.key) \(.value)") | join(", ")')" \
		"$(sed -n 's/^  Comps by grade: *//p' show.txt)" || return 1
	"$cp" show "$seed_intake" --json >show.json || return 1
	expect_eq "json" '[29,1,"S",11]' "$(jq -c '[(.points | length), (.history | length), .attribution.mintmark, ([.points[] | select(.filtered_out)] | length)]' show.json)" || return 1
	expect_eq "median" "$(sql -c "SELECT median_cents FROM valuations")" "$(jq .valuation.median_cents show.json)" || return 1
	"$cp" show 00000000-0000-4000-8000-00000000abcd 2>err.txt
	expect_eq "no such intake" 66 $? || return 1
	"$cp" show "x'; DROP TABLE intakes" 2>err.txt
	expect_eq "not an id" 64 $?
}

# After worker_status_show: the seed's job completed.
failures_and_requeue() {
	local out
	sql -c "UPDATE scrape_jobs SET status = 'failed', attempts = 5, error_message = 'eBay said no'" || return 1
	"$cp" status >out.txt || return 1
	expect_grep "^  job $seed_job  intake $seed_intake  after 5 attempts: eBay said no$" out.txt || return 1
	out=$("$cp" requeue --failed) || return 1
	expect_eq "printed" "requeued $seed_job" "$out" || return 1
	expect_eq "row" "pending|0||" "$(sql -c "SELECT status, attempts, error_message, worker_id FROM scrape_jobs")" || return 1
	expect_eq "log" 1 "$(sql -c "SELECT count(*) FROM scrape_job_logs WHERE message = 'requeued by coin-pricer'")" || return 1
	# A running job is left to its worker; a completed one named by prefix goes back.
	sql -c "UPDATE scrape_jobs SET status = 'running', worker_id = 'w'" || return 1
	out=$("$cp" requeue "${seed_job:0:8}" 2>err.txt) || return 1
	expect_eq "running left" "" "$out" || return 1
	expect_grep "is running; left alone" err.txt || return 1
	sql -c "UPDATE scrape_jobs SET status = 'completed'" || return 1
	expect_eq "completed requeued" "requeued $seed_job" "$("$cp" requeue "${seed_job:0:8}")" || return 1
	"$cp" requeue 2>/dev/null
	expect_eq "nothing named" 64 $? || return 1
	"$cp" requeue 00000000-0000-4000-8000-00000000abcd 2>/dev/null
	expect_eq "no such job" 66 $?
}

export_points() {
	"$cp" export "$seed_intake" >pts.ndjson || return 1
	expect_eq "points" 29 "$(jq -s 'map(select(.kind == "price_point")) | length' pts.ndjson)" || return 1
	expect_eq "shape" '["price_point","USD","sold"]' \
		"$(jq -sc 'map(select(.kind == "price_point")) | .[0] | [.kind, .currency, .price_type]' pts.ndjson)" || return 1
	# Records the stages accept as they are, each job's points after its job record (with
	# the attribution and no source config), so that a plain valuate prices at the grade.
	/usr/bin/python3 "$here/validate.py" pts.ndjson || return 1
	expect_eq "kinds" "job price_point" "$(jq -r .kind pts.ndjson | uniq | paste -sd ' ')" || return 1
	expect_eq "job record" '["VF",false]' "$(jq -c 'select(.kind == "job") | [.attribution.grade, (.source | has("config"))]' pts.ndjson)" || return 1
	expect_eq "re-priced by valuate alone" "$(sql -c "SELECT median_cents FROM valuations")" \
		"$("$BIN/valuate" <pts.ndjson | jq 'select(.kind == "valuation") | .median_cents')" || return 1
	# The export re-prices to the stored valuation, at the attribution's grade.
	expect_eq "re-priced" "$(sql -c "SELECT median_cents FROM valuations")" \
		"$("$BIN/valuate" --grade "$(sql -c "SELECT grade FROM attributions WHERE intake_id = '$seed_intake'")" \
			--series Morgan <pts.ndjson | jq 'select(.kind == "valuation") | .median_cents')" || return 1
	"$cp" export "$seed_intake" --csv >pts.csv || return 1
	expect_eq "csv lines" 30 "$(wc -l <pts.csv)" || return 1
	expect_eq "csv header" '"external_id","source_id","price_type","amount","currency","price_cents","shipping_cents","sold_at","grade","filtered_out","filter_reason","title","url"' "$(head -n 1 pts.csv)" || return 1
	python3 -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); assert all(len(r) == 13 for r in rows), rows' pts.csv
}

plot_intake() {
	"$cp" plot "$seed_intake" >/dev/null || return 1
	expect_eq "default name" "89504e47" "$(head -c 4 "coin-${seed_intake:0:8}.png" | od -An -tx1 | tr -d ' \n')" || return 1
	"$cp" plot "$seed_intake" --output p.svg >/dev/null || return 1
	xmllint --noout p.svg || return 1
	# The seed coin is priced at its grade: no Tukey fences then, the median and tiers are drawn.
	expect_eq "method" grade "$(sql -c "SELECT method FROM valuations")" || return 1
	grep -q "median \\\$$(sql -c "SELECT to_char(median_cents / 100.0, 'FM999990.00') FROM valuations")" p.svg ||
		{ echo "no median line in the SVG"; return 1; }
	grep -q 'quick sale' p.svg || { echo "no tiers in the SVG"; return 1; }
	if grep -q 'Tukey fences' p.svg; then echo "Tukey fences on a graded valuation"; return 1; fi
	# Each kind of reason for leaving points out, with its count.
	sql -F ' ' -c "SELECT split_part(filter_reason, ':', 1), count(*) FROM price_points
		WHERE intake_id = '$seed_intake' AND filtered_out GROUP BY 1" >reasons.txt || return 1
	[ -s reasons.txt ] || { echo "no filtered points"; return 1; }
	while read -r reason n; do
		grep -q "left out: $reason ($n)" p.svg || { echo "no 'left out: $reason ($n)' in the SVG"; return 1; }
	done <reasons.txt
}

doctor_checks() {
	reset || return 1
	"$cp" doctor >out.txt 2>&1 || { cat out.txt; return 1; }
	expect_grep '^  ok    a token from http://127.0.0.1' out.txt || return 1
	expect_grep '^  ok    role coin_pricer bypasses row-level security$' out.txt || return 1
	expect_grep '^  ok    row-level security on every table$' out.txt || return 1
	expect_grep '^All is well.$' out.txt || return 1
	expect_grep '^  ok    the worker would start (pipeline.sh --check)$' out.txt || return 1
	# A keyset with a quote and a backslash goes to eBay as it is (it broke curl's config).
	EBAY_CERT_ID='PRD-ce"7t\5ecret' "$cp" doctor >out.txt 2>&1
	expect_grep '^  ok    a token from http://127.0.0.1' out.txt || return 1
	expect_grep "Basic $(printf '%s' "$EBAY_APP_ID:PRD-ce\"7t\\5ecret" | base64 -w0)" "$scratch/fake.log" || return 1
	env -u EBAY_APP_ID -u EBAY_CERT_ID "$cp" doctor >out.txt 2>&1
	expect_eq "no credentials" 78 $? || return 1
	expect_grep '^  FIX   EBAY_APP_ID and EBAY_CERT_ID are not set' out.txt || return 1
	# The worker's own start checks, shared: what would make it refuse to start.
	expect_grep '^  FIX   source "eBay Sold Listings" (eBay Finding) needs an application id: set EBAY_APP_ID' out.txt || return 1
	LOG_LEVEL=loud "$cp" doctor >out.txt 2>&1
	expect_eq "bad LOG_LEVEL" 78 $? || return 1
	expect_grep '^  FIX   LOG_LEVEL=loud is not a level' out.txt || return 1
	fault '{"path": "/identity", "kind": "not_approved", "times": 1}'
	fault '{"path": "/identity", "kind": "not_approved", "times": 1}'
	"$cp" doctor >out.txt 2>&1
	expect_eq "refused" 78 $? || return 1
	expect_grep 'refused the credentials (HTTP 400' out.txt || return 1
	fault '{"clear": true}'
	COIN_PRICER_STATE_DIR=/proc/nope "$cp" doctor >out.txt 2>&1
	expect_eq "state folder" 78 $? || return 1
	expect_grep '^  FIX   /proc/nope is not writable' out.txt || return 1
	DATABASE_URL=postgresql://nobody@127.0.0.1:1/none "$cp" doctor >out.txt 2>&1
	expect_eq "no database" 78 $? || return 1
	expect_grep '^  FIX   cannot connect' out.txt || return 1
	# A token endpoint that echoes the keyset, as it is and as the Basic authorization it
	# becomes: neither doctor's own line nor the worker's check that it relays shows it.
	local b64
	b64=$(printf '%s' "$EBAY_APP_ID:$EBAY_CERT_ID" | base64 -w0)
	printf '{"error":"invalid_client %s %s","error_description":"bad client Basic %s"}' \
		"$EBAY_APP_ID" "$EBAY_CERT_ID" "$b64" >echo.json
	sql -c "UPDATE sources SET adapter_type = 'ebay_browse'" || return 1
	fault "{\"path\": \"/identity\", \"kind\": \"body\", \"status\": 401, \"file\": \"$PWD/echo.json\", \"times\": 10}"
	"$cp" doctor >out.txt 2>&1
	expect_eq "keyset echoed" 78 $? || return 1
	fault '{"clear": true}'
	expect_grep 'refused the credentials (HTTP 401: bad client Basic \[redacted\])$' out.txt || return 1
	# (the worker's check shows eBay's error only when it is a code word such as invalid_client)
	expect_grep '^  FIX   source "eBay Sold Listings": eBay refused the credentials (HTTP 401): check' out.txt || return 1
	if grep -q -e "$EBAY_APP_ID" -e "$EBAY_CERT_ID" -e "$b64" out.txt; then
		echo "the keyset shown:"
		grep -e "$EBAY_APP_ID" -e "$EBAY_CERT_ID" -e "$b64" out.txt
		return 1
	fi
}

# The database password is in no argument list (ps shows those to every user of the
# host) and in no message, whatever the failure: refused, unparsable, not a URL at all.
db_password_kept_secret() {
	local real url kv u c rc
	real=$(command -v psql)
	mkdir wrap
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" "PGPASSWORD=$PGPASSWORD" >>"%s/psql.log"\nexec "%s" "$@"\n' "$PWD" "$real" >wrap/psql
	chmod +x wrap/psql
	url=${DATABASE_URL/coin_pricer@/coin_pricer:S3cret%2Fpw@}
	PATH=$PWD/wrap:$PATH DATABASE_URL=$url "$cp" status >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep '^Jobs: ' out.txt || return 1
	expect_grep '^PGPASSWORD=S3cret/pw$' psql.log || return 1
	if grep -v '^PGPASSWORD=' psql.log | grep -q S3cret; then echo "the password in psql's arguments"; return 1; fi
	kv=$(psql -X -At -d "$DATABASE_URL" -c "SELECT format('host=%s port=%s dbname=%s user=%s',
		inet_server_addr(), inet_server_port(), current_database(), current_user)")
	: >psql.log
	PATH=$PWD/wrap:$PATH DATABASE_URL="$kv password=S3cretKV" "$cp" status >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep '^PGPASSWORD=S3cretKV$' psql.log || return 1
	if grep -v '^PGPASSWORD=' psql.log | grep -q S3cret; then echo "the conninfo password in psql's arguments"; return 1; fi
	# The two other ways to write one: a URI's ?password= and a conninfo's quoted value.
	: >psql.log
	PATH=$PWD/wrap:$PATH DATABASE_URL="$DATABASE_URL?password=S3cret%2FQP&sslmode=disable" "$cp" status >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep '^PGPASSWORD=S3cret/QP$' psql.log || return 1
	PATH=$PWD/wrap:$PATH DATABASE_URL="$kv password='S3cret Q\'T'" "$cp" status >out.txt 2>err.txt || { cat err.txt; return 1; }
	expect_grep "^PGPASSWORD=S3cret Q'T\$" psql.log || return 1
	if grep -v '^PGPASSWORD=' psql.log | grep -q S3cret; then echo "a password in psql's arguments:"; cat psql.log; return 1; fi
	for u in 'postgresql://bob:S3cretPW@127.0.0.1:1/db' 'postgresql://bob:S3cretPW@[::1/db' \
		'postgresql://bob:S3cretPW@127.0.0.1:1/db?sslmode=bogus' 'postgresql://bob:S3cret%zzPW@127.0.0.1/db' \
		'host=127.0.0.1 port=1 password=S3cretPW' "host=127.0.0.1 password='S3cret PW' port=1" 'S3cretPW'; do
		for c in status doctor; do
			DATABASE_URL=$u "$cp" "$c" >out.txt 2>&1
			rc=$?
			[ "$rc" = 69 ] || [ "$rc" = 78 ] || { echo "$c with $u: exit $rc"; cat out.txt; return 1; }
			if grep -q S3cret out.txt; then echo "$c with $u shows the password:"; cat out.txt; return 1; fi
		done
	done
	DATABASE_URL='postgresql://bob:S3cretPW@127.0.0.1:1/db' "$cp" status 2>err.txt
	expect_grep '^coin-pricer: cannot reach the database (DATABASE_URL):$' err.txt
}

# A database without the tables: every command that reads it says to migrate, exit 78
# (it was psql's "relation does not exist" and exit 3, or 66 "no such intake").
not_migrated() {
	local url c
	sql -c "DROP DATABASE IF EXISTS t_empty" -c "CREATE DATABASE t_empty" || return 1
	url=${DATABASE_URL%/*}/t_empty
	for c in status sources "show abcd" "add 1921 Morgan dollar" "requeue --failed" "export abcd"; do
		# shellcheck disable=SC2086 # a command and its arguments
		DATABASE_URL=$url "$cp" $c >out.txt 2>err.txt
		expect_eq "$c: status" 78 $? || return 1
		expect_eq "$c: message" "coin-pricer: the database has no coin-pricer tables: run coin-pricer migrate (or scripts/migrate.sh)" "$(cat err.txt)" || return 1
	done
	sql -c "DROP DATABASE t_empty"
}

# plot - draws records anyone may have written (a capture, a bug report): text from them
# goes into the gnuplot program only without quotes, backquotes or newlines, so that a
# reason, a tier's name or a confidence cannot close a string and call system().
plot_input_runs_nothing() {
	jq -nc --arg d "$PWD" '
		{kind: "price_point", price_cents: 100, filtered_out: true,
		 filter_reason: "x (1)\u0027, system(\"touch \($d)/pwned1\") title \u0027y"},
		{kind: "price_point", price_cents: 200, sold_at: "2026-11-02T00:00:00Z"},
		{kind: "valuation", median_cents: 150, p10_cents: 100, p90_cents: 200,
		 confidence: "3\"; system(\"touch \($d)/pwned2\"); #",
		 tiers: {("q\u0027, system(\"touch \($d)/pwned3\") title \u0027z"): 150, ("a`touch \($d)/pwned4`\nline\tx"): 120}}' >evil.ndjson
	"$cp" plot - --output p.svg <evil.ndjson >out.txt 2>err.txt || { cat err.txt; return 1; }
	xmllint --noout p.svg || return 1
	expect_eq "files a command made" "" "$(find . -name 'pwned*')"
}

# The migration turns RLS on everywhere: the owner still sees every row, a role with
# GRANTs but no policy sees none, and doctor says so.
row_level_security() {
	local url
	reset || return 1
	expect_eq "tables without RLS" "" "$(sql -c "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
		AND relkind = 'r' AND NOT relrowsecurity")" || return 1
	sql -f "$root/schemas/sql/005_row_level_security.sql" || return 1
	sql -c "DROP ROLE IF EXISTS t_reader; CREATE ROLE t_reader LOGIN NOBYPASSRLS;
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO t_reader" || return 1
	url=${DATABASE_URL/coin_pricer@/t_reader@}
	expect_eq "owner sees" 1 "$(sql -c "SELECT count(*) FROM sources")" || return 1
	expect_eq "reader sees nothing" 0 "$(psql -X -At -d "$url" -c "SELECT count(*) FROM sources")" || return 1
	DATABASE_URL=$url "$cp" doctor >out.txt 2>&1
	expect_eq "doctor" 78 $? || return 1
	expect_grep '^  FIX   role t_reader does not bypass row-level security and no policy lets it see' out.txt || return 1
	sql -c "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM t_reader; DROP ROLE t_reader" || return 1
	# The README's GRANTs and policies, as written, make a role that can queue and read.
	sed -n '/^CREATE ROLE coin_worker/,/^END \$\$;/p' "$root/README.md" >roles.sql
	[ -s roles.sql ] || { echo "no GRANTs in the README"; return 1; }
	sql -c "DROP OWNED BY coin_worker" 2>/dev/null
	sql -c "DROP ROLE IF EXISTS coin_worker" && sql -f roles.sql || return 1
	url=${DATABASE_URL/coin_pricer@/coin_worker@}
	DATABASE_URL=$url "$cp" add 1921-S Morgan dollar >out.txt || return 1
	expect_eq "jobs as coin_worker" 2 "$(DATABASE_URL=$url "$cp" status --json | jq .jobs.pending)" || return 1
	DATABASE_URL=$url "$cp" doctor >out.txt 2>&1
	expect_grep '^  ok    role coin_worker (no RLS bypass; owns the tables or policies exist)$' out.txt || return 1
	sql -c "DROP OWNED BY coin_worker; DROP ROLE coin_worker"
}

make_install() {
	local dest=$PWD/dest prefix=/opt/cp out
	local san=
	[ "$(basename "$BIN")" = bin-san ] && san=1
	make -s -C "$root" install DESTDIR="$dest" PREFIX="$prefix" SANITIZE="$san" >make.log 2>&1 || { cat make.log; return 1; }
	for f in bin/coin-pricer libexec/coin-pricer/valuate libexec/coin-pricer/store libexec/coin-pricer/pipeline.sh \
		share/coin-pricer/sql/001_core.sql share/bash-completion/completions/coin-pricer; do
		[ -e "$dest$prefix/$f" ] || { echo "not installed: $f"; return 1; }
	done
	[ ! -e "$dest$prefix/bin/valuate" ] || { echo "valuate in bin/"; return 1; }
	out=$(env -u COIN_PRICER_STAGES PATH=/usr/bin:/bin "$dest$prefix/bin/coin-pricer" --help) || return 1
	[[ $out == "usage: coin-pricer"* ]] || { echo "$out"; return 1; }
	env -u COIN_PRICER_STAGES PATH=/usr/bin:/bin "$dest$prefix/bin/coin-pricer" price 1921-S Morgan dollar \
		--api finding --category 39464 --replay "$replay" >out.txt || return 1
	expect_eq "installed price" '  Median price:   $48.04   (16 comps)' "$(sed -n 2p out.txt)" || return 1
	# The installed worker finds the stages beside itself in libexec and runs the job.
	reset || return 1
	env -u COIN_PRICER_STAGES PATH=/usr/bin:/bin "$dest$prefix/libexec/coin-pricer/pipeline.sh" --once --env /dev/null \
		2>worker.err || { cat worker.err; return 1; }
	expect_eq "installed worker" "completed 29" "$(sql -F ' ' -c "SELECT status, (SELECT count(*) FROM price_points) FROM scrape_jobs")" || return 1
	# The manuals: one page per program, made from its --help, that man can read.
	for f in coin-pricer coin-pricer-worker coin-pricer-claim-job coin-pricer-ebay-fetch coin-pricer-filter-junk \
		coin-pricer-normalize-usd coin-pricer-store coin-pricer-valuate; do
		[ -s "$dest$prefix/share/man/man1/$f.1" ] || { echo "no manual $f.1"; return 1; }
	done
	groff -man -Tutf8 -P-cbou -rLL=100n -ww "$dest$prefix/share/man/man1/coin-pricer-worker.1" 2>man.err >man.txt || { cat man.err; return 1; }
	expect_grep '^       --grace SECONDS  on SIGTERM' man.txt || return 1
	groff -man -Tutf8 -P-cbou -rLL=100n -ww "$dest$prefix/share/man/man1/coin-pricer-valuate.1" 2>man.err >man.txt || { cat man.err; return 1; }
	expect_grep "^       $(valuate --help | head -n 1 | sed 's/[][]/\\&/g')" man.txt || return 1
	[ ! -s man.err ] || { cat man.err; return 1; }
	make -s -C "$root" uninstall DESTDIR="$dest" PREFIX="$prefix" >make.log 2>&1 || { cat make.log; return 1; }
	expect_eq "left after uninstall" "" "$(find "$dest" -type f)"
}

completion() {
	# shellcheck disable=SC1091
	. "$root/scripts/completion.bash" || return 1
	COMP_WORDS=(coin-pricer pl)
	COMP_CWORD=1
	_coin_pricer
	expect_eq "commands" "plot" "${COMPREPLY[*]}" || return 1
	COMP_WORDS=(coin-pricer price --re)
	COMP_CWORD=2
	_coin_pricer
	expect_eq "options" "--replay --record" "${COMPREPLY[*]}"
}

systemd_unit() {
	if ! command -v systemd-analyze >/dev/null; then
		echo "# skipped: systemd-analyze is not installed"
		return 0
	fi
	mkdir -p bin && printf '#!/bin/sh\n' >bin/coin-pricer && chmod +x bin/coin-pricer
	sed "s|/usr/local/bin/coin-pricer|$PWD/bin/coin-pricer|" "$root/systemd/coin-pricer-worker@.service" \
		>coin-pricer-worker@.service
	cp coin-pricer-worker@.service coin-pricer-worker@one.service
	SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no ./coin-pricer-worker@one.service >out.txt 2>&1 ||
		{ cat out.txt; return 1; }
	[ ! -s out.txt ] || { cat out.txt; return 1; }
	expect_grep '^Restart=always$' coin-pricer-worker@.service || return 1
	expect_grep '^KillMode=control-group$' coin-pricer-worker@.service || return 1
	expect_grep '^TimeoutStopSec=45$' coin-pricer-worker@.service
}

docker_image() {
	# Read where no engine runs: compose.yaml mounts a named volume on the state folder,
	# which docker fills from the image's folder, owner included; without one the volume
	# is root's and the worker (not root) could cache no token.
	local state
	state=$(sed -n 's/^ENV COIN_PRICER_STATE_DIR=\([^ ]*\).*/\1/p' "$root/Dockerfile")
	expect_grep "^ *- state:$state\$" "$root/compose.yaml" || return 1
	expect_grep "install -d -m 0700 -o coin-pricer -g coin-pricer $state\$" "$root/Dockerfile" || return 1
	if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
		echo "# skipped: no container engine answers here (docker info failed)"
		return 0
	fi
	docker build -q -t coin-pricer-test "$root" >build.log 2>&1 || { tail -n 20 build.log; return 1; }
	expect_eq "image" "coin-pricer 0.1.0" "$(docker run --rm coin-pricer-test coin-pricer --version)"
}

env_example() {
	local key
	for key in DATABASE_URL WORKER_ID POLL_INTERVAL_SECONDS JOB_LOCK_TIMEOUT_SECONDS EBAY_APP_ID EBAY_CERT_ID \
		EBAY_DEV_ID EBAY_SANDBOX EBAY_CALLS_PER_MINUTE EBAY_API_BASE LOG_LEVEL LOG_FORMAT; do
		expect_grep "^$key=" "$root/.env.example" || return 1
	done
	expect_grep '^POLL_INTERVAL_SECONDS=5$' "$root/.env.example" || return 1
	expect_grep '^/.env$' "$root/.gitignore"
}

# The README's "Price your first coin", run as written in a folder that stands for the
# repository, doing only what its reader does by hand: copying the intake id that add prints.
readme_walkthrough() {
	local f
	mkdir -p walk && for f in "$root"/*; do ln -s "$f" walk/; done
	sed -n '/^## Price your first coin/,/^## The stages/p' "$root/README.md" |
		awk '/^```sh$/ { on = 1; next } /^```$/ { on = 0 } on' >walk/steps.sh
	expect_eq "commands in the walk-through" 10 "$(grep -c '^[A-Za-z]' walk/steps.sh)" || { cat walk/steps.sh; return 1; }
	grep -q '^coin-pricer add .*#' walk/steps.sh || { echo "no add line"; return 1; }
	sed -i -e 's/^coin-pricer add \(.*[^ ]\) *#.*$/out=$(coin-pricer add \1); printf "%s\\n" "$out"; ID=$(sed -n "s,^intake ,,p" <<<"$out")/' \
		-e 's/ ID / "$ID" /' walk/steps.sh
	(cd walk && env -u DATABASE_URL -u PGSTATE -u EBAY_API_BASE -u EBAY_APP_ID -u EBAY_CERT_ID PATH="$BIN:$PWD/scripts:$PATH" bash -euo pipefail steps.sh) >walk.out 2>walk.err ||
		{ (cd walk && scripts/local-pg.sh stop) >/dev/null 2>&1; cat walk.err; return 1; }
	# The same price at the grade, ad hoc (price) and from the worker (show).
	expect_eq "prices printed (price, show)" 2 "$(grep -cx '  Price at VF:    \$43\.76   (16 comps)' walk.out)" || { cat walk.out; return 1; }
	expect_grep '^intake [0-9a-f-]\{36\}$' walk.out || return 1
	expect_grep 'completed' walk.out || return 1
	xmllint --noout walk/morgan.svg || return 1
	expect_eq "cluster left" "" "$(find walk/.state -mindepth 2 2>/dev/null)"
}

run_test "coin-pricer --help and --version, every command; wrong ones exit 64" help_everywhere
run_test "price reads coins as people write them" parses_coins
run_test "price from a recording, no database: the answer, exactly" price_replay
run_test "price --json is NDJSON that plot - draws as PNG and SVG" price_json_and_plot
run_test "plot: a gnuplot failure and a missing output folder said as they are" plot_failures_said_as_they_are
run_test "price: a wrong LOG_LEVEL, a missing --replay folder, a recording of other requests" price_failures_say_what_to_do
run_test "a signal while coin-pricer starts leaves no scratch folder" scratch_not_left_by_a_signal
run_test "show - : tiers, grades, target grade and method when valuate gives them" show_graded_valuation
run_test "price against eBay (fake): Insights, no credentials (78), not approved (69)" price_fake_ebay
run_test "add: an intake, its attribution, a pending job per enabled source" add_creates_rows
run_test "the worker runs the job; status and show read it" worker_status_show
run_test "export: price points as NDJSON that re-prices, and CSV" export_points
run_test "plot INTAKE: PNG by default, SVG by suffix" plot_intake
run_test "status lists failures; requeue sends them back" failures_and_requeue
run_test "doctor: all well, then each thing to fix (exit 78)" doctor_checks
run_test "the database password: in no argument list, no message" db_password_kept_secret
run_test "plot - runs no command from the records it reads" plot_input_runs_nothing
run_test "a database without the tables: exit 78, run coin-pricer migrate" not_migrated
run_test "row-level security on every table; a role without policies sees nothing" row_level_security
run_test "the README's walk-through, price your first coin, as written" readme_walkthrough
run_test "make install DESTDIR: the installed coin-pricer finds its stages" make_install
run_test "bash completion of commands and options" completion
run_test "systemd unit passes systemd-analyze verify" systemd_unit
run_test ".env.example has every setting; .env is ignored" env_example
run_test "the container image builds (where an engine runs)" docker_image
