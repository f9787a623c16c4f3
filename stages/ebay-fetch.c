/*
 * ebay-fetch: the eBay collector. For each job record (or one --query), asks eBay's
 * Finding, Marketplace Insights or Browse API for comparable listings and writes the
 * job record on, one price_point per listing, then job_end; or job_error when the job
 * cannot be done. A job's points are written only once all its pages have come.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "ndjson.h"

enum api { API_FINDING, API_INSIGHTS, API_BROWSE };

static const char *const api_names[] = { "finding", "insights", "browse" };
static const char *const adapters[] = { "ebay_finding", "ebay_insights", "ebay_browse" };

#define FINDING_PATH	 "/services/search/FindingService/v1"
#define TOKEN_PATH	 "/identity/v1/oauth2/token"
#define BROWSE_PATH	 "/buy/browse/v1/item_summary/search"
#define INSIGHTS_PATH	 "/buy/marketplace_insights/v1_beta/item_sales/search"
#define SCOPE_BROWSE	 "https://api.ebay.com/oauth/api_scope"
#define SCOPE_INSIGHTS	 "https://api.ebay.com/oauth/api_scope/buy.marketplace.insights"
#define MAX_KEYWORDS	 8
#define MAX_QUERY_CHARS	 100
#define DEFAULT_CATEGORY "253" /* Coins: US */

struct options {
	const char *query;
	const char *category;
	int api;       /* -1: from the job */
	int max_pages; /* 0: from the job, else 5 */
	int print_query;
	const char *record_dir, *replay_dir;
	int strict;
};

struct fetcher {
	struct options opt;
	struct http_client *http;
	char finding_base[256], rest_base[256];
	const char *state_dir;
	char *env_app_id, *env_cert_id;
	struct buf url, out;
	int calls, pages, items;
};

/* What one job asks for. Strings are owned by the cJSON tree of the job record. */
struct job {
	cJSON *record;				    /* NULL for --query */
	const char *job_id, *intake_id, *source_id; /* JSON texts, "null" when absent */
	char *job_id_text, *intake_id_text, *source_id_text;
	enum api api;
	int max_pages;
	const char *category;
	const char *app_id, *cert_id;
	char *config_app_id, *config_cert_id; /* copies: the tree loses its secrets */
	int secrets_removed;		      /* the record goes on with a new "source" */
	double reputation;
	struct buf query; /* keywords separated by spaces */
	char error[512];
	int retryable;
	double retry_after; /* seconds eBay asked to wait (Retry-After), or 0 */
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: ebay-fetch [--api finding|insights|browse] [--max-pages N] [--category ID]\n"
		"                  [--record DIR | --replay DIR] [--strict] [--query TEXT | --print-query]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Reads job records on stdin and, for each, fetches comparable listings from eBay and\n"
	       "writes the job record, one price_point per listing, then job_end (pages, calls,\n"
	       "items, duration_ms), or job_error (error, retryable). Other records pass through.\n"
	       "\n"
	       "  --query TEXT      fetch for this query alone, reading no input\n"
	       "  --api API         finding (recorded/mirrored Finding responses), insights (sold\n"
	       "                    prices; eBay must approve the application), browse (asking\n"
	       "                    prices). Default: the job's source (config.api, else its\n"
	       "                    adapter_type); insights with --query\n"
	       "  --max-pages N     pages per job (default: the source's max_pages, else 5)\n"
	       "  --category ID     eBay category (default: the source's category_id, else 253)\n"
	       "  --print-query     print the query each job would send, and send nothing\n"
	       "  --record DIR      keep every response with its request (secrets removed) in DIR\n"
	       "  --replay DIR      answer from DIR, with no network\n"
	       "  --strict          stop at the first bad line\n"
	       "  --help, --version\n"
	       "\n"
	       "Environment: EBAY_APP_ID, EBAY_CERT_ID (a source's config app_id / cert_id wins),\n"
	       "EBAY_SANDBOX, EBAY_API_BASE, EBAY_CALLS_PER_MINUTE (60, shared by every ebay-fetch\n"
	       "on the host), EBAY_DAILY_CALL_LIMIT (5000), EBAY_TIMEOUT_SECONDS (30),\n"
	       "EBAY_MAX_TRIES (4), EBAY_RETRY_BASE_MS (1000), EBAY_MAX_RETRY_AFTER_SECONDS (60;\n"
	       "a longer Retry-After ends the job, retryable, with retry_after_seconds),\n"
	       "EBAY_RECORD_DIR and EBAY_REPLAY_DIR (as --record and --replay),\n"
	       "COIN_PRICER_STATE_DIR (token cache and rate limit; default\n"
	       "~/.local/state/coin-pricer).\n"
	       "Exit status: 0 ok (failed jobs are job_error records), 64 usage, 65 some lines\n"
	       "were bad, 74 I/O error, 78 configuration.\n");
}

/* ---- query construction ------------------------------------------------- */

static const char *const noise_words[] = {
	"a",  "an", "and",  "the", "of",   "for",  "with", "in",   "on",  "at",	  "to",
	"by", "or", "from", "no",  "very", "nice", "rare", "look", "wow", "l@@k",
};

static const struct {
	const char *denomination, *words;
} denomination_words[] = {
	{ "penny", "1 cent" },	  { "nickel", "5 cent" },	    { "dime", "10 cent" },
	{ "quarter", "25 cent" }, { "half_dollar", "half dollar" }, { "dollar", "dollar" },
};

