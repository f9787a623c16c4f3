#!/usr/bin/env bash
# stages: filter-junk normalize-usd valuate claim-job
# The conventions of DESIGN.md that every stage keeps, tested on every stage: bad input
# of every kind, closed and full stdout, -h / --help / -V / --version, the log settings,
# flushing in a live pipeline, and arbitrary bytes.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/conventions.sh
. "$(dirname "$0")/conventions.sh"

# TEST_STAGE (from tests/run.sh STAGE) narrows the run to one stage.
if [ "${TEST_STAGE:-}" != claim-job ]; then
	# shellcheck disable=SC2086 # a list of names
	run_convention_tests ${TEST_STAGE:-filter-junk normalize-usd valuate}
fi

# claim-job reads no records (t-db.sh tests it against a database), but it reads the log
# settings at start as every stage does, and that needs no database.
if [ -z "${TEST_STAGE:-}" ] || [ "$TEST_STAGE" = claim-job ]; then
	run_test "claim-job: an unknown LOG_LEVEL or LOG_FORMAT exits 78" bad_log_settings claim-job
fi
