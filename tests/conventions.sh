# The tests of the conventions of DESIGN.md that every stage keeps, as functions taking
# the stage's name; sourced by t-conventions.sh (the pure stages) and t-db.sh (store).
# shellcheck shell=bash

# A file of good "note" lines (every stage passes them on unchanged) around bad ones.
make_bad_input() {
	good() { printf '{"kind":"note","n":%d}\n' "$1"; }
	{
		good 1
		printf 'this is not json\n'                                   # line 2
		good 3
		printf '{"kind":"note","cut":"shor\n'                          # 4: truncated
		printf '{"kind":"note","x":"a\0b"}\n'                          # 5: NUL
		printf '{"kind":"note","x":"\xff\xfe"}\n'                      # 6: invalid UTF-8
		head -c 100000 /dev/zero | tr '\0' '['                         # 7: deep nesting
		printf '\n'
		printf '{"kind":"note","big":1e400,"n":8}\n'                   # 8: fine: valid JSON
		printf '{"kind":"note","n":9}\r\n'                             # 9: fine: CRLF
		printf '\n'                                                    # 10: empty
		printf '{"no_kind":true}\n'                                    # 11
		printf '"\xc0\xaf"\n'                                          # 12: overlong UTF-8
		printf '{"kind":"note","x":"\xed\xa0\x80"}\n'                  # 13: a surrogate in UTF-8
		printf '{"kind":"note","t":"'                                  # 14: 50 MB, cut short
		head -c 50000000 /dev/zero | tr '\0' 'a'
		printf '\n'
		printf '{"kind":"note","t":"'                                  # 15: 50 MB, fine
		head -c 50000000 /dev/zero | tr '\0' 'b'
		printf '"}\n'
		good 16
	} >bad.ndjson
}

bad_input() {
	local stage=$1 rc
	make_bad_input
	"$stage" <bad.ndjson >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status" 65 "$rc" || return 1
	expect_eq "good lines out" "1 3 8 9 15 16" "$(jq -r '.n // 15' out.ndjson | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_eq "the 1e400 line unchanged" '{"kind":"note","big":1e400,"n":8}' "$(sed -n 3p out.ndjson)" || return 1
	expect_eq "CRLF line without its CR" '{"kind":"note","n":9}' "$(sed -n 4p out.ndjson)" || return 1
	for n in 2 4 5 6 7 10 11 12 13 14; do
		expect_grep "^$stage: error: line $n: " err.txt || return 1
	done
	expect_eq "error lines" 10 "$(wc -l <err.txt)"
}

strict_stops() {
	local stage=$1 rc
	printf '{"kind":"note","n":1}\nnope\n{"kind":"note","n":3}\n' | "$stage" --strict >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status" 65 "$rc" || return 1
	expect_eq "output" '{"kind":"note","n":1}' "$(cat out.ndjson)" || return 1
	expect_grep "line 2" err.txt
}

dev_full() {
	local stage=$1 rc
	printf '{"kind":"note","n":1}\n' | "$stage" >/dev/full 2>err.txt
	rc=$?
	expect_eq "exit status" 74 "$rc" || return 1
	expect_grep "cannot write standard output: No space left on device" err.txt
}

head_quiet() {
	local stage=$1
	yes '{"kind":"note","n":1}' | head -n 200000 >many.ndjson
	"$stage" <many.ndjson 2>err.txt | head -n 1 >out.ndjson
	expect_eq "exit status" 0 "${PIPESTATUS[0]}" || return 1
	expect_eq "stderr" "" "$(cat err.txt)" || return 1
	expect_eq "output" '{"kind":"note","n":1}' "$(cat out.ndjson)"
}

help_and_version() {
	local stage=$1
	"$stage" --help >out.txt 2>err.txt || return 1
	expect_grep "^usage: $stage" out.txt || return 1
	expect_eq "stderr" "" "$(cat err.txt)" || return 1
	"$stage" -h >short.txt 2>err.txt || return 1
	expect_eq "-h as --help" "$(cat out.txt)" "$(cat short.txt)" || return 1
	expect_eq "stderr of -h" "" "$(cat err.txt)" || return 1
	expect_grep "^  -h, --help " out.txt || return 1
	expect_grep "^  -V, --version " out.txt || return 1
	expect_eq "version" "$stage (coin-pricer) 0.1.0" "$("$stage" --version)" || return 1
	expect_eq "-V" "$stage (coin-pricer) 0.1.0" "$("$stage" -V)" || return 1
	"$stage" --no-such-option >out.txt 2>err.txt
	expect_eq "wrong option status" 64 "$?" || return 1
	expect_grep "^usage: $stage" err.txt || return 1
	expect_eq "stdout on a wrong option" "" "$(cat out.txt)"
}