static int
is_noise(const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(noise_words) / sizeof(noise_words[0]); i++)
		if (strlen(noise_words[i]) == len && strncasecmp(noise_words[i], w, len) == 0)
			return 1;
	return 0;
}

/* Whether the query already holds the word (case-insensitively). */
static int
has_word(const struct buf *q, const char *w, size_t len)
{
	const char *p = q->data;

	while (p && *p) {
		size_t n = strcspn(p, " ");

		if (n == len && strncasecmp(p, w, len) == 0)
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* Add the words of text: letters and digits, split at anything else. */
static void
add_words(struct buf *q, int *nwords, const char *text, int drop_noise)
{
	const char *p = text;

	while (p && *p) {
		size_t len;

		while (*p && !isalnum((unsigned char)*p))
			p++;
		len = 0;
		while (isalnum((unsigned char)p[len]))
			len++;
		if (len == 0)
			break;
		if (*nwords < MAX_KEYWORDS && !(drop_noise && is_noise(p, len)) && !has_word(q, p, len) &&
		    q->len + 1 + len <= MAX_QUERY_CHARS) {
			if (q->len)
				buf_addc(q, ' ');
			buf_add(q, p, len);
			(*nwords)++;
		}
		p += len;
	}
}

static const char *
string_item(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "US coin", year, mintmark, series, denomination, then the title's words. */
static void
build_query(const cJSON *attribution, struct buf *q)
{
	const cJSON *year = cJSON_GetObjectItemCaseSensitive(attribution, "year");
	const char *denomination = string_item(attribution, "denomination");
	int nwords = 0;
	char number[32];
	size_t i;

	buf_reset(q);
	buf_grow(q, 0);
	add_words(q, &nwords, "US coin", 0);
	if (cJSON_IsNumber(year)) {
		snprintf(number, sizeof(number), "%d", (int)year->valuedouble);
		add_words(q, &nwords, number, 0);
	} else if (cJSON_IsString(year)) {
		add_words(q, &nwords, year->valuestring, 0);
	}
	add_words(q, &nwords, string_item(attribution, "mintmark"), 0);
	add_words(q, &nwords, string_item(attribution, "series"), 1);
	for (i = 0; denomination && i < sizeof(denomination_words) / sizeof(denomination_words[0]); i++)
		if (strcmp(denomination, denomination_words[i].denomination) == 0)
			add_words(q, &nwords, denomination_words[i].words, 0);
	add_words(q, &nwords, string_item(attribution, "title"), 1);
}

/* ---- the job ------------------------------------------------------------ */

static int
api_by_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < 3; i++)
		if (strcmp(name, api_names[i]) == 0 || strcmp(name, adapters[i]) == 0)
			return (int)i;
	return -1;
}

static char *
json_text(const cJSON *v)
{
	return v ? cJSON_PrintUnformatted(v) : xstrdup("null");
}

static void
job_free(struct job *j)
{
	cJSON_Delete(j->record);
	free(j->job_id_text);
	free(j->intake_id_text);
	free(j->source_id_text);
	free(j->config_app_id);
	free(j->config_cert_id);
	buf_free(&j->query);
	memset(j, 0, sizeof(*j));
}

/*
 * Which keys of a source's config are secret: app_id, cert_id and dev_id (eBay's
 * keyset), and any key whose name, in any case, contains one of these words or ends in
 * "key" (api_key, AccessKey). Their values never go on in a record.
 */
static const char *const secret_words[] = {
	"app_id", "appid", "cert_id",	 "certid", "dev_id", "devid",	"secret",  "token",
	"passw",  "pwd",   "credential", "auth",   "cookie", "session", "private", "signature",
};

static int
is_secret_key(const char *name)
{
	char lower[128];
	size_t i, len = strlen(name);

	if (len >= sizeof(lower))
		len = sizeof(lower) - 1;
	for (i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[len] = '\0';
	for (i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
		if (strstr(lower, secret_words[i]) != NULL)
			return 1;
	return (len >= 3 && strcmp(lower + len - 3, "key") == 0) ||
	       (len >= 4 && strcmp(lower + len - 4, "keys") == 0);
}

/* Register every string within v for redaction. */
static void
add_secrets_of(const cJSON *v)
{
	const cJSON *item;

	if (cJSON_IsString(v))
		log_add_secret(v->valuestring);
	cJSON_ArrayForEach (item, v)
		add_secrets_of(item);
}

/* Remove the secret keys of o, at any depth, registering their values for redaction.
 * Returns how many were removed. */
static int
remove_secrets(cJSON *o)
{
	cJSON *item = o ? o->child : NULL, *next;
	int removed = 0;

	for (; item; item = next) {
		next = item->next;
		if (cJSON_IsObject(o) && item->string && is_secret_key(item->string)) {
			add_secrets_of(item);
			cJSON_Delete(cJSON_DetachItemViaPointer(o, item));
			removed++;
		} else {
			removed += remove_secrets(item);
		}
	}
	return removed;
}

/* The job record as it goes on: as it came, or with a "source" that lost its secrets. */
static void
pass_job_record(const struct job *j, const struct ndj_record *r)
{
	static const char *const source_name[] = { "source" };
	struct buf member = BUF_INIT;
	char *source;

	if (!j->secrets_removed) {
		ndj_pass(r);
		return;
	}
	source = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j->record, "source"));
	buf_addf(&member, "\"source\":%s", source ? source : "null");
	ndj_write_edited(r, source_name, 1, member.data, member.len);
	free(source);
	buf_free(&member);
}

/*
 * Read a job record into j. Returns 0; 1 for a job that ebay-fetch can never do (with
 * j->error set, not retryable: a job_error, so that the job fails instead of coming
 * back); or -1 for a record that is not a job at all, with the reason in err.
 */
static int
job_from_record(struct fetcher *f, const struct ndj_record *r, struct job *j, char *err, size_t n)
{
	const cJSON *source, *config, *attribution, *weight, *pages;
	const char *api_name;
	int api;

	memset(j, 0, sizeof(*j));
	j->record = cJSON_ParseWithLength(r->line, r->len);
	if (j->record == NULL) {
		snprintf(err, n, "the job record is too deep or too large to read");
		return -1;
	}
	source = cJSON_GetObjectItemCaseSensitive(j->record, "source");
	config = cJSON_GetObjectItemCaseSensitive(source, "config");
	if (string_item(config, "app_id"))
		j->config_app_id = xstrdup(string_item(config, "app_id"));
	if (string_item(config, "cert_id"))
		j->config_cert_id = xstrdup(string_item(config, "cert_id"));
	j->secrets_removed = remove_secrets((cJSON *)config);
	attribution = cJSON_GetObjectItemCaseSensitive(j->record, "attribution");
	j->job_id = j->job_id_text = json_text(cJSON_GetObjectItemCaseSensitive(j->record, "job_id"));
	j->intake_id = j->intake_id_text =
		json_text(cJSON_GetObjectItemCaseSensitive(j->record, "intake_id"));
	j->source_id = j->source_id_text =
		json_text(cJSON_GetObjectItemCaseSensitive(j->record, "source_id"));
	if (!cJSON_IsObject(attribution)) {
		snprintf(j->error, sizeof(j->error), "the job has no \"attribution\" object to search for");
		return 1;
	}
	api_name = string_item(config, "api");
	if (api_name == NULL)
		api_name = string_item(source, "adapter_type");
	api = f->opt.api >= 0 ? f->opt.api : api_by_name(api_name);
	if (api < 0) {
		snprintf(j->error, sizeof(j->error),
			 "ebay-fetch cannot do a job of adapter type \"%.64s\": the source's "
			 "adapter_type (or config.api) must be ebay_finding, ebay_insights or ebay_browse",
			 api_name ? api_name : "(none)");
		return 1;
	}
	j->api = (enum api)api;
	pages = cJSON_GetObjectItemCaseSensitive(config, "max_pages");
	j->max_pages = f->opt.max_pages ? f->opt.max_pages
		       : cJSON_IsNumber(pages) && pages->valuedouble >= 1 && pages->valuedouble <= 100
			       ? (int)pages->valuedouble
			       : 5;
	j->category = f->opt.category ? f->opt.category : string_item(config, "category_id");
	if (j->category == NULL)
		j->category = DEFAULT_CATEGORY;
	j->app_id = j->config_app_id ? j->config_app_id : f->env_app_id;
	j->cert_id = j->config_cert_id ? j->config_cert_id : f->env_cert_id;
	weight = cJSON_GetObjectItemCaseSensitive(source, "reputation_weight");
	j->reputation = cJSON_IsNumber(weight) ? weight->valuedouble : 1.0;
	build_query(attribution, &j->query);
	return 0;
}

/* ---- writing points ------------------------------------------------------ */

static void
add_member(struct buf *b, const char *name, const char *value)
{
	buf_addf(b, ",\"%s\":", name);
	if (value)
		buf_add_json_string(b, value, strlen(value));
	else
		buf_adds(b, "null");
}

struct point {
	const char *external_id, *title, *url, *condition, *price_type;
	const char *amount, *currency, *shipping_amount, *shipping_currency, *converted_usd;
	const char *sold_at;
	int quantity; /* 0: not known */
	const cJSON *raw;
};

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

/* An external id longer than this cannot be a key of PostgreSQL's unique index. */
#define MAX_EXTERNAL_ID 255

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

static void
write_point(struct fetcher *f, const struct job *j, struct point *p)
{
	struct buf *b = &f->out;
	char *raw;

	if (check_point(j, p) < 0)
		return;
	raw = cJSON_PrintUnformatted(p->raw);

	buf_addf(b, "{\"kind\":\"price_point\",\"job_id\":%s,\"intake_id\":%s,\"source_id\":%s", j->job_id,
		 j->intake_id, j->source_id);
	add_member(b, "adapter", adapters[j->api]);
	add_member(b, "external_id", p->external_id);
	add_member(b, "title", p->title);
	add_member(b, "url", p->url);
	add_member(b, "condition", p->condition);
	add_member(b, "price_type", p->price_type);
	add_member(b, "amount", p->amount);
	add_member(b, "currency", p->currency);
	add_member(b, "shipping_amount", p->shipping_amount);
	add_member(b, "shipping_currency", p->shipping_currency);
	add_member(b, "converted_usd", p->converted_usd);
	add_member(b, "sold_at", p->sold_at);
	if (p->quantity > 0)
		buf_addf(b, ",\"quantity\":%d", p->quantity);
	buf_addf(b, ",\"reputation_weight\":%.6g,\"raw\":%s}\n", j->reputation, raw ? raw : "null");
	free(raw);
	f->items++;
}

/* ---- the Finding API ---------------------------------------------------- */

/* Finding wraps every value in an array: the first element of o[name]. */
static const cJSON *
first(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : v;
}

static const char *
first_string(const cJSON *o, const char *name)
{
	const cJSON *v = first(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
finding_item(struct fetcher *f, const struct job *j, const cJSON *item)
{
	const cJSON *status = first(item, "sellingStatus");
	const cJSON *price = first(status, "currentPrice");
	const cJSON *usd = first(status, "convertedCurrentPrice");
	const cJSON *ship = first(first(item, "shippingInfo"), "shippingServiceCost");
	const char *usd_currency = first_string(usd, "@currencyId");
	const char *state = first_string(status, "sellingState");
	struct point p = { 0 };

	/* Sold items only: an auction that ended without a sale is not a price. */
	if (state == NULL || strcmp(state, "EndedWithSales") != 0)
		return;
	p.external_id = first_string(item, "itemId");
	p.title = first_string(item, "title");
	p.url = first_string(item, "viewItemURL");
	p.condition = first_string(first(item, "condition"), "conditionDisplayName");
	p.price_type = "sold";
	p.amount = first_string(price, "__value__");
	p.currency = first_string(price, "@currencyId");
	p.shipping_amount = first_string(ship, "__value__");
	p.shipping_currency = first_string(ship, "@currencyId");
	p.converted_usd =
		usd_currency && strcmp(usd_currency, "USD") == 0 ? first_string(usd, "__value__") : NULL;
	p.sold_at = first_string(first(item, "listingInfo"), "endTime");
	p.raw = item;
	write_point(f, j, &p);
}

/* ---- the REST APIs ------------------------------------------------------- */

/* Money in REST: value/currency is converted to the marketplace's currency; the amount
 * as listed is convertedFromValue/convertedFromCurrency, present only when converted. */
static void
rest_money(const cJSON *money, const char **amount, const char **currency, const char **usd)
{
	const char *value = string_item(money, "value"), *cur = string_item(money, "currency");
	const char *from = string_item(money, "convertedFromValue");
	const char *from_cur = string_item(money, "convertedFromCurrency");

	*amount = from && from_cur ? from : value;
	*currency = from && from_cur ? from_cur : cur;
	if (usd)
		*usd = cur && strcmp(cur, "USD") == 0 ? value : NULL;
}

static void
rest_item(struct fetcher *f, const struct job *j, const cJSON *item)
{
	struct point p = { 0 };
	const cJSON *qty = cJSON_GetObjectItemCaseSensitive(item, "totalSoldQuantity");
	const cJSON *ships = cJSON_GetObjectItemCaseSensitive(item, "shippingOptions");

	p.external_id = string_item(item, "itemId");
	p.title = string_item(item, "title");
	p.url = string_item(item, "itemWebUrl");
	p.condition = string_item(item, "condition");
	if (j->api == API_INSIGHTS) {
		p.price_type = "sold";
		rest_money(cJSON_GetObjectItemCaseSensitive(item, "lastSoldPrice"), &p.amount, &p.currency,
			   &p.converted_usd);
		p.sold_at = string_item(item, "lastSoldDate");
		if (cJSON_IsNumber(qty) && qty->valuedouble >= 1 && qty->valuedouble < 1e9)
			p.quantity = (int)qty->valuedouble;
	} else {
		p.price_type = "ask";
		rest_money(cJSON_GetObjectItemCaseSensitive(item, "price"), &p.amount, &p.currency,
			   &p.converted_usd);
		if (cJSON_IsArray(ships) && cJSON_GetArraySize(ships) > 0) {
			rest_money(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ships, 0),
								    "shippingCost"),
				   &p.shipping_amount, &p.shipping_currency, NULL);
		}
	}
	p.raw = item;
	write_point(f, j, &p);
}

/* ---- requests ------------------------------------------------------------ */

/*
 * After http_request() for a job: -1 with j->error set (retryable) when no usable
 * response came, else 0. Either way j->retry_after keeps what eBay asked to wait, so
 * that the job's backoff can honour it.
 */
static int
request_failed(struct job *j, int rc, const struct http_response *res, const char *what)
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

/* ---- OAuth --------------------------------------------------------------- */

static const char *
state_dir(void)
{
	static char path[1024];
	const char *dir = getenv("COIN_PRICER_STATE_DIR"), *home = getenv("HOME");
	const char *xdg = getenv("XDG_STATE_HOME");

	if (dir && *dir)
		snprintf(path, sizeof(path), "%s", dir);
	else if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/coin-pricer", xdg);
	else
		snprintf(path, sizeof(path), "%s/.local/state/coin-pricer", home && *home ? home : "/tmp");
	return path;
}

/* mkdir -p with mode 0700. */
static int
make_dirs(const char *path)
{
	char tmp[1024], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static unsigned long long
fnv(const char *a, const char *b, const char *c)
{
	unsigned long long h = 1469598103934665603ULL;
	const char *parts[3] = { a, b, c }, *p;
	int i;

	for (i = 0; i < 3; i++)
		for (p = parts[i] ? parts[i] : "";; p++) {
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
			if (!*p)
				break;
		}
	return h;
}

/*
 * The token cache, only when it is a plain file of ours that no one else may read
 * (never through a symlink): a tree the caller frees, or NULL.
 */
static cJSON *
read_cache(const char *path)
{
	char cached[8192];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_warn("ignoring the token cache %s: not a private file of this user", path);
		close(fd);
		return NULL;
	}
	n = read(fd, cached, sizeof(cached) - 1);
	close(fd);
	cached[n > 0 ? n : 0] = '\0';
	return cJSON_Parse(cached);
}

/*
 * A bearer token for the scope: from the cache file (mode 0600) while it has more than
 * five minutes left, else from eBay's token endpoint. force skips the cache (after a
 * 401). Returns a token the caller frees, or NULL with j->error set.
 */
static char *
get_token(struct fetcher *f, struct job *j, const char *scope, int force)
{
	struct http_response res = { 0 };
	struct buf path = BUF_INIT, body = BUF_INIT, userpwd = BUF_INIT, url = BUF_INIT;
	cJSON *doc = NULL;
	char *token = NULL;
	const char *text;
	long expires;
	int rc;

	if (f->opt.replay_dir)
		return xstrdup("replayed");
	if (!j->app_id || !j->cert_id || !*j->app_id || !*j->cert_id) {
		snprintf(j->error, sizeof(j->error),
			 "no eBay credentials: set EBAY_APP_ID and EBAY_CERT_ID "
			 "(or the source's config app_id and cert_id)");
		return NULL;
	}
	buf_addf(&path, "%s/ebay-token-%016llx.json", f->state_dir, fnv(j->app_id, scope, f->rest_base));
	if (!force && (doc = read_cache(path.data)) != NULL) {
		text = string_item(doc, "access_token");
		expires = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "expires_at"))
				  ? (long)cJSON_GetObjectItemCaseSensitive(doc, "expires_at")->valuedouble
				  : 0;
		if (text && expires - 300 > (long)time(NULL)) {
			token = xstrdup(text);
			log_add_secret(token);
			goto out;
		}
		cJSON_Delete(doc);
		doc = NULL;
	}
	buf_addf(&url, "%s%s", f->rest_base, TOKEN_PATH);
	buf_adds(&body, "grant_type=client_credentials&scope=");
	http_add_escaped(&body, scope);
	buf_addf(&userpwd, "%s:%s", j->app_id, j->cert_id);
	{
		const char *headers[] = { "Content-Type: application/x-www-form-urlencoded", NULL };

		int token_calls = 0;

		/* The answer is a secret: it never goes to a recording. Token requests are
		 * not counted in job_end's calls, which a replay (needing no token) repeats. */
		http_pause_recording(f->http, 1);
		rc = http_request(f->http, "POST", url.data, headers, body.data, userpwd.data, &res,
				  &token_calls);
		http_pause_recording(f->http, 0);
	}
	if (request_failed(j, rc, &res, "eBay's token endpoint") < 0)
		goto out;
	doc = cJSON_ParseWithLength(res.body.data, res.body.len);
	text = string_item(doc, "access_token");
	if (res.status != 200 || text == NULL) {
		const char *what = string_item(doc, "error");

		j->retryable = http_retryable_status(res.status);
		if (what && strcmp(what, "invalid_scope") == 0)
			snprintf(
				j->error, sizeof(j->error),
				"eBay refused the scope %s: this application is "
				"not approved for it%s",
				scope,
				strcmp(scope, SCOPE_INSIGHTS) == 0
					? " (Marketplace Insights is a limited release: ask eBay for access, or use "
					  "the browse API for asking prices)"
					: "");
		else
			snprintf(j->error, sizeof(j->error),
				 "eBay's token endpoint answered HTTP %ld (%s): "
				 "check EBAY_APP_ID and EBAY_CERT_ID, and EBAY_SANDBOX for sandbox keys",
				 res.status, what ? what : "no error code");
		goto out;
	}
	token = xstrdup(text);
	log_add_secret(token);
	{
		const cJSON *life = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");
		cJSON *cache = cJSON_CreateObject();
		char *json;

		cJSON_AddStringToObject(cache, "access_token", token);
		cJSON_AddNumberToObject(cache, "expires_at",
					(double)time(NULL) +
						(cJSON_IsNumber(life) ? life->valuedouble : 7200));
		json = cJSON_PrintUnformatted(cache);
		if (make_dirs(f->state_dir) < 0 || http_write_private(path.data, json, strlen(json)) < 0)
			log_warn("cannot cache the eBay token in %s: %s", f->state_dir, strerror(errno));
		free(json);
		cJSON_Delete(cache);
	}
