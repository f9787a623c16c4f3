/*
 * The database connection shared by claim-job and store. Unnamed statements only
 * (PQexecParams), never PQprepare, so that it works through Supabase's transaction
 * pooler as through a direct connection.
 */
#include "db.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ndjson.h"

/*
 * What libpq or the server says when connecting fails for a reason that retrying will
 * not fix, with what to do about it. Anything else (connection refused, the server
 * starting up or shutting down, too many clients, a timeout) may pass.
 */
static const struct {
	const char *says, *todo;
} permanent_connect_errors[] = {
	{ "password authentication failed", "check the user and password in DATABASE_URL" },
	{ "authentication failed", "check the user and password in DATABASE_URL" },
	{ "no password supplied", "put the password in DATABASE_URL or PGPASSWORD" },
	{ "no pg_hba.conf entry", "the server refuses this host, user or database (pg_hba.conf)" },
	{ "does not exist", "check the database and user names in DATABASE_URL" },
	{ "invalid sslmode", "sslmode is one of disable, allow, prefer, require, verify-ca, verify-full" },
	{ "SSL was required", "the server does not offer SSL: check the host and sslmode" },
	{ "SSL support is not compiled in", "this libpq has no SSL: use another build or sslmode" },
	{ "invalid connection option", "DATABASE_URL names an option libpq does not know" },
	{ "invalid integer value", "a number in DATABASE_URL is not one" },
	{ "invalid port number", "check the port in DATABASE_URL" },
	{ "is not permitted to log in", "the role may not log in" },
	{ "certificate", "the server's TLS certificate does not verify: check sslrootcert" },
};

/* Mark the user-info of a URI that libpq could not parse as a secret (all of it, and
 * the part after the first ':'), so that no later message can show it. */
static void
hide_user_info(const char *url)
{
	const char *start = strstr(url, "://"), *at, *colon;
	char *info;

	if (start == NULL)
		return;
	start += 3;
	at = strrchr(start, '@');
	if (at == NULL)
		return;
	info = xstrndup(start, (size_t)(at - start));
	log_add_secret(info);
	colon = strchr(info, ':');
	if (colon != NULL)
		log_add_secret(colon + 1);
	free(info);
}

/* Note the password as a secret and describe the target for messages. */
static int
describe_target(struct db *db, const char *conninfo)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *port = NULL, *dbname = NULL;
	char *err = NULL;

	opts = conninfo ? PQconninfoParse(conninfo, &err) : PQconndefaults();
	if (opts == NULL) {
		/* err may quote the password: it is never shown. */
		snprintf(db->target, sizeof(db->target), "(unreadable DATABASE_URL)");
		PQfreemem(err);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;

		if (v == NULL && !conninfo)
			continue;
		if (v == NULL)
			v = getenv(o->envvar ? o->envvar : "");
		if (v == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			log_add_secret(v);
		else if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !host))
			host = v;
		else if (strcmp(o->keyword, "port") == 0)
			port = v;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = v;
	}
	snprintf(db->target, sizeof(db->target), "%s:%s/%s", host ? host : "localhost", port ? port : "5432",
		 dbname ? dbname : "(default)");
	PQconninfoFree(opts);
	return 0;
}

/* The first line of libpq's message, with no trailing newline. */
static void
first_line(const char *msg, char *out, size_t n)
{
	size_t len = strcspn(msg, "\n");

	if (len >= n)
		len = n - 1;
	memcpy(out, msg, len);
	out[len] = '\0';
}

/* The server's notices and warnings (a restart's "terminating connection", a RAISE in a
 * function) go through the log like every other line, not to stderr as libpq's default
 * prints them: a LOG_FORMAT=json reader would trip on a raw line. */
static void
on_notice(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char text[512];

	(void)arg;
	first_line(PQresultErrorMessage(res), text, sizeof(text));
	if (severity && strcmp(severity, "WARNING") == 0)
		log_warn("PostgreSQL: %s", text);
	else
		log_debug("PostgreSQL: %s", text);
}

/* Remember the last failure's text (truncated to fit). */
static void __attribute__((format(printf, 2, 3))) set_error(struct db *db, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(db->error, sizeof(db->error), fmt, ap);
	va_end(ap);
}

/* Whether the connection failed for good, and what to do; NULL when it may pass. */
static const char *
connect_todo(const char *why)
{
	size_t i;

	for (i = 0; i < sizeof(permanent_connect_errors) / sizeof(permanent_connect_errors[0]); i++)
		if (strstr(why, permanent_connect_errors[i].says) != NULL)
			return permanent_connect_errors[i].todo;
	return NULL;
}

/*
 * The role, whether it bypasses row-level security, and the schema check: store's
 * functions came with migration 006 (after 002's columns), its batch function in the
 * form it reads now with 008 (after 007, which also closed them to PUBLIC). A lookup by name in the
 * catalog cache, not a query of pg_attribute: a new connection's first statement paid
 * some 10 ms to plan one.
 */
static const char hello_sql[] =
	"SELECT current_user::text, (SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user),\n"
	" to_regproc('coin_pricer_store_points') IS NOT NULL AND to_regproc('coin_pricer_store_valuation') IS NOT NULL";

