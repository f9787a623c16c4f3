/*
 * valuate: value each intake (or each group of an ad-hoc stream) from its price points.
 * Without a target grade: Tukey fences, type-7 percentiles and a 1-10 confidence, exactly
 * as DESIGN.md says ("plain"). With one (the job's attribution, or --grade): every comp
 * moved to the target grade along a grade curve, weighted, and a robust centre ("grade").
 * Memory holds only the open groups' candidates, never the records.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "cli.h"
#include "curve.h"
#include "exits.h"
#include "grade.h"
#include "hash.h"
#include "log.h"
#include "money.h"
#include "ndjson.h"

#define WEIGHT_ONE 1000000 /* reputation weights are kept in millionths */
#define MAX_LABELS 8

/* The grade method's constants (DESIGN.md "Valuation with a target grade"). */
#define SIGMA		0.15  /* spread of log prices within one grade */
#define TAU		0.2   /* how far a published curve is off at another grade */
#define KAPPA		0.2   /* weight lost per unit of log-price distance */
#define STEP_VAR	0.01  /* a curve's error variance gained per knot between two grades */
#define UNGRADED_WEIGHT 0.5   /* an ungraded comp's weight, relative */
#define HALF_LIFE_DAYS	45.0  /* recency: a comp's weight halves every 45 days */
#define OUTLIER_SCALES	3.0   /* dropped beyond 3 robust scales of the weighted median */
#define HUBER_K		1.345 /* Huber's constant, in robust scales */
#define SLOPE_RIDGE	0.05  /* shrinks the fitted slope of the curve's error towards 0 */
#define SPREAD_CAP_SE	0.08  /* a centre less sure than this (its standard error) caps at 3 */
#define BEYOND_ERR                                                                                           \
	0.25	     /* the curve's error shared by every comp, per unit of log price that
			       * the target lies beyond the grades of all the comps */
#define BEYOND_CAP 4 /* the confidence of a price that rests on the curve beyond its comps */

struct candidate {
	int64_t cents;
	double days;	 /* sold_at in days since 1970-01-01, NAN when unknown */
	uint32_t weight; /* reputation, millionths */
	uint32_t grade;	 /* 1 + index of its `grade` text in the valuator's names, 0 for none */
	uint8_t lo, hi;	 /* Sheldon interval of grade_lo..grade_hi, 0 when ungraded */
	uint8_t sold;
	uint8_t certified; /* a certifier graded it */
	uint8_t outlier;   /* set by the valuation: left out as an outlier */
	uint32_t kept;	   /* --keep-points: its index among the group's kept points */
};

/* --keep-points: a point held until its group is valued, to say whether it was an outlier. */
struct kept_point {
	char *line; /* owned */
	size_t len;
	int candidate; /* it was a candidate: it gets "outlier" */
	int outlier;
	int has_own; /* it came with an "outlier" member of its own, to be replaced */
};

/* An intrusive hash table: every entry starts with a struct hnode. */
struct hnode {
	struct hnode *next;
	uint64_t hash;
	char *key; /* owned by the entry; NULL for a link */
	size_t len;
};

struct table {
	struct hnode **b;
	size_t nb, n;
};

struct link;

/* What the job record said about the coin: the grade to price at and its curve. */
struct job {
	struct hnode node;  /* its key: the job_id's JSON text */
	struct link *links; /* the open groups with a point of this job */
	int has_target;
	struct grade target;
	const struct curve *curve;
};

struct group {
	struct hnode node;	   /* its key: the key's JSON text ("null" when missing) */
	uint64_t seq;		   /* order of first appearance */
	struct group *prev, *next; /* open groups in order of first appearance */
	struct candidate *c;
	size_t n, cap;
	size_t filtered;		/* points not candidates: filtered out, or with no price */
	size_t unpriced;		/* of those, how many had no price_cents at all */
	struct link *links, *last_link; /* its jobs, oldest first */
	char *intake;			/* intake_id text of the latest point */
	char *labels[MAX_LABELS];
	size_t nlabels;
	struct kept_point *kept; /* --keep-points: its points, in order */
	size_t nkept, kept_cap;
};

/* One (job, group) pair: the group has a point of the job. */
struct link {
	struct hnode node;
	struct job *job;
	struct group *group;
	struct link *jprev, *jnext; /* in the job's list */
	struct link *gnext;	    /* in the group's list */
};

struct valuator {
	const char *group_by;
	int keep_points;
	struct table groups, jobs, links, names_by_text;
	uint64_t seq;
	struct group *first, *last;
	struct buf scratch, out;
	size_t unpriced_total;
	struct name **names; /* the distinct `grade` texts seen */
	size_t nnames, names_cap;
	struct job fallback; /* --grade and --series, for points of no job with a grade */
	struct job adhoc;    /* the last job record with a null job_id (ebay-fetch --query) */
	int64_t history;     /* the job_end's bound on the earlier points store sent, when it left
			      * older ones out; else 0 */
};

/* A distinct `grade` text of the points. */
struct name {
	struct hnode node;
	char *text; /* decoded */
	size_t len;
	int lo, hi; /* of its first point, for the order of `grades` */
	uint32_t index;
};

/* One computed valuation, before it is written. */
struct valuation {
	size_t candidates, outliers, comps, sold, ask;
	int64_t p10, median, p90, mean, tiers[4];
	int parts_comps, parts_reputation, parts_sold, parts_spread, confidence;
	const char *capped;
	const struct job *target; /* NULL: the plain method */
	double n_eff;
	double se;	     /* grade method: the standard error of the centre, in log price */
	double beyond;	     /* grade method: log price from the target to the nearest graded
			      * comp when all lie on one side of it, else 0 */
	int below_only;	     /* those comps lie below the target */
	size_t near, at;     /* comps within one grade step of the target, and at it */
	size_t *grade_count; /* per name + 1 (0: ungraded), comps only; NULL when none */
	size_t grade_slots;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: valuate [--strict] [--keep-points] [--group-by FIELD] [--grade GRADE [--series NAME]]\n");
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
	       "With a target grade (the job record's attribution.grade, or --grade), every comp\n"
	       "is moved to that grade along the series' grade curve (relative to MS63), weighted\n"
	       "by how far its grade is, how recent and how reputable it is, and the centre is a\n"
	       "weighted robust mean (\"method\":\"grade\"). Points carry their grade in\n"
	       "grade, grade_lo and grade_hi (filter-junk reads them from the titles).\n"
	       "\n"
	       "  --group-by FIELD  group by this top-level field instead of intake_id\n"
	       "  --grade GRADE     price at this grade where no job record gives one (MS63, AU58)\n"
	       "  --series NAME     the series whose grade curve --grade uses (Morgan, Peace, ...)\n"
	       "  --keep-points     pass the price_point records on as well, just before their\n"
	       "                    valuation, each candidate with \"outlier\": true or false\n"
	       "  --strict          stop at the first bad line\n"
	       "  -h, --help        print this help and exit\n"
	       "  -V, --version     print the version and exit\n"
	       "\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error.\n");
}

