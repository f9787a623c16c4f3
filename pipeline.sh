#!/usr/bin/env bash
# The coin-pricer worker: one long-lived pipeline per worker, watched and restarted,
#   claim-job --follow | ebay-fetch | filter-junk | normalize-usd | store | valuate | store
# `pipeline.sh --help` is its manual (installed as coin-pricer-worker(1)).
set -euo pipefail

version=0.1.0

usage() {
	cat <<'EOF'
NAME
    pipeline.sh - the coin-pricer worker: claims scrape jobs and runs them through the stages

SYNOPSIS
    pipeline.sh [--once] [--workers K] [--in-flight N] [--grace SECONDS] [--env FILE]
    pipeline.sh --check [--env FILE]
    pipeline.sh --help | --version

DESCRIPTION
    Runs one long-lived pipeline per worker,
        claim-job --follow | ebay-fetch | filter-junk | normalize-usd | store | valuate | store
    and watches it. When a stage ends badly the whole pipeline is stopped, the worker's
    running jobs go back to the queue and the pipeline starts again after a backoff (1, 2,
    4 ... 64 s). No process of a worker outlives the supervisor, even one killed by
    SIGKILL. A restarted worker with the same id first returns the jobs its predecessor
    left running.

    Before it claims anything, it checks its settings and the eBay credentials that the
    enabled sources need (a token request where the source's API uses OAuth), and refuses
    to start, with every job left as it is, when they are missing or refused.

    The stages are taken from bin/ beside pipeline.sh (a built repository), else from the
    folder of pipeline.sh itself (an installation's libexec/coin-pricer), else from PATH.

OPTIONS
    --once           stop when no job is left (default: wait for jobs until SIGTERM)
    --workers K      run K pipelines, worker ids WORKER_ID-1 ... WORKER_ID-K (default 1:
                     one pipeline with WORKER_ID itself)
    --in-flight N    jobs each pipeline holds at once (default 8); it claims again
                     when half of them have finished
    --grace SECONDS  on SIGTERM, how long the jobs in flight may take to finish before
                     they are stopped and returned to the queue (default 30)
    --env FILE       read settings from FILE; without it, .env beside pipeline.sh, else
                     .env in the current folder, if either exists
    --check          check the settings and the credentials, then exit (0 or 78)
    -h, --help       this manual; -V, --version: the version

ENVIRONMENT
    DATABASE_URL              libpq URI or conninfo (else libpq's PG* variables)
    WORKER_ID                 a stable name per worker (default host:pid)
    POLL_INTERVAL_SECONDS     polling for new jobs when NOTIFY cannot wake the worker (5)
    JOB_LOCK_TIMEOUT_SECONDS  a running job whose lock is older is taken over (300)
    DB_RECONNECT_SECONDS      with --once, how long failures may last before it gives up (60)
    EBAY_APP_ID, EBAY_CERT_ID the eBay keyset (a source's config app_id / cert_id wins)
    EBAY_SANDBOX, EBAY_API_BASE, EBAY_REPLAY_DIR, EBAY_*: see ebay-fetch --help; with
                              EBAY_REPLAY_DIR no credentials are needed
    LOG_LEVEL                 debug, info, warn (or warning) or error (default info)
    LOG_FORMAT                json or text (default: text when stderr is a terminal)
    COIN_PRICER_STATE_DIR     eBay token cache and rate limit (~/.local/state/coin-pricer)
    COIN_PRICER_STAGES        the folder of the stages to run (default: bin/ beside this
                              script, or the folder it is installed in, then PATH)

    The settings file has dotenv's shape: KEY=VALUE lines, an optional "export ", values
    in single quotes (literal) or double quotes (\n, \t, \" and \\ escapes), "#" comments
    on their own line or after an unquoted value and a space, blank lines. Nothing in it
    is executed or expanded; what the environment already sets wins. A line that is not
    KEY=VALUE is skipped with a warning naming the file and line, and so is a key that
    changes how programs run (PATH, BASH_ENV, LD_*); an unknown key is set with a warning.

SIGNALS
    SIGTERM, SIGINT, SIGHUP
                     stop claiming; the jobs in flight get --grace seconds to finish, then
                     go back to the queue; exit 0. A second signal stops them at once.
    SIGQUIT          stop the jobs at once; they go back to the queue; exit 131.

EXIT STATUS
    0   stopped by a signal, or with --once no job is left
    64  wrong usage
    66  the --env file does not exist
    75  with --once, the database could not be reached for DB_RECONNECT_SECONDS
    78  configuration: a setting is wrong, eBay credentials are missing or refused, or a
        stage reported its configuration wrong (e.g. no such database)
EOF
}

synopsis() {
	usage | sed -n '/^SYNOPSIS/,/^$/p' | sed '1d;/^$/d' >&2
	exit 64
}

# Set by the pipeline shell for its stages alone (their parent's pid): inherited by the
# supervisor, it would end the programs it starts.
unset COIN_PRICER_PARENT_PID
self=$(readlink -f "${BASH_SOURCE[0]}")
here=${self%/*}
if [ -x "$here/bin/claim-job" ]; then
	PATH="$here/bin:$PATH"
elif [ -x "$here/claim-job" ]; then
	PATH="$here:$PATH"
fi
export PATH
# db_setup (the database's password kept off psql's command line): scripts/ in the
# repository, beside this script once installed.
for f in "$here/scripts/db-url.sh" "$here/db-url.sh"; do
	# shellcheck source=scripts/db-url.sh
	[ -f "$f" ] && . "$f" && break
done

# The collectors: which adapter_types (an SQL LIKE pattern) which executable collects.
# Adding a collector is adding its line here; jobs of any other adapter_type fail with
# the reason instead of being claimed.
collector_adapters='ebay_%'
collector=ebay-fetch

once=0
workers=1
in_flight=8
grace=30
env_file=
check_only=0
number() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
		echo "pipeline.sh: $1 wants a whole number of at least $3, not '$2'" >&2
		synopsis
	fi
}
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=1 ;;
	--workers) number "$1" "${2:-}" 1 && workers=$2 && shift ;;
	--in-flight) number "$1" "${2:-}" 1 && in_flight=$2 && shift ;;
	--grace) number "$1" "${2:-}" 0 && grace=$2 && shift ;;
	--env)
		if [ $# -lt 2 ] || [ -z "$2" ]; then
			echo "pipeline.sh: --env wants a file" >&2
			synopsis
		fi
		env_file=$2
		shift
		;;
	--check) check_only=1 ;;
	-h | --help)
		usage 2>/dev/null || { echo "pipeline.sh: cannot write the manual to standard output" >&2 && exit 74; }
		exit 0
		;;
	-V | --version)
		echo "pipeline.sh (coin-pricer) $version" 2>/dev/null ||
			{ echo "pipeline.sh: cannot write the version to standard output" >&2 && exit 74; }
		exit 0
		;;
	*)
		echo "pipeline.sh: unknown option $1" >&2
		synopsis
		;;
	esac
	shift
done

# ---- settings ----------------------------------------------------------------------------

# What was said while reading the settings, as "LEVEL<tab>message": logged once the log
# settings themselves are known.
notes=()

# Settings coin-pricer knows; any other key is set with a warning (a misspelling?).
known_key() {
	case $1 in
	DATABASE_URL | WORKER_ID | POLL_INTERVAL_SECONDS | JOB_LOCK_TIMEOUT_SECONDS | JOB_MAX_SECONDS | \
		DB_RECONNECT_SECONDS | LOG_LEVEL | LOG_FORMAT | COIN_PRICER_STATE_DIR | COIN_PRICER_STAGES | \
		EBAY_APP_ID | EBAY_CERT_ID | EBAY_DEV_ID | EBAY_SANDBOX | EBAY_API_BASE | EBAY_CALLS_PER_MINUTE | \
		EBAY_DAILY_CALL_LIMIT | EBAY_TIMEOUT_SECONDS | EBAY_MAX_TRIES | EBAY_RETRY_BASE_MS | \
		EBAY_MAX_RETRY_AFTER_SECONDS | EBAY_RECORD_DIR | EBAY_REPLAY_DIR | PG[A-Z]* | TZ | TMPDIR | \
		HOME | XDG_STATE_HOME) return 0 ;;
	esac
	return 1
}

# Keys that would change how the worker's programs run rather than configure them.
unsafe_key() {
	case $1 in
	PATH | IFS | ENV | BASH_ENV | SHELLOPTS | BASHOPTS | PS4 | BASH_FUNC_* | LD_* | GCONV_PATH | \
		LOCPATH | MALLOC_* | GLIBC_TUNABLES | COIN_PRICER_PARENT_PID) return 0 ;;
	esac
	return 1
}

# The backslash escapes of a double-quoted value: \n \t \r \" \\ (others stay as written).
unescape() {
	local s=$1 c
	unescaped=
	while [ -n "$s" ]; do
		c=${s:0:1}
		if [ "$c" = "\\" ] && [ ${#s} -gt 1 ]; then
			case ${s:1:1} in
			n) unescaped+=$'\n' ;;
			t) unescaped+=$'\t' ;;
			r) unescaped+=$'\r' ;;
			'"' | "\\" | "'") unescaped+=${s:1:1} ;;
			*) unescaped+=${s:0:2} ;;
			esac
			s=${s:2}
		else
			unescaped+=$c
			s=${s:1}
		fi
	done
}

# read_env FILE: the settings of a dotenv file (see the manual), exported where the
# environment does not set them. Nothing is executed.
read_env() {
	local file=$1 line key value n=0
	local re_line='^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$'
	local re_double='^"(([^"\\]|\\.)*)"[[:space:]]*(#.*)?$' re_single="^'([^']*)'[[:space:]]*(#.*)?\$"
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		if ! [[ $line =~ $re_line ]]; then
			notes+=("warn	$file:$n: not KEY=VALUE: line skipped")
			continue
		fi
		key=${BASH_REMATCH[2]}
		value=${BASH_REMATCH[3]}
		if [[ $value == \"* ]]; then
			if ! [[ $value =~ $re_double ]]; then
				notes+=("warn	$file:$n: $key: a double quote not closed, or text after it: line skipped")
				continue
			fi
			unescape "${BASH_REMATCH[1]}"
			value=$unescaped
		elif [[ $value == \'* ]]; then
			if ! [[ $value =~ $re_single ]]; then
				notes+=("warn	$file:$n: $key: a single quote not closed, or text after it: line skipped")
				continue
			fi
			value=${BASH_REMATCH[1]}
		else
			value=${value%%[[:space:]]#*}
			value=${value%"${value##*[![:space:]]}"}
		fi
		if unsafe_key "$key"; then
			notes+=("warn	$file:$n: $key is not a coin-pricer setting and would change how programs run: line skipped")
			continue
		fi
		known_key "$key" || notes+=("warn	$file:$n: $key is not a coin-pricer setting (misspelled?); set anyway")
		[ -n "${!key+x}" ] || export "$key=$value"
	done <"$1"
}

if [ -n "$env_file" ]; then
	if [ ! -r "$env_file" ] || [ -d "$env_file" ]; then
		echo "pipeline.sh: cannot read the settings file $env_file" >&2
		exit 66
	fi
elif [ -f "$here/.env" ]; then
	env_file=$here/.env
elif [ -f .env ]; then
	env_file=$PWD/.env
fi
if [ -n "$env_file" ]; then
	read_env "$env_file"
	notes=("info	settings read from $env_file" "${notes[@]}")
else
	notes=("info	no settings file ($here/.env or ./.env): settings from the environment alone" "${notes[@]}")
fi

# A configuration error before logging is set up: plain text, exit 78.
config_error() {
	echo "pipeline.sh: $*" >&2
	exit 78
}
# COIN_PRICER_STAGES (from the environment or the settings file) names the folder of the
# stages to run: it comes before the ones found beside this script.
if [ -n "${COIN_PRICER_STAGES:-}" ]; then
	[ -x "$COIN_PRICER_STAGES/claim-job" ] ||
		config_error "COIN_PRICER_STAGES=$COIN_PRICER_STAGES holds no claim-job: build with make, or name the folder of the stages"
	PATH="$COIN_PRICER_STAGES:$PATH"
	export PATH
fi
case ${LOG_LEVEL:-} in
[Dd][Ee][Bb][Uu][Gg]) log_threshold=0 ;;
'' | [Ii][Nn][Ff][Oo]) log_threshold=1 ;;
[Ww][Aa][Rr][Nn] | [Ww][Aa][Rr][Nn][Ii][Nn][Gg]) log_threshold=2 ;;
[Ee][Rr][Rr][Oo][Rr]) log_threshold=3 ;;
*) config_error "LOG_LEVEL=${LOG_LEVEL} is not a level: set debug, info, warn (or warning) or error" ;;
esac
case ${LOG_FORMAT:-} in
'')
	if [ -t 2 ]; then LOG_FORMAT=text; else LOG_FORMAT=json; fi
	;;
[Jj][Ss][Oo][Nn]) LOG_FORMAT=json ;;
[Tt][Ee][Xx][Tt]) LOG_FORMAT=text ;;
*) config_error "LOG_FORMAT=${LOG_FORMAT} is not a format: set json or text (or leave it empty: text on a terminal, else json)" ;;
esac
export LOG_FORMAT
[ -n "${WORKER_ID:-}" ] || WORKER_ID=${HOSTNAME:-localhost}:$$
export WORKER_ID

# A log line without starting a process: the supervisor logs only at starts, stops and
# failures, never per job (store logs each finished job).
log() {
	local level=$1 msg n
	shift
	case $level in debug) n=0 ;; info) n=1 ;; warn) n=2 ;; *) n=3 ;; esac
	[ "$n" -ge "$log_threshold" ] || return 0
	if [ "$LOG_FORMAT" = json ]; then
		msg=$*
		msg=${msg//\\/\\\\}
		msg=${msg//\"/\\\"}
		msg=${msg//$'\n'/\\n}
		msg=${msg//$'\t'/\\t}
		msg=${msg//[$'\001'-$'\037']/ }
		TZ=UTC printf '{"ts":"%(%Y-%m-%dT%H:%M:%SZ)T","level":"%s","program":"pipeline.sh","worker":"%s","msg":"%s"}\n' \
			-1 "$level" "${WORKER_ID//[\"\\]/}" "$msg" >&2
	else
		echo "pipeline.sh: $level: $*" >&2
	fi
}

for note in "${notes[@]}"; do
	log "${note%%	*}" "${note#*	}"
done
# DB_RECONNECT_SECONDS: a whole number from 1 to 86400, else the default, as the stages take it.
if [ -n "${DB_RECONNECT_SECONDS:-}" ] && ! { [[ $DB_RECONNECT_SECONDS =~ ^[0-9]{1,5}$ ]] &&
	[ $((10#$DB_RECONNECT_SECONDS)) -ge 1 ] && [ $((10#$DB_RECONNECT_SECONDS)) -le 86400 ]; }; then
	log warn "DB_RECONNECT_SECONDS=$DB_RECONNECT_SECONDS is not a number from 1 to 86400; using 60"
	DB_RECONNECT_SECONDS=60
fi
reconnect_seconds=$((10#${DB_RECONNECT_SECONDS:-60}))

# SIGTERM before the workers start (the checks below take a while on a busy host): no
# job was touched yet, so stop here, as a stop is: status 0.
trap 'log info "stopped before the workers started"; exit 0' TERM INT HUP

# ---- the credentials check ---------------------------------------------------------------

# token_status BASE SCOPE: asks BASE's OAuth endpoint for an application token with the
# environment's keyset; prints the HTTP status and the answer's error code (000 when BASE
# cannot be reached). The keyset goes to curl on stdin, never on its command line.
token_status() {
	local user="$EBAY_APP_ID:$EBAY_CERT_ID" answer code error
	user=${user//\\/\\\\}
	user=${user//\"/\\\"}
	answer=$(printf 'user = "%s"\n' "$user" |
		curl -sS -m 15 -K - -w '\n%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
			--data-urlencode grant_type=client_credentials --data-urlencode "scope=$2" \
			"$1/identity/v1/oauth2/token" 2>/dev/null) || true
	code=${answer##*$'\n'}
	answer=${answer%$'\n'*}
	# eBay's OAuth error is a code word (invalid_client, invalid_scope): anything else is
	# not shown, since an endpoint that echoes the request would show the keyset.
	error=$(jq -r '.error // empty' <<<"$answer" 2>/dev/null || true)
	[[ $error =~ ^[a-z_]{1,40}$ ]] || error=
	printf '%s %s\n' "${code:-000}" "$error"
}

# The eBay credentials every enabled source of the collector needs, as ebay-fetch decides:
# none with EBAY_REPLAY_DIR; Finding an application id, Insights and Browse the id and the
# cert id (a source's config app_id / cert_id wins over the environment); for these, a
# token request to EBAY_API_BASE or eBay with the environment's keyset. Logs each problem
# and returns 1 when the worker must not start; a check it cannot make is a warning.
check_credentials() {
	local rows name api own_id own_cert base code error problems=0 scope psql line d v newest=-1
	local -A asked=()
	if [ -n "${EBAY_REPLAY_DIR:-}" ]; then
		log info "EBAY_REPLAY_DIR is set: eBay is answered from recordings, no credentials needed"
		return 0
	fi
	if ! hash psql 2>/dev/null; then
		log warn "psql is not installed: the sources' eBay credentials are not checked before starting"
		return 0
	fi
	# Debian's psql is pg_wrapper, a Perl script that finds the newest client and runs it
	# (more than half of psql's start on a busy host): run that client directly.
	psql=${BASH_CMDS[psql]}
	{ read -r line <"$psql"; } 2>/dev/null || line=
	if [[ $line == '#!'*perl* ]]; then
		for d in /usr/lib/postgresql/*/bin/psql; do
			v=${d#/usr/lib/postgresql/}
			v=${v%%[!0-9]*}
			[ -x "$d" ] && [ -n "$v" ] && [ "$v" -gt "$newest" ] && newest=$v psql=$d
		done
	fi
	# The password goes to psql in PGPASSWORD, never on its command line (ps shows that).
	if ! rows=$(db_setup && PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" "$psql" -X -q -At -F $'\t' \
		-v ON_ERROR_STOP=1 ${db_conninfo:+-d "$db_conninfo"} -c "SELECT name,
			regexp_replace(coalesce(config->>'api', adapter_type), '^ebay_', ''),
			jsonb_typeof(config->'app_id') = 'string' AND config->>'app_id' <> '',
			jsonb_typeof(config->'cert_id') = 'string' AND config->>'cert_id' <> ''
			FROM sources WHERE enabled AND adapter_type LIKE '$collector_adapters' ORDER BY name" 2>/dev/null); then
		log warn "cannot read the sources (is the database reachable?): their eBay credentials are not checked before starting"
		return 0
	fi
	base=${EBAY_API_BASE:-}
	while [ "${base%/}" != "$base" ]; do base=${base%/}; done
	if [ -z "$base" ]; then
		case ${EBAY_SANDBOX:-false} in 1 | true) base=https://api.sandbox.ebay.com ;; *) base=https://api.ebay.com ;; esac
	elif ! [[ $base =~ ^https://|^http://(127\.|localhost|\[::1\]) ]]; then
		log error "EBAY_API_BASE must be https://, or http:// to a loopback address"
		return 1
	fi
	while IFS=$'\t' read -r name api own_id own_cert; do
		[ -n "$name" ] || continue
		case $api in
		finding)
			if [ "$own_id" != t ] && [ -z "${EBAY_APP_ID:-}" ]; then
				log error "source \"$name\" (eBay Finding) needs an application id: set EBAY_APP_ID (developer.ebay.com, your keyset) or the source's config app_id, or disable the source"
				problems=$((problems + 1))
			fi
			continue
			;;
		insights) scope=https://api.ebay.com/oauth/api_scope/buy.marketplace.insights ;;
		browse) scope=https://api.ebay.com/oauth/api_scope ;;
		*) continue ;; # ebay-fetch fails these jobs with the reason
		esac
		if [ "$own_id" = t ] && [ "$own_cert" = t ]; then
			log info "source \"$name\" has its own keyset in its config: not checked here"
			continue
		fi
		if { [ "$own_id" != t ] && [ -z "${EBAY_APP_ID:-}" ]; } || { [ "$own_cert" != t ] && [ -z "${EBAY_CERT_ID:-}" ]; }; then
			log error "source \"$name\" (eBay $api) needs eBay credentials: set EBAY_APP_ID and EBAY_CERT_ID (developer.ebay.com, your keyset) or the source's config app_id and cert_id, or disable the source"
			problems=$((problems + 1))
			continue
		fi
		if [ "$own_id" = t ] || [ "$own_cert" = t ]; then
			continue # half of the keyset in the config: nothing to try with the environment's
		fi
		if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
			log warn "curl or jq is not installed: the eBay credentials are not tried before starting"
			continue
		fi
		[ -n "${asked[$scope]:-}" ] || asked[$scope]=$(token_status "$base" "$scope")
		read -r code error <<<"${asked[$scope]}"
		case $code in
		200) log debug "source \"$name\": eBay gave a token" ;;
		400 | 401 | 403)
			if [ "$error" = invalid_scope ] && [ "$api" = insights ]; then
				log error "source \"$name\": eBay refused the Marketplace Insights scope: this keyset is not approved for it; ask eBay for access, use adapter_type ebay_browse (asking prices), or disable the source"
			else
				log error "source \"$name\": eBay refused the credentials (HTTP $code${error:+, $error}): check EBAY_APP_ID and EBAY_CERT_ID, and EBAY_SANDBOX for sandbox keys"
			fi
			problems=$((problems + 1))
			;;
		*) log warn "source \"$name\": could not ask eBay for a token now (HTTP $code): the credentials are not checked before starting" ;;
		esac
	done <<<"$rows"
	[ "$problems" -eq 0 ]
}

if ! check_credentials; then
	log error "not starting: fix the eBay credentials above (no job was touched)"
	exit 78
fi
if [ "$check_only" = 1 ]; then
	log info "the settings and the credentials are good: the worker can start"
	exit 0
fi

# ---- the workers ---------------------------------------------------------------------------

# The id of worker K into $wid (no command substitution: a fork each, ~10 ms of CPU on a
# busy host).
worker_id() {
	if [ "$workers" -eq 1 ]; then wid=$WORKER_ID; else wid=$WORKER_ID-$1; fi
}

# One worker: after a delay, the pipeline. Every process of it carries the parent-death
# signal, so that none outlives the supervisor: supervisor > worker > pipeline > stages.
# The worker and the pipeline shells get it from setpriv; each stage asks for it itself
# (cli_die_with_parent() at the start of its main(), told its parent's pid in
# COIN_PRICER_PARENT_PID, which only the pipeline shell sets), an exec fewer per stage
# (setpriv before each stage was 6 execs per worker start, ~10 ms of CPU each on this
# kind of host).
# The worker looks at its stages twice a second, starting no process to do so: its nap is
# a read, with a timeout, of the pipeline shell's standard output (a process substitution),
# which nothing writes and which ends when the pipeline shell does, ending the nap at once.
# (A sleep per nap was a fork and an exec twice a second per worker: at 4 workers 8 a
# second, more CPU than a stage spends on 20 jobs.) When a stage ends while the one before
# it still runs, the pipeline is broken and all of it is stopped. SIGTERM stops the
# claiming (the trap runs at once, during the nap); the jobs in flight then have GRACE
# seconds.
# claim-job --follow asks for SIGTERM in place of SIGKILL, and checks its parent. A
# collector other than ebay-fetch (any executable that speaks the records) gets the
# signal from setpriv, as it may not ask for it.
# The parent-death signal is asked for in the child, after the fork: a parent that died
# in between sends none. So each shell first checks that its parent is still the one
# that started it (the supervisor for a worker, the worker for a pipeline), and so does
# each stage (the pipeline shell named in COIN_PRICER_PARENT_PID), and else ends at
# once: nothing of a worker whose supervisor is gone runs on.
# shellcheck disable=SC2016 # expanded by the pipeline's own shell
pipeline_script='set -o pipefail
[ "$PPID" = "$6" ] || exit 70
export COIN_PRICER_PARENT_PID=$$
c="setpriv --pdeathsig KILL"
[ "$5" = ebay-fetch ] && c=
claim-job --follow --in-flight "$2" $3 --collects "$4" --worker "$1" | $c "$5" | filter-junk |
	normalize-usd | store --worker "$1" | valuate | store --worker "$1" >/dev/null'
# shellcheck disable=SC2016 # expanded by the worker's own shell
worker_script='set -uo pipefail
[ "$PPID" = "$3" ] || exit 70
delay=$1 grace=$2
shift 3
stop_at= told= pids=() looks=0
# SIGTERM: the grace period starts. The trap only notes it: it runs in the middle of the
# nap, a timed read, and a read builtin in the trap would cancel the timeout of the nap
# (bash 5.2: the nap then waits for the end of the pipeline, with eBay hung for ever).
on_term() { stop_at=${stop_at:-$((SECONDS + grace))}; }
trap on_term TERM INT
# Stop the claiming: SIGTERM to claim-job, once it is claim-job (not still a fork of the
# pipeline shell, which the signal would end).
tell() {
	local comm=
	[ -z "$told" ] && [ ${#pids[@]} -eq 7 ] || return 0
	{ read -r comm <"/proc/${pids[0]}/comm"; } 2>/dev/null
	[ "$comm" = claim-job ] && kill -TERM "${pids[0]}" 2>/dev/null && told=1
	return 0
}
# The delay before a restart: a sleep, cut short by a signal, that ends with this shell.
if [ "$delay" -gt 0 ]; then
	setpriv --pdeathsig KILL sleep "$delay" &
	wait $!
fi
[ -n "$stop_at" ] && exit 0
exec {out}< <(exec setpriv --pdeathsig KILL bash -c "$@" "$$")
job=$!
# Wait SECONDS, or less when the pipeline ends.
nap() { read -r -t "$1" -u "$out" _; }
# The state of a process in s: Z (ended, not yet reaped) or X (gone) once it ended. Bash
# reaps a child only when it waits, so "kill -0" would take an ended one for running.
state() { s=X; { read -r _ _ s _ <"/proc/$1/stat"; } 2>/dev/null; }
runs() { state "$1"; case $s in Z | X) return 1 ;; esac; }
# The stages, in the order they were started: the children of the pipeline shell.
while [ ${#pids[@]} -lt 7 ] && runs "$job"; do
	nap 0.05
	sorted=()
	kids=
	if [ -r "/proc/$job/task/$job/children" ]; then
		{ read -r -a kids <"/proc/$job/task/$job/children"; } 2>/dev/null
		for p in "${kids[@]}"; do sorted[p]=1; done
	else
		for p in /proc/[0-9]*; do
			{ read -r pid _ _ ppid _ <"$p/stat"; } 2>/dev/null || continue
			[ "$ppid" = "$job" ] && sorted[pid]=1
		done
	fi
	pids=("${!sorted[@]}")
done
[ -n "$stop_at" ] && tell
while runs "$job"; do
	nap 0.5
	[ -n "$stop_at" ] && tell
	# Broken when a stage has ended while the one before it still runs, at 4 looks in a
	# row (2 s): a stage closes its output a moment before it shows as ended, so in a
	# normal drain the next one may already be gone at one look, more so on a busy host.
	ended_first=
	for ((i = 1; i < ${#pids[@]}; i++)); do
		! runs "${pids[i]}" && runs "${pids[i - 1]}" && ended_first=1
	done
	broken=
	if [ -n "$ended_first" ]; then
		looks=$((looks + 1))
		[ "$looks" -ge 4 ] && broken=1
	else
		looks=0
	fi
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
declare -A pid=() started=() failures=() first_failure=()
stopping=0

start_worker() {
	local k=$1 delay=${2:-0} once_flag="" wid
	[ "$stopping" = 0 ] || return 0
	[ "$once" = 1 ] && once_flag=--once
	worker_id "$k"
	setsid setpriv --pdeathsig KILL bash -c "$worker_script" _ "$delay" "$grace" "$$" \
		"$pipeline_script" _ "$wid" "$in_flight" "$once_flag" "$collector_adapters" \
		"$collector" &
	pid[$k]=$!
	started[$k]=$((SECONDS + delay))
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
# A hang-up (the terminal closed, `kill -HUP`) stops the worker as SIGTERM does.
trap on_term TERM INT HUP

# shellcheck disable=SC2317 # called by the trap
# Any way out of the supervisor with workers still running (a signal it does not trap,
# an error) ends them and returns their jobs to the queue, once their processes are gone.
cleanup() {
	local k i alive ids=() wid
	for k in "${!pid[@]}"; do
		kill -KILL -- "-${pid[$k]}" 2>/dev/null || true
		pkill -KILL -s "${pid[$k]}" 2>/dev/null || true
		worker_id "$k"
		ids+=(--worker "$wid")
	done
	[ ${#ids[@]} -gt 0 ] || return 0
	for ((i = 0; i < 50; i++)); do
		alive=0
		for k in "${!pid[@]}"; do pgrep -s "${pid[$k]}" >/dev/null && alive=1; done
		[ "$alive" = 1 ] || break
		sleep 0.1
	done
	claim-job --release "${ids[@]}" 2>/dev/null || true
}
trap cleanup EXIT
# SIGQUIT: stop at once (no grace), the jobs back in the queue through cleanup.
trap 'log warn "SIGQUIT: stopping the jobs now; they go back to the queue"; exit 131' QUIT

# After a pipeline ended with status: 0 is done (--once, or stopped); 78 stops everything
# (the configuration must be fixed); anything else returns the worker's jobs to the
# queue and restarts it after a backoff, or with --once gives up after
# DB_RECONNECT_SECONDS of the database (or another service) out of reach.
ended() {
	local k=$1 status=$2 id delay now i wid
	worker_id "$k"
	id=$wid
	if [ "$status" -ne 0 ] && [ "$stopping" = 1 ]; then
		log warn "worker $id: stopped before its jobs ended (status $status); returning them to the queue"
	elif [ "$status" -ne 0 ]; then
		log error "worker $id: a stage failed (status $status); returning the job to the queue"
	fi
	if [ "$status" -ne 0 ]; then
		# Not before its processes are gone. They die with it, but not at the same
		# instant, and one forked just as its parent died asked for the parent-death
		# signal too late and would run on: every process left in the worker's session
		# is killed. A statement one of them sent may still land after the release:
		# store writes only for the attempt its job record names, so it then writes
		# nothing, and claim-job returns its worker's jobs claimed before it started.
		pkill -KILL -s "${pid[$k]}" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			pgrep -s "${pid[$k]}" >/dev/null || break
			sleep 0.1
		done
		claim-job --release --worker "$id" 2>/dev/null || true
	fi
	unset "pid[$k]"
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
	# A pipeline that ran a while before it failed starts the backoff afresh; only a
	# service out of reach (69, 75) counts towards giving up.
	[ $((now - ${started[$k]})) -lt 10 ] || failures[$k]=0
	case $status in 69 | 75) first_failure[$k]=${first_failure[$k]:-$now} ;; *) unset "first_failure[$k]" ;; esac
	failures[$k]=$((${failures[$k]:-0} + 1))
	if [ "$once" = 1 ] && [ -n "${first_failure[$k]:-}" ] &&
		[ $((now - ${first_failure[$k]})) -ge "$reconnect_seconds" ]; then
		log error "worker $id: giving up after $((now - ${first_failure[$k]})) s of failures (--once)"
		exit_status=75
		return
	fi
	delay=$((1 << (${failures[$k]} < 7 ? ${failures[$k]} - 1 : 6)))
	log warn "worker $id: starting again in $delay s"
	start_worker "$k" "$delay"
}

# A previous run of these workers that died left their jobs running: return them, with
# one claim-job for up to 100 workers (a process and a connection each cost more than the
# statements).
exit_status=0
ids=()
for ((k = 1; k <= workers; k++)); do
	worker_id "$k"
	ids+=(--worker "$wid")
	if [ $((k % 100)) = 0 ] || [ "$k" = "$workers" ]; then
		claim-job --release "${ids[@]}" 2>/dev/null || true
		ids=()
	fi
done
for ((k = 1; k <= workers; k++)); do
	start_worker "$k"
done
log info "started $workers worker(s), $in_flight job(s) in flight each"

while [ ${#pid[@]} -gt 0 ]; do
	finished=
	set +e
	# (bash's own notice of a worker killed by a signal would be a line that is not JSON)
	wait -n -p finished "${pid[@]}" 2>/dev/null
	status=$?
	set -e
	if [ -z "${finished:-}" ]; then
		# A signal (the trap has run), or a worker that ended while the supervisor ran
		# something else (bash took its status then, and wait -n no longer sees it).
		for k in "${!pid[@]}"; do
			kill -0 "${pid[$k]}" 2>/dev/null && continue
			set +e
			wait "${pid[$k]}" 2>/dev/null
			status=$?
			set -e
			finished=${pid[$k]}
			break
		done
		[ -n "${finished:-}" ] || continue
	fi
	for k in "${!pid[@]}"; do
		[ "${pid[$k]}" = "$finished" ] || continue
		[ "$status" -eq 0 ] && [ "$stopping" = 0 ] && failures[$k]=0 && unset "first_failure[$k]"
		ended "$k" "$status"
	done
done
log info "stopped"
exit "$exit_status"