out:
	cJSON_Delete(doc);
	http_response_free(&res);
	buf_free(&path);
	buf_free(&body);
	buf_free(&userpwd);
	buf_free(&url);
	return token;
}

/* ---- reading responses --------------------------------------------------- */

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

/*
 * Parse a response body as JSON once it is safe to pass on: bytes that are not UTF-8,
 * lone surrogate escapes (cJSON refuses the whole body for one) and \u0000 (which would
 * cut a string short) become U+FFFD, so that one odd listing costs no other point and
 * every record written is UTF-8. Returns a tree the caller owns, or NULL.
 */
static cJSON *
parse_body(const struct buf *body)
{
	const char *p = body->data ? body->data : "", *end = p + body->len;
	struct buf clean = BUF_INIT;
	cJSON *doc;
	long unit;
	int n;

	buf_grow(&clean, body->len);
	while (p < end) {
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
	return doc;
}

/* ---- fetching a job ----------------------------------------------------- */

/* A REST error body's first message, or NULL. */
static const char *
rest_error(const cJSON *doc, long *id)
{
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
	const cJSON *e = cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
	const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "errorId");

	*id = cJSON_IsNumber(eid) ? (long)eid->valuedouble : 0;
	return string_item(e, "message");
}

/* A Finding error at the top level or in the response: its errorId, or 0. */
static long
finding_error(const cJSON *doc, const char **message)
{
	const cJSON *resp = first(doc, "findCompletedItemsResponse");
	const cJSON *msg = first(resp ? resp : doc, "errorMessage");
	const cJSON *err = first(msg, "error");
	const char *id = first_string(err, "errorId");

	*message = first_string(err, "message");
	return id ? strtol(id, NULL, 10) : 0;
}