/* ---- hash tables, groups, jobs ------------------------------------------ */

static uint64_t
hash_pair(const void *a, const void *b)
{
	uint64_t h = (uint64_t)(uintptr_t)a * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)b;

	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 32);
}

/* The first entry of t's bucket for hash h (compare n->hash and the key yourself). */
static struct hnode *
table_bucket(const struct table *t, uint64_t h)
{
	return t->nb ? t->b[h & (t->nb - 1)] : NULL;
}

static void
table_insert(struct table *t, struct hnode *node)
{
	if (t->n >= t->nb) {
		size_t n = t->nb ? t->nb * 2 : 64, i;
		struct hnode **b = xmalloc(n * sizeof(*b));

		memset(b, 0, n * sizeof(*b));
		for (i = 0; i < t->nb; i++) {
			struct hnode *e = t->b[i], *next;

			for (; e != NULL; e = next) {
				next = e->next;
				e->next = b[e->hash & (n - 1)];
				b[e->hash & (n - 1)] = e;
			}
		}
		free(t->b);
		t->b = b;
		t->nb = n;
	}
	node->next = t->b[node->hash & (t->nb - 1)];
	t->b[node->hash & (t->nb - 1)] = node;
	t->n++;
}

static void
table_remove(struct table *t, struct hnode *node)
{
	struct hnode **pp = &t->b[node->hash & (t->nb - 1)];

	while (*pp != node)
		pp = &(*pp)->next;
	*pp = node->next;
	t->n--;
}

