/*
 * From eBay's answers to records: a listing to a price_point, checked so that nothing
 * PostgreSQL or a later stage would refuse gets through, and an error answer to the
 * job_error's message and retryability.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ebay.h"
#include "log.h"
#include "ndjson.h"

const char *const ebay_adapters[3] = { "ebay_finding", "ebay_insights", "ebay_browse" };

/* An external id longer than this cannot be a key of PostgreSQL's unique index. */
#define MAX_EXTERNAL_ID 255

const char *
ebay_string(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Digits of s[0..n-1] as a number; the caller has checked that they are digits. */
static int
digits_value(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/*
 * Whether s is an RFC 3339 UTC timestamp that the schema and PostgreSQL's timestamptz
 * both take: YYYY-MM-DDTHH:MM:SS, 1 to 9 digits of fraction, Z; a real calendar date of
 * the years 1 to 9999 (Feb 30 and year 0 are refused, a leap second only at 23:59:60).
 */
static int
is_utc_timestamp(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	static const int month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int year, month, day, hour, minute, second, leap;
	size_t i, fraction;

	for (i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	year = digits_value(s, 4);
	month = digits_value(s + 5, 2);
	day = digits_value(s + 8, 2);
	hour = digits_value(s + 11, 2);
	minute = digits_value(s + 14, 2);
	second = digits_value(s + 17, 2);
	s += 19;
	if (*s == '.') {
		fraction = strspn(s + 1, "0123456789");
		if (fraction < 1 || fraction > 9)
			return 0;
		s += 1 + fraction;
	}
	if (strcmp(s, "Z") != 0 || year < 1 || month < 1 || month > 12 || day < 1)
		return 0;
	leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	if (day > month_days[month - 1] + (month == 2 && leap))
		return 0;
	return hour <= 23 && minute <= 59 && (second <= 59 || (second == 60 && hour == 23 && minute == 59));
}

/* Whether s is a decimal amount as the records carry it: digits, optionally "." and digits. */
static int
is_decimal(const char *s)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0)
		return 0;
	if (s[n] == '.') {
		s += n + 1;
		n = strspn(s, "0123456789");
		if (n == 0)
			return 0;
	}
	return s[n] == '\0';
}

/*
 * Check what the later stages and PostgreSQL would refuse, so that one odd listing can
 * never cost the job its other points: an optional field that is wrong becomes null,
 * a point without a usable id or price is skipped; each with a warning naming the item.
 * Returns 0 to write the point, -1 to skip it.
 */
static int
check_point(const struct job *j, struct point *p)
{
	const char *what = p->external_id ? p->external_id : "without itemId";

	if (!p->external_id || !*p->external_id || strlen(p->external_id) > MAX_EXTERNAL_ID || !p->amount ||
	    !is_decimal(p->amount) || !p->currency || !*p->currency) {
		log_warn("job %s: item %.*s: no usable itemId, price or currency (\"%.40s\" \"%.8s\"), "
			 "skipped",
			 j->job_id, MAX_EXTERNAL_ID, what, p->amount ? p->amount : "",
			 p->currency ? p->currency : "");
		return -1;
	}
	if (p->sold_at && !is_utc_timestamp(p->sold_at)) {
		log_warn("job %s: item %s: sold_at \"%.40s\" is not an RFC 3339 UTC timestamp; null "
			 "instead",
			 j->job_id, what, p->sold_at);
		p->sold_at = NULL;
	}
	if (p->shipping_amount && !is_decimal(p->shipping_amount)) {
		log_warn("job %s: item %s: shipping amount \"%.40s\" is not a decimal; null instead",
			 j->job_id, what, p->shipping_amount);
		p->shipping_amount = p->shipping_currency = NULL;
	}
	if (p->converted_usd && !is_decimal(p->converted_usd)) {
		log_warn("job %s: item %s: USD amount \"%.40s\" is not a decimal; null instead", j->job_id,
			 what, p->converted_usd);
		p->converted_usd = NULL;
	}
	return 0;
}

void
ebay_write_point(struct fetcher *f, const struct job *j, struct point *p)
{
	struct buf *b = &f->out;

	if (check_point(j, p) < 0)
		return;
	buf_addf(b, "{\"kind\":\"price_point\",\"job_id\":%s,\"intake_id\":%s,\"source_id\":%s", j->job_id,
		 j->intake_id, j->source_id);
	buf_add_member_string(b, "adapter", ebay_adapters[j->api]);
	buf_add_member_string(b, "external_id", p->external_id);
	buf_add_member_string(b, "title", p->title);
	buf_add_member_string(b, "url", p->url);
	buf_add_member_string(b, "condition", p->condition);
	buf_add_member_string(b, "price_type", p->price_type);
	buf_add_member_string(b, "amount", p->amount);
	buf_add_member_string(b, "currency", p->currency);
	buf_add_member_string(b, "shipping_amount", p->shipping_amount);
	buf_add_member_string(b, "shipping_currency", p->shipping_currency);
	buf_add_member_string(b, "converted_usd", p->converted_usd);
	buf_add_member_string(b, "sold_at", p->sold_at);
	if (p->quantity > 0)
		buf_addf(b, ",\"quantity\":%d", p->quantity);
	buf_addf(b, ",\"reputation_weight\":%.6g,\"raw\":", j->reputation);
	jd_print(p->doc, p->raw, b);
	buf_adds(b, "}\n");
	f->items++;
}

/* The code unit of a "\uXXXX" escape at p, or -1 when p holds none. */
static long
escape_unit(const char *p, const char *end)
{
	char hex[5];
	char *stop;
	long v;

	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	memcpy(hex, p + 2, 4);
	hex[4] = '\0';
	v = strtol(hex, &stop, 16);
	return stop == hex + 4 && isxdigit((unsigned char)hex[0]) ? v : -1;
}

struct member {
	cJSON *node;
	size_t order;
};

static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->node->string, y->node->string);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/*
 * Every object of the tree keeps the first of its members with one name, as cJSON reads
 * it: a listing written on with two equal keys would be a bad line to the next stage
 * (found by the ebay fuzz target). Sorted, so that no body makes it quadratic.
 */