/* Whether a response is worth another try: 429, 5xx (but not Finding's bad app id),
 * and a 200 whose body is not JSON (cut short, garbled). */
static int
worth_retry(const struct http_response *res)
{
	cJSON *doc;
	const char *message;
	long id;

	if (res->status == 200) {
		doc = parse_body(&res->body);
		cJSON_Delete(doc);
		return doc == NULL;
	}
	if (!http_retryable_status(res->status))
		return 0;
	doc = parse_body(&res->body);
	id = finding_error(doc, &message);
	cJSON_Delete(doc);
	return id != 11002;
}

static void
fail_status(struct job *j, long status, const char *api, long id, const char *message)
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

/* Send one request; on failure set j->error and return -1, else 0 with res filled. */
static int
get_page(struct fetcher *f, struct job *j, const char *const *headers, struct http_response *res)
{
	int rc = http_request(f->http, "GET", f->url.data, headers, NULL, NULL, res, &f->calls);

	return request_failed(j, rc, res, "eBay");
}

static int
fetch_finding(struct fetcher *f, struct job *j)
{
	struct http_response res = { 0 };
	int page, total_pages = 1, rc = 0;
	const char *message;

	if (!f->opt.replay_dir && (!j->app_id || !*j->app_id)) {
		snprintf(j->error, sizeof(j->error),
			 "no eBay credentials: set EBAY_APP_ID (or the source's "
			 "config app_id)");
		return -1;
	}
	for (page = 1; page <= j->max_pages && page <= total_pages; page++) {
		cJSON *doc;
		const cJSON *resp, *items, *item, *pagination;
		long id;

		buf_reset(&f->url);
		buf_addf(&f->url,
			 "%s%s?OPERATION-NAME=findCompletedItems&SERVICE-VERSION=1.13.0"
			 "&SECURITY-APPNAME=",
			 f->finding_base, FINDING_PATH);
		http_add_escaped(&f->url, j->app_id ? j->app_id : "");
		buf_adds(&f->url, "&GLOBAL-ID=EBAY-US&RESPONSE-DATA-FORMAT=JSON&keywords=");
		http_add_escaped(&f->url, j->query.data);
		buf_adds(&f->url, "&categoryId=");
		http_add_escaped(&f->url, j->category);
		buf_addf(&f->url,
			 "&itemFilter(0).name=SoldItemsOnly&itemFilter(0).value=true"
			 "&sortOrder=EndTimeSoonest&paginationInput.entriesPerPage=100"
			 "&paginationInput.pageNumber=%d",
			 page);
		if (get_page(f, j, NULL, &res) < 0) {
			rc = -1;
			break;
		}
		doc = parse_body(&res.body);
		id = finding_error(doc, &message);
		resp = first(doc, "findCompletedItemsResponse");
		if (res.status != 200 || id || resp == NULL) {
			if (res.status == 200 && doc == NULL)
				res.status = 502; /* garbled after every retry */
			fail_status(j, res.status == 200 ? 400 : res.status, "Finding", id, message);
			if (id == 10001)
				j->retryable = 1;
			cJSON_Delete(doc);
			rc = -1;
			break;
		}
		f->pages++;
		items = cJSON_GetObjectItemCaseSensitive(first(resp, "searchResult"), "item");
		cJSON_ArrayForEach (item, items)
			finding_item(f, j, item);
		pagination = first(resp, "paginationOutput");
		if (first_string(pagination, "totalPages"))
			total_pages = atoi(first_string(pagination, "totalPages"));
		cJSON_Delete(doc);
	}
	http_response_free(&res);
	return rc;
}

