/*
 * store: persist what flows through the pipeline. A job's price points are written in
 * one transaction at its job_end, then every stored point of the intake is replayed
 * for valuate; a valuation is inserted and completes its job; a job_error sends the
 * job back to pending with backoff, or fails it. What it has written carries
 * "stored": true, so that a second store in the same pipeline passes it on untouched.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "db.h"
#include "log.h"
#include "money.h"
#include "ndjson.h"

#define LOST (-2) /* an operation failed because the connection was lost */

static const char lock_sql[] =
	"SELECT 1 FROM scrape_jobs WHERE id = $1 AND worker_id = $2 AND status = 'running' "
	"FOR UPDATE";

/* The job's points as one JSON array parameter: no per-field quoting in C at all. */
static const char upsert_sql[] =
	"WITH input AS (\n"
	" SELECT DISTINCT ON (p.external_id) p.* FROM json_array_elements($1::json)\n"
	"  WITH ORDINALITY AS o(rec, n)\n"
	" CROSS JOIN LATERAL json_to_record(o.rec) AS p(external_id text, adapter text,\n"
	"  title text, url text, condition text, price_type text, amount text, currency text,\n"
	"  converted_usd text, quantity int, price_cents bigint, shipping_cents bigint,\n"
	"  fx_rate text, fx_as_of date, fx_source text, sold_at timestamptz, filtered_out boolean,\n"
	"  filter_reason text, raw jsonb)\n"
	" ORDER BY p.external_id, o.n DESC)\n"
	"INSERT INTO price_points (intake_id, source_id, job_id, external_id, adapter, title, url,\n"
	" condition, price_type, original_amount, original_currency, converted_usd, quantity,\n"
	" price_cents, shipping_cents, fx_rate, fx_as_of, fx_source, sold_at, filtered_out,\n"
	" filter_reason, raw)\n"
	"SELECT $2::uuid, $3::uuid, $4::uuid, external_id, adapter, title, url, condition, price_type,\n"
	" CASE WHEN amount ~ '^[0-9]+(\\.[0-9]+)?$' THEN amount::numeric END, currency,\n"
	" CASE WHEN converted_usd ~ '^[0-9]+(\\.[0-9]+)?$' THEN converted_usd::numeric END,\n"
	" quantity, price_cents, shipping_cents,\n"
	" CASE WHEN fx_rate ~ '^[0-9]+(\\.[0-9]+)?$' THEN fx_rate::numeric END, fx_as_of, fx_source,\n"
	" sold_at, coalesce(filtered_out, false), filter_reason, raw\n"
	"FROM input\n"
	"ON CONFLICT (intake_id, source_id, external_id) DO UPDATE SET job_id = EXCLUDED.job_id,\n"
	" adapter = EXCLUDED.adapter, title = EXCLUDED.title, url = EXCLUDED.url,\n"
	" condition = EXCLUDED.condition, price_type = EXCLUDED.price_type,\n"
	" original_amount = EXCLUDED.original_amount, original_currency = EXCLUDED.original_currency,\n"
	" converted_usd = EXCLUDED.converted_usd, quantity = EXCLUDED.quantity,\n"
	" price_cents = EXCLUDED.price_cents, shipping_cents = EXCLUDED.shipping_cents,\n"
	" fx_rate = EXCLUDED.fx_rate, fx_as_of = EXCLUDED.fx_as_of, fx_source = EXCLUDED.fx_source,\n"
	" sold_at = EXCLUDED.sold_at, filtered_out = EXCLUDED.filtered_out,\n"
	" filter_reason = EXCLUDED.filter_reason, raw = EXCLUDED.raw";

static const char stored_log_sql[] =
	"WITH touched AS (UPDATE scrape_jobs SET locked_at = now() WHERE id = $1 RETURNING id)\n"
	"INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	"SELECT id, 'info', 'stored ' || $2 || ' price points',\n"
	" json_build_object('points', $2::int, 'filtered', $3::int) FROM touched";

