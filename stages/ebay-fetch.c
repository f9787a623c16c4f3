/*
 * ebay-fetch: the eBay collector. For each job record (or one --query), asks eBay's
 * Finding, Marketplace Insights or Browse API for comparable listings and writes the
 * job record on, one price_point per listing, then job_end; or job_error when the job
 * cannot be done. A job's points are written only once all its pages have come.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "exits.h"
#include "http.h"
#include "log.h"
#include "ndjson.h"

#include "ebay/ebay.h"

static const char *const api_names[] = { "finding", "insights", "browse" };

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
	       "  -h, --help        print this help and exit\n"
	       "  -V, --version     print the version and exit\n"
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

static int
api_by_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < 3; i++)
		if (strcmp(name, api_names[i]) == 0 || strcmp(name, ebay_adapters[i]) == 0)
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
 * The eBay site a source searches (config.marketplace, REST's spelling: "EBAY_GB"), with
 * the Finding API's name for it. Sold prices of another site come in its currency, which
 * normalize-usd converts. 0, or 1 with j->error set for a site eBay does not have.
 */
static int
set_marketplace(struct job *j, const char *name)
{
	static const char *const sites[][2] = {
		{ "EBAY_US", "EBAY-US" }, { "EBAY_GB", "EBAY-GB" },   { "EBAY_DE", "EBAY-DE" },
		{ "EBAY_AU", "EBAY-AU" }, { "EBAY_CA", "EBAY-ENCA" }, { "EBAY_FR", "EBAY-FR" },
		{ "EBAY_IT", "EBAY-IT" }, { "EBAY_ES", "EBAY-ES" },   { "EBAY_AT", "EBAY-AT" },
		{ "EBAY_CH", "EBAY-CH" }, { "EBAY_IE", "EBAY-IE" },   { "EBAY_NL", "EBAY-NL" },
		{ "EBAY_PL", "EBAY-PL" }, { "EBAY_HK", "EBAY-HK" },   { "EBAY_SG", "EBAY-SG" },
	};
	size_t i;

	if (name == NULL)
		name = "EBAY_US";
	for (i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		if (strcmp(name, sites[i][0]) == 0) {
			snprintf(j->marketplace, sizeof(j->marketplace), "%s", sites[i][0]);
			j->global_id = sites[i][1];
			return 0;
		}
	}
	snprintf(j->error, sizeof(j->error),
		 "the source's config.marketplace \"%.32s\" is no eBay site this collector knows "
		 "(EBAY_US, EBAY_GB, EBAY_DE, EBAY_AU, EBAY_CA, ...)",
		 name);
	return -1;
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
	if (ebay_string(config, "app_id"))
		j->config_app_id = xstrdup(ebay_string(config, "app_id"));
	if (ebay_string(config, "cert_id"))
		j->config_cert_id = xstrdup(ebay_string(config, "cert_id"));
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
	api_name = ebay_string(config, "api");
	if (api_name == NULL)
		api_name = ebay_string(source, "adapter_type");
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
	if (set_marketplace(j, ebay_string(config, "marketplace")) < 0)
		return 1;
	j->category = f->opt.category ? f->opt.category : ebay_string(config, "category_id");
	if (j->category == NULL)
		j->category = DEFAULT_CATEGORY;
	j->app_id = j->config_app_id ? j->config_app_id : f->env_app_id;
	j->cert_id = j->config_cert_id ? j->config_cert_id : f->env_cert_id;
	weight = cJSON_GetObjectItemCaseSensitive(source, "reputation_weight");
	j->reputation = 1.0;
	if (cJSON_IsNumber(weight)) {
		/* A weight is in [0, 1]; 1e999 reads as inf, which is no JSON to write. */
		if (!isfinite(weight->valuedouble))
			log_warn("job %s: source reputation_weight %s is not a number in [0, 1]; 1 is used",
				 j->job_id, isnan(weight->valuedouble) ? "nan" : "infinite");
		else
			j->reputation = fmin(1.0, fmax(0.0, weight->valuedouble));
	}
	ebay_build_query(attribution, &j->query);
	return 0;
}

