/*
 * HTTP over libcurl for the collectors. One easy handle per client, reused for every
 * request so that connections are kept alive. Every request passes through the
 * shared rate limit (a small state file under flock), the daily quota, and the
 * retry loop; in replay mode none of that is needed and nothing touches the network.
 */
#include "http.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hash.h"
#include "log.h"
#include "ndjson.h"

struct http_client {
	CURL *curl;
	struct http_options o;
	int recording_paused;
	struct buf key, path; /* scratch */
	unsigned rng;
	int rate_fd; /* the rate limit file, open from the first call on; -1 before */
};

struct http_client *
http_new(const struct http_options *options)
{
	struct http_client *c;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot start libcurl");
		return NULL;
	}
	c = xmalloc(sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->o = *options;
	if (!c->o.connect_timeout_ms)
		c->o.connect_timeout_ms = 10000;
	if (!c->o.timeout_ms)
		c->o.timeout_ms = 30000;
	if (!c->o.max_tries)
		c->o.max_tries = 4;
	if (!c->o.retry_base_ms)
		c->o.retry_base_ms = 1000;
	if (!c->o.calls_per_minute)
		c->o.calls_per_minute = 60;
	if (!c->o.max_retry_after)
		c->o.max_retry_after = 60;
	if (!c->o.max_body_bytes)
		c->o.max_body_bytes = 32LL * 1024 * 1024;
	c->rng = (unsigned)getpid() ^ (unsigned)time(NULL);
	c->rate_fd = -1;
	if (c->o.replay_dir == NULL) {
		c->curl = curl_easy_init();
		if (c->curl == NULL) {
			log_error("cannot start libcurl");
			free(c);
			return NULL;
		}
	}
	return c;
}

void
http_free(struct http_client *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->rate_fd >= 0)
		close(c->rate_fd);
	buf_free(&c->key);
	buf_free(&c->path);
	free(c);
	curl_global_cleanup();
}

void
http_pause_recording(struct http_client *c, int paused)
{
	c->recording_paused = paused;
}

void
http_response_free(struct http_response *res)
{
	buf_free(&res->body);
}

int
http_retryable_status(long status)
{
	return status == 429 || status >= 500;
}

void
http_add_escaped(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			buf_addc(out, (char)ch);
		} else {
			buf_addc(out, '%');
			buf_addc(out, hex[ch >> 4]);
			buf_addc(out, hex[ch & 15]);
		}
	}
}

