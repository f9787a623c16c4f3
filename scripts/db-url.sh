# shellcheck shell=bash
# Sourced by coin-pricer, pipeline.sh and migrate.sh: the database's password kept off
# command lines and out of messages.
#
# The database's password never goes on a command line, which any user of the host can read
# (ps): db_setup takes it out of DATABASE_URL (a URI's user:password@, or a conninfo's
# plain password=...) into PGPASSWORD, where libpq finds it, and psql gets the rest.
# db_secrets are what no message may show: the password as written and as decoded, and a
# DATABASE_URL that is neither a URI nor a conninfo (a pasted password, say) whole.
# shellcheck disable=SC2034 # db_conninfo is for the scripts that source this file
db_conninfo='' db_secrets=()
# db_decode TEXT: TEXT with its %XX escapes decoded, into decoded.
db_decode() {
	local t=${1//\\/\\\\}
	decoded=$(printf '%b' "${t//%/\\x}")
}
db_setup() {
	local url=${DATABASE_URL:-} pw='' rest decoded head tail
	local re_quoted="(^|[[:space:]])password[[:space:]]*=[[:space:]]*'(([^'\\]|\\\\.)*)'([[:space:]]|\$)"
	local re_query='^(postgres(ql)?://[^?#]*\?([^#]*&)?)password=([^&#]*)&?(.*)$'
	db_conninfo=$url
	if [[ $url =~ ^(postgres(ql)?://[^:@/?#]*):([^@/?#]*)@(.*)$ ]]; then
		pw=${BASH_REMATCH[3]}
		rest="${BASH_REMATCH[1]}@${BASH_REMATCH[4]}"
		db_secrets+=("$pw")
		# Only a password libpq would decode is moved; another is left to libpq's own error.
		if [[ $pw =~ ^([^%]|%[0-9A-Fa-f]{2})*$ ]]; then
			db_decode "$pw"
			pw=$decoded
			db_conninfo=$rest
			db_secrets+=("$pw")
			export PGPASSWORD=$pw
		fi
	elif [[ $url =~ $re_query ]]; then
		# A URI's ?password=... (libpq takes it as the password too), query kept otherwise.
		head=${BASH_REMATCH[1]} pw=${BASH_REMATCH[4]} tail=${BASH_REMATCH[5]}
		db_secrets+=("$pw")
		if [[ $pw =~ ^([^%]|%[0-9A-Fa-f]{2})*$ ]]; then
			db_decode "$pw"
			pw=$decoded
			[ -n "$tail" ] || head=${head%[?&]}
			db_conninfo=$head$tail
			db_secrets+=("$pw")
			export PGPASSWORD=$pw
		fi
	elif [[ $url =~ $re_quoted ]]; then
		# A conninfo's quoted password='...' (\' and \\ escaped inside).
		pw=${BASH_REMATCH[2]}
		db_secrets+=("$pw")
		db_conninfo=${url/"${BASH_REMATCH[0]}"/${BASH_REMATCH[1]}${BASH_REMATCH[4]}}
		pw=$(sed -E 's/\\(.)/\1/g' <<<"$pw")
		db_secrets+=("$pw")
		export PGPASSWORD=$pw
	elif [[ $url =~ (^|[[:space:]])password[[:space:]]*=[[:space:]]*([^[:space:]\'\\]+)([[:space:]]|$) ]]; then
		pw=${BASH_REMATCH[2]}
		db_secrets+=("$pw")
		db_conninfo=${url/"${BASH_REMATCH[0]}"/${BASH_REMATCH[1]}${BASH_REMATCH[3]}}
		export PGPASSWORD=$pw
	elif [ -n "$url" ] && [[ $url != *=* ]] && [[ $url != *://* ]]; then
		db_secrets+=("$url")
	fi
	[ -z "${PGPASSWORD:-}" ] || db_secrets+=("$PGPASSWORD")
}

# redact: stdin to stdout with every secret of db_secrets, and any password in a URI or a
# conninfo (libpq quotes a URL it cannot parse), masked.
redact() {
	local text s
	text=$(cat)
	for s in "${db_secrets[@]}"; do
		[ ${#s} -lt 3 ] || text=${text//"$s"/[redacted]}
	done
	sed -E "s#(postgres(ql)?://[^:@/[:space:]\"]*:)[^@[:space:]\"]*@#\1[redacted]@#g
		s#(password[[:space:]]*=[[:space:]]*)('[^']*'|[^[:space:]\"]+)#\1[redacted]#gI" <<<"$text"
}
