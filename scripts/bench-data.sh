#!/usr/bin/env bash
# Write about MB megabytes of deterministic price-point NDJSON to stdout: the recorded
# Finding points of tests/data, cycled, each with its own external_id and price, in
# jobs of 50 points (job, points, job_end), so valuate sees realistic groups.
# usage: scripts/bench-data.sh MB
set -euo pipefail
mb=${1:?usage: bench-data.sh MB}
here=$(cd "$(dirname "$0")" && pwd)
awk -v limit="$((mb * 1000000))" '
	{ tmpl[n++] = $0 }
	END {
		bytes = 0; id = 0; seed = 12345
		while (bytes < limit) {
			job++
			jobid = sprintf("bench-job-%08d", job)
			line = sprintf("{\"kind\":\"job\",\"job_id\":\"%s\",\"intake_id\":\"%s\",\"source_id\":\"s\",\"attempt\":1,\"source\":{\"name\":\"eBay\",\"adapter_type\":\"ebay_finding\"},\"attribution\":{\"year\":1921},\"rules\":[{\"rule_type\":\"exclude_keywords\",\"rule_value\":\"proof\",\"priority\":1}],\"fx_rates\":{\"GBP\":{\"usd_per_unit\":\"1.2712\",\"as_of\":\"2026-11-27\"},\"EUR\":{\"usd_per_unit\":\"1.0800\",\"as_of\":\"2026-11-27\"},\"CAD\":{\"usd_per_unit\":\"0.7200\",\"as_of\":\"2026-11-27\"}}}", jobid, jobid)
			print line; bytes += length(line) + 1
			for (i = 0; i < 50; i++) {
				line = tmpl[id % n]; id++
				seed = (seed * 1103515245 + 12345) % 2147483648
				sub(/"external_id":"[0-9]*"/, "\"external_id\":\"" id "\"", line)
				sub(/"job_id":"[^"]*"/, "\"job_id\":\"" jobid "\"", line)
				sub(/"intake_id":"[^"]*"/, "\"intake_id\":\"" jobid "\"", line)
				sub(/"amount":"[0-9.]*"/, sprintf("\"amount\":\"%d.%02d\"", 30 + seed % 40, seed % 100), line)
				print line; bytes += length(line) + 1
			}
			line = sprintf("{\"kind\":\"job_end\",\"job_id\":\"%s\",\"intake_id\":\"%s\",\"pages\":1,\"calls\":1,\"items\":50}", jobid, jobid)
			print line; bytes += length(line) + 1
		}
	}' "$here/../tests/data/finding-points.ndjson"