# LOG_LEVEL and LOG_FORMAT: a value the stage does not know is a configuration error
# (78) naming the variable, the value and what it takes, before anything else is done;
# case does not matter, and set but empty is unset.
bad_log_settings() {
	local stage=$1 rc
	LOG_LEVEL=verbose "$stage" --version >out.txt 2>err.txt </dev/null
	rc=$?
	expect_eq "exit status for LOG_LEVEL=verbose" 78 "$rc" || return 1
	expect_eq "stdout for LOG_LEVEL=verbose" "" "$(cat out.txt)" || return 1
	expect_eq "stderr for LOG_LEVEL=verbose" \
		"$stage: error: LOG_LEVEL=verbose is not a log level; use debug, info, warn or error" "$(cat err.txt)" || return 1
	LOG_FORMAT=yaml "$stage" --version >out.txt 2>err.txt </dev/null
	rc=$?
	expect_eq "exit status for LOG_FORMAT=yaml" 78 "$rc" || return 1
	expect_eq "stdout for LOG_FORMAT=yaml" "" "$(cat out.txt)" || return 1
	# The format is unknown, so the message comes in the default one (json: not a terminal).
	expect_eq "stderr for LOG_FORMAT=yaml" "LOG_FORMAT=yaml is not a log format; use json or text" \
		"$(jq -r 'select(.program == "'"$stage"'" and .level == "error") | .msg' err.txt)" || return 1
	LOG_LEVEL=Warning LOG_FORMAT=TEXT "$stage" --version >out.txt 2>err.txt || return 1
	expect_eq "stderr with LOG_LEVEL=Warning LOG_FORMAT=TEXT" "" "$(cat err.txt)" || return 1
	LOG_LEVEL='' LOG_FORMAT='' "$stage" --version >out.txt 2>err.txt || return 1
	expect_eq "version with both empty" "$stage (coin-pricer) 0.1.0" "$(cat out.txt)"
}

# In a live pipeline a record must come out while the stage still waits for more input.
live_flush() {
	local stage=$1 line pid
	mkfifo in.fifo out.fifo
	"$stage" <in.fifo >out.fifo 2>err.txt &
	pid=$!
	exec 7>in.fifo 8<out.fifo
	printf '{"kind":"note","n":1}\n' >&7
	if ! IFS= read -r -t 5 line <&8; then
		echo "no output within 5 s while input stayed open"
		exec 7>&- 8<&-
		kill "$pid" 2>/dev/null
		return 1
	fi
	exec 7>&-
	wait "$pid" || return 1
	exec 8<&-
	expect_eq "record" '{"kind":"note","n":1}' "$line"
}

random_bytes() {
	local stage=$1 i rc
	for i in 1 2 3 4 5 6 7 8; do
		head -c 300000 /dev/urandom >random.bin
		# Some lines of JSON-ish noise too, so that the scanner goes deeper than byte 1.
		# shellcheck disable=SC1003 # a backslash among the characters, not an escape
		tr -dc '{}[]":,0-9a-z \n\\' </dev/urandom | head -c 100000 >>random.bin
		"$stage" <random.bin >/dev/null 2>err.txt
		rc=$?
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 65 ]; then
			echo "exit status $rc on random input $i"
			tail -n 5 err.txt
			return 1
		fi
	done
}

