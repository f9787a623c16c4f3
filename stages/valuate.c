/*
 * valuate: value each intake (or each group of an ad-hoc stream) from its price points:
 * Tukey fences, type-7 percentiles and a 1-10 confidence, exactly as DESIGN.md says.
 * Memory holds only the open groups' candidate prices, never the records.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "log.h"
#include "money.h"
#include "ndjson.h"

#define WEIGHT_ONE 1000000 /* reputation weights are kept in millionths */
#define MAX_LABELS 8

struct candidate {
	int64_t cents;
	uint32_t weight;
	uint8_t sold;
};

struct group {
	char *key; /* the key's JSON text ("null" when missing) */
	size_t key_len;
	uint64_t hash;
	struct group *bucket_next;
	struct group *prev, *next; /* open groups in order of first appearance */
	struct candidate *c;
	size_t n, cap;
	size_t filtered; /* points not candidates: filtered out, or with no price */
	size_t unpriced; /* of those, how many had no price_cents at all */
	char **jobs;	 /* job_id texts seen */
	size_t njobs;
	char *intake; /* intake_id text of the latest point */
	char *labels[MAX_LABELS];
	size_t nlabels;
};

struct valuator {
	const char *group_by;
	int keep_points;
	struct group **buckets;
	size_t nbuckets, ngroups;
	struct group *first, *last;
	struct buf scratch, out;
	size_t unpriced_total;
};

/* One computed valuation, before it is written. */
struct valuation {
	size_t candidates, outliers, comps, sold, ask;
	int64_t p10, median, p90, mean;
	int parts_comps, parts_reputation, parts_sold, parts_spread, confidence;
	const char *capped;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: valuate [--strict] [--keep-points] [--group-by FIELD]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Reads NDJSON on stdin and writes, in place of the price_point records, one\n"
	       "\"valuation\" record per group: p10, median, p90 and mean in cents, counts, a\n"
	       "1-10 confidence with its parts, and an explanation. Other records pass through.\n"
	       "\n"
	       "Candidates are points not filtered out that have price_cents. Outliers are\n"
	       "dropped by Tukey fences (1.5 x IQR, with 4 or more candidates); percentiles are\n"
	       "type 7 (numpy and R's default), rounded half away from zero.\n"
	       "\n"
	       "A group's valuation is written just before the job_end record of its job;\n"
	       "groups still open at the end of input are written then.\n"
	       "\n"
	       "  --group-by FIELD  group by this top-level field instead of intake_id\n"
	       "  --keep-points     pass the price_point records on as well\n"
	       "  --strict          stop at the first bad line\n"
	       "  --help, --version\n"
	       "\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error.\n");
}

/* ---- groups ------------------------------------------------------------ */

static uint64_t
hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static void
rehash(struct valuator *v)
{
	size_t n = v->nbuckets ? v->nbuckets * 2 : 64, i;
	struct group **b = xmalloc(n * sizeof(*b));

	memset(b, 0, n * sizeof(*b));
	for (i = 0; i < v->nbuckets; i++) {
		struct group *g = v->buckets[i], *next;

		for (; g != NULL; g = next) {
			next = g->bucket_next;
			g->bucket_next = b[g->hash & (n - 1)];
			b[g->hash & (n - 1)] = g;
		}
	}
	free(v->buckets);
	v->buckets = b;
	v->nbuckets = n;
}

static struct group *
find_group(struct valuator *v, const char *key, size_t len)
{
	uint64_t h = hash_bytes(key, len);
	struct group *g;

	if (v->nbuckets)
		for (g = v->buckets[h & (v->nbuckets - 1)]; g; g = g->bucket_next)
			if (g->hash == h && g->key_len == len && memcmp(g->key, key, len) == 0)
				return g;
	if (v->ngroups >= v->nbuckets)
		rehash(v);
	g = xmalloc(sizeof(*g));
	memset(g, 0, sizeof(*g));
	g->key = xstrndup(key, len);
	g->key_len = len;
	g->hash = h;
	g->bucket_next = v->buckets[h & (v->nbuckets - 1)];
	v->buckets[h & (v->nbuckets - 1)] = g;
	g->prev = v->last;
	if (v->last)
		v->last->next = g;
	else
		v->first = g;
	v->last = g;
	v->ngroups++;
	return g;
}