/* Every stored point of the intake not filtered out, and this job's filtered ones. */
static const char replay_sql[] =
	"SELECT json_build_object('kind', 'price_point', 'job_id', p.job_id,\n"
	" 'intake_id', p.intake_id, 'source_id', p.source_id, 'adapter', p.adapter,\n"
	" 'external_id', p.external_id, 'title', p.title, 'url', p.url, 'condition', p.condition,\n"
	" 'price_type', p.price_type, 'amount', p.original_amount::text,\n"
	" 'currency', p.original_currency, 'converted_usd', p.converted_usd::text,\n"
	" 'sold_at', to_char(p.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),\n"
	" 'quantity', p.quantity, 'reputation_weight', s.reputation_weight,\n"
	" 'filtered_out', p.filtered_out, 'filter_reason', p.filter_reason,\n"
	" 'price_cents', p.price_cents, 'shipping_cents', p.shipping_cents,\n"
	" 'fx_rate', p.fx_rate::text, 'fx_as_of', p.fx_as_of, 'fx_source', p.fx_source,\n"
	" 'stored', true)::text\n"
	"FROM price_points p JOIN sources s ON s.id = p.source_id\n"
	"WHERE p.intake_id = $1 AND (NOT p.filtered_out OR p.job_id = $2)\n"
	"ORDER BY p.id";

/* Back to pending after min(1 h, 30 s x 2^(attempts-1)) +-20 %, or failed; and a log row. */
static const char error_sql[] =
	"WITH j AS (\n"
	" SELECT id, attempts, max_attempts, $3::bool AND attempts < max_attempts AS retry\n"
	" FROM scrape_jobs WHERE id = $1 AND worker_id = $2 AND status = 'running' FOR UPDATE),\n"
	"upd AS (\n"
	" UPDATE scrape_jobs s SET status = CASE WHEN j.retry THEN 'pending' ELSE 'failed' END,\n"
	"  run_at = CASE WHEN j.retry THEN now() + least(3600, 30 * power(2, greatest(j.attempts, 1) - 1))\n"
	"   * (0.8 + random() * 0.4) * interval '1 second' ELSE s.run_at END,\n"
	"  completed_at = CASE WHEN j.retry THEN NULL ELSE now() END,\n"
	"  error_message = $4, worker_id = NULL, locked_at = NULL\n"
	" FROM j WHERE s.id = j.id RETURNING s.id, s.status, s.run_at, s.attempts),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	" SELECT id, CASE WHEN status = 'failed' THEN 'error' ELSE 'warn' END, $4,\n"
	"  json_build_object('status', status, 'run_at', run_at, 'attempts', attempts) FROM upd)\n"
	"SELECT status, to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM upd";

