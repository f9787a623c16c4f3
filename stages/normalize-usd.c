/*
 * normalize-usd: convert every price point's price and shipping to integer US cents,
 * exactly (decimal arithmetic, one rounding, halves away from zero), and mark points
 * outside the job's price bounds. A point that cannot be converted is kept, marked.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "exits.h"
#include "log.h"
#include "money.h"
#include "ndjson.h"
#include "rules.h"

struct rate {
	char currency[4];
	struct money_dec usd_per_unit;
	char as_of[11]; /* YYYY-MM-DD, or "" when not known */
};

struct rate_table {
	struct rate *v;
	size_t n, cap;
};

struct bound {
	int is_max;
	int64_t cents;
};

struct bound_list {
	struct bound *v;
	size_t n, cap;
};

struct normalizer {
	struct rate_table file_rates; /* --rates */
	struct rate_table job_rates;  /* fx_rates of the latest job record */
	struct bound_list opt_bounds; /* --min-cents, --max-cents */
	struct bound_list job_bounds; /* min/max_price_cents rules of the latest job */
	int job_failed;		      /* the latest job record was unusable: its job failed */
	struct buf amount, currency, reason, extra;
};

/* How a price was converted. */
struct conversion {
	int64_t cents;
	const char *source; /* "usd", "rates_file", "job", "source_conversion" */
	const struct rate *rate;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: normalize-usd [--strict] [--rates FILE] [--min-cents N] [--max-cents N]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Reads NDJSON records on stdin and writes them to stdout, adding to every\n"
	       "price_point \"price_cents\", \"shipping_cents\", \"fx_rate\", \"fx_as_of\" and\n"
	       "\"fx_source\". cents = amount x usd_per_unit x 100, computed exactly and rounded\n"
	       "half away from zero.\n"
	       "\n"
	       "The rate of a currency is the first found of: --rates FILE, the job record's\n"
	       "fx_rates, the point's own converted_usd. A point with no rate gets filtered_out\n"
	       "with \"fx_unknown_currency:XYZ\"; one whose amount is not a decimal string, or\n"
	       "is zero (under half a cent), gets \"bad_amount\". Points are marked, never dropped.\n"
	       "\n"
	       "  --rates FILE     CSV: currency,usd_per_unit[,as_of] (a header line is allowed;\n"
	       "                   the newest as_of of a currency wins)\n"
	       "  --min-cents N    mark points priced below N cents (\"min_price_cents:N\")\n"
	       "  --max-cents N    mark points priced above N cents (\"max_price_cents:N\")\n"
	       "  --strict         stop at the first bad line\n"
	       "  -h, --help       print this help and exit\n"
	       "  -V, --version    print the version and exit\n"
	       "\n"
	       "The job record's min_price_cents and max_price_cents rules apply as well.\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error,\n"
	       "78 the rates file cannot be read or is wrong.\n");
}

static int
parse_currency(const char *s, size_t len, char out[4])
{
	size_t i;

	if (len != 3)
		return -1;
	for (i = 0; i < 3; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return -1;
		out[i] = c;
	}
	out[3] = '\0';
	return 0;
}

static int
valid_date(const char *s, size_t len)
{
	size_t i;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return 0;
	return 1;
}

static const struct rate *
find_rate(const struct rate_table *t, const char *currency)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (memcmp(t->v[i].currency, currency, 4) == 0)
			return &t->v[i];
	return NULL;
}

/* Add a rate, or replace the one for the same currency if this one is newer. */
static void
put_rate(struct rate_table *t, const struct rate *r)
{
	struct rate *old = (struct rate *)find_rate(t, r->currency);

	if (old != NULL) {
		if (strcmp(r->as_of, old->as_of) >= 0)
			*old = *r;
		return;
	}
	BUF_ALLOC_GROW(t->v, t->n + 1, t->cap);
	t->v[t->n++] = *r;
}

/* Split s at commas into at most max trimmed fields; returns how many. */
static size_t
split_csv(char *s, char **fields, size_t max)
{
	size_t n = 0;

	while (n < max) {
		char *comma = strchr(s, ',');
		char *end = comma ? comma : s + strlen(s);

		while (*s == ' ' || *s == '\t')
			s++;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
			end--;
		fields[n++] = s;
		if (comma == NULL) {
			*end = '\0';
			break;
		}
		*end = '\0';
		s = comma + 1;
	}
	return n;
}

