/*
 * filter-junk: read each price point's title as a collector would (grade, certifier,
 * designations, count) and mark the points that are not a comparable of the job's coin
 * (decoys, other coins, lots, problem coins, other designations). Adds the title facts,
 * "filtered_out" and "filter_reason" to every price_point and drops nothing.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "exits.h"
#include "hash.h"
#include "log.h"
#include "ndjson.h"
#include "rules.h"
#include "title.h"

/* Decoys: things sold near coins that are not coins. Lots and problem coins are read
 * from the title's facts (title.c), not from words here. */
static const char *const builtin_excludes[] = {
	"replica",	"replicas",  "copy",	    "copies",	     "reproduction", "reproductions",
	"repro",	"fake",	     "counterfeit", "plated",	     "token",	     "tokens",
	"novelty",	"fantasy",   "tribute",	    "souvenir",	     "holder only",  "empty holder",
	"capsule only", "capsules",  "album",	    "folder",	     "display case", "medal",
	"medals",	"medallion", "colorized",   "franklin mint", "silver round", "keychain",
	"pendant",	"necklace",  "no coin",
};

/* More decoys, as add_keywords reads them: rounds, restrikes, layered coins, what is sold
 * with a coin but is none, and copies in the languages of eBay's other sites (accents
 * folded: "Réplica" is "replica"). After the list above: its reasons win. */
static const char builtin_more[] = "round, rounds, layered, restrike, restrikes, imitation, challenge coin, "
				   "empty box, coa only, certificate only, photo, photograph, poster, stand, "
				   "stands, coin holder, coin holders, kopie, replik, nachpragung, "
				   "falschung, copie, replique, refrappe, copia, riproduzione, falso, "
				   "reproduccion, imitacion, imitazione, zweitabschlag, fac simile, "
				   "facsimile, gilded, gilt, vergoldet, dore, dorata, colorised, colourised, "
				   "coloured coin, coloriert, koloriert, colorisee, colorata, coloreada";

/* More decoys, as add_keywords reads them: an empty slab, often named with its grader. */
static const char builtin_empty_slabs[] = "empty slab, slab only, empty pcgs holder, empty ngc holder, "
					  "empty anacs holder, empty pcgs slab, empty ngc slab, box only";

/* A keyword as its words: lower-case ASCII letters and digits, one space between. */
struct keyword {
	char *name;  /* as the user wrote it, trimmed: what filter_reason names */
	char *words; /* "lot of" */
	size_t nwords;
	uint64_t first; /* hash of the first word: most keywords fail on it, cheaply */
};

struct keyword_list {
	struct keyword *v;
	size_t n, cap;
};

/* The words of a title: spans into a lower-cased copy. */
struct words {
	struct buf text;
	struct {
		const char *p;
		size_t len;
		uint64_t hash;
	} * v;
	size_t n, cap;
	uint64_t seen; /* bit (hash % 64) of every word: a keyword whose first word's bit is
			  clear is not in the title, known without a look at the words */
};

struct filter {
	struct keyword_list job_exclude, job_include; /* from the latest job record */
	struct keyword_list opt_exclude, opt_include; /* from --exclude, --include, --rules */
	struct keyword_list builtin;
	struct words title_words;
	struct buf title, extra;
	struct title_attribution attribution; /* of the latest job record */
	int has_attribution;
	int job_failed; /* the latest job record was unusable: its job failed */
	struct title_facts facts;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: filter-junk [--strict] [--no-defaults] [--exclude KW]... [--include KW]...\n"
		   "                   [--rules FILE]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Reads NDJSON records on stdin and writes them to stdout, adding to every\n"
	       "price_point \"filtered_out\" (bool), \"filter_reason\" (string or null) and what its\n"
	       "title says: \"grade\" (\"MS63\", \"XF40\", \"PR69\", \"Gem BU\"), \"grade_lo\" and\n"
	       "\"grade_hi\" (its Sheldon interval), \"certifier\", \"designations\" and, where the\n"
	       "point has none, \"quantity\". Nothing is dropped.\n"
	       "\n"
	       "  --exclude KW     mark points whose title matches KW (repeatable; KW may be\n"
	       "                   \"a, b\" for several keywords)\n"
	       "  --include KW     keep only points whose title matches some include keyword\n"
	       "  --rules FILE     rules as NDJSON objects {\"rule_type\",\"rule_value\",\"priority\"}\n"
	       "  --no-defaults    do not apply the built-in list of decoys\n"
	       "  --strict         stop at the first bad line\n"
	       "  -h, --help       print this help and exit\n"
	       "  -V, --version    print the version and exit\n"
	       "\n"
	       "A keyword matches when its words stand together among the title's words (ASCII,\n"
	       "case-insensitive; any character that is not a letter or digit separates words),\n"
	       "and not right after a negation (\"not a replica\"). Rules and the attribution of\n"
	       "the latest job record apply to the price points after it. The first reason wins,\n"
	       "in this order: exclude_keywords (job rules, options, built-ins), wrong_coin (year,\n"
	       "mint mark, series, denomination, strike, variety; needs an attribution), lot,\n"
	       "problem_coin, designation (needs an attribution), include_keywords:none.\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error.\n");
}

