/*
 * The eBay collector's parts, behind one header: the query (query.c), the OAuth token
 * and its cache (oauth.c), the Finding API (finding.c), the REST APIs Browse and
 * Marketplace Insights (rest.c), and mapping listings and errors (point.c).
 * stages/ebay-fetch.c holds the options, the job loop, job_end and job_error.
 */
#ifndef EBAY_H
#define EBAY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

enum api { API_FINDING, API_INSIGHTS, API_BROWSE };

#define SCOPE_BROWSE	 "https://api.ebay.com/oauth/api_scope"
#define SCOPE_INSIGHTS	 "https://api.ebay.com/oauth/api_scope/buy.marketplace.insights"
#define DEFAULT_CATEGORY "253" /* Coins: US */

/* The adapter name of each api, as price points carry it. */
extern const char *const ebay_adapters[3];

struct options {
	const char *query;
	const char *category;
	int api;       /* -1: from the job */
	int max_pages; /* 0: from the job, else 5 */
	int print_query;
	const char *record_dir, *replay_dir;
};

/* What lives as long as the process: options, the HTTP client, the endpoints. */
struct fetcher {
	struct options opt;
	struct http_client *http;
	char finding_base[256], rest_base[256];
	const char *state_dir;
	char *env_app_id, *env_cert_id;
	struct buf url, out; /* out: the job's records, written once it is done */
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
	char marketplace[16];  /* eBay's site: "EBAY_US" (REST's spelling), "EBAY_GB", ... */
	const char *global_id; /* the same site as the Finding API names it: "EBAY-US", "EBAY-ENCA" */
	const char *app_id, *cert_id;
	char *config_app_id, *config_cert_id; /* copies: the tree loses its secrets */
	int secrets_removed;		      /* the record goes on with a new "source" */
	double reputation;
	struct buf query; /* keywords separated by spaces */
	char error[512];
	int retryable;
	double retry_after; /* seconds eBay asked to wait (Retry-After), or 0 */
};

/*
 * A response body read as JSON (point.c): an index of its values over the text, built in
 * one pass with no allocation per value, where cJSON would build a tree of small blocks
 * and print every listing's "raw" back from it. A value is a jv, 0 standing for none
 * (cJSON's NULL); the accessors take 0 and return 0 for a value of the wrong type, as
 * cJSON's do. Strings are decoded when first asked for and live as long as the doc.
 */
typedef uint32_t jv;
enum jtype { J_NONE, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL };
struct jnode;
struct jblock;
struct jdoc {
	const char *text; /* the body, or cJSON's print of it (printed) */
	size_t len;
	int printed; /* text is cJSON's unformatted print: every span is already as cJSON prints it */
	char *owned; /* the print, when printed */
	struct jnode *nodes;
	size_t n, cap;
	struct jblock *blocks; /* decoded strings */
	struct buf scratch;
};
#define JD_ROOT ((jv)1)
enum jtype jd_type(const struct jdoc *d, jv v);
/* o[name] when o is an object that has it, else 0. */
jv jd_get(const struct jdoc *d, jv o, const char *name);
/* The first element of an array or member of an object, and the one after v; else 0. */
jv jd_child(const struct jdoc *d, jv v);
jv jd_next(const struct jdoc *d, jv v);
/* v's decoded text when it is a string, else NULL; jd_string: of o[name]. */
const char *jd_str(struct jdoc *d, jv v);
const char *jd_string(struct jdoc *d, jv o, const char *name);
/* Whether v is a number, its value (as cJSON reads it) in *x. */
int jd_number(const struct jdoc *d, jv v, double *x);
/* Append v as cJSON_PrintUnformatted() would print it. */
void jd_print(const struct jdoc *d, jv v, struct buf *out);
void jd_free(struct jdoc *d);

/* One listing as mapped; strings belong to the response's doc. */
struct point {
	const char *external_id, *title, *url, *condition, *price_type;
	const char *amount, *currency, *shipping_amount, *shipping_currency, *converted_usd;
	const char *sold_at;
	int quantity; /* 0: not known */
	const struct jdoc *doc;
	jv raw;
};

/* query.c: "US coin", year, mintmark, series, denomination, then the title's words,
 * into q (replacing its content), separated by spaces. */
void ebay_build_query(const cJSON *attribution, struct buf *q);

/* oauth.c */
/* The folder of the token cache and the rate-limit file (a static string). */
const char *ebay_state_dir(void);
/* mkdir -p, creating with mode 0700. 0, or -1 with errno set. */
int ebay_make_dirs(const char *path);
/*
 * A bearer token for the scope, from the cache while it has more than five minutes
 * left, else from eBay; force skips the cache (after a 401). Returns a token the caller
 * frees, or NULL with j->error set.
 */
char *ebay_get_token(struct fetcher *f, struct job *j, const char *scope, int force);

/* finding.c: fetch the job's pages from Finding into f->out. 0, or -1 with j->error set. */
int ebay_fetch_finding(struct fetcher *f, struct job *j);
/* A Finding error at the top level or in the response: its errorId, or 0 (also for no doc). */
long ebay_finding_error(struct jdoc *d, const char **message);

/* rest.c: fetch the job's pages from Browse or Insights into f->out. 0, or -1 with j->error set. */
int ebay_fetch_rest(struct fetcher *f, struct job *j);

/* point.c */
/* o[name] when it is a string, else NULL. */
const char *ebay_string(const cJSON *o, const char *name);
/* Check p (an odd field becomes null, a point without id or price is skipped, with a
 * warning) and append it to f->out. */
void ebay_write_point(struct fetcher *f, const struct job *j, struct point *p);
/*
 * A response body as JSON into d, as cJSON reads it once the body is made UTF-8 and each
 * object keeps the first of equal keys. 0, or -1 when it is not JSON (d is then empty;
 * jd_free() it either way).
 */
int ebay_parse_body(const struct buf *body, struct jdoc *d);
/* Free what ebay_worth_retry() keeps of the last body for ebay_parse_body(). */
void ebay_forget_body(void);
/* One GET of f->url for the job: 0 with res filled, or -1 with j->error set. */
int ebay_get_page(struct fetcher *f, struct job *j, const char *const *headers, struct http_response *res);
/* After http_request() for a job: 0, or -1 with j->error set when no usable response
 * came; j->retry_after keeps what eBay asked to wait. what names the endpoint. */
int ebay_request_failed(struct job *j, int rc, const struct http_response *res, const char *what);
/* Set j->error (retryable) for a 200 whose body was not JSON at every try. */
void ebay_fail_garbled(struct job *j, const char *api);
/* Set j->error and j->retryable for an error answer of the API named api. */
void ebay_fail_status(struct job *j, long status, const char *api, long id, const char *message);
/* Whether a response is worth another try (the http_options.retryable of eBay). */
int ebay_worth_retry(const struct http_response *res);

#endif