static const char valuation_sql[] =
	"WITH v AS (\n"
	" INSERT INTO valuations (intake_id, job_id, p10_cents, median_cents, p90_cents, mean_cents,\n"
	"  comps, outliers, candidates, sold, ask, confidence, confidence_parts, explanation)\n"
	" SELECT intake_id, job_id, p10_cents, median_cents, p90_cents, mean_cents, comps, outliers,\n"
	"  candidates, sold, ask, confidence, confidence_parts, explanation\n"
	" FROM json_to_record($1::json) AS x(intake_id uuid, job_id uuid, p10_cents bigint,\n"
	"  median_cents bigint, p90_cents bigint, mean_cents bigint, comps int, outliers int,\n"
	"  candidates int, sold int, ask int, confidence int, confidence_parts jsonb,\n"
	"  explanation text)\n"
	" RETURNING id, job_id, confidence),\n"
	"done AS (\n"
	" UPDATE scrape_jobs s SET status = 'completed', completed_at = now(), locked_at = NULL\n"
	" FROM v WHERE s.id = v.job_id AND s.worker_id = $2 AND s.status = 'running' RETURNING s.id),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	" SELECT done.id, 'info', 'completed', json_build_object('valuation_id', v.id,\n"
	"  'confidence', v.confidence) FROM done, v)\n"
	"SELECT v.id, (SELECT count(*) FROM done) FROM v";

static const char complete_sql[] =
	"WITH done AS (\n"
	" UPDATE scrape_jobs SET status = 'completed', completed_at = now(), locked_at = NULL\n"
	" WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING id),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message)\n"
	" SELECT id, 'info', 'completed with no price points to value' FROM done)\n"
	"SELECT count(*) FROM done";

struct store {
	struct db db;
	const char *default_worker;
	int reconnect_seconds;
	/* The current job: from its job record to its job_end (or job_error). */
	int in_job, valued;
	char *job_id, *intake_id, *source_id, *worker;
	struct buf points; /* "[point,point,..." of the job */
	size_t npoints, nfiltered;
	struct buf s1, extra;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: store [--strict] [--worker ID]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Persists pipeline records in PostgreSQL (DATABASE_URL, else libpq's PG*\n"
	       "variables) and passes on what comes next:\n"
	       "  price_point  held until the job's job_end, then all of the job's points are\n"
	       "               upserted in one transaction (intake, source, external_id is a\n"
	       "               point's identity); every stored point of the intake not filtered\n"
	       "               out (and this job's filtered ones) is then written out for valuate\n"
	       "  valuation    inserted; its job completed in the same transaction while this\n"
	       "               worker still holds it; then a job_done record\n"
	       "  job_error    the job back to pending with exponential backoff if retryable and\n"
	       "               attempts remain, else failed\n"
	       "Records it handled carry \"stored\": true; a second store passes them on. A stream\n"
	       "that ends before a job's job_end stores nothing of that job.\n"
	       "\n"
	       "  --worker ID   the worker that claimed the jobs, where a job record does not say\n"
	       "                (default WORKER_ID)\n"
	       "  --strict      stop at the first bad line\n"
	       "  --help, --version\n"
	       "\n"
	       "On a lost connection it reconnects for up to DB_RECONNECT_SECONDS (60), then\n"
	       "exits 75; the unfinished job is claimed again later.\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error, 75 the\n"
	       "database cannot be reached (try again).\n");
}

static int
is_true(const struct ndj_member *m)
{
	return m != NULL && m->val_len == 4 && memcmp(m->val, "true", 4) == 0;
}

/* A member's string value, newly allocated, or NULL when absent, null or not a string. */
static char *
string_of(const struct ndj_member *m, struct buf *scratch)
{
	return ndj_string(m, scratch) == 0 ? xstrndup(scratch->data, scratch->len) : NULL;
}

static void
end_job(struct store *s)
{
	free(s->job_id);
	free(s->intake_id);
	free(s->source_id);
	free(s->worker);
	s->job_id = s->intake_id = s->source_id = s->worker = NULL;
	s->in_job = s->valued = 0;
	buf_reset(&s->points);
	s->npoints = s->nfiltered = 0;
}

static const char *
worker_of(const struct store *s)
{
	return s->worker ? s->worker : s->default_worker;
}

/* Run op until it succeeds or fails for good, reconnecting after lost connections. */
static int
with_reconnect(struct store *s, int (*op)(struct store *, void *), void *arg)
{
	int tries, rc = LOST;

	for (tries = 0; tries < 5 && rc == LOST; tries++) {
		rc = op(s, arg);
		if (rc == LOST && db_reconnect(&s->db, s->reconnect_seconds) < 0)
			return EXIT_TEMPFAIL;
	}
	return rc == LOST ? EXIT_TEMPFAIL : rc;
}

static int
failed(struct store *s)
{
	if (db_lost(&s->db))
		return LOST;
	PQclear(PQexec(s->db.conn, "ROLLBACK"));
	return -1;
}

/* The job's points and its log row, in one transaction. 1 when the lock was lost. */
static int
commit_points(struct store *s, void *arg)
{
	const char *lock[2] = { s->job_id, worker_of(s) };
	const char *upsert[4];
	const char *log_params[3];
	char npoints[24], nfiltered[24];
	PGresult *res;
	int held;

	(void)arg;
	/* Enough memory to deduplicate a large job's points without spilling to disk;
	 * SET LOCAL ends with the transaction, so it is safe through any pooler. */
	if (db_run(&s->db, "begin", "BEGIN", 0, NULL) < 0 ||
	    db_run(&s->db, "work_mem", "SET LOCAL work_mem = '64MB'", 0, NULL) < 0)
		return failed(s);
	if ((res = db_exec(&s->db, "lock the job", lock_sql, 2, lock)) == NULL)
		return failed(s);
	held = PQntuples(res) == 1;
	PQclear(res);
	if (!held) {
		PQclear(PQexec(s->db.conn, "ROLLBACK"));
		return 1;
	}
	if (s->npoints > 0) {
		buf_addc(&s->points, ']');
		upsert[0] = s->points.data;
		upsert[1] = s->intake_id;
		upsert[2] = s->source_id;
		upsert[3] = s->job_id;
		res = db_exec(&s->db, "store price points", upsert_sql, 4, upsert);
		s->points.data[--s->points.len] = '\0'; /* the "]" again, for a retry */
		if (res == NULL)
			return failed(s);
		PQclear(res);
	}
	snprintf(npoints, sizeof(npoints), "%zu", s->npoints);
	snprintf(nfiltered, sizeof(nfiltered), "%zu", s->nfiltered);
	log_params[0] = s->job_id;
	log_params[1] = npoints;
	log_params[2] = nfiltered;
	if (db_run(&s->db, "log", stored_log_sql, 3, log_params) < 0 ||
	    db_run(&s->db, "commit", "COMMIT", 0, NULL) < 0)
		return failed(s);
	return 0;
}

static int
replay(struct store *s, void *arg)
{
	const char *params[2] = { s->intake_id, s->job_id };
	PGresult *res = db_exec(&s->db, "read the intake's points", replay_sql, 2, params);
	int i;

	(void)arg;
	if (res == NULL)
		return db_lost(&s->db) ? LOST : -1;
	for (i = 0; i < PQntuples(res); i++) {
		ndj_write(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
		ndj_write("\n", 1);
	}
	PQclear(res);
	return 0;
}

static const char *const stored_field[] = { "stored" };

static int
pass_stored(const struct ndj_record *r, const char *extra)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "\"stored\":true");
	if (extra)
		buf_adds(&b, extra);
	ndj_write_edited(r, stored_field, 1, b.data, b.len);
	buf_free(&b);
	return 0;
}