static int
fetch_rest(struct fetcher *f, struct job *j)
{
	struct http_response res = { 0 };
	const char *scope = j->api == API_INSIGHTS ? SCOPE_INSIGHTS : SCOPE_BROWSE;
	const char *path = j->api == API_INSIGHTS ? INSIGHTS_PATH : BROWSE_PATH;
	const char *api = j->api == API_INSIGHTS ? "Marketplace Insights" : "Browse";
	struct buf auth = BUF_INIT;
	char *token = get_token(f, j, scope, 0);
	long offset = 0, id;
	int page, rc = 0, refreshed = 0;

	if (token == NULL)
		return -1;
	for (page = 1; page <= j->max_pages; page++) {
		const char *headers[4] = { NULL, "X-EBAY-C-MARKETPLACE-ID: EBAY_US",
					   "Accept: application/json", NULL };
		const cJSON *items, *item, *limit;
		int more;
		const char *message;
		cJSON *doc;
		char *p;

		buf_reset(&auth);
		buf_addf(&auth, "Authorization: Bearer %s", token);
		headers[0] = auth.data;
		buf_reset(&f->url);
		buf_addf(&f->url, "%s%s?q=", f->rest_base, path);
		/* Insights reads a comma as AND (a space as OR): the opposite of Browse. */
		if (j->api == API_INSIGHTS)
			for (p = j->query.data; *p; p++)
				if (*p == ' ')
					*p = ',';
		http_add_escaped(&f->url, j->query.data);
		if (j->api == API_INSIGHTS)
			for (p = j->query.data; *p; p++)
				if (*p == ',')
					*p = ' ';
		buf_adds(&f->url, "&category_ids=");
		http_add_escaped(&f->url, j->category);
		if (j->api == API_BROWSE)
			buf_adds(&f->url, "&filter=buyingOptions%3A%7BAUCTION%7CFIXED_PRICE%7D");
		buf_addf(&f->url, "&limit=200&offset=%ld", offset);
		if (get_page(f, j, headers, &res) < 0) {
			rc = -1;
			break;
		}
		if (res.status == 401 && !refreshed) {
			/* The cached token may have been revoked: one fresh token, one more try. */
			refreshed = 1;
			free(token);
			if ((token = get_token(f, j, scope, 1)) == NULL) {
				rc = -1;
				break;
			}
			page--;
			continue;
		}
		doc = parse_body(&res.body);
		if (res.status != 200 || doc == NULL) {
			message = rest_error(doc, &id);
			fail_status(j, res.status == 200 ? 502 : res.status, api, id, message);
			cJSON_Delete(doc);
			rc = -1;
			break;
		}
		f->pages++;
		items = cJSON_GetObjectItemCaseSensitive(doc, j->api == API_INSIGHTS ? "itemSales"
										     : "itemSummaries");
		cJSON_ArrayForEach (item, items)
			rest_item(f, j, item);
		/* Read all that paging needs before the tree goes. */
		more = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "next"));
		limit = cJSON_GetObjectItemCaseSensitive(doc, "limit");
		offset += cJSON_IsNumber(limit) && limit->valuedouble >= 1 ? (long)limit->valuedouble : 200;
		cJSON_Delete(doc);
		if (!more || offset >= 10000)
			break;
	}
	free(token);
	buf_free(&auth);
	http_response_free(&res);
	return rc;
}