/* ---- eBay's day: midnight to midnight, US Pacific time ------------------ */

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static long
days_from_civil(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

/* The UTC offset of US Pacific time at t: -7 h in daylight saving time, else -8 h. */
static long
pacific_offset(time_t t)
{
	struct tm tm;
	long year, march1, nov1, start, end;

	gmtime_r(&t, &tm);
	year = tm.tm_year + 1900;
	/* DST: from the second Sunday of March, 2:00 PST (10:00 UTC), to the first Sunday
	 * of November, 2:00 PDT (09:00 UTC). 1970-01-01 was a Thursday (weekday 4). */
	march1 = days_from_civil(year, 3, 1);
	nov1 = days_from_civil(year, 11, 1);
	start = march1 + (7 - (march1 + 4) % 7) % 7 + 7;
	end = nov1 + (7 - (nov1 + 4) % 7) % 7;
	if ((long)t >= start * 86400 + 10 * 3600 && (long)t < end * 86400 + 9 * 3600)
		return -7 * 3600;
	return -8 * 3600;
}

/* The Pacific date of t as days since the epoch. */
static long
pacific_day(time_t t)
{
	long local = (long)t + pacific_offset(t);

	return local >= 0 ? local / 86400 : (local - 86399) / 86400;
}

void
http_quota_reset_time(char *out, size_t n)
{
	time_t now = time(NULL), reset;
	long day = pacific_day(now) + 1;
	struct tm tm;

	/* Midnight of the next Pacific day, in UTC; the offset of that moment decides. */
	reset = (time_t)(day * 86400 + 8 * 3600);
	reset -= pacific_offset(reset) == -7 * 3600 ? 3600 : 0;
	gmtime_r(&reset, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the shared rate limit and daily quota ----------------------------- */

/*
 * The rate limit file, opened at the first call and kept open (opening, truncating and
 * closing it at every call were most of a call's system time); opened again when it has
 * been removed, so that every process still shares the one that is there. -1 when it
 * cannot be used (said once per opening).
 */
static int
rate_fd(struct http_client *c)
{
	struct stat st;
	int fd;

	if (c->rate_fd >= 0) {
		if (fstat(c->rate_fd, &st) == 0 && st.st_nlink > 0)
			return c->rate_fd;
		close(c->rate_fd);
		c->rate_fd = -1;
	}
	/* Never through a symlink, never anything but a plain file. */
	fd = open(c->o.rate_file, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0) {
		log_warn("rate limit file %s: %s (calls not limited)", c->o.rate_file,
			 errno == ELOOP	   ? "a symlink, refused"
			 : errno == EINVAL ? "not a plain file"
					   : strerror(errno));
		return -1;
	}
	c->rate_fd = fd;
	return fd;
}

/*
 * Take the next call slot from the state file: "next_slot_ms pacific_day calls".
 * Returns the time to wait in ms, or -1 when the daily quota is used up.
 */
static double
take_slot(struct http_client *c)
{
	double next = 0, now = clock_wall_ms(), slot, wait;
	long day = 0, calls = 0, today = pacific_day(time(NULL));
	char text[128];
	ssize_t n, had;
	int fd;

	if (c->o.rate_file == NULL || (fd = rate_fd(c)) < 0)
		return 0;
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	had = n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	if (sscanf(text, "%lf %ld %ld", &next, &day, &calls) != 3)
		next = 0, day = today, calls = 0;
	if (day != today)
		day = today, calls = 0;
	/* A next slot far beyond what the callers sharing the file can have queued is no
	 * slot: the wall clock was set back (an hour's correction made every call wait an
	 * hour with its job locked), or the file holds garbage (1e300, inf). Start afresh. */
	if (!(next <= now + 60000.0 + 100 * 60000.0 / c->o.calls_per_minute))
		next = now;
	if (c->o.daily_limit > 0 && calls >= c->o.daily_limit) {
		wait = -1;
	} else {
		slot = next > now ? next : now;
		wait = slot - now;
		next = slot + 60000.0 / c->o.calls_per_minute;
		calls++;
		n = snprintf(text, sizeof(text), "%.0f %ld %ld\n", next, day, calls);
		/* Truncated only when the new line is shorter than the old. */
		if (pwrite(fd, text, (size_t)n, 0) != n || (had > n && ftruncate(fd, n) < 0))
			log_warn("rate limit file %s: %s", c->o.rate_file, strerror(errno));
	}
	flock(fd, LOCK_UN);
	return wait;
}

/* ---- recording and replaying -------------------------------------------- */

/* Replace the value of every query parameter named param in b by "[redacted]". */
static void
mask_param(struct buf *b, const char *param)
{
	struct buf out = BUF_INIT;
	const char *p = b->data, *at, *end;
	size_t len = strlen(param);

	while ((at = strstr(p, param)) != NULL) {
		end = at + len;
		if (*end != '=') {
			buf_add(&out, p, (size_t)(end - p));
			p = end;
			continue;
		}
		end++;
		buf_add(&out, p, (size_t)(end - p));
		buf_adds(&out, "[redacted]");
		p = end + strcspn(end, "&\n");
	}
	buf_adds(&out, p);
	buf_reset(b);
	buf_add(b, out.data, out.len);
	buf_free(&out);
}

/* The request with secrets masked: what record files show and what replay matches on.
 * The secrets are those registered with log_add_secret(), and the secret_params. */
static void
request_key(struct http_client *c, const char *method, const char *url, const char *body)
{
	const char *const *p;
	const char *path = strstr(url, "://");

	/* The host is left out, so that a recording replays whatever EBAY_API_BASE says. */
	path = path ? path + 3 + strcspn(path + 3, "/") : url;
	buf_reset(&c->key);
	buf_addf(&c->key, "%s %s\n%s", method, path, body ? body : "");
	for (p = c->o.secret_params; p && *p; p++)
		mask_param(&c->key, *p);
	log_redact(&c->key);
}

/* The path of the n-th response (from 1) to this request in dir. */
static const char *
record_path(struct http_client *c, const char *dir, int n, const char *ext)
{
	buf_reset(&c->path);
	buf_addf(&c->path, "%s/%016llx-%d.%s", dir, (unsigned long long)hash_fnv1a(c->key.data, c->key.len),
		 n, ext);
	return c->path.data;
}

int
http_write_private(const char *path, const void *data, size_t len)
{
	struct buf tmp = BUF_INIT;
	const char *p = data;
	ssize_t n;
	int fd, saved, rc = -1;

	buf_addf(&tmp, "%s.XXXXXX", path);
	fd = mkostemp(tmp.data, O_CLOEXEC);
	if (fd < 0)
		goto out;
	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) == 0 && len == 0 && rename(tmp.data, path) == 0) {
		rc = 0;
		goto out;
	}
	saved = errno;
	unlink(tmp.data);
	errno = saved;
out:
	buf_free(&tmp);
	return rc;
}

/* The n-th response to the current request (c->key), kept in record_dir. */
static void
record(struct http_client *c, int n, const struct http_response *res)
{
	struct buf meta = BUF_INIT, text = BUF_INIT, body = BUF_INIT;

	/* A body or an error may echo the request's credentials: a recording keeps them masked. */
	buf_adds(&text, res->error);
	log_redact(&text);
	if (res->body.len) {
		buf_add(&body, res->body.data, res->body.len);
		log_redact(&body);
	}
	buf_adds(&meta, "{\"request\":");
	buf_add_json_string(&meta, c->key.data, c->key.len);
	buf_addf(&meta, ",\"status\":%ld,\"retry_after\":%.3f,\"elapsed_ms\":%.0f,\"error\":", res->status,
		 res->retry_after, res->elapsed_ms);
	buf_add_json_string(&meta, text.data ? text.data : "", text.len);
	buf_adds(&meta, "}\n");
	if (http_write_private(record_path(c, c->o.record_dir, n, "meta.json"), meta.data, meta.len) < 0 ||
	    http_write_private(record_path(c, c->o.record_dir, n, "body"), body.data ? body.data : "",
			       body.len) < 0)
		log_warn("cannot record a response in %s: %s", c->o.record_dir, strerror(errno));
	buf_free(&meta);
	buf_free(&text);
	buf_free(&body);
}

static int
read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(out, chunk, n);
	fclose(f);
	return 0;
}

