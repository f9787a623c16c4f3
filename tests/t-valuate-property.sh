#!/usr/bin/env bash
# stages: valuate
# valuate against an independent implementation of DESIGN.md's valuation, in exact
# rational arithmetic, over thousands of random groups (fixed seeds, so a failure
# can be replayed), plus the invariants p10 <= median <= p90, outliers + comps =
# candidates and confidence in 1..10.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

reference=$here/valuate_reference.py

against_reference() {
	local seed=$1
	/usr/bin/python3 "$reference" gen "$seed" 1500 >points.ndjson || return 1
	valuate <points.ndjson >valuations.ndjson 2>err.txt || return 1
	/usr/bin/python3 "$reference" check points.ndjson valuations.ndjson || return 1
	/usr/bin/python3 "$here/validate.py" valuations.ndjson
}

# The same points in another order give the same valuations.
order_free() {
	/usr/bin/python3 "$reference" gen 7 300 >points.ndjson || return 1
	valuate <points.ndjson 2>/dev/null | jq -c 'del(.explanation)' | sort >a.ndjson
	shuf --random-source=<(yes) points.ndjson | valuate 2>/dev/null | jq -c 'del(.explanation)' | sort >b.ndjson
	expect_file_eq a.ndjson b.ndjson
}

# The checker itself must be able to fail: feed it a wrong median.
checker_can_fail() {
	/usr/bin/python3 "$reference" gen 3 50 >points.ndjson || return 1
	valuate <points.ndjson 2>/dev/null | jq -c 'if .median_cents then .median_cents += 1 else . end' >wrong.ndjson
	if /usr/bin/python3 "$reference" check points.ndjson wrong.ndjson >/dev/null; then
		echo "the reference check accepted wrong medians"
		return 1
	fi
	printf '%s\n' '{"kind":"valuation","intake_id":null,"job_id":null,"confidence":11}' >bad.ndjson
	if /usr/bin/python3 "$here/validate.py" bad.ndjson >/dev/null; then
		echo "the schema check accepted a valuation with confidence 11"
		return 1
	fi
}

for seed in 1 2 3; do
	run_test "valuate matches the exact reference on 1500 random groups (seed $seed)" against_reference "$seed"
done
run_test "valuate does not depend on the order of the points" order_free
run_test "the reference check and the schema check can fail" checker_can_fail