/* Lower-case ASCII letters and digits of s, split into words separated by spaces; an
 * accented Latin letter is its plain letter ("Réplica" is "replica"). */
static size_t
normalize_words(const char *s, size_t len, struct buf *out)
{
	size_t i, nwords = 0;
	int in_word = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if ((unsigned char)c == 0xC3 && i + 1 < len && grade_fold(s + i, 2, &c, 1) == 1 &&
			 c != s[i])
			i++; /* two bytes, one letter */
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (!in_word && nwords++)
				buf_addc(out, ' ');
			buf_addc(out, c);
			in_word = 1;
		} else {
			in_word = 0;
		}
	}
	return nwords;
}

/* Add each comma-separated keyword of value (a keyword with no words is ignored). */
static void
add_keywords(struct keyword_list *l, const char *value)
{
	const char *p = value;

	while (*p) {
		const char *end = strchr(p, ',');
		const char *a = p, *b;
		struct buf words = BUF_INIT;
		size_t n;

		if (end == NULL)
			end = p + strlen(p);
		b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		n = normalize_words(a, (size_t)(b - a), &words);
		if (n > 0) {
			BUF_ALLOC_GROW(l->v, l->n + 1, l->cap);
			l->v[l->n].name = xstrndup(a, (size_t)(b - a));
			l->v[l->n].words = words.data;
			l->v[l->n].nwords = n;
			l->v[l->n].first = hash_fnv1a(words.data, strcspn(words.data, " "));
			l->n++;
		} else {
			buf_free(&words);
		}
		p = *end ? end + 1 : end;
	}
}

static void
clear_keywords(struct keyword_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].words);
	}
	l->n = 0;
}

static void
free_keywords(struct keyword_list *l)
{
	clear_keywords(l);
	free(l->v);
	l->v = NULL;
	l->cap = 0;
}

/* Split a title into words; they live in w until the next call. */
static void
split_title(struct words *w, const char *title, size_t len)
{
	const char *p, *end;

	buf_reset(&w->text);
	buf_grow(&w->text, len);
	normalize_words(title, len, &w->text);
	w->n = 0;
	w->seen = 0;
	p = w->text.data;
	end = p + w->text.len;
	while (p < end) {
		const char *space = memchr(p, ' ', (size_t)(end - p));

		if (space == NULL)
			space = end;
		BUF_ALLOC_GROW(w->v, w->n + 1, w->cap);
		w->v[w->n].p = p;
		w->v[w->n].len = (size_t)(space - p);
		w->v[w->n].hash = hash_fnv1a(p, w->v[w->n].len);
		w->seen |= 1ull << (w->v[w->n].hash & 63);
		w->n++;
		p = space + 1;
	}
}

/*
 * Whether the keyword found at word i says nothing of this coin: negated ("not a
 * replica", "no copy") or the coin's make-up ("copper plated zinc", every cent since 1982).
 */
static int
keyword_void(const struct keyword *k, const struct words *w, size_t i)
{
	size_t j = i;

	if (i > 0 && strcmp(k->words, "plated") == 0 && w->v[i - 1].len == 6 &&
	    memcmp(w->v[i - 1].p, "copper", 6) == 0)
		return 1;
	/* "pulled from an old album" is a coin. */
	for (j = i > 3 ? i - 3 : 0; j < i; j++)
		if (w->v[j].len == 4 && memcmp(w->v[j].p, "from", 4) == 0)
			return 1;
	/* "see photo", "actual coin in photo", "MS63 in coin holder": a coin, shown or kept */
	if (strcmp(k->words, "photo") == 0 || strncmp(k->words, "coin holder", 11) == 0) {
		static const char *const showing[] = { "see",	"actual",   "real",   "in",   "per", "exact",
						       "shown", "stock",    "the",    "my",   "our", "with",
						       "as",	"pictured", "inside", "each", "same" };

		for (j = i > 3 ? i - 3 : 0; j < i + 3 && j < w->n; j++)
			if (j != i && title_word_in(showing, sizeof(showing) / sizeof(showing[0]), w->v[j].p,
						    w->v[j].len))
				return 1;
	}
	j = i;
	while (j-- > 0) {
		if (title_is_negator(w->v[j].p, w->v[j].len))
			return 1;
		if (!title_is_filler(w->v[j].p, w->v[j].len))
			return 0;
	}
	return 0;
}

