/*
 * The OAuth client-credentials token of the REST APIs, and its cache: a private file
 * per application, scope and host in the state folder, reused until it nearly expires.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ebay.h"
#include "hash.h"
#include "log.h"

#define TOKEN_PATH "/identity/v1/oauth2/token"

const char *
ebay_state_dir(void)
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
int
ebay_make_dirs(const char *path)
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

/* The cached token, while it has more than five minutes left: a copy, or NULL. */
static char *
cached_token(const char *path)
{
	cJSON *doc = read_cache(path);
	const cJSON *expires = cJSON_GetObjectItemCaseSensitive(doc, "expires_at");
	const char *text = ebay_string(doc, "access_token");
	char *token = NULL;

	if (text && cJSON_IsNumber(expires) && (long)expires->valuedouble - 300 > (long)time(NULL))
		token = xstrdup(text);
	cJSON_Delete(doc);
	return token;
}

static void
write_cache(const struct fetcher *f, const char *path, const char *token, const cJSON *answer)
{
	const cJSON *life = cJSON_GetObjectItemCaseSensitive(answer, "expires_in");
	cJSON *cache = cJSON_CreateObject();
	char *json;

	cJSON_AddStringToObject(cache, "access_token", token);
	cJSON_AddNumberToObject(cache, "expires_at",
				(double)time(NULL) + (cJSON_IsNumber(life) ? life->valuedouble : 7200));
	json = cJSON_PrintUnformatted(cache);
	if (ebay_make_dirs(f->state_dir) < 0 || http_write_private(path, json, strlen(json)) < 0)
		log_warn("cannot cache the eBay token in %s: %s", f->state_dir, strerror(errno));
	free(json);
	cJSON_Delete(cache);
}

/* Why the token endpoint gave no token, into j->error. */
static void
token_refused(struct job *j, const char *scope, long status, const cJSON *answer)
{
	const char *what = ebay_string(answer, "error");

	j->retryable = http_retryable_status(status);
	if (what && strcmp(what, "invalid_scope") == 0)
		snprintf(j->error, sizeof(j->error),
			 "eBay refused the scope %s: this application is not approved for it%s", scope,
			 strcmp(scope, SCOPE_INSIGHTS) == 0
				 ? " (Marketplace Insights is a limited release: ask eBay for access, or use "
				   "the browse API for asking prices)"
				 : "");
	else if (j->retryable)
		/* An outage or a rate limit (429, 5xx), not a credentials problem. */
		snprintf(j->error, sizeof(j->error),
			 "eBay's token endpoint is unavailable (HTTP %ld, %s); the job will be tried again",
			 status, what ? what : "no error code");
	else
		snprintf(j->error, sizeof(j->error),
			 "eBay's token endpoint answered HTTP %ld (%s): "
			 "check EBAY_APP_ID and EBAY_CERT_ID, and EBAY_SANDBOX for sandbox keys",
			 status, what ? what : "no error code");
}

/* A new token from eBay, cached in path: a copy, or NULL with j->error set. */
static char *
request_token(struct fetcher *f, struct job *j, const char *scope, const char *path)
{
	static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
	struct http_response res = { 0 };
	struct buf body = BUF_INIT, userpwd = BUF_INIT, url = BUF_INIT;
	cJSON *doc = NULL;
	char *token = NULL;
	int rc, token_calls = 0;

	buf_addf(&url, "%s%s", f->rest_base, TOKEN_PATH);
	buf_adds(&body, "grant_type=client_credentials&scope=");
	http_add_escaped(&body, scope);
	buf_addf(&userpwd, "%s:%s", j->app_id, j->cert_id);
	/* The answer is a secret: it never goes to a recording. Token requests are not
	 * counted in job_end's calls, which a replay (needing no token) repeats. */
	http_pause_recording(f->http, 1);
	rc = http_request(f->http, "POST", url.data, headers, body.data, userpwd.data, &res, &token_calls);
	http_pause_recording(f->http, 0);
	if (ebay_request_failed(j, rc, &res, "eBay's token endpoint") < 0)
		goto out;
	doc = cJSON_ParseWithLength(res.body.data, res.body.len);
	if (res.status != 200 || ebay_string(doc, "access_token") == NULL) {
		token_refused(j, scope, res.status, doc);
		goto out;
	}
	token = xstrdup(ebay_string(doc, "access_token"));
	log_add_secret(token);
	write_cache(f, path, token, doc);
out:
	cJSON_Delete(doc);
	http_response_free(&res);
	buf_free(&body);
	buf_free(&userpwd);
	buf_free(&url);
	return token;
}

char *
ebay_get_token(struct fetcher *f, struct job *j, const char *scope, int force)
{
	struct buf path = BUF_INIT;
	char *token = NULL;
	uint64_t h = HASH_FNV1A_INIT;

	if (f->opt.replay_dir)
		return xstrdup("replayed");
	if (!j->app_id || !j->cert_id || !*j->app_id || !*j->cert_id) {
		snprintf(j->error, sizeof(j->error),
			 "no eBay credentials: set EBAY_APP_ID and EBAY_CERT_ID "
			 "(or the source's config app_id and cert_id)");
		return NULL;
	}
	/* One cache per application, scope and host; each string hashed with its NUL. */
	h = hash_fnv1a_more(h, j->app_id, strlen(j->app_id) + 1);
	h = hash_fnv1a_more(h, scope, strlen(scope) + 1);
	h = hash_fnv1a_more(h, f->rest_base, strlen(f->rest_base) + 1);
	buf_addf(&path, "%s/ebay-token-%016llx.json", f->state_dir, (unsigned long long)h);
	if (!force && (token = cached_token(path.data)) != NULL)
		log_add_secret(token);
	else
		token = request_token(f, j, scope, path.data);
	buf_free(&path);
	return token;
}
