#!/usr/bin/env bash
# The manual pages of `make install`, made from the programs' own --help texts, so that
# the two never disagree: coin-pricer(1), coin-pricer-worker(1) (pipeline.sh) and
# coin-pricer-STAGE(1) for each stage.
#
# usage: scripts/man.sh OUTDIR BINDIR
set -euo pipefail

[ $# -eq 2 ] || {
	echo "usage: scripts/man.sh OUTDIR BINDIR" >&2
	exit 64
}
out=$1
bin=$(cd "$2" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="$bin:$PATH"
version=$("$bin/claim-job" --version)
version=${version##* }

# page NAME SUMMARY: a help text on stdin as a page on stdout. A help in the manual's
# shape (NAME, SYNOPSIS, ... headings at the margin) keeps its sections; any other goes
# whole under DESCRIPTION. The text is set as written (no filling).
page() {
	local name=$1 summary=$2 line shaped=0 text
	text=$(cat)
	[[ $text == NAME$'\n'* ]] && shaped=1
	printf '.TH %s 1 "" "coin-pricer %s" "coin-pricer manual"\n' "${name^^}" "$version"
	if [ "$shaped" = 0 ]; then
		printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$name" "$summary"
	fi
	while IFS= read -r line; do
		if [[ $line =~ ^[A-Z][A-Z\ ]+$ ]]; then
			[ "$shaped" = 0 ] || printf '.fi\n'
			printf '.SH %s\n.nf\n' "$line"
			continue
		fi
		[ "$shaped" = 0 ] || line=${line#    }
		line=${line//\\/\\e}
		[[ $line == [.\']* ]] && line="\\&$line"
		printf '%s\n' "$line"
	done <<<"$text"
	printf '.fi\n'
}

mkdir -p "$out"
"$root/pipeline.sh" --help | page coin-pricer-worker "" >"$out/coin-pricer-worker.1"
for stage in claim-job ebay-fetch filter-junk normalize-usd store valuate; do
	"$bin/$stage" --help | page "coin-pricer-$stage" \
		"the $stage stage of coin-pricer (in libexec/coin-pricer; coin-pricer(1) and coin-pricer-worker(1) run it)" \
		>"$out/coin-pricer-$stage.1"
done
{
	"$root/scripts/coin-pricer" --help
	for cmd in price add status show requeue export plot doctor sources migrate; do
		printf '\nCOMMAND %s\n' "${cmd^^}"
		"$root/scripts/coin-pricer" help "$cmd"
	done
} | page coin-pricer "prices coins from real eBay sales" >"$out/coin-pricer.1"