/* Whether the keyword's words stand consecutively among the title's words. */
static int
keyword_matches(const struct keyword *k, const struct words *w)
{
	size_t i, j;

	for (i = 0; i + k->nwords <= w->n; i++) {
		const char *kp = k->words;

		if (w->v[i].hash != k->first)
			continue;
		for (j = 0; j < k->nwords; j++) {
			size_t len = w->v[i + j].len;

			if (strncmp(kp, w->v[i + j].p, len) != 0 || (kp[len] != ' ' && kp[len] != '\0'))
				break;
			kp += len + 1;
		}
		if (j == k->nwords && !keyword_void(k, w, i))
			return 1;
	}
	return 0;
}

static const struct keyword *
first_match(const struct keyword_list *l, const struct words *w)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if ((w->seen & (1ull << (l->v[i].first & 63))) && keyword_matches(&l->v[i], w))
			return &l->v[i];
	return NULL;
}

/* Sort rules by priority and add their keyword rules to the two lists. */
static void
add_rules(struct rule_list *rules, struct keyword_list *exclude, struct keyword_list *include)
{
	size_t i;

	rules_sort(rules);
	for (i = 0; i < rules->n; i++) {
		if (rules->v[i].type == RULE_EXCLUDE_KEYWORDS)
			add_keywords(exclude, rules->v[i].value);
		else if (rules->v[i].type == RULE_INCLUDE_KEYWORDS)
			add_keywords(include, rules->v[i].value);
	}
}

static int
on_job(struct filter *f, struct ndj_record *r)
{
	const struct ndj_member *m;
	struct rule_list rules = { 0 };
	int rc = 0;

	clear_keywords(&f->job_exclude);
	clear_keywords(&f->job_include);
	m = ndj_get(r, "attribution");
	f->has_attribution =
		!ndj_is_null(m) && title_attribution_read(m->val, m->val_len, &f->attribution) == 0;
	m = ndj_get(r, "rules");
	if (!ndj_is_null(m)) {
		if (rules_add_json(&rules, m->val, m->val_len, r->err, sizeof(r->err)) < 0)
			rc = NDJ_BAD;
		else
			add_rules(&rules, &f->job_exclude, &f->job_include);
	}
	rules_clear(&rules);
	f->job_failed = rc != 0;
	if (rc == 0)
		ndj_pass(r);
	else
		ndj_fail_job(r, r->err);
	return rc;
}

static const char *const our_fields[] = { "filtered_out", "filter_reason", "grade",	   "grade_lo",
					  "grade_hi",	  "certifier",	   "designations", "quantity" };

/* Append the title facts of f->facts (and the quantity, when the point has none). */
static void
add_facts(struct filter *f, int add_quantity)
{
	const struct title_facts *t = &f->facts;
	int i, first = 1;

	buf_add_member_string(&f->extra, "grade", t->has_grade ? t->grade.text : NULL);
	buf_add_member_int(&f->extra, "grade_lo", t->grade.lo, t->has_grade);
	buf_add_member_int(&f->extra, "grade_hi", t->grade.hi, t->has_grade);
	buf_add_member_string(&f->extra, "certifier", t->certifier);
	buf_adds(&f->extra, ",\"designations\":[");
	for (i = 0; i < GRADE_NDESIGNATIONS; i++) {
		if (t->designations & (1u << i)) {
			buf_adds(&f->extra, first ? "\"" : ",\"");
			buf_adds(&f->extra, grade_designation_name(i));
			buf_addc(&f->extra, '"');
			first = 0;
		}
	}
	buf_addc(&f->extra, ']');
	if (add_quantity && t->quantity > 0)
		buf_add_member_int(&f->extra, "quantity", t->quantity, 1);
}

/* The first reason, in DESIGN.md's order, why the point is not a comparable; 0 if none. */
static int
find_reason(struct filter *f, int quantity, char *reason, size_t len)
{
	const struct keyword *k;

	if ((k = first_match(&f->job_exclude, &f->title_words)) != NULL ||
	    (k = first_match(&f->opt_exclude, &f->title_words)) != NULL ||
	    (k = first_match(&f->builtin, &f->title_words)) != NULL) {
		snprintf(reason, len, "exclude_keywords:%s", k->name);
		return 1;
	}
	if (title_check(&f->facts, quantity, f->has_attribution ? &f->attribution : NULL, reason, len))
		return 1;
	if ((f->job_include.n || f->opt_include.n) && first_match(&f->job_include, &f->title_words) == NULL &&
	    first_match(&f->opt_include, &f->title_words) == NULL) {
		snprintf(reason, len, "include_keywords:none");
		return 1;
	}
	return 0;
}

