#!/usr/bin/env bash
# The coin-pricer worker: claims a job, runs it through every stage, and again, until
# SIGTERM. Keeps the job's lock alive while it runs, returns it to the queue when a stage
# fails, backs off when the database or eBay is down, and stops cleanly.
#
#   claim-job | ebay-fetch | filter-junk | normalize-usd | store | valuate | store
#
# usage: pipeline.sh [--once] [--env FILE]
#   --once      stop when no job is left (default: wait for jobs until SIGTERM)
#   --env FILE  read settings from FILE (default: .env in the current folder, if any)
# Settings (environment or the env file): DATABASE_URL, WORKER_ID, POLL_INTERVAL_SECONDS,
# JOB_LOCK_TIMEOUT_SECONDS, EBAY_* (see ebay-fetch --help), LOG_LEVEL, LOG_FORMAT.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/claim-job" ]; then
	PATH="$here/bin:$PATH"
fi
export PATH

once=0
env_file=.env
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=1 ;;
	--env) env_file=${2:?--env needs a file}; shift ;;
	--help)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "pipeline.sh: unknown option $1 (see --help)" >&2
		exit 64
		;;
	esac
	shift
done

# KEY=VALUE lines, # comments; values are taken literally (nothing is executed), and
# what the environment already sets wins.
read_env() {
	local line key value
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		case $line in '' | '#'*) continue ;; esac
		key=${line%%=*}
		value=${line#*=}
		key=${key#export }
		[[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
		if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
			value=${BASH_REMATCH[1]}
		fi
		[ -z "${!key+x}" ] && export "$key=$value"
	done <"$1"
}
if [ -r "$env_file" ] && [ ! -d "$env_file" ]; then
	read_env "$env_file"
elif [ "$env_file" != .env ]; then
	echo "pipeline.sh: no such file: $env_file" >&2
	exit 66
fi

export WORKER_ID=${WORKER_ID:-$(hostname):$$}
poll=${POLL_INTERVAL_SECONDS:-5}
lock_timeout=${JOB_LOCK_TIMEOUT_SECONDS:-300}
heartbeat=$((lock_timeout / 3 > 1 ? lock_timeout / 3 : 1))
if [ -z "${LOG_FORMAT:-}" ]; then
	if [ -t 2 ]; then LOG_FORMAT=text; else LOG_FORMAT=json; fi
fi
export LOG_FORMAT

log() {
	local level=$1
	shift
	if [ "$LOG_FORMAT" = json ]; then
		jq -cn --arg l "$level" --arg m "$*" --arg w "$WORKER_ID" \
			'{ts: (now | strftime("%Y-%m-%dT%H:%M:%SZ")), level: $l, program: "pipeline.sh", worker: $w, msg: $m}' >&2
	else
		echo "pipeline.sh: $level: $*" >&2
	fi
}

stopping=0
running=
on_term() {
	if [ "$stopping" = 1 ] && [ -n "$running" ]; then
		log warn "second signal: stopping the job now; it goes back to the queue"
		kill -TERM -- "-$running" 2>/dev/null || true
	fi
	stopping=1
	log info "stopping after the current job"
}
trap on_term TERM INT

work=$(mktemp -d "${TMPDIR:-/tmp}/coin-pricer-worker.XXXXXX")
cleanup() {
	[ -n "${beat:-}" ] && kill -- "-$beat" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# A previous run of this worker that died left its jobs running: return them.
claim-job --release --worker "$WORKER_ID" 2>/dev/null || true

failures=0
first_failure=
# After a failure: stop for good on 78 (retrying cannot help: wrong password, no such
# database, not migrated); with --once, give up on 75 after DB_RECONNECT_SECONDS (60).
give_up_on() {
	local status=$1 now
	if [ "$status" -eq 78 ]; then
		log error "stopping: the configuration must be fixed first (see the message above)"
		exit 78
	fi
	now=$(date +%s)
	first_failure=${first_failure:-$now}
	if [ "$once" = 1 ] && [ $((now - first_failure)) -ge "${DB_RECONNECT_SECONDS:-60}" ]; then
		log error "giving up after $((now - first_failure)) s of failures (--once)"
		exit 75
	fi
}
backoff() {
	local delay=$((1 << (failures < 6 ? failures : 6)))
	log warn "waiting ${delay} s before trying again"
	sleep "$delay" &
	wait $! || true
}

# Run one claimed job through the stages, in a process group of its own so that a
# second signal can stop all of it. Returns the first failing stage's status.
run_job() {
	local job_file=$1 status=0
	set +e
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'set -o pipefail
		ebay-fetch <"$1" | filter-junk | normalize-usd | store | valuate | store >"$2"' \
		_ "$job_file" "$work/out.ndjson" &
	running=$!
	while :; do
		wait "$running"
		status=$?
		# wait returns early (status > 128) when a trapped signal arrives: wait again.
		if [ "$status" -gt 128 ] && kill -0 "$running" 2>/dev/null; then
			continue
		fi
		break
	done
	running=
	set -e
	return "$status"
}

while [ "$stopping" = 0 ]; do
	wait_for=$poll
	[ "$once" = 1 ] && wait_for=0
	set +e
	claim-job --worker "$WORKER_ID" --wait "$wait_for" >"$work/job.ndjson" &
	claimer=$!
	wait "$claimer"
	status=$?
	if [ "$status" -gt 128 ]; then
		kill "$claimer" 2>/dev/null
		wait "$claimer"
		status=$?
	fi
	set -e
	if [ "$status" -ne 0 ]; then
		failures=$((failures + 1))
		log error "claim-job failed (status $status)"
		[ "$stopping" = 1 ] && break
		give_up_on "$status"
		backoff
		continue
	fi
	if [ ! -s "$work/job.ndjson" ]; then
		[ "$once" = 1 ] && break
		continue
	fi
	job_id=$(jq -r .job_id "$work/job.ndjson")
	log info "job $job_id: started"
	# The heartbeat, in a process group of its own so that its sleep dies with it.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'while sleep "$1"; do claim-job --touch --worker "$2" || true; done' \
		_ "$heartbeat" "$WORKER_ID" >/dev/null 2>&1 &
	beat=$!
	if run_job "$work/job.ndjson"; then
		failures=0
		first_failure=
		jq -r 'select(.kind == "job_done") | "job \(.job_id): done, valuation \(.valuation_id)"' \
			"$work/out.ndjson" | while IFS= read -r line; do log info "$line"; done
		jq -r 'select(.kind == "job_error") | "job \(.job_id): \(.error) (\(.job_status // "?"))"' \
			"$work/out.ndjson" | while IFS= read -r line; do log warn "$line"; done
	else
		status=$?
		if [ "$status" -eq 65 ]; then
			# A stage refused the job record itself: running it again cannot help.
			log error "job $job_id: a stage refused the job (status 65); failing it"
			jq -cn --arg j "$job_id" '{kind: "job_error", job_id: $j, retryable: false,
				error: "a stage refused the job record (exit status 65): see the worker log"}' |
				cat "$work/job.ndjson" - | store --worker "$WORKER_ID" >/dev/null || true
		else
			failures=$((failures + 1))
			log error "job $job_id: a stage failed (status $status); returning the job to the queue"
			claim-job --release --worker "$WORKER_ID" 2>/dev/null || true
			give_up_on "$status"
			[ "$stopping" = 0 ] && backoff
		fi
	fi
	kill -- "-$beat" 2>/dev/null || true
	wait "$beat" 2>/dev/null || true
	beat=
done
log info "stopped"