/* Answer the n-th try of the current request from replay_dir. 0, or -1 if not recorded. */
static int
replay(struct http_client *c, int n, struct http_response *res)
{
	struct buf meta = BUF_INIT;
	cJSON *doc = NULL;
	const cJSON *v;
	int rc = -1;

	if (read_file(record_path(c, c->o.replay_dir, n, "meta.json"), &meta) < 0)
		goto out;
	if ((doc = cJSON_ParseWithLength(meta.data, meta.len)) == NULL) {
		log_warn("%s: not JSON", c->path.data);
		goto out;
	}
	/* A recording may come with a bug report, from anyone: its numbers are checked before
	 * they are used (a status of 1e999 became HTTP -9223372036854775808 through a
	 * conversion C leaves undefined). */
	v = cJSON_GetObjectItemCaseSensitive(doc, "status");
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 999)) {
		log_warn("%s: \"status\" is not an HTTP status: not a recording", c->path.data);
		goto out;
	}
	res->status = (long)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(doc, "retry_after");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e9)
		res->retry_after = v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(doc, "elapsed_ms");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e9)
		res->elapsed_ms = v->valuedouble;
	if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(doc, "error")))
		snprintf(res->error, sizeof(res->error), "%s", v->valuestring);
	if (read_file(record_path(c, c->o.replay_dir, n, "body"), &res->body) < 0)
		goto out;
	buf_grow(&res->body, 0);
	rc = 0;
out:
	cJSON_Delete(doc);
	buf_free(&meta);
	return rc;
}

/* ---- one try over the network ------------------------------------------ */

/* Where a body goes: at most max bytes of it. */
struct sink {
	struct buf *body;
	long long max;
	int too_large;
};

static size_t
on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;

	if ((long long)(s->body->len + size * n) > s->max) {
		s->too_large = 1;
		return 0; /* libcurl stops the transfer with a write error */
	}
	buf_add(s->body, data, size * n);
	return size * n;
}

/* Retry-After: a number of seconds, or an HTTP date. */
static size_t
on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct http_response *res = ctx;
	size_t len = size * n;
	char value[128], *end;
	double seconds;
	time_t when;

	if (len <= 12 || strncasecmp(data, "Retry-After:", 12) != 0)
		return len;
	snprintf(value, sizeof(value), "%.*s", (int)(len - 12), data + 12);
	value[strcspn(value, "\r\n")] = '\0';
	seconds = strtod(value, &end);
	if (end != value && seconds >= 0 && isfinite(seconds)) {
		res->retry_after = seconds;
	} else if ((when = curl_getdate(value, NULL)) > 0) {
		seconds = difftime(when, time(NULL));
		res->retry_after = seconds > 0 ? seconds : 0;
	}
	return len;
}

