/*
 * Logging to stderr. One line per message, written with a single write(2) so that
 * the lines of several stages sharing one stderr do not interleave mid-line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static const char *log_program = "coin-pricer";
static enum log_level log_threshold = LOG_INFO;
static int log_json;
static char **log_secrets;
static size_t log_nsecrets, log_secrets_cap;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int
log_init(const char *program)
{
	const char *level = getenv("LOG_LEVEL");
	const char *format = getenv("LOG_FORMAT");
	int bad_format = 0;
	size_t i;

	log_program = program;
	log_threshold = LOG_INFO;
	log_json = !isatty(2);
	/* Set but empty is unset: an .env file may hold "LOG_FORMAT=". */
	if (format != NULL && *format != '\0') {
		if (strcasecmp(format, "json") == 0)
			log_json = 1;
		else if (strcasecmp(format, "text") == 0)
			log_json = 0;
		else
			bad_format = 1;
	}
	if (bad_format) {
		log_error("LOG_FORMAT=%s is not a log format; use json or text", format);
		return -1;
	}
	if (level == NULL || *level == '\0')
		return 0;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(level, level_names[i]) == 0) {
			log_threshold = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(level, "warning") == 0) {
		log_threshold = LOG_WARN;
		return 0;
	}
	log_error("LOG_LEVEL=%s is not a log level; use debug, info, warn or error", level);
	return -1;
}

/* Whether messages of this level are printed. */
static int
log_enabled(enum log_level level)
{
	return level >= log_threshold;
}

void
log_add_secret(const char *secret)
{
	size_t i;

	/* Shorter strings cannot be hidden without mangling every message. */
	if (secret == NULL || strlen(secret) < 4)
		return;
	/* Once each: a collector registers its cached token again for every job, and a list
	 * that grew with each would cost a long-lived worker memory and every message a
	 * search through all of them. */
	for (i = 0; i < log_nsecrets; i++)
		if (strcmp(log_secrets[i], secret) == 0)
			return;
	BUF_ALLOC_GROW(log_secrets, log_nsecrets + 1, log_secrets_cap);
	log_secrets[log_nsecrets++] = xstrdup(secret);
}

void
log_cleanup(void)
{
	size_t i;

	for (i = 0; i < log_nsecrets; i++)
		free(log_secrets[i]);
	free(log_secrets);
	log_secrets = NULL;
	log_nsecrets = log_secrets_cap = 0;
}

/* Replace every occurrence of every secret in b by "[redacted]". b may hold any bytes,
 * NUL included (a response body): it is searched to its length, not to its first NUL. */
static void
redact(struct buf *b)
{
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < log_nsecrets && b->len > 0; i++) {
		const char *secret = log_secrets[i];
		size_t slen = strlen(secret);
		const char *p = b->data, *end = b->data + b->len, *hit;

		if (memmem(p, b->len, secret, slen) == NULL)
			continue;
		buf_reset(&out);
		while ((hit = memmem(p, (size_t)(end - p), secret, slen)) != NULL) {
			buf_add(&out, p, (size_t)(hit - p));
			buf_adds(&out, "[redacted]");
			p = hit + slen;
		}
		buf_add(&out, p, (size_t)(end - p));
		buf_reset(b);
		buf_add(b, out.data, out.len);
	}
	buf_free(&out);
}

/*
 * A message as one line of text: control characters (C0, DEL, and C1 as UTF-8 writes
 * them) as \xNN. What eBay or an input line says reaches messages: a newline in it would
 * forge a log line of its own, an escape sequence would drive the operator's terminal.
 */
static void
add_text(struct buf *line, const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i;

	for (i = 0; i < len; i++) {
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
			buf_addf(line, "\\x%02x", s[i]);
		} else if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
			buf_addf(line, "\\u%04x", s[i + 1]);
			i++;
		} else {
			buf_addc(line, (char)s[i]);
		}
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	struct buf msg = BUF_INIT, line = BUF_INIT;
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(&msg, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(msg.data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	msg.len = (size_t)n;
	redact(&msg);

	if (log_json) {
		char ts[32];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		buf_addf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":", ts,
			 now.tv_nsec / 1000000, level_names[level]);
		buf_add_json_string(&line, log_program, strlen(log_program));
		buf_adds(&line, ",\"msg\":");
		buf_add_json_string(&line, msg.data, msg.len);
		buf_adds(&line, "}\n");
	} else {
		buf_addf(&line, "%s: ", log_program);
		if (level != LOG_INFO)
			buf_addf(&line, "%s: ", level_names[level]);
		add_text(&line, msg.data, msg.len);
		buf_addc(&line, '\n');
	}
	if (write(2, line.data, line.len) < 0) {
		/* stderr is gone; there is nowhere left to say so. */
	}
	buf_free(&msg);
	buf_free(&line);
}

void
log_redact(struct buf *b)
{
	redact(b);
}