static void
drop_duplicate_keys(cJSON *node)
{
	struct member *m;
	cJSON *child;
	size_t n = 0, i, kept;

	for (child = node->child; child; child = child->next) {
		drop_duplicate_keys(child);
		n++;
	}
	if (!cJSON_IsObject(node) || n < 2)
		return;
	m = xmalloc(n * sizeof(*m));
	for (child = node->child, i = 0; child; child = child->next, i++)
		m[i] = (struct member){ child, i };
	qsort(m, n, sizeof(*m), member_cmp);
	for (i = 1, kept = 0; i < n; i++) {
		if (strcmp(m[i].node->string, m[kept].node->string) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(node, m[i].node));
		else
			kept = i;
	}
	free(m);
}

/*
 * Parse a response body as JSON once it is safe to pass on: bytes that are not UTF-8,
 * lone surrogate escapes (cJSON refuses the whole body for one) and \u0000 (which would
 * cut a string short) become U+FFFD, so that one odd listing costs no other point and
 * every record written is UTF-8. Returns a tree the caller owns, or NULL.
 */
static cJSON *
parse_unclean_body(const struct buf *body)
{
	const char *p = body->data ? body->data : "", *end = p + body->len;
	struct buf clean = BUF_INIT;
	cJSON *doc;
	long unit;
	int n;

	buf_grow(&clean, body->len);
	while (p < end) {
		const char *run = p;

		/* Plain ASCII, the bulk of a body, in one copy. */
		while (p < end && (unsigned char)*p < 0x80 && *p != '\\')
			p++;
		if (p > run) {
			buf_add(&clean, run, (size_t)(p - run));
			continue;
		}
		if (*p == '\\' && (unit = escape_unit(p, end)) >= 0) {
			if (unit >= 0xd800 && unit <= 0xdbff && escape_unit(p + 6, end) >= 0xdc00 &&
			    escape_unit(p + 6, end) <= 0xdfff) {
				buf_add(&clean, p, 12);
				p += 12;
			} else {
				if (unit == 0 || (unit >= 0xd800 && unit <= 0xdfff))
					buf_adds(&clean, "\\ufffd");
				else
					buf_add(&clean, p, 6);
				p += 6;
			}
		} else if (*p == '\\') {
			buf_add(&clean, p, end - p >= 2 ? 2 : 1);
			p += end - p >= 2 ? 2 : 1;
		} else if ((n = ndj_utf8_length((const unsigned char *)p, (const unsigned char *)end)) > 0) {
			buf_add(&clean, p, (size_t)n);
			p += n;
		} else {
			buf_adds(&clean, "\xef\xbf\xbd");
			p++;
		}
	}
	doc = cJSON_ParseWithLength(clean.data, clean.len);
	buf_free(&clean);
	if (doc != NULL)
		drop_duplicate_keys(doc);
	return doc;
}