static void
free_group(struct valuator *v, struct group *g)
{
	struct group **pp = &v->buckets[g->hash & (v->nbuckets - 1)];
	size_t i;

	while (*pp != g)
		pp = &(*pp)->bucket_next;
	*pp = g->bucket_next;
	if (g->prev)
		g->prev->next = g->next;
	else
		v->first = g->next;
	if (g->next)
		g->next->prev = g->prev;
	else
		v->last = g->prev;
	v->ngroups--;
	for (i = 0; i < g->njobs; i++)
		free(g->jobs[i]);
	for (i = 0; i < g->nlabels; i++)
		free(g->labels[i]);
	free(g->jobs);
	free(g->intake);
	free(g->c);
	free(g->key);
	free(g);
}

static int
group_has_job(const struct group *g, const char *job, size_t len)
{
	size_t i;

	for (i = g->njobs; i-- > 0;)
		if (strlen(g->jobs[i]) == len && memcmp(g->jobs[i], job, len) == 0)
			return 1;
	return 0;
}

/* ---- the valuation, exactly -------------------------------------------- */

static int
by_cents(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return (x->cents > y->cents) - (x->cents < y->cents);
}

/*
 * The type-7 percentile k/100 of sorted x[0..n-1], times 100, exact:
 * h = (n-1)k/100, result = x[floor h] + frac(h) (x[floor h + 1] - x[floor h]).
 */
static __int128
percentile_x100(const struct candidate *x, size_t n, unsigned k)
{
	size_t i = (n - 1) * k / 100, f = (n - 1) * k % 100;
	__int128 lo = x[i].cents;

	if (f == 0)
		return lo * 100;
	return lo * 100 + (__int128)f * ((__int128)x[i + 1].cents - lo);
}

static int64_t
percentile(const struct candidate *x, size_t n, unsigned k)
{
	return (int64_t)money_div_round(percentile_x100(x, n, k), 100);
}

static void
compute(struct group *g, struct valuation *val)
{
	struct candidate *x = g->c, *comps;
	size_t n = g->n, m, i, lo = 0, hi = n;
	__int128 sum = 0, weights = 0;

	memset(val, 0, sizeof(*val));
	if (n > 1)
		qsort(x, n, sizeof(*x), by_cents);
	if (n >= 4) {
		/* Fences x 200: Q1 - 1.5 IQR = (5 A - 3 B) / 200 with A = 100 Q1, B = 100 Q3. */
		__int128 a = percentile_x100(x, n, 25), b = percentile_x100(x, n, 75);
		__int128 low = 5 * a - 3 * b, high = 5 * b - 3 * a;

		while (lo < n && (__int128)x[lo].cents * 200 < low)
			lo++;
		while (hi > lo && (__int128)x[hi - 1].cents * 200 > high)
			hi--;
	}
	comps = x + lo;
	m = hi - lo;
	val->candidates = n;
	val->comps = m;
	val->outliers = n - m;
	for (i = 0; i < m; i++) {
		sum += comps[i].cents;
		weights += comps[i].weight;
		val->sold += comps[i].sold;
	}
	val->ask = m - val->sold;
	if (m == 0) {
		val->confidence = 1;
		val->capped = "few_comps";
		return;
	}
	val->p10 = percentile(comps, m, 10);
	val->median = percentile(comps, m, 50);
	val->p90 = percentile(comps, m, 90);
	val->mean = (int64_t)money_div_round(sum, (__int128)m);

	val->parts_comps = m >= 20 ? 3 : m >= 10 ? 2 : m >= 5 ? 1 : 0;
	val->parts_reputation = weights >= (__int128)m * 800000 ? 2 : weights >= (__int128)m * 500000 ? 1 : 0;
	val->parts_sold = 5 * val->sold >= 4 * m ? 2 : 2 * val->sold >= m ? 1 : 0;
	if (m >= 5 && val->median > 0) {
		/* r = (p90 - p10) / median, compared without division. */
		__int128 spread = (__int128)val->p90 - val->p10, med = val->median;

		val->parts_spread = 4 * spread <= med ? 3 : 2 * spread <= med ? 2 : spread <= med ? 1 : 0;
	}
	val->confidence = val->parts_comps + val->parts_reputation + val->parts_sold + val->parts_spread;
	if (m < 3) {
		val->capped = "few_comps";
		if (val->confidence > 3)
			val->confidence = 3;
	} else if (2 * val->sold < m) {
		val->capped = "mostly_ask";
		if (val->confidence > 7)
			val->confidence = 7;
	}
	if (val->confidence < 1)
		val->confidence = 1;
	if (val->confidence > 10)
		val->confidence = 10;
}

