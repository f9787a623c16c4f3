/*
 * The database connection shared by claim-job and store. Unnamed statements only
 * (PQexecParams), never PQprepare, so that it works through Supabase's transaction
 * pooler as through a direct connection.
 */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* Note the password as a secret and describe the target for messages. */
static void
describe_target(struct db *db, const char *conninfo)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *port = NULL, *dbname = NULL;
	char *err = NULL;

	opts = conninfo ? PQconninfoParse(conninfo, &err) : PQconndefaults();
	if (opts == NULL) {
		snprintf(db->target, sizeof(db->target), "(unreadable DATABASE_URL)");
		PQfreemem(err);
		return;
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

int
db_connect(struct db *db)
{
	const char *url = getenv("DATABASE_URL");
	const char *keywords[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *values[] = { url && *url ? url : NULL, "10", "coin-pricer", NULL };
	char why[512];
	PGresult *res;

	memset(db, 0, sizeof(*db));
	describe_target(db, url && *url ? url : NULL);
	if (getenv("PGPASSWORD"))
		log_add_secret(getenv("PGPASSWORD"));
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
		log_error("cannot connect to PostgreSQL at %s: %s", db->target, why);
		PQfinish(db->conn);
		db->conn = NULL;
		return -1;
	}
	res = PQexec(db->conn, "select current_user::text, rolbypassrls from pg_roles "
			       "where rolname = current_user");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		log_info("connected to %s as role %s (bypasses row-level security: %s)", db->target,
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)[0] == 't' ? "yes" : "no");
	PQclear(res);
	return 0;
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

	log_warn("lost the connection to %s; reconnecting for up to %d s", db->target, max_seconds);
	for (;;) {
		PQreset(db->conn);
		if (PQstatus(db->conn) == CONNECTION_OK) {
			log_info("reconnected to %s", db->target);
			db->listening = 0;
			return 0;
		}
		if ((clock_ms() - start) / 1000 + delay > max_seconds) {
			log_error("could not reconnect to %s within %d s", db->target, max_seconds);
			return -1;
		}
		clock_sleep_ms(delay * 1000);
		delay = delay * 2 > 5 ? 5 : delay * 2;
	}
}

PGresult *
db_exec(struct db *db, const char *what, const char *sql, int nparams, const char *const *params)
{
	PGresult *res;
	ExecStatusType status;
	char why[512];

	res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	status = PQresultStatus(res);
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		return res;
	first_line(res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn), why, sizeof(why));
	if (db_lost(db))
		log_warn("%s: connection to %s lost: %s", what, db->target, why);
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
db_wait_notify(struct db *db, int timeout_ms)
{
	struct pollfd pfd;
	PGnotify *n;
	int got = 0, rc;

	pfd.fd = PQsocket(db->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return -1;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0;
	if (!PQconsumeInput(db->conn))
		return -1;
	while ((n = PQnotifies(db->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

void
db_close(struct db *db)
{
	PQfinish(db->conn);
	db->conn = NULL;
}
