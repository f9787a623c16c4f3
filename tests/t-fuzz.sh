#!/usr/bin/env bash
# stages: filter-junk normalize-usd valuate
# Every input the fuzz targets ever failed on (tests/fuzz/regressions/TARGET/), replayed
# through the libFuzzer builds of the targets: make fuzz-regress (which installs clang
# and libFuzzer where they are missing).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

regressions() {
	make -s -C "$here/.." fuzz-regress
}

run_test "fuzz: every kept input of every fuzz target passes (make fuzz-regress)" regressions
