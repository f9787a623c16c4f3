/*
 * From eBay's answers to records: a listing to a price_point, checked so that nothing
 * PostgreSQL or a later stage would refuse gets through, and an error answer to the
 * job_error's message and retryability.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	char *raw;

	if (check_point(j, p) < 0)
		return;
	raw = cJSON_PrintUnformatted(p->raw);

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
	buf_addf(b, ",\"reputation_weight\":%.6g,\"raw\":%s}\n", j->reputation, raw ? raw : "null");
	free(raw);
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
cJSON *
ebay_parse_body(const struct buf *body)
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

/*
 * After http_request() for a job: -1 with j->error set (retryable) when no usable
 * response came, else 0. Either way j->retry_after keeps what eBay asked to wait, so
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
	} else {
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
	cJSON *doc;
	const char *message;
	long id;

	if (res->status == 200) {
		doc = ebay_parse_body(&res->body);
		cJSON_Delete(doc);
		return doc == NULL;
	}
	if (!http_retryable_status(res->status))
		return 0;
	doc = ebay_parse_body(&res->body);
	id = ebay_finding_error(doc, &message);
	cJSON_Delete(doc);
	return id != 11002;
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