/* The entry of t whose key is key[0..len) and whose hash is h, or NULL. */
static struct hnode *
table_lookup_hashed(const struct table *t, const char *key, size_t len, uint64_t h)
{
	struct hnode *e;

	for (e = table_bucket(t, h); e != NULL; e = e->next)
		if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* The entry of t whose key is key[0..len), or NULL. */
static struct hnode *
table_lookup(const struct table *t, const char *key, size_t len)
{
	return table_lookup_hashed(t, key, len, hash_fnv1a(key, len));
}

/*
 * The entry of t whose key is key[0..len). When there is none, a new one of size bytes
 * (a struct that starts with its struct hnode), zeroed but for its node, which owns a
 * copy of the key, is put in t; the caller fills in the rest. *added (when added is
 * not NULL) says which happened.
 */
static struct hnode *
table_find_or_add(struct table *t, const char *key, size_t len, size_t size, int *added)
{
	uint64_t h = hash_fnv1a(key, len);
	struct hnode *e = table_lookup_hashed(t, key, len, h);

	if (added != NULL)
		*added = e == NULL;
	if (e != NULL)
		return e;
	e = xmalloc(size);
	memset(e, 0, size);
	e->key = xstrndup(key, len);
	e->len = len;
	e->hash = h;
	table_insert(t, e);
	return e;
}

/* The open group of a key, opened (last in order of appearance) when new. */
static struct group *
find_group(struct valuator *v, const char *key, size_t len)
{
	int added;
	struct group *g = (struct group *)table_find_or_add(&v->groups, key, len, sizeof(*g), &added);

	if (added) {
		g->seq = v->seq++;
		g->prev = v->last;
		if (v->last)
			v->last->next = g;
		else
			v->first = g;
		v->last = g;
	}
	return g;
}

/* Forget a job whose groups are all closed. */
static void
free_job(struct valuator *v, struct job *j)
{
	table_remove(&v->jobs, &j->node);
	free(j->node.key);
	free(j);
}

/* Note that group g has a point of job j. */
static void
add_link(struct valuator *v, struct job *j, struct group *g)
{
	uint64_t h = hash_pair(j, g);
	struct hnode *e;
	struct link *l;

	for (e = table_bucket(&v->links, h); e != NULL; e = e->next) {
		l = (struct link *)e;
		if (e->hash == h && l->job == j && l->group == g)
			return;
	}
	l = xmalloc(sizeof(*l));
	memset(l, 0, sizeof(*l));
	l->node.hash = h;
	l->job = j;
	l->group = g;
	l->jnext = j->links;
	if (j->links)
		j->links->jprev = l;
	j->links = l;
	if (g->last_link)
		g->last_link->gnext = l;
	else
		g->links = l;
	g->last_link = l;
	table_insert(&v->links, &l->node);
}

static void
free_group(struct valuator *v, struct group *g)
{
	struct link *l, *next;
	size_t i;

	table_remove(&v->groups, &g->node);
	if (g->prev)
		g->prev->next = g->next;
	else
		v->first = g->next;
	if (g->next)
		g->next->prev = g->prev;
	else
		v->last = g->prev;
	for (l = g->links; l != NULL; l = next) {
		next = l->gnext;
		if (l->jprev)
			l->jprev->jnext = l->jnext;
		else
			l->job->links = l->jnext;
		if (l->jnext)
			l->jnext->jprev = l->jprev;
		table_remove(&v->links, &l->node);
		free(l);
	}
	for (i = 0; i < g->nlabels; i++)
		free(g->labels[i]);
	for (i = 0; i < g->nkept; i++)
		free(g->kept[i].line);
	free(g->kept);
	free(g->intake);
	free(g->c);
	free(g->node.key);
	free(g);
}

/* The index + 1 of a `grade` text among the names seen, adding it when new. */
static uint32_t
name_index(struct valuator *v, const char *text, size_t len, int lo, int hi)
{
	int added;
	struct name *nm = (struct name *)table_find_or_add(&v->names_by_text, text, len, sizeof(*nm), &added);

	if (!added)
		return nm->index + 1;
	nm->text = nm->node.key;
	nm->len = len;
	nm->lo = lo;
	nm->hi = hi;
	nm->index = (uint32_t)v->nnames;
	BUF_ALLOC_GROW(v->names, v->nnames + 1, v->names_cap);
	v->names[v->nnames++] = nm;
	return nm->index + 1;
}

/* ---- the valuation, exactly -------------------------------------------- */

static int
by_cents(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return (x->cents > y->cents) - (x->cents < y->cents);
}

/* Hold the confidence at max at most, for the reason why (a capped value of DESIGN). */
static void
cap_confidence(struct valuation *val, const char *why, int max)
{
	val->capped = why;
	if (val->confidence > max)
		val->confidence = max;
}

/* Keep the confidence in 1..10. */
static void
clamp_confidence(struct valuation *val)
{
	if (val->confidence < 1)
		val->confidence = 1;
	if (val->confidence > 10)
		val->confidence = 10;
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
compute_plain(struct group *g, struct valuation *val)
{
	struct candidate *x = g->c, *comps;
	size_t n = g->n, m, i, lo = 0, hi = n;
	__int128 sum = 0, weights = 0;

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
	for (i = 0; i < n; i++)
		x[i].outlier = i < lo || i >= hi;
	/* x is NULL for a group with no candidates: no arithmetic on it then. */
	comps = n > 0 ? x + lo : NULL;
	m = hi - lo;
	val->candidates = n;
	val->comps = m;
	val->outliers = n - m;
	for (i = 0; i < m; i++) {
		sum += comps[i].cents;
		weights += comps[i].weight;
		val->sold += comps[i].sold;
		val->grade_count[comps[i].grade]++;
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
	for (i = 0; i < 4; i++)
		val->tiers[i] = percentile(comps, m, 20 * (unsigned)(i + 1));
	val->n_eff = (double)m;

	val->parts_comps = m >= 20 ? 3 : m >= 10 ? 2 : m >= 5 ? 1 : 0;
	val->parts_reputation = weights >= (__int128)m * 800000 ? 2 : weights >= (__int128)m * 500000 ? 1 : 0;
	val->parts_sold = 5 * val->sold >= 4 * m ? 2 : 2 * val->sold >= m ? 1 : 0;
	if (m >= 5 && val->median > 0) {
		/* r = (p90 - p10) / median, compared without division. */
		__int128 spread = (__int128)val->p90 - val->p10, med = val->median;

		val->parts_spread = 4 * spread <= med ? 3 : 2 * spread <= med ? 2 : spread <= med ? 1 : 0;
	}
	val->confidence = val->parts_comps + val->parts_reputation + val->parts_sold + val->parts_spread;
	if (m < 3)
		cap_confidence(val, "few_comps", 3);
	else if (2 * val->sold < m)
		cap_confidence(val, "mostly_ask", 7);
	clamp_confidence(val);
}

/* ---- the valuation at a target grade ----------------------------------- */

/* One candidate on the way to the target grade. */
struct moved {
	double y; /* log price at the target grade */
	double w; /* weight */
	double s; /* signed log-price distance of its grade from the target's, 0 when ungraded */
	double u; /* weight times the Huber factor, in the fit */
	struct candidate *c;
};

static int
by_y(const void *a, const void *b)
{
	const struct moved *x = a, *y = b;

	if (x->y != y->y)
		return x->y < y->y ? -1 : 1;
	if (x->w != y->w)
		return x->w < y->w ? -1 : 1;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return 0; /* the same in every figure that is summed: their order does not matter */
}

/*
 * The weighted percentile p of m[0..n) sorted by y, all weights > 0: each point stands at
 * the middle of its weight, (cumulative weight before it + w/2) / total; between two
 * points linear, before the first and after the last flat.
 */
static double
weighted_percentile(const struct moved *m, size_t n, double total, double p)
{
	double before = 0, prev_at = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		double at = (before + m[i].w / 2) / total;

		if (p <= at) {
			if (i == 0)
				return m[0].y;
			return m[i - 1].y + (p - prev_at) / (at - prev_at) * (m[i].y - m[i - 1].y);
		}
		before += m[i].w;
		prev_at = at;
	}
	return m[n - 1].y;
}

/* The weighted median of |y - centre| over m[0..n), sorted into scratch d. */
static double
weighted_mad(const struct moved *m, size_t n, double total, double centre, struct moved *d)
{
	size_t i;

	for (i = 0; i < n; i++) {
		d[i] = m[i];
		d[i].y = fabs(m[i].y - centre);
	}
	qsort(d, n, sizeof(*d), by_y);
	return weighted_percentile(d, n, total, 0.5);
}

static int64_t
cents_of(double y)
{
	double c = exp(y);

	if (!(c < 9.0e18))
		return INT64_MAX;
	return (int64_t)llround(c);
}

/* The legal Sheldon numbers, for "one grade step". */
static const int sheldon[] = { 1,  2,  3,  4,  6,  8,  10, 12, 15, 20, 25, 30, 35, 40, 45,
			       50, 53, 55, 58, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70 };

static int
grade_step(int grade, int dir)
{
	size_t n = sizeof(sheldon) / sizeof(sheldon[0]), i;

	for (i = 0; i < n; i++)
		if (sheldon[i] >= grade)
			break;
	if (dir < 0)
		return i == 0 ? sheldon[0] : sheldon[i - 1];
	if (i < n && sheldon[i] > grade)
		return sheldon[i];
	return i + 1 < n ? sheldon[i + 1] : sheldon[n - 1];
}

/* The grade method's uncertainty of the centre with the curve's shared error beyond the
 * comps' grades. */
static double
se_total(const struct valuation *val)
{
	return sqrt(val->se * val->se + BEYOND_ERR * BEYOND_ERR * val->beyond * val->beyond);
}

static void
compute_grade(struct group *g, const struct job *t, struct valuation *val)
{
	const struct curve *curve = t->curve;
	double target_mid = (t->target.lo + t->target.hi) / 2.0;
	double lt = curve_log_ratio(curve, target_mid), newest = NAN;
	double target_pos = curve_knot_position(target_mid);
	double total = 0, sq = 0, wmed, scale, mu, slope, rep = 0, below = -INFINITY, above = INFINITY;
	int near_lo = grade_step(t->target.lo, -1), near_hi = grade_step(t->target.hi, 1);
	struct moved *m, *d;
	size_t n = g->n, i, k;
	int iter;

	val->candidates = n;
	if (n == 0) {
		val->confidence = 1;
		val->capped = "few_comps";
		return;
	}
	for (i = 0; i < n; i++)
		if (!isnan(g->c[i].days) && !(g->c[i].days <= newest))
			newest = g->c[i].days;
	m = xmalloc(n * sizeof(*m));
	d = xmalloc(n * sizeof(*d));
	for (i = 0; i < n; i++) {
		struct candidate *c = &g->c[i];
		double age = isnan(c->days) || isnan(newest) ? 0 : newest - c->days;
		/* (a weight never 0: a reputation of 0 counts as a millionth, an age as at most
		 * 1000 half-lives) */
		double w = exp2(-fmin(age / HALF_LIFE_DAYS, 1000)) * (c->weight > 0 ? c->weight : 1) /
			   WEIGHT_ONE;
		double y = log(c->cents > 0 ? (double)c->cents : 0.5);

		if (c->lo > 0) {
			double l = curve_log_ratio(curve, (c->lo + c->hi) / 2.0);
			double dist = fabs(lt - l) +
				      fabs(curve_log_ratio(curve, c->hi) - curve_log_ratio(curve, c->lo)) / 2;
			int same = c->lo == t->target.lo && c->hi == t->target.hi && c->certified;

			y += lt - l;
			m[i].s = l - lt;
			w /= SIGMA * SIGMA + (same ? 0 : TAU * TAU) + KAPPA * KAPPA * dist * dist +
			     STEP_VAR * fabs(curve_knot_position((c->lo + c->hi) / 2.0) - target_pos);
		} else {
			w *= UNGRADED_WEIGHT / (SIGMA * SIGMA + TAU * TAU);
			m[i].s = 0;
		}
		m[i].y = y;
		m[i].w = w;
		m[i].c = c;
	}
	qsort(m, n, sizeof(*m), by_y);
	for (i = 0; i < n; i++)
		total += m[i].w;
	/* Outliers: beyond 3 robust scales (1.4826 MAD, never under SIGMA) of the weighted median. */
	wmed = weighted_percentile(m, n, total, 0.5);
	scale = 1.4826 * weighted_mad(m, n, total, wmed, d);
	if (!(scale >= SIGMA))
		scale = SIGMA;
	for (i = k = 0; i < n; i++) {
		m[i].c->outlier = !(fabs(m[i].y - wmed) <= OUTLIER_SCALES * scale);
		if (!m[i].c->outlier)
			m[k++] = m[i];
	}
	val->comps = k;
	val->outliers = n - k;
	if (k == 0) { /* cannot happen: the points nearest the weighted median are kept */
		val->confidence = 1;
		val->capped = "few_comps";
		free(m);
		free(d);
		return;
	}
	total = 0;
	for (i = 0; i < k; i++) {
		const struct candidate *c = m[i].c;

		total += m[i].w;
		sq += m[i].w * m[i].w;
		rep += c->weight;
		val->sold += c->sold;
		val->grade_count[c->grade]++;
		if (c->lo > 0 && c->hi >= near_lo && c->lo <= near_hi && (c->lo + c->hi) / 2.0 >= near_lo &&
		    (c->lo + c->hi) / 2.0 <= near_hi)
			val->near++;
		if (c->lo == t->target.lo && c->hi == t->target.hi)
			val->at++;
		if (c->lo > 0 && m[i].s <= 0 && m[i].s > below)
			below = m[i].s;
		if (c->lo > 0 && m[i].s >= 0 && m[i].s < above)
			above = m[i].s;
	}
	/* every graded comp on one side of the target: the price rests on the curve alone
	 * over the gap, and the curve's error there is shared, not averaged away */
	if (isinf(above) && !isinf(below)) {
		val->beyond = -below;
		val->below_only = 1;
	}
	if (isinf(below) && !isinf(above))
		val->beyond = above;
	val->ask = k - val->sold;
	/*
	 * The centre: a weighted Huber fit of y = mu + slope * s, from the weighted median and
	 * no slope. The slope (ridge-shrunk to 0) takes out what the published curve gets wrong
	 * near the target for this coin when the comps lie more on one side of it.
	 */
	mu = weighted_percentile(m, k, total, 0.5);
	slope = 0;
	for (iter = 0; iter < 100; iter++) {
		double sw = 0, sy = 0, ss = 0, sxx = 0, sxy = 0, next, nslope;

		for (i = 0; i < k; i++) {
			double r = fabs(m[i].y - mu - slope * m[i].s);

			m[i].u = m[i].w * (r <= HUBER_K * scale ? 1 : HUBER_K * scale / r);
			sw += m[i].u;
			sy += m[i].u * m[i].y;
			ss += m[i].u * m[i].s;
		}
		for (i = 0; i < k; i++) {
			double ds = m[i].s - ss / sw;

			sxx += m[i].u * ds * ds;
			sxy += m[i].u * ds * (m[i].y - sy / sw);
		}
		nslope = sxy / (sxx + SLOPE_RIDGE * sw);
		next = (sy - nslope * ss) / sw;
		if (fabs(next - mu) < 1e-12 && fabs(nslope - slope) < 1e-12)
			iter = 100;
		mu = next;
		slope = nslope;
	}
	for (i = 0; i < k; i++)
		m[i].y -= slope * m[i].s;
	qsort(m, k, sizeof(*m), by_y);
	{
		double mean = 0, var = 0, se;

		for (i = 0; i < k; i++) {
			mean += m[i].w * exp(m[i].y);
			var += m[i].w * (m[i].y - mu) * (m[i].y - mu);
		}
		val->p10 = cents_of(weighted_percentile(m, k, total, 0.10));
		val->p90 = cents_of(weighted_percentile(m, k, total, 0.90));
		for (i = 0; i < 4; i++)
			val->tiers[i] = cents_of(weighted_percentile(m, k, total, 0.2 * (double)(i + 1)));
		val->median = cents_of(mu);
		if (val->median < val->p10)
			val->median = val->p10;
		if (val->median > val->p90)
			val->median = val->p90;
		val->mean = cents_of(log(mean / total));
		val->n_eff = total * total / sq;
		/* The standard error of the centre, from the weighted spread of y and n_eff. */
		se = val->se = sqrt(var / total / val->n_eff);
		se = se_total(val);
		/*
		 * comps: the effective number of comps, on the plain method's steps (a comp far
		 * from the target grade, or old, counts as a fraction of one). spread: the
		 * standard error of the centre. On the quality benchmark these two rank the
		 * errors; the count of comps at the target grade adds nothing beyond them.
		 */
		val->parts_comps = val->n_eff >= 20 ? 3 : val->n_eff >= 10 ? 2 : val->n_eff >= 5 ? 1 : 0;
		val->parts_spread = se <= 0.025 ? 3 : se <= 0.035 ? 2 : se <= 0.05 ? 1 : 0;
	}
	val->parts_reputation = rep >= (double)k * 800000 ? 2 : rep >= (double)k * 500000 ? 1 : 0;
	val->parts_sold = 5 * val->sold >= 4 * k ? 2 : 2 * val->sold >= k ? 1 : 0;
	val->confidence = val->parts_comps + val->parts_reputation + val->parts_sold + val->parts_spread;
	if (k < 3)
		cap_confidence(val, "few_comps", 3);
	else if (val->near < 2)
		cap_confidence(val, "no_grade_comps", 3);
	else if (val->se > SPREAD_CAP_SE) {
		/* too few comps for how widely their moved prices spread: on the quality
		 * benchmark such centres miss by more than capped ones with tight comps */
		cap_confidence(val, "few_comps", 3);
	} else if (se_total(val) > SPREAD_CAP_SE) {
		/* the target lies so far beyond every comp's grade that the curve, not the
		 * sales, sets the price */
		cap_confidence(val, "beyond_comps", BEYOND_CAP);
	} else if (val->n_eff < 4)
		cap_confidence(val, "few_comps", 5);
	else if (2 * val->sold < k)
		cap_confidence(val, "mostly_ask", 7);
	clamp_confidence(val);
	free(m);
	free(d);
}

/* The valuation of g, at t's target grade when t is not NULL. */
static void
compute(struct valuator *v, struct group *g, const struct job *t, struct valuation *val)
{
	memset(val, 0, sizeof(*val));
	val->grade_slots = v->nnames + 1;
	val->grade_count = xmalloc(val->grade_slots * sizeof(*val->grade_count));
	memset(val->grade_count, 0, val->grade_slots * sizeof(*val->grade_count));
	val->target = t;
	if (t != NULL)
		compute_grade(g, t, val);
	else
		compute_plain(g, val);
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
	if (val->capped && strcmp(val->capped, "few_comps") == 0 && val->target && val->comps >= 3 &&
	    val->se > SPREAD_CAP_SE) {
		buf_addf(b, ": too few comps for how widely their prices spread once moved to %s.",
			 val->target->target.text);
		return;
	}
	if (val->capped && strcmp(val->capped, "few_comps") == 0 && val->target && val->comps >= 3) {
		buf_addf(b, ": the comps count as only %.1f, the recent ones near %s weighing most.",
			 val->n_eff, val->target->target.text);
		return;
	}
	if (val->capped && strcmp(val->capped, "few_comps") == 0) {
		buf_adds(b, ": only ");
		add_count(b, val->comps, "comp.", "comps.");
		return;
	}
	if (val->capped && strcmp(val->capped, "no_grade_comps") == 0) {
		buf_addf(b, ": fewer than 2 comps at or within a grade of %s.", val->target->target.text);
		return;
	}
	if (val->capped && strcmp(val->capped, "beyond_comps") == 0) {
		buf_addf(b, ": every graded comp is %s %s, so the price there rests on the grade curve.",
			 val->below_only ? "below" : "above", val->target->target.text);
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
		if (val->target) { /* its comps part is the effective number of comps */
			buf_addf(b, ": the comps count as only %.1f, the recent ones near %s weighing most.",
				 val->n_eff, val->target->target.text);
			break;
		}
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
explain(struct buf *b, const struct group *g, const struct valuation *val, int64_t history)
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
	if (val->target != NULL) {
		const char *at = val->target->target.text;

		buf_addf(b, "Priced at %s: %s from ", at, median);
		add_count(b, val->comps, "comp", "comps");
		buf_addf(b, " (%zu at %s, %zu within a grade of it; %.1f effective)", val->at, at, val->near,
			 val->n_eff);
		add_sources(b, g);
		if (val->grade_count[0] == val->comps)
			buf_adds(b, ", none of them graded, so taken as they are"); /* no curve moved any */
		else
			buf_addf(b, ", each moved to %s along %s grade curve", at, val->target->curve->name);
	} else {
		buf_addf(b, "Median %s from ", median);
		if (val->sold == val->comps)
			add_count(b, val->comps, "sold comp", "sold comps");
		else if (val->ask == val->comps)
			add_count(b, val->comps, "asking price", "asking prices");
		else
			buf_addf(b, "%zu comps (%zu sold, %zu asking)", val->comps, val->sold, val->ask);
		add_sources(b, g);
	}
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
	if (history > 0)
		buf_addf(b, "; only the newest %lld earlier listings stored for the intake were used",
			 (long long)history);
	buf_addf(b, ". Confidence %d/10", val->confidence);
	add_reason(b, val);
}

/* ---- records ----------------------------------------------------------- */

static int
by_grade_name(const void *a, const void *b)
{
	const struct name *x = *(const struct name *const *)a, *y = *(const struct name *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	c = memcmp(x->text, y->text, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* "grades": comps by their `grade` text, lowest grade first, then "ungraded". */
static void
add_grades(struct buf *b, const struct valuator *v, const struct valuation *val)
{
	struct name **seen = xmalloc((val->grade_slots) * sizeof(*seen));
	size_t i, n = 0;

	for (i = 1; i < val->grade_slots; i++)
		if (val->grade_count[i])
			seen[n++] = v->names[i - 1];
	qsort(seen, n, sizeof(*seen), by_grade_name);
	buf_adds(b, ",\"grades\":{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(b, ',');
		buf_add_json_string(b, seen[i]->text, seen[i]->len);
		buf_addf(b, ":%zu", val->grade_count[seen[i]->index + 1]);
	}
	if (val->grade_count[0])
		buf_addf(b, "%s\"ungraded\":%zu", n ? "," : "", val->grade_count[0]);
	buf_addc(b, '}');
	free(seen);
}

/* The grade to price g at: the closing job's, else its latest job's that has one, else
 * (for points of no job) the last ad-hoc job record's, else --grade's, else none (the
 * plain method). */
static const struct job *
target_of(const struct valuator *v, const struct group *g, const struct job *closing)
{
	const struct job *t = NULL;
	const struct link *l;

	if (closing != NULL && closing->has_target)
		return closing;
	for (l = g->links; l != NULL; l = l->gnext)
		if (l->job->has_target)
			t = l->job;
	if (t == NULL && g->links == NULL && v->adhoc.has_target)
		t = &v->adhoc;
	if (t == NULL && v->fallback.has_target)
		t = &v->fallback;
	return t;
}

/*
 * --keep-points: write g's points as they came, each candidate with "outlier" (true when
 * the valuation left it out, either method's way) when marked is set; a failed job's
 * points go out unmarked.
 */
static void
write_kept(struct group *g, int marked)
{
	static const char *const ours[] = { "outlier" };
	struct ndj_record r;
	size_t i;

	if (g->nkept == 0) /* no --keep-points */
		return;
	for (i = 0; i < g->n; i++)
		g->kept[g->c[i].kept].outlier = g->c[i].outlier;
	memset(&r, 0, sizeof(r));
	for (i = 0; i < g->nkept; i++) {
		struct kept_point *p = &g->kept[i];

		const char *extra = p->outlier ? "\"outlier\":true" : "\"outlier\":false";

		if (marked && p->candidate && !p->has_own) {
			/* the usual case: the line up to its closing brace, and the mark */
			size_t end = p->len;

			while (end > 0 && p->line[end - 1] != '}')
				end--;
			ndj_write(p->line, end - 1);
			ndj_write(",", 1);
			ndj_write(extra, strlen(extra));
			ndj_write("}\n", 2);
		} else if (marked && p->candidate && ndj_scan(&r, p->line, p->len) == 0) {
			ndj_write_edited(&r, ours, 1, extra, strlen(extra));
		} else {
			ndj_write(p->line, p->len);
			ndj_write("\n", 1);
		}
	}
	ndj_record_free(&r);
}

/* Write the valuation of g and close it. job is the closing job_id's text, or NULL. */
static void
close_group(struct valuator *v, struct group *g, const char *job, size_t job_len)
{
	struct buf *b = &v->out, text = BUF_INIT;
	struct valuation val;
	int has = 0;

	compute(v, g, target_of(v, g, job ? (struct job *)table_lookup(&v->jobs, job, job_len) : NULL), &val);
	has = val.comps > 0;
	write_kept(g, 1);
	buf_reset(b);
	buf_adds(b, "{\"kind\":\"valuation\",\"intake_id\":");
	if (strcmp(v->group_by, "intake_id") == 0)
		buf_add(b, g->node.key, g->node.len);
	else
		buf_adds(b, g->intake ? g->intake : "null");
	buf_adds(b, ",\"job_id\":");
	if (job != NULL)
		buf_add(b, job, job_len);
	else if (g->last_link != NULL)
		buf_add(b, g->last_link->job->node.key, g->last_link->job->node.len);
	else
		buf_adds(b, "null");
	if (strcmp(v->group_by, "intake_id") != 0) {
		buf_adds(b, ",\"group_by\":");
		buf_add_json_string(b, v->group_by, strlen(v->group_by));
		buf_adds(b, ",\"group\":");
		buf_add(b, g->node.key, g->node.len);
	}
	buf_addf(b,
		 ",\"candidates\":%zu,\"outliers\":%zu,\"comps\":%zu,\"sold\":%zu,\"ask\":%zu"
		 ",\"filtered\":%zu",
		 val.candidates, val.outliers, val.comps, val.sold, val.ask, g->filtered);
	buf_add_member_int(b, "p10_cents", val.p10, has);
	buf_add_member_int(b, "median_cents", val.median, has);
	buf_add_member_int(b, "p90_cents", val.p90, has);
	buf_add_member_int(b, "mean_cents", val.mean, has);
	buf_addf(b,
		 ",\"confidence\":%d,\"confidence_parts\":{\"comps\":%d,\"reputation\":%d"
		 ",\"sold_ratio\":%d,\"spread\":%d,\"capped\":",
		 val.confidence, val.parts_comps, val.parts_reputation, val.parts_sold, val.parts_spread);
	if (val.capped)
		buf_addf(b, "\"%s\"}", val.capped);
	else
		buf_adds(b, "null}");
	explain(&text, g, &val, v->history);
	buf_adds(b, ",\"explanation\":");
	buf_add_json_string(b, text.data, text.len);
	if (val.target != NULL) {
		buf_adds(b, ",\"method\":\"grade\",\"target_grade\":");
		buf_add_json_string(b, val.target->target.text, strlen(val.target->target.text));
	} else {
		buf_adds(b, ",\"method\":\"plain\",\"target_grade\":null");
	}
	buf_addf(b, ",\"n_eff\":%.1f", val.n_eff);
	add_grades(b, v, &val);
	if (has) {
		buf_addf(b,
			 ",\"tiers\":{\"quick_sale\":%" PRId64 ",\"fair_low\":%" PRId64
			 ",\"fair_high\":%" PRId64 ",\"premium\":%" PRId64 "}",
			 val.tiers[0], val.tiers[1], val.tiers[2], val.tiers[3]);
	} else {
		buf_adds(b, ",\"tiers\":null");
	}
	buf_adds(b, "}\n");
	buf_free(&text);
	free(val.grade_count);
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

/* Whether s begins with the digits and separators of shape ('d' a digit, else itself). */
static int
has_shape(const char *s, const char *shape)
{
	for (; *shape; s++, shape++)
		if (*shape == 'd' ? *s < '0' || *s > '9' : *s != *shape)
			return 0;
	return 1;
}

/* The number of the two digits at s. */
static int
two_digits(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Days since 1970-01-01 of an RFC 3339 time ("2026-11-20T10:00:00Z"), NAN when not one. */
static double
parse_days(const char *s)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, got;
	long era, yoe, doy, doe;

	/* The usual form is read directly; sscanf for the rest (a date written any other way
	 * reads as it always has). */
	if (has_shape(s, "dddd-dd-dd")) {
		y = two_digits(s) * 100 + two_digits(s + 2);
		mo = two_digits(s + 5);
		d = two_digits(s + 8);
		n = 10;
		got = 3;
	} else {
		got = sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n);
	}
	if (got != 3 || n != 10 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return NAN;
	if (s[10] == 'T' || s[10] == 't' || s[10] == ' ') {
		if (has_shape(s + 11, "dd:dd:dd")) {
			h = two_digits(s + 11);
			mi = two_digits(s + 14);
			sec = two_digits(s + 17);
			got = 3;
		} else {
			got = sscanf(s + 11, "%2d:%2d:%2d", &h, &mi, &sec);
		}
		if (got == 3 && (h > 23 || mi > 59 || sec > 60))
			return NAN;
	}
	/* days from civil (Howard Hinnant's algorithm) */
	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (double)(era * 146097 + doe - 719468) + (h * 3600 + mi * 60 + sec) / 86400.0;
}

/* A point's title facts: grade text and Sheldon interval. Returns -1 when malformed. */
static int
parse_grade(struct valuator *v, struct ndj_record *r, struct candidate *c)
{
	const struct ndj_member *grade = ndj_get(r, "grade");
	int64_t lo = 0, hi = 0;
	int rl = ndj_int(ndj_get(r, "grade_lo"), &lo), rh = ndj_int(ndj_get(r, "grade_hi"), &hi);

	if (rl < 0 || rh < 0 || (rl == 0 && (lo < 1 || lo > 70)) || (rh == 0 && (hi < 1 || hi > 70)) ||
	    (rl == 0 && rh == 0 && lo > hi)) {
		snprintf(r->err, sizeof(r->err),
			 "\"grade_lo\" and \"grade_hi\" must be integers 1-70, lo <= hi, or null");
		return -1;
	}
	if (rl == 0 && rh != 0)
		hi = lo;
	if (rh == 0 && rl != 0)
		lo = hi;
	c->lo = (uint8_t)lo;
	c->hi = (uint8_t)hi;
	c->grade = 0;
	switch (ndj_string(grade, &v->scratch)) {
	case 0:
		/* an empty or overlong grade text counts as none */
		if (v->scratch.len > 0 && v->scratch.len <= 64)
			c->grade = name_index(v, v->scratch.data, v->scratch.len, (int)lo, (int)hi);
		return 0;
	case 1:
		return 0;
	default:
		snprintf(r->err, sizeof(r->err), "\"grade\" must be a string or null");
		return -1;
	}
}

static int
on_price_point(struct valuator *v, struct ndj_record *r)
{
	const struct ndj_member *filtered = ndj_get(r, "filtered_out");
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *intake = ndj_get(r, "intake_id");
	const struct ndj_member *type = ndj_get(r, "price_type");
	struct candidate c;
	struct group *g;
	const char *key;
	size_t key_len;
	int priced, filtered_out;

	if (ndj_bool(filtered, &filtered_out) < 0) {
		snprintf(r->err, sizeof(r->err), "\"filtered_out\" must be true or false");
		return NDJ_BAD;
	}
	memset(&c, 0, sizeof(c));
	priced = ndj_int(ndj_get(r, "price_cents"), &c.cents);
	if (priced < 0 || c.cents < 0) {
		snprintf(r->err, sizeof(r->err), "\"price_cents\" must be a non-negative integer or null");
		return NDJ_BAD;
	}
	if (parse_weight(ndj_get(r, "reputation_weight"), &c.weight) < 0) {
		snprintf(r->err, sizeof(r->err), "\"reputation_weight\" must be a number from 0 to 1");
		return NDJ_BAD;
	}
	if (parse_grade(v, r, &c) < 0)
		return NDJ_BAD;
	c.certified = !ndj_is_null(ndj_get(r, "certifier"));
	c.days = NAN;
	if (ndj_string(ndj_get(r, "sold_at"), &v->scratch) == 0)
		c.days = parse_days(v->scratch.data);
	if (ndj_string(ndj_get(r, "adapter"), &v->scratch) < 0) {
		snprintf(r->err, sizeof(r->err), "\"adapter\" must be a string or null");
		return NDJ_BAD;
	}
	member_text(ndj_get(r, v->group_by), &key, &key_len);
	g = find_group(v, key, key_len);
	if (!ndj_is_null(job))
		add_link(v,
			 (struct job *)table_find_or_add(&v->jobs, job->val, job->val_len, sizeof(struct job),
							 NULL),
			 g);
	if (!ndj_is_null(intake) && (g->intake == NULL || strlen(g->intake) != intake->val_len ||
				     memcmp(g->intake, intake->val, intake->val_len) != 0)) {
		free(g->intake);
		g->intake = xstrndup(intake->val, intake->val_len);
	}
	if (filtered_out || priced != 0) {
		g->filtered++;
		if (priced != 0 && !filtered_out) {
			g->unpriced++;
			v->unpriced_total++;
		}
	} else {
		c.sold = type != NULL && type->val_len == 6 && memcmp(type->val, "\"sold\"", 6) == 0;
		c.kept = (uint32_t)g->nkept;
		BUF_ALLOC_GROW(g->c, g->n + 1, g->cap);
		g->c[g->n++] = c;
		add_label(g, &v->scratch);
	}
	if (v->keep_points) {
		/* held until the group is valued, to be marked an outlier or not */
		BUF_ALLOC_GROW(g->kept, g->nkept + 1, g->kept_cap);
		g->kept[g->nkept].line = xstrndup(r->line, r->len);
		g->kept[g->nkept].len = r->len;
		g->kept[g->nkept].candidate = !(filtered_out || priced != 0);
		g->kept[g->nkept].outlier = 0;
		g->kept[g->nkept].has_own = ndj_get(r, "outlier") != NULL;
		g->nkept++;
	}
	return 0;
}

/* Set a job's target from a grade text, a series text, a title (any may be NULL) and a
 * year (0 when unknown). */
static void
set_target(struct job *j, const char *grade, const char *series, const char *title, long year)
{
	j->has_target = grade != NULL && grade_parse(grade, strlen(grade), &j->target) == 0 &&
			j->target.lo >= 1 && j->target.hi <= 70 && j->target.lo <= j->target.hi;
	/* a modern bullion coin or issue gets the flat modern curve below MS70 */
	j->curve = curve_choose(series, title, year);
	/* a series' curve is its business strikes': a proof climbs far more gently at the top */
	if (j->has_target && j->target.proof == 1)
		j->curve = curve_proof();
}

static const char *
string_at(const cJSON *o, const char *name)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* An attribution's year: a whole number of 1 to 9999 (or such a string), else 0. */
static long
year_at(const cJSON *o)
{
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(o, "year");
	double d = cJSON_IsNumber(y) ? y->valuedouble : cJSON_IsString(y) ? strtod(y->valuestring, NULL) : 0;

	return d >= 1 && d <= 9999 && d == floor(d) ? (long)d : 0;
}

/* A job record: remember the grade its attribution asks for. Passed on unchanged. */
static int
on_job(struct valuator *v, struct ndj_record *r)
{
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *attribution = ndj_get(r, "attribution");
	cJSON *a;

	ndj_pass(r);
	if (attribution == NULL || attribution->val[0] != '{')
		return 0;
	a = cJSON_ParseWithLength(attribution->val, attribution->val_len);
	if (a != NULL) {
		struct job *j = ndj_is_null(job)
					? &v->adhoc
					: (struct job *)table_find_or_add(&v->jobs, job->val, job->val_len,
									  sizeof(struct job), NULL);

		set_target(j, string_at(a, "grade"), string_at(a, "series"), string_at(a, "title"),
			   year_at(a));
		cJSON_Delete(a);
	}
	return 0;
}

static int
by_seq(const void *a, const void *b)
{
	const struct group *x = *(struct group *const *)a, *y = *(struct group *const *)b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * The bound of a job_end's "history" (store's replay of the intake's earlier points) when
 * older points were left out ("more": true), else 0.
 */
static int64_t
history_bound(const struct ndj_member *m)
{
	cJSON *h;
	const cJSON *limit;
	int64_t bound = 0;

	if (ndj_is_null(m))
		return 0;
	h = cJSON_ParseWithLength(m->val, m->val_len);
	limit = cJSON_GetObjectItemCaseSensitive(h, "limit");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more")) && cJSON_IsNumber(limit) &&
	    limit->valuedouble >= 1 && limit->valuedouble < 1e15)
		bound = (int64_t)limit->valuedouble;
	cJSON_Delete(h);
	return bound;
}

/* job_end closes the groups of its job; job_error drops them (no valuation of a failed job). */
static int
on_job_boundary(struct valuator *v, struct ndj_record *r, int failed)
{
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *key = ndj_get(r, v->group_by);
	struct job *j =
		ndj_is_null(job) ? NULL : (struct job *)table_lookup(&v->jobs, job->val, job->val_len);
	struct group **close = NULL, *own = NULL;
	const struct link *l;
	size_t n = 0, i;

	if (j != NULL)
		for (l = j->links; l != NULL; l = l->jnext)
			n++;
	if (!ndj_is_null(key))
		own = (struct group *)table_lookup(&v->groups, key->val, key->val_len);
	close = xmalloc((n + 1) * sizeof(*close));
	n = 0;
	if (j != NULL)
		for (l = j->links; l != NULL; l = l->jnext)
			close[n++] = l->group;
	if (own != NULL) {
		for (i = 0; i < n && close[i] != own; i++)
			;
		if (i == n)
			close[n++] = own;
	}
	/* in order of first appearance, as if every open group were walked */
	qsort(close, n, sizeof(*close), by_seq);
	v->history = failed ? 0 : history_bound(ndj_get(r, "history"));
	for (i = 0; i < n; i++) {
		struct group *g = close[i];

		if (failed) {
			log_warn("line %lu: job failed: not valuing its %zu price point(s)", r->lineno,
				 g->n + g->filtered);
			write_kept(g, 0);
			free_group(v, g);
		} else if (ndj_is_null(job)) {
			close_group(v, g, NULL, 0);
		} else {
			close_group(v, g, job->val, job->val_len);
		}
	}
	free(close);
	v->history = 0;
	if (j != NULL)
		free_job(v, j);
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
	if (strcmp(r->kind, "job") == 0)
		return on_job(v, r);
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

static void
free_table_entries(struct table *t, void (*free_entry)(struct hnode *))
{
	size_t i;

	for (i = 0; i < t->nb; i++) {
		struct hnode *e = t->b[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free_entry(e);
		}
	}
	free(t->b);
}

static void
free_job_entry(struct hnode *e)
{
	struct job *j = (struct job *)e;

	free(j->node.key);
	free(j);
}

static void
free_name_entry(struct hnode *e)
{
	struct name *nm = (struct name *)e;

	free(nm->text);
	free(nm);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "group-by", required_argument, NULL, 'g' }, { "keep-points", no_argument, NULL, 'k' },
		{ "grade", required_argument, NULL, 'G' },    { "series", required_argument, NULL, 'S' },
		{ "strict", no_argument, NULL, 's' },	      { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	      { NULL, 0, NULL, 0 },
	};
	struct valuator v = { 0 };
	struct ndj_stage stage = { on_record, finish, &v, 0 };
	const char *grade = NULL, *series = NULL;
	int c, status;

	cli_die_with_parent();
	if (log_init("valuate") < 0)
		return EXIT_CONFIG;
	opterr = 0;
	v.group_by = "intake_id";
	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (*optarg == '\0') {
				log_error("--group-by wants a field name");
				usage(stderr);
				return EXIT_USAGE;
			}
			v.group_by = optarg;
			break;
		case 'G':
			grade = optarg;
			break;
		case 'S':
			series = optarg;
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
	set_target(&v.fallback, grade, series, NULL, 0);
	if (grade != NULL && !v.fallback.has_target) {
		log_error("--grade: \"%s\" is not a grade (e.g. MS63, AU58, XF40, Choice BU)", grade);
		usage(stderr);
		return EXIT_USAGE;
	}
	status = ndj_run(&stage);
	while (v.first != NULL)
		free_group(&v, v.first);
	free_table_entries(&v.jobs, free_job_entry);
	free_table_entries(&v.names_by_text, free_name_entry);
	free(v.groups.b);
	free(v.links.b);
	free(v.names);
	buf_free(&v.scratch);
	buf_free(&v.out);
	return status;
}