/* Fetch a job and write its records. */
static void
run_job(struct fetcher *f, struct job *j, const struct ndj_record *r)
{
	double t0 = clock_ms();
	struct buf error = BUF_INIT;
	int rc;

	if (r)
		pass_job_record(j, r);
	ndj_flush();
	buf_reset(&f->out);
	f->calls = f->pages = f->items = 0;
	if (j->error[0])
		rc = -1; /* a job that cannot be done: its job_error at once */
	else
		rc = j->api == API_FINDING ? ebay_fetch_finding(f, j) : ebay_fetch_rest(f, j);
	if (rc < 0) {
		buf_reset(&f->out);
		buf_addf(&f->out,
			 "{\"kind\":\"job_error\",\"job_id\":%s,\"intake_id\":%s,\"error\":", j->job_id,
			 j->intake_id);
		/* eBay's error bodies may echo the request's credentials. */
		buf_adds(&error, j->error);
		log_redact(&error);
		buf_add_json_string(&f->out, error.data, error.len);
		buf_free(&error);
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

/*
 * The command line into f->opt (and *strict). Returns -1 to go on, or the exit status
 * main returns.
 */
static int
parse_options(struct fetcher *f, int *strict, int argc, char **argv)
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
	long pages;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		if (c == 'q') {
			f->opt.query = optarg;
		} else if (c == 'a' && (f->opt.api = api_by_name(optarg)) < 0) {
			log_error("--api wants finding, insights or browse, not \"%s\"", optarg);
			usage(stderr);
			return EXIT_USAGE;
		} else if (c == 'm') {
			if (cli_number(optarg, 1, 100, &pages) < 0) {
				log_error("--max-pages wants a number from 1 to 100, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			f->opt.max_pages = (int)pages;
		} else if (c == 'c') {
			f->opt.category = optarg;
		} else if (c == 'p') {
			f->opt.print_query = 1;
		} else if (c == 'r') {
			f->opt.record_dir = optarg;
		} else if (c == 'R') {
			f->opt.replay_dir = optarg;
		} else if (c == 's') {
			*strict = 1;
		} else if (c != 'a') {
			return cli_common_option(c, argv, "ebay-fetch", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0)
		return EXIT_USAGE;
	if ((f->opt.record_dir && f->opt.replay_dir) || (f->opt.query && f->opt.print_query)) {
		log_error("--record and --replay, or --query and --print-query, do not go together");
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

/* The environment, the folders and the HTTP client. 0, or the exit status. */
static int
configure(struct fetcher *f, char *rate_file, size_t rate_file_size)
{
	static const char *const secret_params[] = { "SECURITY-APPNAME", NULL };
	const char *record = getenv("EBAY_RECORD_DIR"), *replay = getenv("EBAY_REPLAY_DIR");
	struct http_options ho;

	if (f->opt.record_dir == NULL && f->opt.replay_dir == NULL) {
		f->opt.record_dir = record && *record ? record : NULL;
		f->opt.replay_dir = replay && *replay ? replay : NULL;
		if (f->opt.record_dir && f->opt.replay_dir) {
			log_error("EBAY_RECORD_DIR and EBAY_REPLAY_DIR do not go together");
			return EXIT_CONFIG;
		}
	}
	if (set_bases(f) < 0)
		return EXIT_CONFIG;
	if (f->opt.record_dir && ebay_make_dirs(f->opt.record_dir) < 0) {
		log_error("cannot create %s: %s", f->opt.record_dir, strerror(errno));
		return EXIT_CONFIG;
	}
	f->state_dir = ebay_state_dir();
	snprintf(rate_file, rate_file_size, "%s/ebay-rate", f->state_dir);
	memset(&ho, 0, sizeof(ho));
	ho.timeout_ms = cli_env_number("EBAY_TIMEOUT_SECONDS", 30, 1, 3600) * 1000;
	ho.max_tries = (int)cli_env_number("EBAY_MAX_TRIES", 4, 1, 20);
	ho.retry_base_ms = cli_env_number("EBAY_RETRY_BASE_MS", 1000, 1, 600000);
	ho.calls_per_minute = (double)cli_env_number("EBAY_CALLS_PER_MINUTE", 60, 1, 100000);
	ho.daily_limit = cli_env_number("EBAY_DAILY_CALL_LIMIT", 5000, 0, 100000000);
	ho.max_retry_after = (double)cli_env_number("EBAY_MAX_RETRY_AFTER_SECONDS", 60, 1, 86400);
	ho.max_body_bytes = cli_env_number("EBAY_MAX_RESPONSE_BYTES", 32L * 1024 * 1024, 1024, 1L << 40);
	ho.rate_file = f->opt.replay_dir || ebay_make_dirs(f->state_dir) < 0 ? NULL : rate_file;
	ho.record_dir = f->opt.record_dir;
	ho.replay_dir = f->opt.replay_dir;
	ho.secret_params = secret_params;
	ho.retryable = ebay_worth_retry;
	f->http = http_new(&ho);
	return f->http ? 0 : EXIT_SOFTWARE;
}

/* Ad hoc (--query): one job with no ids, the query as given. */
static int
run_ad_hoc(struct fetcher *f)
{
	struct job j;

	memset(&j, 0, sizeof(j));
	j.job_id = j.intake_id = j.source_id = "null";
	j.api = f->opt.api >= 0 ? (enum api)f->opt.api : API_INSIGHTS;
	j.max_pages = f->opt.max_pages ? f->opt.max_pages : 5;
	j.category = f->opt.category ? f->opt.category : DEFAULT_CATEGORY;
	j.app_id = f->env_app_id;
	j.cert_id = f->env_cert_id;
	j.reputation = 1.0;
	buf_adds(&j.query, f->opt.query);
	signal(SIGPIPE, SIG_IGN);
	run_job(f, &j, NULL);
	buf_free(&j.query);
	return ndj_close_output();
}

int
main(int argc, char **argv)
{
	struct fetcher f;
	struct ndj_stage stage = { on_record, NULL, &f, 0 };
	char rate_file[1100];
	int status;

	memset(&f, 0, sizeof(f));
	f.opt.api = -1;
	cli_die_with_parent();
	if (log_init("ebay-fetch") < 0)
		return EXIT_CONFIG;
	/* Before anything can be logged: no early error may show a secret. */
	f.env_app_id = getenv("EBAY_APP_ID");
	f.env_cert_id = getenv("EBAY_CERT_ID");
	log_add_secret(f.env_app_id);
	log_add_secret(f.env_cert_id);
	add_url_secret(getenv("EBAY_API_BASE"));
	if ((status = parse_options(&f, &stage.strict, argc, argv)) >= 0)
		goto out;
	if ((status = configure(&f, rate_file, sizeof(rate_file))) != 0)
		goto out;
	status = f.opt.query ? run_ad_hoc(&f) : ndj_run(&stage);
out:
	ebay_forget_body();
	http_free(f.http);
	buf_free(&f.url);
	buf_free(&f.out);
	log_cleanup();
	return status;
}