/* ---- the body as an index of its values ------------------------------- */

struct jnode {
	size_t start, end;   /* the value's text */
	size_t key, key_len; /* its key's literal (quotes included) in an object, else key_len 0 */
	jv child, next;
	const char *str; /* the decoded string, once asked for */
	unsigned char type, key_escaped;
};

struct jblock {
	struct jblock *next;
	size_t used, cap;
	char data[];
};

enum jtype
jd_type(const struct jdoc *d, jv v)
{
	return v && v < d->n ? (enum jtype)d->nodes[v].type : J_NONE;
}

jv
jd_child(const struct jdoc *d, jv v)
{
	return v && v < d->n ? d->nodes[v].child : 0;
}

jv
jd_next(const struct jdoc *d, jv v)
{
	return v && v < d->n ? d->nodes[v].next : 0;
}

/* Room for n bytes that stay where they are until jd_free(). */
static char *
jd_alloc(struct jdoc *d, size_t n)
{
	struct jblock *b = d->blocks;

	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 8192 ? n : 8192;

		b = xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->used = 0;
		b->next = d->blocks;
		d->blocks = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

/* The decoded bytes of the string literal at text[at..at+len), in d->scratch. */
static void
jd_decode(struct jdoc *d, size_t at, size_t len)
{
	buf_reset(&d->scratch);
	buf_grow(&d->scratch, len);
	ndj_decode_string(d->text + at, len, &d->scratch);
}

jv
jd_get(const struct jdoc *d, jv o, const char *name)
{
	size_t n = strlen(name);
	jv v;

	if (jd_type(d, o) != J_OBJECT)
		return 0;
	for (v = d->nodes[o].child; v; v = d->nodes[v].next) {
		const struct jnode *m = &d->nodes[v];

		if (!m->key_escaped) {
			if (m->key_len == n + 2 && memcmp(d->text + m->key + 1, name, n) == 0)
				return v;
		} else {
			/* The scratch buffer is the doc's, not the caller's: decoding a key changes no
			 * string handed out. */
			jd_decode((struct jdoc *)(uintptr_t)d, m->key, m->key_len);
			if (strcmp(d->scratch.data, name) == 0)
				return v;
		}
	}
	return 0;
}

const char *
jd_str(struct jdoc *d, jv v)
{
	struct jnode *m;
	size_t len;
	char *s;

	if (jd_type(d, v) != J_STRING)
		return NULL;
	m = &d->nodes[v];
	if (m->str == NULL) {
		len = m->end - m->start;
		if (memchr(d->text + m->start, '\\', len) == NULL) {
			s = jd_alloc(d, len - 1);
			memcpy(s, d->text + m->start + 1, len - 2);
			s[len - 2] = '\0';
		} else {
			jd_decode(d, m->start, len);
			s = jd_alloc(d, d->scratch.len + 1);
			memcpy(s, d->scratch.data, d->scratch.len + 1);
		}
		m->str = s;
	}
	return m->str;
}

const char *
jd_string(struct jdoc *d, jv o, const char *name)
{
	return jd_str(d, jd_get(d, o, name));
}

int
jd_number(const struct jdoc *d, jv v, double *x)
{
	char digits[64], *text;
	size_t len;

	if (jd_type(d, v) != J_NUMBER)
		return 0;
	len = d->nodes[v].end - d->nodes[v].start;
	text = len < sizeof(digits) ? digits : xmalloc(len + 1);
	memcpy(text, d->text + d->nodes[v].start, len);
	text[len] = '\0';
	*x = strtod(text, NULL);
	if (text != digits)
		free(text);
	return 1;
}

/* Whether a number is written as cJSON prints it back: an integer of at most 9 digits. */
static int
plain_integer(const char *p, size_t len)
{
	size_t i = p[0] == '-';

	if (len - i > 9 || (p[i] == '0' && len - i > 1) || (i && p[1] == '0'))
		return 0;
	for (; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* The code unit of the \\uXXXX escape at p, which the body's check has seen to be one. */
static unsigned
unit_at(const char *p)
{
	unsigned v = 0;
	int i;

	for (i = 2; i < 6; i++)
		v = v << 4 | (unsigned)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
	return v;
}

/*
 * Write the character of the \\uXXXX escape (or surrogate pair) at *p to o as cJSON
 * prints it, which decodes escapes: quote, backslash and control characters escaped
 * (lower-case hex), the rest as UTF-8. Moves *p past it; returns the end of what it wrote.
 */
static char *
print_unit(const char **p, const char *end, char *o)
{
	static const char hex[] = "0123456789abcdef";
	unsigned cp = unit_at(*p);

	*p += 6;
	if (cp >= 0xd800 && cp <= 0xdbff && end - *p >= 6 && (*p)[0] == '\\' && (*p)[1] == 'u') {
		cp = 0x10000 + ((cp - 0xd800) << 10) + (unit_at(*p) - 0xdc00);
		*p += 6;
	}
	if (cp < 0x20 || cp == '"' || cp == '\\') {
		*o++ = '\\';
		switch (cp) {
		case '"':
		case '\\':
			*o++ = (char)cp;
			break;
		case '\b':
			*o++ = 'b';
			break;
		case '\f':
			*o++ = 'f';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\t':
			*o++ = 't';
			break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[cp >> 4];
			o[4] = hex[cp & 15];
			o += 5;
		}
	} else if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

static const char *
jd_skip_ws(const char *p, const char *end)
{
#ifdef __SSE2__
	/* A pretty-printed body is half indentation: 16 bytes at a time. */
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
					  _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
		unsigned other = ~(unsigned)_mm_movemask_epi8(ws) & 0xffffu;

		if (other != 0)
			return p + __builtin_ctz(other);
		p += 16;
	}
#endif
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/*
 * Append text[start..end), which passed the body's check, as cJSON's unformatted print
 * of it: no white space between tokens, escapes as cJSON writes the characters back.
 * Returns 0, or -1 (out unchanged) for a number that is not a plain integer (cJSON
 * writes those its own way).
 */
static int
jd_minify(const char *p, const char *end, struct buf *out)
{
	char *o, *start;
	const char *q, *backslash;

	/* Never longer than the text: every escape prints as long or shorter. */
	buf_grow(out, (size_t)(end - p));
	start = o = out->data + out->len;
	while (p < end) {
		char c = *p;

		if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			p = jd_skip_ws(p, end);
		} else if (c == '"') {
			*o++ = *p++;
			while (p < end && *p != '"') {
				if ((q = memchr(p, '"', (size_t)(end - p))) == NULL)
					q = end;
				backslash = memchr(p, '\\', (size_t)(q - p));
				if (backslash != NULL)
					q = backslash;
				memcpy(o, p, (size_t)(q - p));
				o += q - p;
				p = q;
				if (p >= end || *p == '"')
					break;
				if (end - p >= 6 && p[1] == 'u') {
					o = print_unit(&p, end, o);
				} else if (end - p >= 2) {
					/* \/ is a plain slash to cJSON; the other short escapes print as they came. */
					if (p[1] != '/')
						*o++ = '\\';
					*o++ = p[1];
					p += 2;
				} else {
					return -1;
				}
			}
			if (p >= end)
				return -1;
			*o++ = *p++;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			for (q = p + 1; q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
						    *q == 'E' || *q == '+' || *q == '-');
			     q++)
				;
			if (!plain_integer(p, (size_t)(q - p)))
				return -1;
			memcpy(o, p, (size_t)(q - p));
			o += q - p;
			p = q;
		} else {
			*o++ = c;
			p++;
		}
	}
	out->len += (size_t)(o - start);
	out->data[out->len] = '\0';
	return 0;
}

void
jd_print(const struct jdoc *d, jv v, struct buf *out)
{
	const struct jnode *m;
	cJSON *tree;
	char *text;

	if (jd_type(d, v) == J_NONE) {
		buf_adds(out, "null");
		return;
	}
	m = &d->nodes[v];
	if (d->printed) {
		buf_add(out, d->text + m->start, m->end - m->start);
		return;
	}
	if (jd_minify(d->text + m->start, d->text + m->end, out) == 0)
		return;
	/* Escapes and numbers that cJSON writes its own way: let it. */
	tree = cJSON_ParseWithLength(d->text + m->start, m->end - m->start);
	text = tree ? cJSON_PrintUnformatted(tree) : NULL;
	buf_adds(out, text ? text : "null");
	free(text);
	cJSON_Delete(tree);
}

void
jd_free(struct jdoc *d)
{
	while (d->blocks) {
		struct jblock *b = d->blocks;

		d->blocks = b->next;
		free(b);
	}
	free(d->nodes);
	free(d->owned);
	buf_free(&d->scratch);
	memset(d, 0, sizeof(*d));
}

/* The end of the string literal at p (its opening quote), or NULL; *escaped when it has escapes. */
static const char *
jd_string_end(const char *p, const char *end, int *escaped)
{
	const char *quote = memchr(p + 1, '"', (size_t)(end - p - 1));

	*escaped = 0;
	/* Most strings have no escape: their end is the next quote. */
	if (quote && memchr(p + 1, '\\', (size_t)(quote - p - 1)) == NULL)
		return quote + 1;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*escaped = 1;
			p++;
		}
	}
	return NULL;
}

