#!/usr/bin/env bash
# Install the Debian packages coin-pricer needs to build, run and test, where any is
# missing. Quiet and quick when everything is there; called by `make test`, `make demo`
# and .ci/run.
set -euo pipefail

packages=(
	build-essential   # gcc, make
	libcjson-dev      # JSON in the stages
	libcurl4-openssl-dev
	libpq-dev
	jq                # shell glue, tests, benchmarks
	postgresql        # the local cluster of the tests and the demo
	python3           # the fake eBay server and the schema checks of the tests
	python3-jsonschema
	procps            # pgrep and pkill in the tests
	curl              # the tests' requests to the fake eBay server's fault queue
	bc                # arithmetic on timings in the tests and benchmarks
	time              # /usr/bin/time: peak memory in the benchmarks
	clang             # a test's UBSan build (clang's UBSan reports what gcc's does not)
	gnuplot-nox       # coin-pricer plot draws valuations as PNG and SVG (no X11 needed)
	libxml2-utils     # xmllint: the tests check that plot writes well-formed SVG
	groff-base        # groff: the tests render the manuals make install writes
	pgbouncer         # scripts/local-pgbouncer.sh: the tests through a transaction pooler
)
# Only for the make targets that need them: --fuzz (make fuzz), --leaks (make
# test-leaks), --lint (make lint). CI asks for all three.
for arg in "$@"; do
	case $arg in
	--fuzz) packages+=(clang-14 libclang-rt-14-dev) ;; # libFuzzer and the sanitizers' runtimes
	--leaks) packages+=(valgrind) ;;
	--lint) packages+=(shellcheck clang-format cppcheck) ;;
	*)
		echo "usage: install-deps.sh [--fuzz] [--leaks] [--lint]" >&2
		exit 64
		;;
	esac
done

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "install-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