static int
on_price_point(struct filter *f, struct ndj_record *r)
{
	const struct ndj_member *filtered = ndj_get(r, "filtered_out");
	const struct ndj_member *reason_member = ndj_get(r, "filter_reason");
	const struct ndj_member *quantity_member = ndj_get(r, "quantity");
	int64_t quantity = 0;
	int given = !ndj_is_null(quantity_member), ours, already;
	char reason[512];

	if (ndj_bool(filtered, &already) < 0) {
		snprintf(r->err, sizeof(r->err), "\"filtered_out\" must be true or false");
		return NDJ_BAD;
	}
	if (ndj_string(ndj_get(r, "title"), &f->title) < 0) {
		snprintf(r->err, sizeof(r->err), "\"title\" must be a string or null");
		return NDJ_BAD;
	}
	/* The collector's quantity stands; one that is no count is left as it came. */
	if (!given || ndj_int(quantity_member, &quantity) != 0 || quantity < 1)
		quantity = 0;
	else if (quantity > 1000000)
		quantity = 1000000;
	title_read(f->title.data ? f->title.data : "", f->title.len, &f->facts);
	buf_reset(&f->extra);
	if (already) {
		/* Already filtered upstream: the earlier reason stands. */
		buf_adds(&f->extra, "\"filtered_out\":true,\"filter_reason\":");
		if (reason_member != NULL)
			buf_add(&f->extra, reason_member->val, reason_member->val_len);
		else
			buf_adds(&f->extra, "null");
	} else {
		split_title(&f->title_words, f->title.data, f->title.len);
		if (find_reason(f, (int)quantity, reason, sizeof(reason))) {
			buf_adds(&f->extra, "\"filtered_out\":true,\"filter_reason\":");
			buf_add_json_string(&f->extra, reason, strlen(reason));
		} else {
			buf_adds(&f->extra, "\"filtered_out\":false,\"filter_reason\":null");
		}
	}
	ours = !given && f->facts.quantity > 0;
	add_facts(f, ours);
	return ndj_write_edited(r, our_fields, ours ? 8 : 7, f->extra.data, f->extra.len);
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct filter *f = ctx;

	if (strcmp(r->kind, "job") == 0)
		return on_job(f, r);
	/* A failed job's job_error is written: the rest of that job goes no further. */
	if (f->job_failed && ndj_is_job_part(r->kind))
		return 0;
	/* Write errors are the loop's to report: only a bad record is ours. */
	if (strcmp(r->kind, "price_point") == 0)
		return on_price_point(f, r) == NDJ_BAD ? NDJ_BAD : 0;
	ndj_pass(r);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "exclude", required_argument, NULL, 'x' }, { "include", required_argument, NULL, 'i' },
		{ "rules", required_argument, NULL, 'r' },   { "no-defaults", no_argument, NULL, 'n' },
		{ "strict", no_argument, NULL, 's' },	     { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	     { NULL, 0, NULL, 0 },
	};
	struct filter f = { 0 };
	struct rule_list rules = { 0 };
	struct ndj_stage stage = { on_record, NULL, &f, 0 };
	char err[512];
	int c, defaults = 1, status;
	size_t i;

	cli_die_with_parent();
	if (log_init("filter-junk") < 0)
		return EXIT_CONFIG;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (c) {
		case 'x':
			rules_add(&rules, RULE_EXCLUDE_KEYWORDS, optarg, 0);
			break;
		case 'i':
			rules_add(&rules, RULE_INCLUDE_KEYWORDS, optarg, 0);
			break;
		case 'r':
			if (rules_load_file(&rules, optarg, err, sizeof(err)) < 0) {
				log_error("%s", err);
				rules_clear(&rules);
				return EXIT_CONFIG;
			}
			break;
		case 'n':
			defaults = 0;
			break;
		case 's':
			stage.strict = 1;
			break;
		default:
			rules_clear(&rules);
			return cli_common_option(c, argv, "filter-junk", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0) {
		rules_clear(&rules);
		return EXIT_USAGE;
	}
	add_rules(&rules, &f.opt_exclude, &f.opt_include);
	rules_clear(&rules);
	for (i = 0; defaults && i < sizeof(builtin_excludes) / sizeof(builtin_excludes[0]); i++)
		add_keywords(&f.builtin, builtin_excludes[i]);
	if (defaults) {
		add_keywords(&f.builtin, builtin_empty_slabs);
		add_keywords(&f.builtin, builtin_more);
	}

	status = ndj_run(&stage);

	free_keywords(&f.job_exclude);
	free_keywords(&f.job_include);
	free_keywords(&f.opt_exclude);
	free_keywords(&f.opt_include);
	free_keywords(&f.builtin);
	buf_free(&f.title_words.text);
	free(f.title_words.v);
	buf_free(&f.title);
	buf_free(&f.extra);
	return status;
}
