/*
 * log_redact against a model: the text split at each occurrence of the secret, left to
 * right, and joined with "[redacted]". Input: the secret, a newline, then the text, which
 * may hold any bytes (NUL included: log_redact also serves response bodies and recordings).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size), *p, *end = data + size, *hit;
	struct buf text = BUF_INIT, want = BUF_INIT;
	char *secret;
	size_t slen;

	if (nl == NULL)
		return 0;
	slen = (size_t)(nl - data);
	if (slen < 4 || memchr(data, '\0', slen) != NULL)
		return 0; /* a secret is a C string of four bytes or more */
	secret = malloc(slen + 1);
	memcpy(secret, data, slen);
	secret[slen] = '\0';
	log_add_secret(secret);

	buf_add(&text, nl + 1, (size_t)(end - nl - 1));
	for (p = nl + 1; (hit = memmem(p, (size_t)(end - p), secret, slen)) != NULL; p = hit + slen) {
		buf_add(&want, p, (size_t)(hit - p));
		buf_adds(&want, "[redacted]");
	}
	buf_add(&want, p, (size_t)(end - p));

	log_redact(&text);
	if (text.len != want.len || memcmp(text.data, want.data, want.len) != 0)
		abort();
	log_cleanup();
	buf_free(&text);
	buf_free(&want);
	free(secret);
	return 0;
}
