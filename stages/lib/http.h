/*
 * HTTP for the collectors, over one reused libcurl easy handle: keep-alive, gzip,
 * TLS verification always on, timeouts, retries with backoff that honour
 * Retry-After, a request rate shared by every process on the host, and recording
 * and replaying of responses.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

#include "buf.h"

struct http_response {
	long status;	    /* HTTP status; 0 when no response came (see error) */
	struct buf body;    /* owned by the response; reset by each request */
	double retry_after; /* seconds from a Retry-After header (a number or a date), or -1 */
	char error[256];    /* transport error (timeout, refused, cut short), or "" */
	double elapsed_ms;
};

struct http_client;

/*
 * Options of a client. Every field may be left 0/NULL for its default.
 */
struct http_options {
	long connect_timeout_ms; /* 10000 */
	long timeout_ms;	 /* 30000 */
	int max_tries;		 /* 4: 1 try and 3 retries */
	long retry_base_ms;	 /* 1000: the first retry waits about this long */
	double calls_per_minute; /* 60: shared by all processes through rate_file */
	const char *rate_file;	 /* NULL: no shared rate limit */
	const char *record_dir;	 /* store every response here (secrets removed) */
	const char *replay_dir;	 /* answer from here, with no network */
	/* Secrets registered with log_add_secret() never go to a record. */
	/* Query parameters whose values are masked in records and replay keys. */
	const char *const *secret_params;
	long daily_limit; /* calls per Pacific-time day, counted in rate_file; 0: none */
	/* Whether a response is worth another try; default: http_retryable_status(). */
	int (*retryable)(const struct http_response *res);
	/* The longest Retry-After obeyed, in seconds (60); asked for longer, the request
	 * stops with HTTP_RETRY_LATER instead of holding its caller that long. */
	double max_retry_after;
	/* The largest body taken, in bytes (32 MiB); a larger answer stops the request with
	 * HTTP_TOO_LARGE, so that a broken mirror or proxy cannot exhaust the memory. */
	long long max_body_bytes;
};

/* Make a client; NULL with a message logged when libcurl cannot start. */
struct http_client *http_new(const struct http_options *options);
void http_free(struct http_client *c);

/*
 * One request, retried on 429, 5xx, timeouts and connection errors. method is "GET"
 * or "POST"; headers is a NULL-terminated list of "Name: value" (may be NULL); body
 * is for POST (may be NULL). userpwd is "user:password" for basic auth, or NULL.
 * Returns 0 when a response came (any status: check res->status), -1 when every try
 * failed without one (res->error says why), HTTP_QUOTA when the daily limit is
 * reached (nothing sent), HTTP_RETRY_LATER when the server asked (Retry-After, in
 * res->retry_after) to wait longer than max_retry_after, HTTP_NOT_RECORDED when replaying
 * and the recordings hold no answer (another try cannot find one), HTTP_TOO_LARGE when the
 * body passed max_body_bytes (not tried again: the next answer would be as large).
 * res->body is reset first.
 * *calls counts the requests actually sent (or replayed).
 */
int http_request(struct http_client *c, const char *method, const char *url, const char *const *headers,
		 const char *body, const char *userpwd, struct http_response *res, int *calls);

#define HTTP_QUOTA	  (-2)
#define HTTP_RETRY_LATER  (-3)
#define HTTP_NOT_RECORDED (-4)
#define HTTP_TOO_LARGE	  (-5)

/* When the current Pacific-time day ends, as "YYYY-MM-DDTHH:MM:SSZ" (eBay's quota day). */
void http_quota_reset_time(char *out, size_t n);

/* Stop (1) or resume (0) recording: responses that carry secrets, such as tokens, are
 * never written to the record folder. */
void http_pause_recording(struct http_client *c, int paused);

/* Whether a status is worth retrying (429, 5xx). */
int http_retryable_status(long status);

/* URL-encode s (for query strings and form bodies) onto out. */
void http_add_escaped(struct buf *out, const char *s);

void http_response_free(struct http_response *res);

/*
 * Write a file that only its owner may read (mode 0600), for tokens and recordings:
 * into a new file created beside path with O_EXCL (so never through a symlink or into a
 * file someone else made), then renamed over path. Returns 0, or -1 with errno set.
 */
int http_write_private(const char *path, const void *data, size_t len);

#endif
