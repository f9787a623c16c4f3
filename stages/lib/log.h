/*
 * Leveled logging to stderr, as JSON lines or as text, with secrets redacted.
 * stdout is data only: every diagnostic of every stage goes through here.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/*
 * Set the program name and read LOG_LEVEL (debug, info, warn, error; default info)
 * and LOG_FORMAT (json or text; default json when stderr is not a terminal).
 */
void log_init(const char *program);

/*
 * Remember a secret (an app id, a token, a password): every later message has each
 * occurrence replaced by "[redacted]". The string is copied; strings shorter than four
 * characters are ignored (they cannot be hidden without mangling every message).
 */
void log_add_secret(const char *secret);

struct buf;

/* Replace every occurrence of every secret in b by "[redacted]" (for text that is not
 * a log line, such as the requests kept in recordings). */
void log_redact(struct buf *b);

/* Forget all secrets and free what log_add_secret copied. */
void log_cleanup(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