# Records every JSON reader must read alike: two equal keys (cJSON takes the first,
# PostgreSQL and most others the last) at any depth, escaped or not, are a bad line
# naming the key; so are lone surrogates and \u0000 (a C string ends there).
ambiguous_json() {
	local stage=$1 rc
	cat >in.ndjson <<'NDJSON'
{"kind":"note","n":1}
{"kind":"job","job_id":"a","job_id":"b"}
{"kind":"note","n":3,"source":{"config":{"app_id":"x","api":"browse","app_id":"y"}}}
{"kind":"note","n":4,"k\u0061":1,"ka":2}
{"kind":"note","n":5,"a":[{"x":1},{"x":1}],"b":{"x":{"x":1}}}
{"kind":"note","n":6,"s":"\ud800"}
{"kind":"note","n":7,"s":"\udc00x"}
{"kind":"note","n":8,"s":"\ud800\u0041"}
{"kind":"note","n":9,"s":"\ud83d\ude00 \u00e9"}
{"kind":"note","n":10,"s":"a\u0000b"}
{"kind":"note","kind":"note","n":11}
{"kind":"note","n":12}
NDJSON
	"$stage" <in.ndjson >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status" 65 "$rc" || return 1
	expect_eq "good lines out" "1 5 9 12" "$(jq -r .n out.ndjson | tr '\n' ' ' | sed 's/ $//')" || return 1
	expect_grep "line 2: duplicate key \"job_id\" in the record (byte 28)" err.txt || return 1
	expect_grep "line 3: duplicate key \"app_id\" in a nested object" err.txt || return 1
	expect_grep "line 4: duplicate key \"ka\" in the record" err.txt || return 1
	expect_grep "line 6: .*lone surrogate.*high surrogate" err.txt || return 1
	expect_grep "line 7: .*lone surrogate.*low surrogate" err.txt || return 1
	expect_grep "line 8: .*lone surrogate.*high surrogate" err.txt || return 1
	expect_grep 'line 10: .*\\u0000 in a string' err.txt || return 1
	expect_grep "line 11: duplicate key \"kind\" in the record" err.txt || return 1
	expect_eq "error lines" 8 "$(wc -l <err.txt)"
}

# The 256 MiB line limit holds for a regular file on stdin (which read(2) answers with
# as much as asked, not 64 KiB at a time as a pipe) as well as for a pipe. The long
# line is a sparse file's hole: no disk, little time.
long_line() {
	local stage=$1 rc
	truncate -s $((256 * 1024 * 1024 + 10)) long.ndjson
	printf '\n{"kind":"note","n":2}\n' >>long.ndjson
	"$stage" <long.ndjson >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status from a file" 65 "$rc" || return 1
	expect_eq "output from a file" '{"kind":"note","n":2}' "$(cat out.ndjson)" || return 1
	expect_grep "line 1: line longer than 256 MiB" err.txt || return 1
	expect_eq "error lines from a file" 1 "$(wc -l <err.txt)" || return 1
	# shellcheck disable=SC2002 # a pipe, not the file, is the point here
	cat long.ndjson | "$stage" >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status from a pipe" 65 "$rc" || return 1
	expect_eq "output from a pipe" '{"kind":"note","n":2}' "$(cat out.ndjson)" || return 1
	expect_grep "line 1: line longer than 256 MiB" err.txt
}

# No input: nothing out, nothing said, exit 0. A last line without its newline is a line.
empty_input() {
	local stage=$1 rc
	"$stage" </dev/null >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status on empty input" 0 "$rc" || return 1
	expect_eq "output on empty input" "" "$(cat out.ndjson)" || return 1
	expect_eq "stderr on empty input" "" "$(cat err.txt)" || return 1
	printf '{"kind":"note","n":1}\n{"kind":"note","n":2}' | "$stage" >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status with no final newline" 0 "$rc" || return 1
	expect_eq "stderr with no final newline" "" "$(cat err.txt)" || return 1
	printf '{"kind":"note","n":1}\n{"kind":"note","n":2}\n' >want.ndjson
	expect_file_eq want.ndjson out.ndjson
}