/* Write a job_done record; job_id and valuation_id may be NULL. */
static void
write_job_done(struct store *s, const char *job_id, const char *intake_id, const char *valuation_id,
	       int completed)
{
	struct buf *b = &s->extra;

	buf_reset(b);
	buf_adds(b, "{\"kind\":\"job_done\",\"job_id\":");
	if (job_id)
		buf_add_json_string(b, job_id, strlen(job_id));
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"intake_id\":");
	buf_add_json_string(b, intake_id, strlen(intake_id));
	buf_addf(b, ",\"valuation_id\":%s,\"completed\":%s}\n", valuation_id ? valuation_id : "null",
		 completed ? "true" : "false");
	ndj_write(b->data, b->len);
}

static int
on_job(struct store *s, struct ndj_record *r)
{
	char *job_id = string_of(ndj_get(r, "job_id"), &s->s1);
	char *intake_id = string_of(ndj_get(r, "intake_id"), &s->s1);
	char *source_id = string_of(ndj_get(r, "source_id"), &s->s1);

	if (!job_id || !intake_id || !source_id) {
		free(job_id);
		free(intake_id);
		free(source_id);
		snprintf(r->err, sizeof(r->err), "a job record needs string job_id, intake_id and source_id");
		return NDJ_BAD;
	}
	if (s->in_job && s->npoints)
		log_warn("line %lu: job %s ended without job_end: its %zu price points were not stored",
			 r->lineno, s->job_id, s->npoints);
	end_job(s);
	s->job_id = job_id;
	s->intake_id = intake_id;
	s->source_id = source_id;
	s->worker = string_of(ndj_get(r, "worker_id"), &s->s1);
	s->in_job = 1;
	ndj_pass(r);
	return 0;
}

static int
check_point(struct store *s, struct ndj_record *r)
{
	const struct ndj_member *type = ndj_get(r, "price_type");
	const struct ndj_member *job = ndj_get(r, "job_id");

	if (!s->in_job) {
		snprintf(r->err, sizeof(r->err),
			 "a price_point outside a job: store needs the job "
			 "record first");
		return NDJ_BAD;
	}
	if (!ndj_is_null(job) && (ndj_string(job, &s->s1) != 0 || strcmp(s->s1.data, s->job_id) != 0)) {
		snprintf(r->err, sizeof(r->err), "a price_point of another job than %s", s->job_id);
		return NDJ_BAD;
	}
	if (ndj_string(ndj_get(r, "external_id"), &s->s1) != 0 || s->s1.len == 0) {
		snprintf(r->err, sizeof(r->err), "a price_point needs a string \"external_id\"");
		return NDJ_BAD;
	}
	if (type == NULL || !((type->val_len == 6 && memcmp(type->val, "\"sold\"", 6) == 0) ||
			      (type->val_len == 5 && memcmp(type->val, "\"ask\"", 5) == 0))) {
		snprintf(r->err, sizeof(r->err), "\"price_type\" must be \"sold\" or \"ask\"");
		return NDJ_BAD;
	}
	return 0;
}

