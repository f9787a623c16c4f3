#!/usr/bin/env bash
# stages: filter-junk normalize-usd valuate
# The conventions of DESIGN.md that every stage keeps, tested on every stage: bad input
# of every kind, closed and full stdout, --help / --version, flushing in a live pipeline,
# and arbitrary bytes.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/conventions.sh
. "$(dirname "$0")/conventions.sh"

# TEST_STAGE (from tests/run.sh STAGE) narrows the run to one stage.
# shellcheck disable=SC2086 # a list of names
run_convention_tests ${TEST_STAGE:-filter-junk normalize-usd valuate}