# Records of kinds the stage does not own come out byte for byte and in order, however
# they are written: spaces, escapes, numbers no C type holds, deep nesting, kinds that
# only look like a stage's own, keys in any order. One case per line.
passthrough_exact() {
	local stage=$1 rc
	cat >in.ndjson <<'NDJSON'
{ "kind" : "note" , "n" : 1 }
{"n":2,"kind":"note"}
{"kind":"note","n":3,"s":"\u00e9\/\"\\\t\ud83d\ude00 é 😀"}
{"kind":"note","n":4,"big":123456789012345678901234567890,"neg":-0,"e":1E+400,"tiny":1e-400,"f":0.1000000000000000055511151231257827}
{"kind":"note","n":5,"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{"a":[{"b":[]}]}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
{"kind":"Price_point","n":6,"amount":"1.00","currency":"USD","title":"replica"}
{"kind":"price_point ","n":7,"amount":"1.00","currency":"USD","title":"replica"}
{"kind":"price","n":8}
{"kind":"","n":9}
{"kind":"jobs","n":10,"job_id":"x"}
{"kind":"job_done","n":11,"job_id":null,"stored":true}
{"kind":"note","n":12,"kind_of":"price_point","price_cents":1}	
{"kind":"note","n":13,"empty":{},"list":[],"t":true,"f":false,"z":null}
NDJSON
	"$stage" <in.ndjson >out.ndjson 2>err.txt
	rc=$?
	expect_eq "exit status" 0 "$rc" || return 1
	expect_eq "stderr" "" "$(cat err.txt)" || return 1
	expect_file_eq in.ndjson out.ndjson
}

# Records of the stage's own kinds (or the job records every stage reads) with what no C
# type holds, deep nesting or the wrong types: never a crash. Each comes out as a record,
# or is a bad line with its number. One case per line.
odd_owned_records() {
	local stage=$1 rc n
	make_odd_records >in.ndjson
	n=$(wc -l <in.ndjson)
	"$stage" <in.ndjson >out.ndjson 2>err.txt
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 65 ]; then
		echo "exit status $rc"
		tail -n 5 err.txt
		return 1
	fi
	python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1], "rb")]' out.ndjson ||
		{ echo "output is not NDJSON"; return 1; }
	[ "$rc" -eq 0 ] || expect_grep ': line [0-9]*: ' err.txt || return 1
	[ "$n" -gt 20 ] || { echo "only $n cases"; return 1; }
}

make_odd_records() {
	# Ids as the database writes them (store looks the jobs up: none of these is there).
	local deep j1 j2 j3 i1 i3 s1
	j1=0dd0dd00-0000-4000-8000-000000000001 j2=0dd0dd00-0000-4000-8000-000000000002
	j3=0dd0dd00-0000-4000-8000-000000000003 i1=0dd0dd00-0000-4000-8000-000000000011
	i3=0dd0dd00-0000-4000-8000-000000000013 s1=0dd0dd00-0000-4000-8000-000000000021
	deep=$(printf '%.0s[' $(seq 500))$(printf '%.0s]' $(seq 500))
	cat <<NDJSON
{"kind":"job","job_id":"$j1","intake_id":"$i1","source_id":"$s1","attempt":1e999,"source":{"name":"x","adapter_type":"ebay_finding","reputation_weight":0.5,"config":{"deep":$deep}},"attribution":{"year":99999999999999999999,"mintmark":"S","series":"Morgan","grade":"MS99","deep":$deep},"rules":[{"rule_type":"min_price_cents","rule_value":"99999999999999999999999","priority":-1e400}],"fx_rates":{"GBP":{"usd_per_unit":"1.25","as_of":"2026-11-27"}}}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"1","title":"1921 S Morgan MS63","price_type":"sold","amount":"45.00","currency":"USD","raw":$deep}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"2","title":"1921 S Morgan","price_type":"sold","amount":"99999999999999999999999999999999999.99","currency":"USD","quantity":123456789012345678901234567890}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"3","title":"1921 S Morgan","price_type":"sold","amount":"45","currency":"GBP","price_cents":9223372036854775807,"reputation_weight":1}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"4","title":"1921 S Morgan","price_type":"sold","amount":"45","currency":"USD","price_cents":9223372036854775808}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"5","title":"1921 S Morgan","price_type":"sold","amount":"45","currency":"USD","price_cents":-9223372036854775809}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"6","title":"1921 S Morgan","price_type":"sold","amount":"45","currency":"USD","price_cents":1e400,"reputation_weight":-1e400}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"7","title":"1921 S Morgan","price_type":"sold","amount":45,"currency":"USD","price_cents":4500.5}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"8","title":["1921"],"price_type":7,"amount":null,"currency":{},"price_cents":"4500"}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"9","title":"1921 S Morgan PCGS MS63","price_type":"sold","amount":"0.000000000000000001","currency":"USD","price_cents":0,"grade":"MS63","grade_lo":63,"grade_hi":63,"sold_at":"9999-12-31T23:59:59Z"}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"10","title":"1921 S Morgan","price_type":"sold","amount":"45","currency":"USD","price_cents":4500,"grade":"MS63","grade_lo":-1e400,"grade_hi":1e400,"sold_at":"0000-01-01T00:00:00Z"}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"11","title":"$(printf 'MS63 %.0s' $(seq 2000))","price_type":"ask","amount":"45","currency":"USD","price_cents":4500,"sold_at":"2026-11-01T00:00:00Z"}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"12","title":"\u0041\u0301\ud83d\ude00 lot of 99999999999999999999 x99999999999999999999","price_type":"sold","amount":"45","currency":"USD","price_cents":4500,"filtered_out":"yes"}
{"kind":"price_point","job_id":"$j1","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"13","title":null,"price_type":"sold","amount":"45","currency":"usd","price_cents":4500,"shipping_amount":"99999999999999999999.99","shipping_currency":"GBP"}
{"kind":"price_point","job_id":null,"intake_id":null,"source_id":null,"adapter":"x","external_id":"14","title":"1921","price_type":"sold","amount":"1e5","currency":"USD","converted_usd":"1e5"}
{"kind":"price_point"}
{"kind":"price_point","job_id":{"a":1},"intake_id":[1],"price_cents":4500}
{"kind":"job_end","job_id":"$j1","intake_id":"$i1","pages":1e999,"calls":-1,"items":99999999999999999999}
{"kind":"job","job_id":"$j2","intake_id":"$i1","source_id":"$s1","attempt":1,"source":"not an object","attribution":[],"rules":{},"fx_rates":[]}
{"kind":"price_point","job_id":"$j2","intake_id":"$i1","source_id":"$s1","adapter":"x","external_id":"20","title":"1921","price_type":"sold","amount":"45","currency":"USD","price_cents":4500}
{"kind":"job_error","job_id":"$j2","intake_id":"$i1","error":"$(printf 'x%.0s' $(seq 5000))","retryable":"maybe","retry_after_seconds":1e999}
{"kind":"job","job_id":"$j3","intake_id":"$i3","source_id":"$s1","attempt":1,"source":{"name":"x","adapter_type":"ebay_finding","config":{}},"attribution":{"year":1921,"grade":"$(printf 'MS%.0s' $(seq 3000))"},"rules":[{"rule_type":"exclude_keywords","rule_value":"$(printf 'a,%.0s' $(seq 3000))","priority":1}],"fx_rates":{"GBP":{"usd_per_unit":"99999999999999999999.999999999999999999"}}}
{"kind":"price_point","job_id":"$j3","intake_id":"$i3","source_id":"$s1","adapter":"x","external_id":"30","title":"1921 $(printf 'a %.0s' $(seq 3000))","price_type":"sold","amount":"99999999.99","currency":"GBP"}
{"kind":"job_end","job_id":"$j3","intake_id":"$i3"}
{"kind":"valuation","intake_id":"$i3","job_id":"$j3","median_cents":1e999}
NDJSON
}