/* Fetch a job and write its records. */
static void
run_job(struct fetcher *f, struct job *j, const struct ndj_record *r)
{
	double t0 = clock_ms();
	int rc;

	if (r)
		pass_job_record(j, r);
	ndj_flush();
	buf_reset(&f->out);
	f->calls = f->pages = f->items = 0;
	if (j->error[0])
		rc = -1; /* a job that cannot be done: its job_error at once */
	else
		rc = j->api == API_FINDING ? fetch_finding(f, j) : fetch_rest(f, j);
	if (rc < 0) {
		buf_reset(&f->out);
		buf_addf(&f->out,
			 "{\"kind\":\"job_error\",\"job_id\":%s,\"intake_id\":%s,\"error\":", j->job_id,
			 j->intake_id);
		buf_add_json_string(&f->out, j->error, strlen(j->error));
		buf_addf(&f->out, ",\"retryable\":%s", j->retryable ? "true" : "false");
		if (j->retryable && j->retry_after > 0)
			buf_addf(&f->out, ",\"retry_after_seconds\":%.0f", ceil(j->retry_after));
		buf_adds(&f->out, "}\n");
		log_warn("job %s: %s", j->job_id, j->error);
	} else {
		buf_addf(&f->out,
			 "{\"kind\":\"job_end\",\"job_id\":%s,\"intake_id\":%s,\"pages\":%d,"
			 "\"calls\":%d,\"items\":%d,\"duration_ms\":%.0f}\n",
			 j->job_id, j->intake_id, f->pages, f->calls, f->items,
			 f->opt.replay_dir ? 0 : clock_ms() - t0);
	}
	ndj_write(f->out.data, f->out.len);
	ndj_flush();
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct fetcher *f = ctx;
	struct job j;
	int rc;

	if (strcmp(r->kind, "job") != 0) {
		ndj_pass(r);
		return 0;
	}
	rc = job_from_record(f, r, &j, r->err, sizeof(r->err));
	if (rc < 0) {
		job_free(&j);
		return NDJ_BAD;
	}
	if (f->opt.print_query && rc > 0) {
		log_warn("job %s: %s", j.job_id, j.error);
	} else if (f->opt.print_query) {
		ndj_write(j.query.data, j.query.len);
		ndj_write("\n", 1);
	} else {
		run_job(f, &j, r);
	}
	job_free(&j);
	return 0;
}