/* ---- the explanation --------------------------------------------------- */

static void
add_count(struct buf *b, size_t n, const char *one, const char *many)
{
	buf_addf(b, "%zu %s", n, n == 1 ? one : many);
}

static void
add_sources(struct buf *b, const struct group *g)
{
	size_t i;

	if (g->nlabels == 0)
		return;
	buf_adds(b, " on ");
	for (i = 0; i < g->nlabels; i++) {
		if (i > 0)
			buf_adds(b, i + 1 == g->nlabels ? " and " : ", ");
		buf_adds(b, g->labels[i]);
	}
}

/* The main reason the confidence is not higher. */
static void
add_reason(struct buf *b, const struct valuation *val)
{
	int deficit[4], worst = 0, i;

	if (val->confidence >= 10) {
		buf_adds(b, ".");
		return;
	}
	if (val->comps == 0) {
		buf_adds(b, ": no comps.");
		return;
	}
	if (val->capped && strcmp(val->capped, "few_comps") == 0) {
		buf_adds(b, ": only ");
		add_count(b, val->comps, "comp.", "comps.");
		return;
	}
	if (val->capped) {
		buf_adds(b, ": mostly asking prices, few completed sales.");
		return;
	}
	deficit[0] = 3 - val->parts_comps;
	deficit[1] = 3 - val->parts_spread;
	deficit[2] = 2 - val->parts_sold;
	deficit[3] = 2 - val->parts_reputation;
	for (i = 1; i < 4; i++)
		if (deficit[i] > deficit[worst])
			worst = i;
	switch (worst) {
	case 0:
		buf_adds(b, ": only ");
		add_count(b, val->comps, "comp.", "comps.");
		break;
	case 1:
		buf_adds(b,
			 val->parts_spread >= 2 ? ": prices spread moderately." : ": prices spread widely.");
		break;
	case 2:
		buf_adds(b, ": many comps are asking prices, not sales.");
		break;
	default:
		buf_adds(b, ": its sources have a low reputation weight.");
	}
}

static void
explain(struct buf *b, const struct group *g, const struct valuation *val)
{
	char median[32], p10[32], p90[32];
	size_t left_out = 0;

	if (val->comps == 0) {
		buf_adds(b, "No comparable sales to value: ");
		add_count(b, g->filtered + val->outliers, "listing was", "listings were");
		buf_adds(b, " left out");
		if (g->unpriced)
			buf_addf(b, " (%zu with no price_cents: run normalize-usd first)", g->unpriced);
		buf_addf(b, ". Confidence %d/10", val->confidence);
		add_reason(b, val);
		return;
	}
	money_format_dollars(val->median, median, sizeof(median));
	money_format_dollars(val->p10, p10, sizeof(p10));
	money_format_dollars(val->p90, p90, sizeof(p90));
	buf_addf(b, "Median %s from ", median);
	if (val->sold == val->comps)
		add_count(b, val->comps, "sold comp", "sold comps");
	else if (val->ask == val->comps)
		add_count(b, val->comps, "asking price", "asking prices");
	else
		buf_addf(b, "%zu comps (%zu sold, %zu asking)", val->comps, val->sold, val->ask);
	add_sources(b, g);
	if (val->comps > 1)
		buf_addf(b, " (p10-p90 %s-%s)", p10, p90);
	if (val->outliers) {
		buf_adds(b, "; ");
		add_count(b, val->outliers, "outlier", "outliers");
		left_out++;
	}
	if (g->filtered) {
		buf_adds(b, left_out ? " and " : "; ");
		add_count(b, g->filtered, "filtered listing", "filtered listings");
		left_out++;
	}
	if (left_out)
		buf_adds(b, " left out");
	buf_addf(b, ". Confidence %d/10", val->confidence);
	add_reason(b, val);
}

/* ---- records ----------------------------------------------------------- */

static void
add_int_or_null(struct buf *b, const char *name, int64_t v, int present)
{
	if (present)
		buf_addf(b, ",\"%s\":%" PRId64, name, v);
	else
		buf_addf(b, ",\"%s\":null", name);
}