int
db_connect(struct db *db)
{
	const char *url = getenv("DATABASE_URL");
	const char *keywords[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *values[] = { url && *url ? url : NULL, "10", "coin-pricer", NULL };
	const char *todo;
	char why[512];
	PGresult *res;
	int migrated;

	memset(db, 0, sizeof(*db));
	if (getenv("PGPASSWORD"))
		log_add_secret(getenv("PGPASSWORD"));
	if (describe_target(db, url && *url ? url : NULL) < 0) {
		hide_user_info(url);
		db->permanent = 1;
		set_error(db, "DATABASE_URL cannot be parsed");
		log_error("DATABASE_URL cannot be parsed as a postgresql:// URI or a conninfo string "
			  "(check %%-escapes, [ ] around IPv6 hosts, quotes); libpq's message is not "
			  "shown because it may quote the password");
		return -1;
	}
	if (values[0] == NULL) {
		keywords[0] = "connect_timeout";
		values[0] = "10";
		keywords[1] = "application_name";
		values[1] = "coin-pricer";
		keywords[2] = NULL;
	}
	/* expand_dbname = 1: the URL may be a full conninfo string or URI. */
	db->conn = PQconnectdbParams(keywords, values, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		first_line(db->conn ? PQerrorMessage(db->conn) : "out of memory", why, sizeof(why));
		set_error(db, "cannot connect to PostgreSQL at %s", db->target);
		todo = connect_todo(why);
		db->permanent = todo != NULL;
		if (todo)
			log_error("cannot connect to PostgreSQL at %s: %s (%s; retrying will not help)",
				  db->target, why, todo);
		else
			log_error("cannot connect to PostgreSQL at %s: %s", db->target, why);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	PQsetNoticeReceiver(db->conn, on_notice, NULL);
	res = PQexec(db->conn, hello_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		first_line(PQresultErrorMessage(res), why, sizeof(why));
		log_error("connected to %s, but the first statement failed: %s", db->target, why);
		set_error(db, "the first statement failed at %s", db->target);
		PQclear(res);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	log_info("connected to %s as role %s (bypasses row-level security: %s)", db->target,
		 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)[0] == 't' ? "yes" : "no");
	migrated = PQgetvalue(res, 0, 2)[0] == 't';
	PQclear(res);
	if (!migrated) {
		db->permanent = 1;
		set_error(db, "the database at %s is not migrated", db->target);
		log_error("the database at %s lacks coin-pricer's tables or their newest columns: run "
			  "scripts/migrate.sh (with this DATABASE_URL)",
			  db->target);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	return 0;
}

int
db_exit_status(const struct db *db)
{
	return db->permanent ? EXIT_CONFIG : EXIT_TEMPFAIL;
}

int
db_lost(const struct db *db)
{
	return db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK;
}

int
db_reconnect(struct db *db, int max_seconds)
{
	double start = clock_ms(), delay = 0.5;
	char why[512], said[512] = "";
	const char *todo;

	log_warn("lost the connection to %s; reconnecting for up to %d s", db->target, max_seconds);
	for (;;) {
		PQreset(db->conn);
		if (PQstatus(db->conn) == CONNECTION_OK) {
			log_info("reconnected to %s", db->target);
			db->listening = 0;
			db->permanent = 0;
			return 0;
		}
		/* Why each try failed, once per new reason: "too many clients" for a minute, or
		 * a password changed meanwhile, must not look like silence. */
		first_line(PQerrorMessage(db->conn), why, sizeof(why));
		todo = connect_todo(why);
		if ((clock_ms() - start) / 1000 + delay > max_seconds) {
			db->permanent = todo != NULL;
			log_error("could not reconnect to %s within %d s: %s%s%s%s", db->target, max_seconds,
				  why, todo ? " (" : "", todo ? todo : "", todo ? ")" : "");
			return -1;
		}
		if (strcmp(why, said) != 0) {
			log_warn("cannot reconnect to %s yet: %s%s%s%s", db->target, why, todo ? " (" : "",
				 todo ? todo : "", todo ? ")" : "");
			snprintf(said, sizeof(said), "%s", why);
		}
		clock_sleep_ms(delay * 1000);
		delay = delay * 2 > 5 ? 5 : delay * 2;
	}
}

PGresult *
db_exec(struct db *db, const char *what, const char *sql, int nparams, const char *const *params)
{
	return db_exec_binary(db, what, sql, nparams, params, NULL, NULL);
}

PGresult *
db_exec_binary(struct db *db, const char *what, const char *sql, int nparams, const char *const *params,
	       const int *lengths, const int *formats)
{
	return db_exec_format(db, what, sql, nparams, params, lengths, formats, 0);
}

PGresult *
db_exec_format(struct db *db, const char *what, const char *sql, int nparams, const char *const *params,
	       const int *lengths, const int *formats, int result_format)
{
	PGresult *res;
	ExecStatusType status;
	const char *state, *primary;
	char why[512];

	res = PQexecParams(db->conn, sql, nparams, NULL, params, lengths, formats, result_format);
	status = PQresultStatus(res);
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		return res;
	first_line(res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn), why, sizeof(why));
	primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	set_error(db, "%s: %s", what, primary ? primary : why);
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* Class 42 (a table, column or function missing, permission denied), 3D (no such
	 * database), 28 (authorization): the same statement will fail again. */
	db->permanent = !db_lost(db) && state != NULL &&
			(strncmp(state, "42", 2) == 0 || strncmp(state, "3D", 2) == 0 ||
			 strncmp(state, "28", 2) == 0);
	if (db_lost(db))
		log_warn("%s: connection to %s lost: %s", what, db->target, why);
	else if (db->permanent && strncmp(state, "42501", 5) == 0)
		log_error("%s: %s (grant the role access, or row-level security policies)", what, why);
	else if (db->permanent && strncmp(state, "42", 2) == 0)
		log_error("%s: %s (is the database migrated? run scripts/migrate.sh)", what, why);
	else
		log_error("%s: %s", what, why);
	PQclear(res);
	return NULL;
}

int
db_run(struct db *db, const char *what, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_exec(db, what, sql, nparams, params);

	PQclear(res);
	return res ? 0 : -1;
}

int
db_listen(struct db *db, const char *channel)
{
	static int warned;
	char sql[128];
	PGresult *res;

	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	res = PQexec(db->conn, sql);
	db->listening = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!db->listening && !warned) {
		warned = 1;
		log_warn("LISTEN refused by %s (a transaction pooler?): polling instead", db->target);
	}
	PQclear(res);
	return db->listening ? 0 : -1;
}

int
db_wait_notify(struct db *db, int timeout_ms, int watch_fd, db_notify_wanted *wanted, void *arg)
{
	struct pollfd pfd[2];
	PGnotify *n;
	double deadline = clock_ms() + timeout_ms, left;
	int got = 0, rc;

	pfd[0].fd = PQsocket(db->conn);
	pfd[0].events = POLLIN;
	pfd[1].fd = watch_fd;
	pfd[1].events = 0; /* errors and hang-ups are always reported */
	if (pfd[0].fd < 0)
		return -1;
	/* Until a wanted notification comes or time is up: unwanted ones do not end the wait. */
	while (!got && (left = deadline - clock_ms()) > 0) {
		pfd[0].revents = pfd[1].revents = 0;
		rc = poll(pfd, watch_fd >= 0 ? 2 : 1, (int)left + 1);
		if (rc < 0)
			return -1;
		if (watch_fd >= 0 && (pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
			return 2;
		if (rc == 0)
			return 0;
		if (!PQconsumeInput(db->conn))
			return -1;
		while ((n = PQnotifies(db->conn)) != NULL) {
			if (wanted == NULL || wanted(n->relname, n->extra, arg))
				got = 1;
			PQfreemem(n);
		}
		/* Readable with no notification at all: the caller finds out what came. */
		if (wanted == NULL)
			break;
	}
	return got;
}

/* A second connection with the options of db's (password included, never shown). */
static PGconn *
connect_again(struct db *db)
{
	PQconninfoOption *opts = PQconninfo(db->conn), *o;
	const char **keywords, **values;
	size_t n = 0;
	PGconn *conn;

	if (opts == NULL)
		return NULL;
	for (o = opts; o->keyword != NULL; o++)
		n++;
	keywords = xmalloc((n + 1) * sizeof(*keywords));
	values = xmalloc((n + 1) * sizeof(*values));
	n = 0;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		keywords[n] = o->keyword;
		values[n++] = o->val;
	}
	keywords[n] = values[n] = NULL;
	conn = PQconnectdbParams(keywords, values, 0);
	if (conn)
		PQsetNoticeReceiver(conn, on_notice, NULL);
	free(keywords);
	free(values);
	PQconninfoFree(opts);
	return conn;
}

struct notify_check {
	const char *channel, *payload;
};

static int
is_check(const char *channel, const char *payload, void *arg)
{
	const struct notify_check *c = arg;

	return strcmp(channel, c->channel) == 0 && strcmp(payload, c->payload) == 0;
}

int
db_notify_arrives(struct db *db, const char *channel, int timeout_ms)
{
	char payload[64];
	const char *params[2] = { channel, payload };
	struct notify_check check = { channel, payload };
	PGconn *other = connect_again(db);
	PGresult *res;
	int rc = -1;

	snprintf(payload, sizeof(payload), "notify-check:%ld:%.0f", (long)getpid(), clock_ms());
	if (other == NULL || PQstatus(other) != CONNECTION_OK) {
		log_debug("notification check: no second connection to %s", db->target);
		goto out;
	}
	res = PQexecParams(other, "SELECT pg_notify($1, $2)", 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_debug("notification check: pg_notify failed at %s", db->target);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	rc = db_wait_notify(db, timeout_ms, -1, is_check, &check);
	if (rc < 0)
		log_debug("notification check: the wait failed at %s", db->target);
out:
	PQfinish(other);
	return rc;
}

void
db_close(struct db *db)
{
	PQfinish(db->conn);
	db->conn = NULL;
}