/*
 * Index d->text, valid JSON by the rules of ndj_check_object() or printed by cJSON. Still
 * checks what it relies on, so that no text can make it misread. 0, or -1.
 */
static int
jd_index(struct jdoc *d)
{
	const char *p = d->text, *end = d->text + d->len, *q;
	jv *stack = NULL, *last = NULL; /* the open containers, and the last value of each */
	size_t depth = 0, stack_cap = 0, last_cap = 0, key = 0, key_len = 0;
	int key_escaped = 0, escaped, rc = -1;

	d->n = 1; /* node 0 is none */
	for (;;) {
		struct jnode *m;
		jv v;

		p = jd_skip_ws(p, end);
		if (p >= end)
			goto out;
		key_len = 0;
		if (depth > 0 && d->nodes[stack[depth - 1]].type == J_OBJECT) {
			if (*p != '"' || (q = jd_string_end(p, end, &key_escaped)) == NULL)
				goto out;
			key = (size_t)(p - d->text);
			key_len = (size_t)(q - p);
			p = jd_skip_ws(q, end);
			if (p >= end || *p != ':')
				goto out;
			p = jd_skip_ws(p + 1, end);
			if (p >= end)
				goto out;
		}
		if (d->n >= UINT32_MAX)
			goto out;
		BUF_ALLOC_GROW(d->nodes, d->n + 1, d->cap);
		v = (jv)d->n++;
		m = &d->nodes[v];
		memset(m, 0, sizeof(*m));
		m->start = (size_t)(p - d->text);
		m->key = key;
		m->key_len = key_len;
		m->key_escaped = (unsigned char)(key_len && key_escaped);
		if (depth > 0) {
			if (last[depth - 1])
				d->nodes[last[depth - 1]].next = v;
			else
				d->nodes[stack[depth - 1]].child = v;
			last[depth - 1] = v;
		}
		switch (*p) {
		case '{':
		case '[':
			m->type = *p == '{' ? J_OBJECT : J_ARRAY;
			BUF_ALLOC_GROW(stack, depth + 1, stack_cap);
			BUF_ALLOC_GROW(last, depth + 1, last_cap);
			stack[depth] = v;
			last[depth++] = 0;
			q = jd_skip_ws(p + 1, end);
			if (q < end && *q == (*p == '{' ? '}' : ']')) {
				p = q; /* closed below */
				break;
			}
			p++;
			continue;
		case '"':
			m->type = J_STRING;
			if ((q = jd_string_end(p, end, &escaped)) == NULL)
				goto out;
			p = q;
			break;
		case 't':
		case 'f':
		case 'n':
			q = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
			if ((size_t)(end - p) < strlen(q) || memcmp(p, q, strlen(q)) != 0)
				goto out;
			m->type = *p == 't' ? J_TRUE : *p == 'f' ? J_FALSE : J_NULL;
			p += strlen(q);
			break;
		default:
			if (*p != '-' && (*p < '0' || *p > '9'))
				goto out;
			for (q = p + 1; q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
						    *q == 'E' || *q == '+' || *q == '-');
			     q++)
				;
			m->type = J_NUMBER;
			p = q;
			break;
		}
		if (d->nodes[v].type != J_OBJECT && d->nodes[v].type != J_ARRAY)
			d->nodes[v].end = (size_t)(p - d->text);
		/* After a value: a comma, or the end of one or more containers. */
		for (;;) {
			p = jd_skip_ws(p, end);
			if (depth == 0) {
				rc = p == end ? 0 : -1;
				goto out;
			}
			if (p >= end)
				goto out;
			if (*p == ',') {
				p++;
				break;
			}
			if (*p != (d->nodes[stack[depth - 1]].type == J_OBJECT ? '}' : ']'))
				goto out;
			d->nodes[stack[--depth]].end = (size_t)(p + 1 - d->text);
			p++;
		}
	}
