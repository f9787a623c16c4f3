#!/usr/bin/env bash
# The conventions of DESIGN.md that every stage keeps, tested on every stage: bad input
# of every kind, closed and full stdout, --help / --version, flushing in a live pipeline,
# and arbitrary bytes.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/conventions.sh
. "$(dirname "$0")/conventions.sh"

run_convention_tests filter-junk normalize-usd valuate
