#!/usr/bin/env bash
# The coin-pricer worker: one long-lived pipeline per worker, watched and restarted.
#
#   claim-job --follow | ebay-fetch | filter-junk | normalize-usd | store | valuate | store
#
# usage: pipeline.sh [--once] [--workers K] [--in-flight N] [--grace SECONDS] [--env FILE]
#   --once           stop when no job is left (default: wait for jobs until SIGTERM)
#   --workers K      run K pipelines, worker ids WORKER_ID-1 ... WORKER_ID-K (default 1:
#                    one pipeline with WORKER_ID itself)
#   --in-flight N    jobs each pipeline holds at once (default 4)
#   --grace SECONDS  on SIGTERM, how long the jobs in flight may take to finish before
#                    they are stopped and returned to the queue (default 30)
#   --env FILE       read settings from FILE (default: .env in the current folder, if any)
# Settings (environment or the env file): DATABASE_URL, WORKER_ID, POLL_INTERVAL_SECONDS,
# JOB_LOCK_TIMEOUT_SECONDS, EBAY_* (see ebay-fetch --help), LOG_LEVEL, LOG_FORMAT.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/claim-job" ]; then
	PATH="$here/bin:$PATH"
fi
export PATH

# The collectors: which adapter_types (an SQL LIKE pattern) which executable collects.
# Adding a collector is adding its line here; jobs of any other adapter_type fail with
# the reason instead of being claimed.
collector_adapters='ebay_%'
collector=ebay-fetch

once=0
workers=1
in_flight=4
grace=30
env_file=.env
number() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
		echo "pipeline.sh: $1 wants a whole number of at least $3, not '$2'" >&2
		exit 64
	fi
}
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=1 ;;
	--workers) number "$1" "${2:-}" 1 && workers=$2 && shift ;;
	--in-flight) number "$1" "${2:-}" 1 && in_flight=$2 && shift ;;
	--grace) number "$1" "${2:-}" 0 && grace=$2 && shift ;;
	--env) env_file=${2:?--env needs a file}; shift ;;
	--help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
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
if [ -z "${LOG_FORMAT:-}" ]; then
	if [ -t 2 ]; then LOG_FORMAT=text; else LOG_FORMAT=json; fi
fi
export LOG_FORMAT

