/*
 * Growable buffers and allocation that cannot fail silently.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
out_of_memory(void)
{
	static const char msg[] = "coin-pricer: out of memory\n";

	/* write(2), not stdio: stdio itself may need memory. */
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* Nothing left to report to. */
	}
	_exit(70);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		out_of_memory();
	return p;
}

void *
buf_grow_array(void *array, size_t size, size_t n, size_t *cap)
{
	size_t want = 16;

	if (size == 0 || *cap > (size_t)-1 / 2 / size || n > (size_t)-1 / size)
		out_of_memory();
	if (want < 2 * *cap)
		want = 2 * *cap;
	if (want < n)
		want = n;
	array = xrealloc(array, want * size);
	*cap = want;
	return array;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

void
buf_grow(struct buf *b, size_t extra)
{
	size_t want;

	if (extra >= (size_t)-1 / 2 - b->len)
		out_of_memory();
	want = b->len + extra + 1;
	if (want <= b->cap)
		return;
	if (want < b->cap * 2)
		want = b->cap * 2;
	if (want < 64)
		want = 64;
	b->data = xrealloc(b->data, want);
	b->cap = want;
	b->data[b->len] = '\0';
}

void
buf_add(struct buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_grow(b, 64);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_grow(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
buf_add_json_string(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	buf_grow(b, len + 2);
	buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			buf_add(b, esc, 2);
			break;
		case '\\':
			esc[1] = '\\';
			buf_add(b, esc, 2);
			break;
		case '\n':
			esc[1] = 'n';
			buf_add(b, esc, 2);
			break;
		case '\r':
			esc[1] = 'r';
			buf_add(b, esc, 2);
			break;
		case '\t':
			esc[1] = 't';
			buf_add(b, esc, 2);
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			buf_add(b, esc, 6);
		}
	}
	buf_add(b, s + run, len - run);
	buf_addc(b, '"');
}

/* Append ,"name": (without the comma after '{' or at the start) in one step: the
 * streaming stages write several members per record. */
static void
add_member_name(struct buf *b, const char *name)
{
	size_t n = strlen(name);
	char *p;

	buf_grow(b, n + 4);
	p = b->data + b->len;
	if (b->len > 0 && p[-1] != '{')
		*p++ = ',';
	*p++ = '"';
	memcpy(p, name, n);
	p += n;
	*p++ = '"';
	*p++ = ':';
	*p = '\0';
	b->len = (size_t)(p - b->data);
}

void
buf_add_member_string(struct buf *b, const char *name, const char *s)
{
	add_member_name(b, name);
	if (s != NULL)
		buf_add_json_string(b, s, strlen(s));
	else
		buf_add(b, "null", 4);
}

void
buf_add_member_int(struct buf *b, const char *name, int64_t v, int present)
{
	/* No printf: this runs for every record of the streaming stages. */
	char digits[24];
	size_t n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	add_member_name(b, name);
	if (!present) {
		buf_add(b, "null", 4);
		return;
	}
	do
		digits[sizeof(digits) - ++n] = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		digits[sizeof(digits) - ++n] = '-';
	buf_add(b, digits + sizeof(digits) - n, n);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
