/*
 * Leveled logging to stderr, as JSON lines or as text, with secrets redacted.
 * stdout is data only: every diagnostic of every stage goes through here.
 */
/*
 * How a function reports an error: the house rule, after git's error() and die().
 * - A library function (stages/lib/) or a stage's helper says what went wrong once,
 *   where it knows why (log_error, or log_warn when the work goes on), and returns -1
 *   (or NULL). It never exits. A caller that gets -1 adds no second message for the
 *   same failure: it cleans up and returns -1 in turn. Where main must tell kinds of
 *   failure apart, the module says which kind the last one was (db_exit_status()),
 *   rather than returning 1, 2 or -2.
 * - A per-record callback of ndj_run() returns 0, or NDJ_BAD with the reason in r->err
 *   (the loop logs it with the line number), or an exit status to stop the stage.
 * - main, and only main, chooses the exit status (exits.h) and leaves through one path
 *   at its end that frees everything and closes stdout; the few library functions that
 *   do part of main's job (ndj_run, ndj_close_output, cli_common_option) log and return
 *   the status for main to return, never exit.
 * - One exception: running out of memory ends the stage at once with status 70 from
 *   buf.c (xmalloc and friends), since there is nothing left to report with.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/*
 * Set the program name and read LOG_LEVEL (debug, info, warn or warning, error; default
 * info) and LOG_FORMAT (json or text; default json when stderr is not a terminal), in
 * any case; empty is unset. Returns 0, or -1 with the error logged when either holds
 * anything else: a stage then exits EXIT_CONFIG rather than log at a level nobody asked for.
 */
int log_init(const char *program);

/*
 * Remember a secret (an app id, a token, a password): every later message has each
 * occurrence replaced by "[redacted]". The string is copied; strings shorter than four
 * characters are ignored (they cannot be hidden without mangling every message), and a
 * string already registered is not added again.
 */
void log_add_secret(const char *secret);

struct buf;

/* Replace every occurrence of every secret in b by "[redacted]" (for text that is not
 * a log line: the requests and responses kept in recordings, an error taken from a
 * response). b may hold any bytes, NUL included; it is searched to b->len. */
void log_redact(struct buf *b);

/* Forget all secrets and free what log_add_secret copied. */
void log_cleanup(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