out:
	free(stack);
	free(last);
	return rc;
}

/*
 * The last body that ebay_worth_retry() read, kept (with a copy of its bytes) for the
 * mapper that reads the same body next: a page is then indexed once, not twice.
 */
static struct {
	struct jdoc d;
	char *bytes;
	size_t len;
	int valid;
} last_body;

void
ebay_forget_body(void)
{
	if (last_body.valid)
		jd_free(&last_body.d);
	free(last_body.bytes);
	memset(&last_body, 0, sizeof(last_body));
}

static int
parse_body(const struct buf *body, struct jdoc *d)
{
	char err[8];
	cJSON *doc;

	memset(d, 0, sizeof(*d));
	if (body->len > 0 && ndj_check_object(body->data, body->len, err, sizeof(err)) == 0) {
		/* The usual body: UTF-8, no odd escape, no key twice; as cJSON reads it. */
		d->text = body->data;
		d->len = body->len;
		if (jd_index(d) == 0)
			return 0;
		jd_free(d); /* not expected: what the check takes, the index takes */
	}
	doc = parse_unclean_body(body);
	if (doc == NULL)
		return -1;
	d->owned = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (d->owned == NULL)
		return -1;
	d->text = d->owned;
	d->len = strlen(d->owned);
	d->printed = 1;
	if (jd_index(d) == 0)
		return 0;
	jd_free(d);
	return -1;
}