static int
load_rates(struct rate_table *t, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *fields[4];
	size_t cap = 0, n;
	unsigned long lineno = 0;
	int rc = 0;

	if (f == NULL) {
		log_error("cannot open rates file %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		struct rate r = { "", { 0, 0 }, "" };

		lineno++;
		n = split_csv(line, fields, 4);
		if (n == 1 && (fields[0][0] == '\0' || fields[0][0] == '#'))
			continue;
		if (fields[0][0] == '#')
			continue;
		if (n >= 2 && money_parse(fields[1], strlen(fields[1]), &r.usd_per_unit) < 0 && lineno == 1)
			continue; /* a header line */
		if (n < 2 || n > 3 || parse_currency(fields[0], strlen(fields[0]), r.currency) < 0 ||
		    money_parse(fields[1], strlen(fields[1]), &r.usd_per_unit) < 0 ||
		    r.usd_per_unit.digits == 0 ||
		    (n == 3 && fields[2][0] != '\0' && !valid_date(fields[2], strlen(fields[2])))) {
			log_error("%s:%lu: expected currency,usd_per_unit[,as_of] such as "
				  "GBP,1.2712,2026-11-27",
				  path, lineno);
			rc = -1;
			break;
		}
		if (n == 3)
			snprintf(r.as_of, sizeof(r.as_of), "%s", fields[2]);
		put_rate(t, &r);
	}
	if (rc == 0 && ferror(f)) {
		log_error("cannot read rates file %s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

static void
add_bound(struct bound_list *l, int is_max, int64_t cents)
{
	BUF_ALLOC_GROW(l->v, l->n + 1, l->cap);
	l->v[l->n].is_max = is_max;
	l->v[l->n].cents = cents;
	l->n++;
}

static int
parse_cents(const char *s, int64_t *cents)
{
	struct money_dec d;

	if (money_parse(s, strlen(s), &d) < 0 || d.scale != 0 || d.digits > INT64_MAX)
		return -1;
	*cents = (int64_t)d.digits;
	return 0;
}

/* The job's fx_rates: {"GBP":{"usd_per_unit":"1.2712","as_of":"2026-11-27"}, ...}. */
static int
job_rates(struct rate_table *t, const struct ndj_member *m, char *err, size_t errlen)
{
	cJSON *rates, *item;
	int rc = 0;

	if (ndj_is_null(m))
		return 0;
	rates = cJSON_ParseWithLength(m->val, m->val_len);
	if (!cJSON_IsObject(rates)) {
		snprintf(err, errlen, "\"fx_rates\" must be an object");
		rc = -1;
		goto out;
	}
	cJSON_ArrayForEach (item, rates) {
		const cJSON *unit = cJSON_GetObjectItemCaseSensitive(item, "usd_per_unit");
		const cJSON *as_of = cJSON_GetObjectItemCaseSensitive(item, "as_of");
		struct rate r = { "", { 0, 0 }, "" };

		if (parse_currency(item->string, strlen(item->string), r.currency) < 0 ||
		    !cJSON_IsString(unit) ||
		    money_parse(unit->valuestring, strlen(unit->valuestring), &r.usd_per_unit) < 0 ||
		    r.usd_per_unit.digits == 0 ||
		    (cJSON_IsString(as_of) && !valid_date(as_of->valuestring, strlen(as_of->valuestring)))) {
			snprintf(err, errlen,
				 "fx_rates: \"%.8s\" needs a positive decimal string "
				 "\"usd_per_unit\" (and may have an \"as_of\" date)",
				 item->string);
			rc = -1;
			goto out;
		}
		if (cJSON_IsString(as_of))
			snprintf(r.as_of, sizeof(r.as_of), "%s", as_of->valuestring);
		put_rate(t, &r);
	}
out:
	cJSON_Delete(rates);
	return rc;
}

static int
on_job(struct normalizer *n, struct ndj_record *r)
{
	const struct ndj_member *m = ndj_get(r, "rules");
	struct rule_list rules = { 0 };
	size_t i;
	int rc = 0;

	n->job_rates.n = 0;
	n->job_bounds.n = 0;
	n->job_failed = 0;
	if (job_rates(&n->job_rates, ndj_get(r, "fx_rates"), r->err, sizeof(r->err)) < 0)
		rc = NDJ_BAD;
	else if (!ndj_is_null(m) && rules_add_json(&rules, m->val, m->val_len, r->err, sizeof(r->err)) < 0)
		rc = NDJ_BAD;
	rules_sort(&rules);
	for (i = 0; rc == 0 && i < rules.n; i++) {
		const struct rule *rule = &rules.v[i];
		int64_t cents;

		if (rule->type != RULE_MIN_PRICE_CENTS && rule->type != RULE_MAX_PRICE_CENTS)
			continue;
		if (parse_cents(rule->value, &cents) < 0) {
			snprintf(r->err, sizeof(r->err), "rule %s: \"%.40s\" is not a whole number of cents",
				 rule->type == RULE_MIN_PRICE_CENTS ? "min_price_cents" : "max_price_cents",
				 rule->value);
			rc = NDJ_BAD;
			break;
		}
		add_bound(&n->job_bounds, rule->type == RULE_MAX_PRICE_CENTS, cents);
	}
	rules_clear(&rules);
	if (rc != 0) {
		n->job_rates.n = 0;
		n->job_bounds.n = 0;
		n->job_failed = 1;
		ndj_fail_job(r, r->err);
		return rc;
	}
	ndj_pass(r);
	return 0;
}

/*
 * Convert amount in currency (three letters, upper case) by the first rate found.
 * source_usd is the source's own USD figure, or NULL. Returns 0, or -1 with no rate.
 * *overflow is set when a rate was found but the result does not fit.
 */
static int
convert(const struct normalizer *n, const struct money_dec *amount, const char *currency,
	const struct money_dec *source_usd, struct conversion *c, int *overflow)
{
	*overflow = 0;
	c->rate = NULL;
	if (strcmp(currency, "USD") == 0) {
		c->source = "usd";
		*overflow = money_to_cents(amount, NULL, &c->cents) < 0;
		return 0;
	}
	if ((c->rate = find_rate(&n->file_rates, currency)) != NULL)
		c->source = "rates_file";
	else if ((c->rate = find_rate(&n->job_rates, currency)) != NULL)
		c->source = "job";
	if (c->rate != NULL) {
		*overflow = money_to_cents(amount, &c->rate->usd_per_unit, &c->cents) < 0;
		return 0;
	}
	if (source_usd != NULL) {
		c->source = "source_conversion";
		*overflow = money_to_cents(source_usd, NULL, &c->cents) < 0;
		return 0;
	}
	return -1;
}

/* Read a decimal string member; 0, 1 when absent or null, -1 when not a decimal. */
static int
member_decimal(const struct ndj_member *m, struct buf *scratch, struct money_dec *d)
{
	int rc = ndj_string(m, scratch);

	if (rc != 0)
		return rc;
	return money_parse(scratch->data, scratch->len, d) < 0 ? -1 : 0;
}

static int64_t
shipping_cents(const struct normalizer *n, struct ndj_record *r, const char *price_currency,
	       struct buf *scratch, int *known)
{
	struct money_dec amount;
	struct conversion c;
	char currency[4];
	int overflow;

	*known = 0;
	if (member_decimal(ndj_get(r, "shipping_amount"), scratch, &amount) != 0)
		return 0;
	if (ndj_string(ndj_get(r, "shipping_currency"), scratch) == 0) {
		if (parse_currency(scratch->data, scratch->len, currency) < 0)
			return 0;
	} else {
		memcpy(currency, price_currency, 4);
	}
	if (convert(n, &amount, currency, NULL, &c, &overflow) < 0 || overflow)
		return 0;
	*known = 1;
	return c.cents;
}

static const char *const our_fields[] = {
	"price_cents", "shipping_cents", "fx_rate", "fx_as_of", "fx_source", "filtered_out", "filter_reason",
};

/* Check the point against the bounds; set reason for the first it breaks. */
static void
check_bounds(const struct bound_list *l, int64_t cents, struct buf *reason)
{
	size_t i;

	for (i = 0; i < l->n && reason->len == 0; i++) {
		if (l->v[i].is_max && cents > l->v[i].cents)
			buf_addf(reason, "max_price_cents:%" PRId64, l->v[i].cents);
		else if (!l->v[i].is_max && cents < l->v[i].cents)
			buf_addf(reason, "min_price_cents:%" PRId64, l->v[i].cents);
	}
}

static int
on_price_point(struct normalizer *n, struct ndj_record *r)
{
	const struct ndj_member *filtered = ndj_get(r, "filtered_out");
	const struct ndj_member *old_reason = ndj_get(r, "filter_reason");
	struct money_dec amount, source_usd;
	struct conversion c = { 0, NULL, NULL };
	struct buf *reason = &n->reason, *extra = &n->extra;
	char currency[4] = "", rate_text[48];
	int have_amount, have_source_usd, overflow = 0, ship_known = 0, already;
	int64_t ship = 0;

	if (ndj_bool(filtered, &already) < 0) {
		snprintf(r->err, sizeof(r->err), "\"filtered_out\" must be true or false");
		return NDJ_BAD;
	}
	buf_reset(reason);
	have_amount = member_decimal(ndj_get(r, "amount"), &n->amount, &amount) == 0;
	have_source_usd = member_decimal(ndj_get(r, "converted_usd"), &n->amount, &source_usd) == 0;
	if (!have_amount) {
		buf_adds(reason, "bad_amount");
	} else if (ndj_string(ndj_get(r, "currency"), &n->currency) != 0 ||
		   parse_currency(n->currency.data, n->currency.len, currency) < 0 ||
		   convert(n, &amount, currency, have_source_usd ? &source_usd : NULL, &c, &overflow) < 0) {
		buf_adds(reason, "fx_unknown_currency:");
		buf_add(reason, n->currency.data, n->currency.len);
		c.source = NULL;
	} else if (overflow) {
		buf_adds(reason, "bad_amount");
		c.source = NULL;
	} else {
		ship = shipping_cents(n, r, currency, &n->amount, &ship_known);
		/* "0.00" is no price (a placeholder, a giveaway, a lot's zero line), and a median
		 * or a log price cannot take it: kept for the audit trail, never a comp */
		if (c.cents <= 0)
			buf_adds(reason, "bad_amount");
		check_bounds(&n->job_bounds, c.cents, reason);
		check_bounds(&n->opt_bounds, c.cents, reason);
	}

	buf_reset(extra);
	buf_add_member_int(extra, "price_cents", c.cents, c.source != NULL);
	buf_add_member_int(extra, "shipping_cents", ship, ship_known);
	if (c.rate != NULL)
		money_format(&c.rate->usd_per_unit, rate_text, sizeof(rate_text));
	buf_add_member_string(extra, "fx_rate", c.rate != NULL ? rate_text : NULL);
	buf_add_member_string(extra, "fx_as_of", c.rate != NULL && c.rate->as_of[0] ? c.rate->as_of : NULL);
	buf_add_member_string(extra, "fx_source", c.source);
	if (already) {
		/* Filtered upstream: that reason stands. */
		buf_adds(extra, ",\"filtered_out\":true,\"filter_reason\":");
		if (old_reason != NULL)
			buf_add(extra, old_reason->val, old_reason->val_len);
		else
			buf_adds(extra, "null");
	} else if (reason->len > 0) {
		buf_adds(extra, ",\"filtered_out\":true,\"filter_reason\":");
		buf_add_json_string(extra, reason->data, reason->len);
	} else {
		buf_adds(extra, ",\"filtered_out\":false,\"filter_reason\":null");
	}
	ndj_write_edited(r, our_fields, sizeof(our_fields) / sizeof(our_fields[0]), extra->data, extra->len);
	return 0;
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct normalizer *n = ctx;

	if (strcmp(r->kind, "job") == 0)
		return on_job(n, r);
	/* A failed job's job_error is written: the rest of that job goes no further. */
	if (n->job_failed && ndj_is_job_part(r->kind))
		return 0;
	if (strcmp(r->kind, "price_point") == 0)
		return on_price_point(n, r);
	ndj_pass(r);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "rates", required_argument, NULL, 'r' },
		{ "min-cents", required_argument, NULL, 'm' },
		{ "max-cents", required_argument, NULL, 'M' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct normalizer n = { 0 };
	struct ndj_stage stage = { on_record, NULL, &n, 0 };
	int c, status = EXIT_OK;
	int64_t cents;

	cli_die_with_parent();
	if (log_init("normalize-usd") < 0)
		return EXIT_CONFIG;
	opterr = 0;
	while (status == EXIT_OK && (c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (load_rates(&n.file_rates, optarg) < 0)
				status = EXIT_CONFIG;
			break;
		case 'm':
		case 'M':
			if (parse_cents(optarg, &cents) < 0) {
				log_error("--%s wants a whole number of cents, not \"%s\"",
					  c == 'm' ? "min-cents" : "max-cents", optarg);
				usage(stderr);
				status = EXIT_USAGE;
				break;
			}
			add_bound(&n.opt_bounds, c == 'M', cents);
			break;
		case 's':
			stage.strict = 1;
			break;
		default:
			status = cli_common_option(c, argv, "normalize-usd", help, usage);
			goto out;
		}
	}
	if (status == EXIT_OK)
		status = cli_no_operands(argc, argv, usage);
	if (status == EXIT_OK)
		status = ndj_run(&stage);
out:
	free(n.file_rates.v);
	free(n.job_rates.v);
	free(n.opt_bounds.v);
	free(n.job_bounds.v);
	buf_free(&n.amount);
	buf_free(&n.currency);
	buf_free(&n.reason);
	buf_free(&n.extra);
	return status;
}