static int
try_once(struct http_client *c, const char *method, const char *url, const char *const *headers,
	 const char *body, const char *userpwd, struct http_response *res)
{
	struct curl_slist *list = NULL;
	const char *const *h;
	struct sink sink = { &res->body, c->o.max_body_bytes, 0 };
	CURLcode rc;
	double t0 = clock_wall_ms();

	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "coin-pricer/" COIN_PRICER_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* A page of listings in one read, not in 16 KiB pieces. */
	curl_easy_setopt(c->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	/* An answer that says its size is refused before its body comes; one that does not
	 * (chunked, or compressed) is cut by on_body. */
	curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->o.max_body_bytes);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, res);
	for (h = headers; h && *h; h++)
		list = curl_slist_append(list, *h);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, list);
	if (userpwd) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c->curl, CURLOPT_USERPWD, userpwd);
	}
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(list);
	res->elapsed_ms = clock_wall_ms() - t0;
	if (rc != CURLE_OK) {
		res->status = 0;
		if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
			buf_reset(&res->body);
			snprintf(res->error, sizeof(res->error), "the answer is larger than %lld bytes",
				 c->o.max_body_bytes);
			return HTTP_TOO_LARGE;
		}
		snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->status);
	buf_grow(&res->body, 0);
	return 0;
}

/* Register the Basic authorization that userpwd becomes on the wire (base64 of
 * "user:password") as a secret: a server that echoes the request's headers in its error
 * text would otherwise show the keyset in a form anyone can decode. */
static void
add_basic_secret(const char *userpwd)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)userpwd;
	size_t len = strlen(userpwd), i;
	struct buf out = BUF_INIT;

	for (i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		buf_addc(&out, digits[(v >> 18) & 63]);
		buf_addc(&out, digits[(v >> 12) & 63]);
		buf_addc(&out, i + 1 < len ? digits[(v >> 6) & 63] : '=');
		buf_addc(&out, i + 2 < len ? digits[v & 63] : '=');
	}
	if (out.len > 0)
		log_add_secret(out.data);
	buf_free(&out);
}

int
http_request(struct http_client *c, const char *method, const char *url, const char *const *headers,
	     const char *body, const char *userpwd, struct http_response *res, int *calls)
{
	int try, got = -1;

	if (userpwd)
		add_basic_secret(userpwd);
	request_key(c, method, url, body);
	for (try = 1; try <= c->o.max_tries; try++) {
		double wait;

		buf_reset(&res->body);
		res->status = 0;
		res->retry_after = -1;
		res->error[0] = '\0';
		if (c->o.replay_dir) {
			if (replay(c, try, res) < 0) {
				snprintf(res->error, sizeof(res->error),
					 "no recorded response for this request in %s", c->o.replay_dir);
				return HTTP_NOT_RECORDED;
			}
			(*calls)++;
			got = res->error[0] ? -1 : 0;
		} else {
			wait = take_slot(c);
			if (wait < 0) {
				snprintf(res->error, sizeof(res->error),
					 "the daily call limit (%ld) is reached", c->o.daily_limit);
				return HTTP_QUOTA;
			}
			clock_sleep_ms(wait);
			(*calls)++;
			got = try_once(c, method, url, headers, body, userpwd, res);
			if (c->o.record_dir && !c->recording_paused)
				record(c, try, res);
			if (got == HTTP_TOO_LARGE)
				return got;
		}
		if (got == 0 && !(c->o.retryable ? c->o.retryable(res) : http_retryable_status(res->status)))
			return 0;
		if (try == c->o.max_tries)
			break;
		if (res->retry_after > c->o.max_retry_after) {
			snprintf(res->error, sizeof(res->error),
				 "HTTP %ld with Retry-After %.0f s, longer than the %.0f s a request waits",
				 res->status, res->retry_after, c->o.max_retry_after);
			return HTTP_RETRY_LATER;
		}
		/* Exponential backoff with full jitter; Retry-After wins when it says more. */
		wait = (double)c->o.retry_base_ms * pow(2, try - 1);
		wait = wait / 2 + (double)(rand_r(&c->rng) % 1000) / 1000.0 * wait / 2;
		if (res->retry_after >= 0 && res->retry_after * 1000 > wait)
			wait = res->retry_after * 1000;
		if (got == 0)
			log_warn("%.*s: HTTP %ld; try %d of %d in %.1f s", (int)strcspn(c->key.data, "?\n"),
				 c->key.data, res->status, try + 1, c->o.max_tries, wait / 1000);
		else
			log_warn("%.*s: %s; try %d of %d in %.1f s", (int)strcspn(c->key.data, "?\n"),
				 c->key.data, res->error, try + 1, c->o.max_tries, wait / 1000);
		if (!c->o.replay_dir)
			clock_sleep_ms(wait);
	}
	return got;
}