# run_convention_tests STAGE...: every test above for each stage. Under valgrind
# (TEST_UNDER_VALGRIND=1, make test-leaks) the two tests that read lines of 50 and 256
# MiB are left to the normal suite (there they take minutes each and find nothing new),
# and so is the flush test, whose 5 s limit is about time, not memory.
run_convention_tests() {
	local s
	for s in "$@"; do
		if [ "${TEST_UNDER_VALGRIND:-0}" != 1 ]; then
			run_test "$s: bad lines are reported with their numbers, the rest comes out, exit 65" bad_input "$s"
			run_test "$s: a line over 256 MiB is skipped, from a file or a pipe" long_line "$s"
		fi
		run_test "$s: --strict stops at the first bad line" strict_stops "$s"
		run_test "$s: empty input, and a last line without its newline" empty_input "$s"
		run_test "$s: other kinds pass byte for byte, in order, however written" passthrough_exact "$s"
		run_test "$s: its own records with huge numbers, deep nesting, wrong types: no crash" odd_owned_records "$s"
		run_test "$s: > /dev/full exits 74 with a message" dev_full "$s"
		run_test "$s: | head -n1 exits 0 with nothing on stderr" head_quiet "$s"
		run_test "$s: --help, --version, a wrong option" help_and_version "$s"
		run_test "$s: an unknown LOG_LEVEL or LOG_FORMAT exits 78" bad_log_settings "$s"
		if [ "${TEST_UNDER_VALGRIND:-0}" != 1 ]; then
			run_test "$s: records are flushed before a read that would block" live_flush "$s"
		fi
		run_test "$s: arbitrary bytes never crash it" random_bytes "$s"
		run_test "$s: duplicate keys, lone surrogates and \\u0000 are bad lines" ambiguous_json "$s"
	done
}