static int
on_price_point(struct store *s, struct ndj_record *r)
{
	if (is_true(ndj_get(r, "stored"))) {
		ndj_pass(r);
		return 0;
	}
	if (check_point(s, r) != 0)
		return NDJ_BAD;
	buf_addc(&s->points, s->npoints ? ',' : '[');
	buf_add(&s->points, r->line, r->len);
	s->npoints++;
	s->nfiltered += is_true(ndj_get(r, "filtered_out"));
	return 0;
}

static int
on_job_end(struct store *s, struct ndj_record *r)
{
	int rc;

	if (is_true(ndj_get(r, "stored"))) {
		/* The second store: a job whose points gave no valuation is done all the same. */
		if (s->in_job && !s->valued) {
			const char *params[2] = { s->job_id, worker_of(s) };
			PGresult *res = db_exec(&s->db, "complete the job", complete_sql, 2, params);
			int completed;

			if (res == NULL)
				return db_lost(&s->db) ? EXIT_TEMPFAIL : 0;
			completed = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
			PQclear(res);
			if (!completed)
				log_warn("job %s is no longer held by %s: left alone", s->job_id,
					 worker_of(s));
			write_job_done(s, s->job_id, s->intake_id, NULL, completed);
		}
		ndj_pass(r);
		end_job(s);
		ndj_flush();
		return 0;
	}
	if (!s->in_job) {
		snprintf(r->err, sizeof(r->err), "a job_end outside a job");
		return NDJ_BAD;
	}
	rc = with_reconnect(s, commit_points, NULL);
	if (rc == EXIT_TEMPFAIL)
		return rc;
	if (rc == 1) {
		log_warn("job %s is no longer held by %s (its lock expired and another worker took "
			 "it): its %zu price points were not stored",
			 s->job_id, worker_of(s), s->npoints);
		pass_stored(r, ",\"lock_lost\":true");
	} else if (rc < 0) {
		log_error("job %s: its price points could not be stored", s->job_id);
		pass_stored(r, ",\"store_failed\":true");
	} else {
		log_info("job %s: stored %zu price points (%zu filtered out)", s->job_id, s->npoints,
			 s->nfiltered);
		if ((rc = with_reconnect(s, replay, NULL)) == EXIT_TEMPFAIL)
			return rc;
		pass_stored(r, NULL);
	}
	buf_reset(&s->points);
	s->npoints = s->nfiltered = 0;
	ndj_flush();
	return 0;
}

struct job_error {
	const char *retryable, *message;
	char status[16], run_at[32];
	int found;
};

