/*
 * A growable byte buffer, always NUL-terminated, for building records and messages
 * without ad-hoc malloc juggling. Allocation failure is fatal (exit 70): a stage that
 * cannot allocate a few kilobytes has nothing sensible left to do.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>
#include <stdint.h>

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
/*
 * Append one member of a JSON object being built: a comma unless b is empty or ends
 * with '{', then "name": (name is written as given) and the value: s as a JSON string,
 * or null when s is NULL; v, or null when present is 0.
 */
void buf_add_member_string(struct buf *b, const char *name, const char *s);
void buf_add_member_int(struct buf *b, const char *name, int64_t v, int present);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/*
 * Make room in array for at least n elements of size bytes, where *cap are allocated:
 * the capacity at least doubles (from 16). Returns the array, perhaps moved; a size
 * that overflows size_t ends the stage as running out of memory does (exit 70).
 */
void *buf_grow_array(void *array, size_t size, size_t n, size_t *cap);

/* Grow array (a pointer lvalue, cap its capacity lvalue) to hold n elements, as git's ALLOC_GROW. */
#define BUF_ALLOC_GROW(array, n, cap)                                                                        \
	do {                                                                                                 \
		if ((n) > (cap))                                                                             \
			(array) = buf_grow_array((array), sizeof(*(array)), (n), &(cap));                    \
	} while (0)

/* malloc/realloc/strdup that never return NULL (they exit 70 instead). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