# A log line without starting a process: the supervisor logs only at starts, stops and
# failures, never per job (store logs each finished job).
log() {
	local level=$1 msg
	shift
	if [ "$LOG_FORMAT" = json ]; then
		msg=$*
		msg=${msg//\\/\\\\}
		msg=${msg//\"/\\\"}
		printf '{"ts":"%(%Y-%m-%dT%H:%M:%SZ)T","level":"%s","program":"pipeline.sh","worker":"%s","msg":"%s"}\n' \
			-1 "$level" "${WORKER_ID//\"/}" "$msg" >&2
	else
		echo "pipeline.sh: $level: $*" >&2
	fi
}

worker_id() {
	if [ "$workers" -eq 1 ]; then echo "$WORKER_ID"; else echo "$WORKER_ID-$1"; fi
}

# One worker: after a delay, the pipeline. Every process of it carries the parent-death
# signal, so that none outlives the supervisor: supervisor > worker > pipeline > stages.
# The worker looks at its stages once a second (one sleep, never a process per job): when one
# ends while the stage before it still runs, the pipeline is broken and all of it is
# stopped. SIGTERM stops the claiming; the jobs in flight then have GRACE seconds.
# shellcheck disable=SC2016 # expanded by the pipeline's own shell
pipeline_script='set -o pipefail
d="setpriv --pdeathsig KILL" id=$1
$d claim-job --follow --in-flight "$2" $3 --collects "$4" --worker "$id" | $d "$5" | $d filter-junk |
	$d normalize-usd | $d store --worker "$id" | $d valuate | $d store --worker "$id" >/dev/null'
# shellcheck disable=SC2016 # expanded by the worker's own shell
worker_script='set -uo pipefail
delay=$1 grace=$2
shift 2
stop_at= told= pids=()
# Stop the claiming: SIGTERM to claim-job, once it is claim-job (not still setpriv).
on_term() {
	local comm=
	stop_at=${stop_at:-$((SECONDS + grace))}
	[ -z "$told" ] && [ ${#pids[@]} -eq 7 ] || return 0
	{ read -r comm <"/proc/${pids[0]}/comm"; } 2>/dev/null
	[ "$comm" = claim-job ] && kill -TERM "${pids[0]}" 2>/dev/null && told=1
	return 0
}
trap on_term TERM INT
nap() { sleep "$1" & wait $!; }
[ "$delay" -gt 0 ] && nap "$delay"
[ -n "$stop_at" ] && exit 0
setpriv --pdeathsig KILL bash -c "$@" &
job=$!
state() { { read -r _ _ s _ <"/proc/$1/stat"; } 2>/dev/null && echo "$s" || echo X; }
# The stages, in the order they were started.
while [ ${#pids[@]} -lt 7 ] && kill -0 "$job" 2>/dev/null; do
	nap 0.05
	sorted=()
	for p in /proc/[0-9]*; do
		{ read -r pid _ _ ppid _ <"$p/stat"; } 2>/dev/null || continue
		[ "$ppid" = "$job" ] && sorted[pid]=1
	done
	pids=("${!sorted[@]}")
done
[ -n "$stop_at" ] && on_term
while kill -0 "$job" 2>/dev/null; do
	nap 1
	[ -n "$stop_at" ] && on_term
	broken=
	for ((i = 1; i < ${#pids[@]}; i++)); do
		case $(state "${pids[i]}") in Z | X) ;; *) continue ;; esac
		case $(state "${pids[i - 1]}") in Z | X) ;; *) broken=1 ;; esac
	done
	if [ -n "$broken" ] || { [ -n "$stop_at" ] && [ "$SECONDS" -ge "$stop_at" ]; }; then
		if [ -n "$broken" ]; then
			echo "pipeline.sh: error: a stage ended while the one before it ran: stopping the pipeline" >&2
		else
			echo "pipeline.sh: warn: jobs still in flight after the grace period: stopping them" >&2
		fi
		kill -KILL "${pids[@]}" 2>/dev/null
		wait "$job"
		exit 70
	fi
done
wait "$job"'

# Per worker: the pid of its pipeline, its failures in a row and since when.
declare -A pid failures first_failure
stopping=0

start_worker() {
	local k=$1 delay=${2:-0} once_flag=
	[ "$stopping" = 0 ] || return 0
	[ "$once" = 1 ] && once_flag=--once
	setsid setpriv --pdeathsig KILL bash -c "$worker_script" _ "$delay" "$grace" \
		"$pipeline_script" _ "$(worker_id "$k")" "$in_flight" "$once_flag" "$collector_adapters" \
		"$collector" &
	pid[$k]=$!
}

on_term() {
	local k
	if [ "$stopping" = 1 ]; then
		log warn "second signal: stopping the jobs now; they go back to the queue"
		for k in "${!pid[@]}"; do kill -KILL -- "-${pid[$k]}" 2>/dev/null || true; done
		return
	fi
	stopping=1
	log info "stopping after the current job(s), within $grace s"
	for k in "${!pid[@]}"; do kill -TERM "${pid[$k]}" 2>/dev/null || true; done
}
trap on_term TERM INT

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local k
	for k in "${!pid[@]}"; do kill -KILL -- "-${pid[$k]}" 2>/dev/null || true; done
}
trap cleanup EXIT

# After a pipeline ended with status: 0 is done (--once, or stopped); 78 stops everything
# (the configuration must be fixed); anything else returns the worker's jobs to the
# queue and restarts it after a backoff, or with --once gives up after
# DB_RECONNECT_SECONDS of failures.
ended() {
	local k=$1 status=$2 id delay now
	id=$(worker_id "$k")
	unset "pid[$k]"
	if [ "$status" -ne 0 ]; then
		log error "worker $id: a stage failed (status $status); returning the job to the queue"
		claim-job --release --worker "$id" 2>/dev/null || true
	fi
	if [ "$status" -eq 78 ]; then
		log error "stopping: the configuration must be fixed first (see the message above)"
		stopping=1
		exit_status=78
		on_term
		return
	fi
	if [ "$status" -eq 0 ] || [ "$stopping" = 1 ]; then
		return
	fi
	now=$SECONDS
	failures[$k]=$((${failures[$k]:-0} + 1))
	first_failure[$k]=${first_failure[$k]:-$now}
	if [ "$once" = 1 ] && [ $((now - ${first_failure[$k]})) -ge "${DB_RECONNECT_SECONDS:-60}" ]; then
		log error "worker $id: giving up after $((now - ${first_failure[$k]})) s of failures (--once)"
		exit_status=75
		return
	fi
	delay=$((1 << (${failures[$k]} < 7 ? ${failures[$k]} - 1 : 6)))
	log warn "worker $id: starting again in $delay s"
	start_worker "$k" "$delay"
}

# A previous run of these workers that died left their jobs running: return them.
exit_status=0
for ((k = 1; k <= workers; k++)); do
	claim-job --release --worker "$(worker_id "$k")" 2>/dev/null || true
done
for ((k = 1; k <= workers; k++)); do
	start_worker "$k"
done
log info "started $workers worker(s), $in_flight job(s) in flight each"

while [ ${#pid[@]} -gt 0 ]; do
	finished=
	set +e
	wait -n -p finished "${pid[@]}"
	status=$?
	set -e
	[ -n "${finished:-}" ] || continue # a signal: the trap has run
	for k in "${!pid[@]}"; do
		[ "${pid[$k]}" = "$finished" ] || continue
		[ "$status" -eq 0 ] && [ "$stopping" = 0 ] && failures[$k]=0 && unset "first_failure[$k]"
		ended "$k" "$status"
	done
done
log info "stopped"
exit "$exit_status"
