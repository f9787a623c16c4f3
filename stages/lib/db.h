/*
 * PostgreSQL through libpq: connecting from DATABASE_URL (else libpq's PG* variables)
 * with the password kept out of every message, parameterised statements only, and
 * reconnection after a lost connection.
 */
#ifndef DB_H
#define DB_H

#include <libpq-fe.h>

struct db {
	PGconn *conn;
	char target[256]; /* "host:port/dbname", for messages: never the password */
	int listening;	  /* LISTEN coin_pricer_jobs is in force */
	int permanent;	  /* the last failure will not pass by retrying (see db_exit_status) */
	char error[256];  /* the last failure's first line, for records and the database */
};

/*
 * Connect. connect_timeout defaults to 10 s. Logs the role and whether it bypasses
 * row-level security, and checks that the database is migrated. Returns 0, or -1 with
 * the reason logged (naming db->target, never the password). A DATABASE_URL that
 * cannot be parsed is never quoted: libpq's message about it may hold the password.
 */
int db_connect(struct db *db);

/*
 * The exit status for the last failure: EXIT_CONFIG (78) when retrying cannot help
 * (authentication failed, no such database or role, bad sslmode or URL, tables missing,
 * permission denied), else EXIT_TEMPFAIL (75: connection refused, server starting or
 * shutting down, too many connections, connection lost).
 */
int db_exit_status(const struct db *db);

/* Whether the last failure was the connection itself (not the statement). */
int db_lost(const struct db *db);

/*
 * After a lost connection: reconnect, backing off from 0.5 s to 5 s, for at most
 * max_seconds. Each new reason a try fails for is logged as a warning. Returns 0, or -1
 * when time ran out (logged with the last reason; db_exit_status() then says 78 when
 * that reason will not pass by retrying, such as a password changed meanwhile).
 */
int db_reconnect(struct db *db, int max_seconds);

/*
 * Run one statement with text parameters (NULL for SQL NULL). Returns the result,
 * which the caller owns and frees with PQclear(), or NULL with the error logged
 * (what is prefixed to the message says what was being done).
 */
PGresult *db_exec(struct db *db, const char *what, const char *sql, int nparams, const char *const *params);

/*
 * Like db_exec(), with parameter i in binary form where formats[i] is 1 (lengths[i]
 * bytes); formats and lengths NULL: all text.
 */
PGresult *db_exec_binary(struct db *db, const char *what, const char *sql, int nparams,
			 const char *const *params, const int *lengths, const int *formats);

/*
 * Like db_exec_binary(), with the result's columns in binary form when result_format is
 * 1 (PostgreSQL's send format of each type: integers in network order, uuids as 16
 * bytes, timestamps as microseconds since 2000), else as text.
 */
PGresult *db_exec_format(struct db *db, const char *what, const char *sql, int nparams,
			 const char *const *params, const int *lengths, const int *formats,
			 int result_format);

/* Like db_exec() for statements whose rows do not matter. 0 or -1. */
int db_run(struct db *db, const char *what, const char *sql, int nparams, const char *const *params);

/* LISTEN on channel; 0, or -1 when refused (a transaction pooler), logged once as a warning. */
int db_listen(struct db *db, const char *channel);

/* Which notifications wake a waiter: nonzero for those that do. */
typedef int db_notify_wanted(const char *channel, const char *payload, void *arg);

/*
 * Wait up to timeout_ms for a notification that wanted() accepts (every one when wanted
 * is NULL); the others are consumed and do not end the wait. Returns 1 when one arrived,
 * 0 on timeout (with wanted NULL, also when the connection became readable with no
 * notification), -1 when the connection failed or a signal interrupted the wait (errno
 * EINTR). With watch_fd >= 0, also returns 2 as soon as that descriptor reports an
 * error or hang-up (the reader of a pipe went away).
 */
int db_wait_notify(struct db *db, int timeout_ms, int watch_fd, db_notify_wanted *wanted, void *arg);

/*
 * Whether notifications reach this connection: with LISTEN on channel in force, send a
 * NOTIFY with a payload of its own from a second, short-lived connection, and wait up to
 * timeout_ms for it. A second connection, because through a transaction-mode pooler
 * (PgBouncer, Supabase's) a NOTIFY sent on the listening client may run on the very
 * server connection that holds the LISTEN and come back, while one from anywhere else
 * is dropped. Returns 1 when it arrived, 0 when not, -1 when the check itself failed
 * (logged at debug). Other notifications that arrive meanwhile are consumed.
 */
int db_notify_arrives(struct db *db, const char *channel, int timeout_ms);

void db_close(struct db *db);

#endif