static int
send_back(struct store *s, void *arg)
{
	struct job_error *e = arg;
	const char *params[4] = { s->job_id, worker_of(s), e->retryable, e->message };
	PGresult *res = db_exec(&s->db, "record the job's failure", error_sql, 4, params);

	if (res == NULL)
		return db_lost(&s->db) ? LOST : -1;
	e->found = PQntuples(res) == 1;
	if (e->found) {
		snprintf(e->status, sizeof(e->status), "%s", PQgetvalue(res, 0, 0));
		snprintf(e->run_at, sizeof(e->run_at), "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return 0;
}

static int
on_job_error(struct store *s, struct ndj_record *r)
{
	struct job_error e = { "false", NULL, "", "", 0 };
	const struct ndj_member *job = ndj_get(r, "job_id");
	struct buf message = BUF_INIT, extra = BUF_INIT;
	int rc;

	if (is_true(ndj_get(r, "stored"))) {
		ndj_pass(r);
		end_job(s);
		return 0;
	}
	if (!s->in_job || ndj_string(job, &s->s1) != 0 || strcmp(s->s1.data, s->job_id) != 0) {
		snprintf(r->err, sizeof(r->err), "a job_error outside its job");
		return NDJ_BAD;
	}
	if (ndj_string(ndj_get(r, "error"), &message) != 0 || message.len == 0)
		buf_adds(&message, "failed (no message)");
	e.message = message.data;
	e.retryable = is_true(ndj_get(r, "retryable")) ? "true" : "false";
	rc = with_reconnect(s, send_back, &e);
	buf_free(&message);
	if (rc == EXIT_TEMPFAIL)
		return rc;
	if (rc == 0 && e.found) {
		if (strcmp(e.status, "pending") == 0)
			log_warn("job %s failed; it will be retried after %s", s->job_id, e.run_at);
		else
			log_error("job %s failed for good", s->job_id);
		buf_addf(&extra, ",\"job_status\":\"%s\"", e.status);
		if (strcmp(e.status, "pending") == 0)
			buf_addf(&extra, ",\"retry_at\":\"%s\"", e.run_at);
	} else if (rc == 0) {
		log_warn("job %s is no longer held by %s: its failure was not recorded", s->job_id,
			 worker_of(s));
	}
	pass_stored(r, extra.len ? extra.data : NULL);
	buf_free(&extra);
	end_job(s);
	ndj_flush();
	return 0;
}

struct valuation {
	const struct ndj_record *r;
	char id[24];
	int completed;
};

static int
insert_valuation(struct store *s, void *arg)
{
	struct valuation *v = arg;
	const char *params[2] = { v->r->line, worker_of(s) };
	PGresult *res = db_exec(&s->db, "store the valuation", valuation_sql, 2, params);

	if (res == NULL)
		return db_lost(&s->db) ? LOST : -1;
	snprintf(v->id, sizeof(v->id), "%s", PQgetvalue(res, 0, 0));
	v->completed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
	PQclear(res);
	return 0;
}

static int
on_valuation(struct store *s, struct ndj_record *r)
{
	struct valuation v = { r, "", 0 };
	const struct ndj_member *job = ndj_get(r, "job_id");
	struct buf intake = BUF_INIT;
	int rc, has_job;

	if (is_true(ndj_get(r, "stored"))) {
		ndj_pass(r);
		return 0;
	}
	if (ndj_string(ndj_get(r, "intake_id"), &intake) != 0) {
		buf_free(&intake);
		snprintf(r->err, sizeof(r->err), "a valuation needs a string \"intake_id\" to be stored");
		return NDJ_BAD;
	}
	rc = with_reconnect(s, insert_valuation, &v);
	if (rc != 0) {
		buf_free(&intake);
		if (rc == EXIT_TEMPFAIL)
			return rc;
		snprintf(r->err, sizeof(r->err), "the valuation could not be stored");
		return NDJ_BAD;
	}
	has_job = ndj_string(job, &s->s1) == 0;
	if (s->in_job && has_job && strcmp(s->s1.data, s->job_id) == 0)
		s->valued = 1;
	if (!v.completed && !ndj_is_null(job))
		log_warn("valuation %s stored, but its job is no longer held by %s: left alone", v.id,
			 worker_of(s));
	pass_stored(r, NULL);
	write_job_done(s, has_job ? s->s1.data : NULL, intake.data, v.id, v.completed);
	buf_free(&intake);
	return 0;
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct store *s = ctx;

	if (strcmp(r->kind, "price_point") == 0)
		return on_price_point(s, r);
	if (strcmp(r->kind, "job") == 0)
		return on_job(s, r);
	if (strcmp(r->kind, "job_end") == 0)
		return on_job_end(s, r);
	if (strcmp(r->kind, "job_error") == 0)
		return on_job_error(s, r);
	if (strcmp(r->kind, "valuation") == 0)
		return on_valuation(s, r);
	ndj_pass(r);
	return 0;
}

static int
finish(void *ctx)
{
	struct store *s = ctx;

	if (s->in_job && s->npoints)
		log_warn("input ended before job %s's job_end: its %zu price points were not stored",
			 s->job_id, s->npoints);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "worker", required_argument, NULL, 'W' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct store s;
	struct ndj_stage stage = { on_record, finish, &s, 0 };
	int c, status;

	memset(&s, 0, sizeof(s));
	log_init("store");
	opterr = 0;
	s.default_worker = getenv("WORKER_ID");
	s.reconnect_seconds = (int)cli_env_number("DB_RECONNECT_SECONDS", 60, 1, 86400);
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'W':
			s.default_worker = optarg;
			break;
		case 's':
			stage.strict = 1;
			break;
		default:
			return cli_common_option(c, argv, "store", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0)
		return EXIT_USAGE;
	if (s.default_worker == NULL)
		s.default_worker = "";
	if (db_connect(&s.db) < 0) {
		ndj_close_output();
		return EXIT_TEMPFAIL;
	}
	status = ndj_run(&stage);
	if (status == EXIT_TEMPFAIL)
		log_error("giving up: the database at %s cannot be reached; the unfinished job will "
			  "be claimed again",
			  s.db.target);
	end_job(&s);
	buf_free(&s.points);
	buf_free(&s.s1);
	buf_free(&s.extra);
	db_close(&s.db);
	log_cleanup();
	return status;
}
