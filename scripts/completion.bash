# bash completion for coin-pricer: commands, each command's options, and the values of
# --api and --format. Installed as share/bash-completion/completions/coin-pricer; in the
# repository, `. scripts/completion.bash`.
# shellcheck shell=bash

_coin_pricer() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]:-} cmd=${COMP_WORDS[1]:-} words
	local coin='--year --mint --series --denomination --grade --title --variety'
	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		words='price add status show requeue export plot doctor worker sources migrate help --help --version'
	else
		case $prev in
		--api) words='finding insights browse' ;;
		--format) words='png svg' ;;
		--denomination) words='penny nickel dime quarter half_dollar dollar' ;;
		--mint) words='P D S O CC W C' ;;
		--replay | --record)
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
			return
			;;
		--output | -o | --rates | --env)
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			return
			;;
		esac
		if [ -z "${words:-}" ]; then
			case $cmd in
			price) words="$coin --json --print-job --api --replay --record --category --max-pages --rates --exclude --quiet" ;;
			add) words="$coin --source --priority --max-attempts" ;;
			status | sources) words='--json' ;;
			show) words='--json' ;;
			requeue) words='--failed' ;;
			export) words='--csv' ;;
			plot) words='--output --format --size -' ;;
			doctor) words='--online' ;;
			worker) words='--once --env' ;;
			help) words='price add status show requeue export plot doctor worker sources migrate' ;;
			esac
			words="$words --help"
		fi
	fi
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}
complete -F _coin_pricer coin-pricer