/* Write the valuation of g and close it. job is the closing job_id's text, or NULL. */
static void
close_group(struct valuator *v, struct group *g, const char *job, size_t job_len)
{
	struct buf *b = &v->out, text = BUF_INIT;
	struct valuation val;
	int has = 0;

	compute(g, &val);
	has = val.comps > 0;
	buf_reset(b);
	buf_adds(b, "{\"kind\":\"valuation\",\"intake_id\":");
	if (strcmp(v->group_by, "intake_id") == 0)
		buf_add(b, g->key, g->key_len);
	else
		buf_adds(b, g->intake ? g->intake : "null");
	buf_adds(b, ",\"job_id\":");
	if (job != NULL)
		buf_add(b, job, job_len);
	else
		buf_adds(b, g->njobs ? g->jobs[g->njobs - 1] : "null");
	if (strcmp(v->group_by, "intake_id") != 0) {
		buf_adds(b, ",\"group_by\":");
		buf_add_json_string(b, v->group_by, strlen(v->group_by));
		buf_adds(b, ",\"group\":");
		buf_add(b, g->key, g->key_len);
	}
	buf_addf(b,
		 ",\"candidates\":%zu,\"outliers\":%zu,\"comps\":%zu,\"sold\":%zu,\"ask\":%zu"
		 ",\"filtered\":%zu",
		 val.candidates, val.outliers, val.comps, val.sold, val.ask, g->filtered);
	add_int_or_null(b, "p10_cents", val.p10, has);
	add_int_or_null(b, "median_cents", val.median, has);
	add_int_or_null(b, "p90_cents", val.p90, has);
	add_int_or_null(b, "mean_cents", val.mean, has);
	buf_addf(b,
		 ",\"confidence\":%d,\"confidence_parts\":{\"comps\":%d,\"reputation\":%d"
		 ",\"sold_ratio\":%d,\"spread\":%d,\"capped\":",
		 val.confidence, val.parts_comps, val.parts_reputation, val.parts_sold, val.parts_spread);
	if (val.capped)
		buf_addf(b, "\"%s\"}", val.capped);
	else
		buf_adds(b, "null}");
	explain(&text, g, &val);
	buf_adds(b, ",\"explanation\":");
	buf_add_json_string(b, text.data, text.len);
	buf_adds(b, "}\n");
	buf_free(&text);
	ndj_write(b->data, b->len);
	free_group(v, g);
}

/* The JSON text of a member's value, "null" when absent. */
static void
member_text(const struct ndj_member *m, const char **text, size_t *len)
{
	if (m == NULL) {
		*text = "null";
		*len = 4;
	} else {
		*text = m->val;
		*len = m->val_len;
	}
}

static int
parse_weight(const struct ndj_member *m, uint32_t *weight)
{
	char text[64], *end;
	double d;

	if (ndj_is_null(m)) {
		*weight = WEIGHT_ONE;
		return 0;
	}
	if (m->val[0] == '"' || m->val_len >= sizeof(text))
		return -1;
	memcpy(text, m->val, m->val_len);
	text[m->val_len] = '\0';
	d = strtod(text, &end);
	if (*end != '\0' || !(d >= 0 && d <= 1))
		return -1;
	/* Millionths, so that "0.8" compares as exactly 0.8. */
	*weight = (uint32_t)llround(d * WEIGHT_ONE);
	return 0;
}

static void
add_label(struct group *g, struct buf *adapter)
{
	const char *label = adapter->data;
	size_t i;

	if (adapter->len == 0)
		return;
	if (strncmp(label, "ebay", 4) == 0)
		label = "eBay";
	for (i = 0; i < g->nlabels; i++)
		if (strcmp(g->labels[i], label) == 0)
			return;
	if (g->nlabels < MAX_LABELS)
		g->labels[g->nlabels++] = xstrdup(label);
}

