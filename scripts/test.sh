#!/usr/bin/env bash
# The test command of the README and of CI: installs what is missing, builds, runs every
# test. SANITIZE=1 builds and tests the AddressSanitizer + UndefinedBehaviorSanitizer build.
# The last line is "N passed, N failed"; the status is non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -s -j2 SANITIZE="${SANITIZE:-0}" >/dev/null
if [ "${SANITIZE:-0}" = 1 ]; then
	BIN=$PWD/bin-san exec tests/run.sh "$@"
fi
BIN=$PWD/bin exec tests/run.sh "$@"
