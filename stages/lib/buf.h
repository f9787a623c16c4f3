/*
 * A growable byte buffer, always NUL-terminated, for building records and messages
 * without ad-hoc malloc juggling. Allocation failure is fatal (exit 70): a stage that
 * cannot allocate a few kilobytes has nothing sensible left to do.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; owned by the buffer */
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                             \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

/* Make room for at least extra more bytes (plus the NUL). */
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s (len bytes, UTF-8) as a JSON string literal, quotes included. */
void buf_add_json_string(struct buf *b, const char *s, size_t len);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* malloc/realloc/strdup that never return NULL (they exit 70 instead). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