int
ebay_parse_body(const struct buf *body, struct jdoc *d)
{
	if (last_body.valid && body->len == last_body.len &&
	    (body->len == 0 || memcmp(body->data, last_body.bytes, body->len) == 0)) {
		*d = last_body.d;
		if (d->owned == NULL)
			d->owned = last_body.bytes; /* d->text is in it */
		else
			free(last_body.bytes);
		memset(&last_body, 0, sizeof(last_body));
		return 0;
	}
	return parse_body(body, d);
}

/* Read a 200 answer's body into last_body. 0, or -1 when it is not JSON. */
static int
keep_body(const struct buf *body)
{
	struct buf copy = BUF_INIT;

	ebay_forget_body();
	buf_add(&copy, body->data ? body->data : "", body->len);
	if (parse_body(&copy, &last_body.d) < 0) {
		buf_free(&copy);
		return -1;
	}
	last_body.bytes = copy.data;
	last_body.len = body->len;
	last_body.valid = 1;
	return 0;
}

/*
 * After http_request() for a job: -1 with j->error set (retryable, but for a replay
 * with no recorded answer or an answer too large) when no usable response came, else 0. Either way j->retry_after keeps what eBay asked to wait, so
 * that the job's backoff can honour it.
 */
int
ebay_request_failed(struct job *j, int rc, const struct http_response *res, const char *what)
{
	char when[32];

	if (res->retry_after > 0)
		j->retry_after = res->retry_after;
	if (rc == 0)
		return 0;
	j->retryable = 1;
	if (rc == HTTP_QUOTA) {
		http_quota_reset_time(when, sizeof(when));
		snprintf(j->error, sizeof(j->error),
			 "eBay's daily call limit is used up; retry after %s (midnight Pacific time)", when);
	} else if (rc == HTTP_RETRY_LATER) {
		snprintf(j->error, sizeof(j->error),
			 "%s asked to wait %.0f s before the next call, longer than "
			 "EBAY_MAX_RETRY_AFTER_SECONDS: the job waits in the queue instead",
			 what, res->retry_after);
	} else if (rc == HTTP_TOO_LARGE) {
		/* eBay's pages are at most a few MiB: this is a broken mirror or proxy, and the
		 * next try would bring as much again. */
		j->retryable = 0;
		snprintf(j->error, sizeof(j->error),
			 "%s answered with more than EBAY_MAX_RESPONSE_BYTES allows (%s); "
			 "check EBAY_API_BASE and any proxy between",
			 what, res->error);
	} else {
		/* Recordings never grow between tries: when a replay has no answer, another
		 * try cannot find one. */
		j->retryable = rc != HTTP_NOT_RECORDED;
		snprintf(j->error, sizeof(j->error), "%s did not answer: %s", what, res->error);
	}
	return -1;
}