static int
on_price_point(struct valuator *v, struct ndj_record *r)
{
	const struct ndj_member *filtered = ndj_get(r, "filtered_out");
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *intake = ndj_get(r, "intake_id");
	const struct ndj_member *type = ndj_get(r, "price_type");
	struct candidate c = { 0, 0, 0 };
	struct group *g;
	const char *key;
	size_t key_len;
	int priced;

	priced = ndj_int(ndj_get(r, "price_cents"), &c.cents);
	if (priced < 0 || c.cents < 0) {
		snprintf(r->err, sizeof(r->err), "\"price_cents\" must be a non-negative integer or null");
		return NDJ_BAD;
	}
	if (parse_weight(ndj_get(r, "reputation_weight"), &c.weight) < 0) {
		snprintf(r->err, sizeof(r->err), "\"reputation_weight\" must be a number from 0 to 1");
		return NDJ_BAD;
	}
	if (ndj_string(ndj_get(r, "adapter"), &v->scratch) < 0) {
		snprintf(r->err, sizeof(r->err), "\"adapter\" must be a string or null");
		return NDJ_BAD;
	}
	member_text(ndj_get(r, v->group_by), &key, &key_len);
	g = find_group(v, key, key_len);
	if (!ndj_is_null(job) && !group_has_job(g, job->val, job->val_len)) {
		g->jobs = xrealloc(g->jobs, (g->njobs + 1) * sizeof(*g->jobs));
		g->jobs[g->njobs++] = xstrndup(job->val, job->val_len);
	}
	if (!ndj_is_null(intake) && (g->intake == NULL || strlen(g->intake) != intake->val_len ||
				     memcmp(g->intake, intake->val, intake->val_len) != 0)) {
		free(g->intake);
		g->intake = xstrndup(intake->val, intake->val_len);
	}
	if ((filtered != NULL && filtered->val[0] == 't') || priced != 0) {
		g->filtered++;
		if (priced != 0 && !(filtered != NULL && filtered->val[0] == 't')) {
			g->unpriced++;
			v->unpriced_total++;
		}
	} else {
		c.sold = type != NULL && type->val_len == 6 && memcmp(type->val, "\"sold\"", 6) == 0;
		if (g->n == g->cap) {
			g->cap = g->cap ? g->cap * 2 : 16;
			g->c = xrealloc(g->c, g->cap * sizeof(*g->c));
		}
		g->c[g->n++] = c;
		add_label(g, &v->scratch);
	}
	if (v->keep_points)
		ndj_pass(r);
	return 0;
}

/* job_end closes the groups of its job; job_error drops them (no valuation of a failed job). */
static int
on_job_boundary(struct valuator *v, struct ndj_record *r, int failed)
{
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *key = ndj_get(r, v->group_by);
	struct group *g, *next;

	for (g = v->first; g != NULL; g = next) {
		next = g->next;
		if (!((!ndj_is_null(job) && group_has_job(g, job->val, job->val_len)) ||
		      (!ndj_is_null(key) && g->key_len == key->val_len &&
		       memcmp(g->key, key->val, key->val_len) == 0)))
			continue;
		if (failed) {
			log_warn("line %lu: job failed: not valuing its %zu price point(s)", r->lineno,
				 g->n + g->filtered);
			free_group(v, g);
		} else if (ndj_is_null(job)) {
			close_group(v, g, NULL, 0);
		} else {
			close_group(v, g, job->val, job->val_len);
		}
	}
	ndj_pass(r);
	ndj_flush();
	return 0;
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct valuator *v = ctx;

	if (strcmp(r->kind, "price_point") == 0)
		return on_price_point(v, r);
	if (strcmp(r->kind, "job_end") == 0)
		return on_job_boundary(v, r, 0);
	if (strcmp(r->kind, "job_error") == 0)
		return on_job_boundary(v, r, 1);
	ndj_pass(r);
	return 0;
}

static int
finish(void *ctx)
{
	struct valuator *v = ctx;

	while (v->first != NULL)
		close_group(v, v->first, NULL, 0);
	if (v->unpriced_total)
		log_warn("%zu price points had no price_cents and were not valued "
			 "(run normalize-usd before valuate)",
			 v->unpriced_total);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "group-by", required_argument, NULL, 'g' }, { "keep-points", no_argument, NULL, 'k' },
		{ "strict", no_argument, NULL, 's' },	      { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	      { NULL, 0, NULL, 0 },
	};
	struct valuator v = { 0 };
	struct ndj_stage stage = { on_record, finish, &v, 0 };
	int c, status;

	log_init("valuate");
	opterr = 0;
	v.group_by = "intake_id";
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (*optarg == '\0') {
				log_error("--group-by wants a field name");
				usage(stderr);
				return EXIT_USAGE;
			}
			v.group_by = optarg;
			break;
		case 'k':
			v.keep_points = 1;
			break;
		case 's':
			stage.strict = 1;
			break;
		default:
			return cli_common_option(c, argv, "valuate", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0)
		return EXIT_USAGE;
	status = ndj_run(&stage);
	while (v.first != NULL)
		free_group(&v, v.first);
	free(v.buckets);
	buf_free(&v.scratch);
	buf_free(&v.out);
	return status;
}