/* Register the user-info of a URL ("user:password@"), if it has one, as secrets. */
static void
add_url_secret(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL;
	size_t len;
	char *info;

	if (p == NULL)
		return;
	p += 3;
	len = strcspn(p, "/?#");
	info = xstrndup(p, len);
	if (strrchr(info, '@') != NULL) {
		*strrchr(info, '@') = '\0';
		log_add_secret(info);
		if (strchr(info, ':') != NULL)
			log_add_secret(strchr(info, ':') + 1);
	}
	free(info);
}

/* EBAY_API_BASE, else eBay's hosts. Plain HTTP only to a loopback address. */
static int
set_bases(struct fetcher *f)
{
	const char *base = getenv("EBAY_API_BASE"), *sandbox = getenv("EBAY_SANDBOX");
	int is_sandbox = sandbox && (strcmp(sandbox, "true") == 0 || strcmp(sandbox, "1") == 0);
	size_t len;

	if (base && *base) {
		len = strlen(base);
		while (len > 0 && base[len - 1] == '/')
			len--;
		if (strncmp(base, "https://", 8) != 0 &&
		    !(strncmp(base, "http://127.", 11) == 0 || strncmp(base, "http://localhost", 16) == 0 ||
		      strncmp(base, "http://[::1]", 12) == 0)) {
			log_error("EBAY_API_BASE=%s: must be https://, or http:// to a loopback address",
				  base);
			return -1;
		}
		snprintf(f->finding_base, sizeof(f->finding_base), "%.*s", (int)len, base);
		snprintf(f->rest_base, sizeof(f->rest_base), "%.*s", (int)len, base);
	} else {
		snprintf(f->finding_base, sizeof(f->finding_base), "https://svcs.%sebay.com",
			 is_sandbox ? "sandbox." : "");
		snprintf(f->rest_base, sizeof(f->rest_base), "https://api.%sebay.com",
			 is_sandbox ? "sandbox." : "");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "query", required_argument, NULL, 'q' },
		{ "api", required_argument, NULL, 'a' },
		{ "max-pages", required_argument, NULL, 'm' },
		{ "category", required_argument, NULL, 'c' },
		{ "print-query", no_argument, NULL, 'p' },
		{ "record", required_argument, NULL, 'r' },
		{ "replay", required_argument, NULL, 'R' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct fetcher f;
	struct http_options ho;
	struct ndj_stage stage = { on_record, NULL, &f, 0 };
	static const char *secret_params[] = { "SECURITY-APPNAME", NULL };
	const char *secrets[3] = { NULL, NULL, NULL };
	char rate_file[1100];
	int c, status = EXIT_OK;
	long pages;

	memset(&f, 0, sizeof(f));
	f.opt.api = -1;
	log_init("ebay-fetch");
	/* Before anything can be logged: no early error may show a secret. */
	f.env_app_id = getenv("EBAY_APP_ID");
	f.env_cert_id = getenv("EBAY_CERT_ID");
	log_add_secret(f.env_app_id);
	log_add_secret(f.env_cert_id);
	add_url_secret(getenv("EBAY_API_BASE"));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'q':
			f.opt.query = optarg;
			break;
		case 'a':
			if ((f.opt.api = api_by_name(optarg)) < 0) {
				log_error("--api wants finding, insights or browse, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (cli_number(optarg, 1, 100, &pages) < 0) {
				log_error("--max-pages wants a number from 1 to 100, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			f.opt.max_pages = (int)pages;
			break;
		case 'c':
			f.opt.category = optarg;
			break;
		case 'p':
			f.opt.print_query = 1;
			break;
		case 'r':
			f.opt.record_dir = optarg;
			break;
		case 'R':
			f.opt.replay_dir = optarg;
			break;
		case 's':
			stage.strict = 1;
			break;
		default:
			return cli_common_option(c, argv, "ebay-fetch", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0)
		return EXIT_USAGE;
	if ((f.opt.record_dir && f.opt.replay_dir) || (f.opt.query && f.opt.print_query)) {
		log_error("--record and --replay, or --query and --print-query, do not go together");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (f.opt.record_dir == NULL && f.opt.replay_dir == NULL) {
		const char *record = getenv("EBAY_RECORD_DIR"), *replay = getenv("EBAY_REPLAY_DIR");

		f.opt.record_dir = record && *record ? record : NULL;
		f.opt.replay_dir = replay && *replay ? replay : NULL;
		if (f.opt.record_dir && f.opt.replay_dir) {
			log_error("EBAY_RECORD_DIR and EBAY_REPLAY_DIR do not go together");
			return EXIT_CONFIG;
		}
	}
	if (set_bases(&f) < 0)
		return EXIT_CONFIG;
	if (f.opt.record_dir && make_dirs(f.opt.record_dir) < 0) {
		log_error("cannot create %s: %s", f.opt.record_dir, strerror(errno));
		return EXIT_CONFIG;
	}
	secrets[0] = f.env_app_id;
	secrets[1] = f.env_cert_id;
	f.state_dir = state_dir();
	snprintf(rate_file, sizeof(rate_file), "%s/ebay-rate", f.state_dir);
	memset(&ho, 0, sizeof(ho));
	ho.timeout_ms = cli_env_number("EBAY_TIMEOUT_SECONDS", 30, 1, 3600) * 1000;
	ho.max_tries = (int)cli_env_number("EBAY_MAX_TRIES", 4, 1, 20);
	ho.retry_base_ms = cli_env_number("EBAY_RETRY_BASE_MS", 1000, 1, 600000);
	ho.calls_per_minute = (double)cli_env_number("EBAY_CALLS_PER_MINUTE", 60, 1, 100000);
	ho.daily_limit = cli_env_number("EBAY_DAILY_CALL_LIMIT", 5000, 0, 100000000);
	ho.max_retry_after = (double)cli_env_number("EBAY_MAX_RETRY_AFTER_SECONDS", 60, 1, 86400);
	ho.rate_file = f.opt.replay_dir || make_dirs(f.state_dir) < 0 ? NULL : rate_file;
	ho.record_dir = f.opt.record_dir;
	ho.replay_dir = f.opt.replay_dir;
	ho.secrets = secrets;
	ho.secret_params = secret_params;
	ho.retryable = worth_retry;
	if ((f.http = http_new(&ho)) == NULL)
		return EXIT_SOFTWARE;

	if (f.opt.query) {
		/* Ad hoc: one job with no ids, the query as given. */
		struct job j;

		memset(&j, 0, sizeof(j));
		j.job_id = j.intake_id = j.source_id = "null";
		j.api = f.opt.api >= 0 ? (enum api)f.opt.api : API_INSIGHTS;
		j.max_pages = f.opt.max_pages ? f.opt.max_pages : 5;
		j.category = f.opt.category ? f.opt.category : DEFAULT_CATEGORY;
		j.app_id = f.env_app_id;
		j.cert_id = f.env_cert_id;
		j.reputation = 1.0;
		buf_adds(&j.query, f.opt.query);
		signal(SIGPIPE, SIG_IGN);
		run_job(&f, &j, NULL);
		buf_free(&j.query);
		status = ndj_close_output();
	} else {
		status = ndj_run(&stage);
	}
	http_free(f.http);
	buf_free(&f.url);
	buf_free(&f.out);
	log_cleanup();
	return status;
}