/* Send one request; on failure set j->error and return -1, else 0 with res filled. */
int
ebay_get_page(struct fetcher *f, struct job *j, const char *const *headers, struct http_response *res)
{
	int rc = http_request(f->http, "GET", f->url.data, headers, NULL, NULL, res, &f->calls);

	return ebay_request_failed(j, rc, res, "eBay");
}

/* Whether a response is worth another try: 429, 5xx (but not Finding's bad app id),
 * and a 200 whose body is not JSON (cut short, garbled). */
int
ebay_worth_retry(const struct http_response *res)
{
	struct jdoc d;
	const char *message;
	long id;
	int bad;

	if (res->status == 200)
		return keep_body(&res->body) < 0;
	if (!http_retryable_status(res->status))
		return 0;
	bad = ebay_parse_body(&res->body, &d) < 0;
	id = bad ? 0 : ebay_finding_error(&d, &message);
	jd_free(&d);
	return id != 11002;
}

void
ebay_fail_garbled(struct job *j, const char *api)
{
	j->retryable = 1;
	snprintf(j->error, sizeof(j->error),
		 "eBay %s answered HTTP 200 with a body that is not JSON (cut short or garbled) after "
		 "every retry",
		 api);
}

void
ebay_fail_status(struct job *j, long status, const char *api, long id, const char *message)
{
	j->retryable = http_retryable_status(status);
	if (id == 100017) {
		j->retryable = 0;
		snprintf(j->error, sizeof(j->error),
			 "this application is not approved for the Marketplace "
			 "Insights API (eBay error 100017: %s); ask eBay for access, or use the browse API "
			 "for asking prices",
			 message ? message : "insufficient permissions");
	} else if (id == 11002 || status == 401 || status == 403) {
		j->retryable = 0;
		snprintf(j->error, sizeof(j->error),
			 "eBay refused the credentials (%s: HTTP %ld%s%s): check "
			 "EBAY_APP_ID and EBAY_CERT_ID, and EBAY_SANDBOX for sandbox keys",
			 api, status, message ? ", " : "", message ? message : "");
	} else if (j->retryable) {
		snprintf(j->error, sizeof(j->error), "eBay %s answered HTTP %ld%s%s after every retry", api,
			 status, message ? ": " : "", message ? message : "");
	} else {
		snprintf(j->error, sizeof(j->error),
			 "eBay %s refused the request (HTTP %ld%s%s): check the "
			 "query and the category",
			 api, status, message ? ": " : "", message ? message : "");
	}
}
