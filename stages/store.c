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
#include "exits.h"
#include "log.h"
#include "money.h"
#include "ndjson.h"

/*
 * Errors: every function below main either succeeds (0) or logs why and returns -1,
 * leaving in s->db whether the connection was lost or the failure is for good; only the
 * record handlers turn a -1 into what ndj_run() wants (an exit status to stop, or
 * NDJ_BAD), through stop_status(), and main returns it.
 */

/* The job's points as rows, one per external_id (the last wins). */
#define INPUT_CTE                                                                                            \
	"input AS (\n"                                                                                       \
	" SELECT DISTINCT ON (p.external_id) p.* FROM json_array_elements($1::json)\n"                       \
	"  WITH ORDINALITY AS o(rec, n)\n"                                                                   \
	" CROSS JOIN LATERAL json_to_record(o.rec) AS p(external_id text, adapter text,\n"                   \
	"  title text, url text, condition text, price_type text, amount text, currency text,\n"             \
	"  converted_usd text, quantity int, price_cents bigint, shipping_cents bigint,\n"                   \
	"  fx_rate text, fx_as_of date, fx_source text, sold_at timestamptz, filtered_out boolean,\n"        \
	"  filter_reason text, raw jsonb, grade text, grade_lo int, grade_hi int, certifier text,\n"         \
	"  designations text[])\n"                                                                           \
	" ORDER BY p.external_id, o.n DESC)\n"

/* Upsert the input rows (for intake $2, source $3, job $4) where cond holds. */
#define UPSERT_POINTS(cond)                                                                                  \
	"INSERT INTO price_points (intake_id, source_id, job_id, external_id, adapter, title, url,\n"        \
	" condition, price_type, original_amount, original_currency, converted_usd, quantity,\n"             \
	" price_cents, shipping_cents, fx_rate, fx_as_of, fx_source, sold_at, filtered_out,\n"               \
	" filter_reason, raw, grade, grade_lo, grade_hi, certifier, designations)\n"                         \
	"SELECT $2::uuid, $3::uuid, $4::uuid, external_id, adapter, title, url, condition, price_type,\n"    \
	" CASE WHEN amount ~ '^[0-9]+(\\.[0-9]+)?$' THEN amount::numeric END, currency,\n"                   \
	" CASE WHEN converted_usd ~ '^[0-9]+(\\.[0-9]+)?$' THEN converted_usd::numeric END,\n"               \
	" quantity, price_cents, shipping_cents,\n"                                                          \
	" CASE WHEN fx_rate ~ '^[0-9]+(\\.[0-9]+)?$' THEN fx_rate::numeric END, fx_as_of, fx_source,\n"      \
	" sold_at, coalesce(filtered_out, false), filter_reason, raw, grade, grade_lo, grade_hi,\n"          \
	" certifier, designations\n"                                                                         \
	"FROM input " cond "\n"                                                                              \
	"ON CONFLICT (intake_id, source_id, external_id) DO UPDATE SET job_id = EXCLUDED.job_id,\n"          \
	" adapter = EXCLUDED.adapter, title = EXCLUDED.title, url = EXCLUDED.url,\n"                         \
	" condition = EXCLUDED.condition, price_type = EXCLUDED.price_type,\n"                               \
	" original_amount = EXCLUDED.original_amount, original_currency = EXCLUDED.original_currency,\n"     \
	" converted_usd = EXCLUDED.converted_usd, quantity = EXCLUDED.quantity,\n"                           \
	" price_cents = EXCLUDED.price_cents, shipping_cents = EXCLUDED.shipping_cents,\n"                   \
	" fx_rate = EXCLUDED.fx_rate, fx_as_of = EXCLUDED.fx_as_of, fx_source = EXCLUDED.fx_source,\n"       \
	" sold_at = EXCLUDED.sold_at, filtered_out = EXCLUDED.filtered_out,\n"                               \
	" filter_reason = EXCLUDED.filter_reason, raw = EXCLUDED.raw, grade = EXCLUDED.grade,\n"             \
	" grade_lo = EXCLUDED.grade_lo, grade_hi = EXCLUDED.grade_hi, certifier = EXCLUDED.certifier,\n"     \
	" designations = EXCLUDED.designations\n"

/* A stored point p (with its source s) as the price_point record valuate reads. */
#define POINT_JSON                                                                                           \
	"json_build_object('kind', 'price_point', 'job_id', p.job_id,\n"                                     \
	" 'intake_id', p.intake_id, 'source_id', p.source_id, 'adapter', p.adapter,\n"                       \
	" 'external_id', p.external_id, 'title', p.title, 'url', p.url, 'condition', p.condition,\n"         \
	" 'price_type', p.price_type, 'amount', p.original_amount::text,\n"                                  \
	" 'currency', p.original_currency, 'converted_usd', p.converted_usd::text,\n"                        \
	" 'sold_at', to_char(p.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),\n"          \
	" 'quantity', p.quantity, 'reputation_weight', s.reputation_weight,\n"                               \
	" 'filtered_out', p.filtered_out, 'filter_reason', p.filter_reason,\n"                               \
	" 'price_cents', p.price_cents, 'shipping_cents', p.shipping_cents,\n"                               \
	" 'fx_rate', p.fx_rate::text, 'fx_as_of', p.fx_as_of, 'fx_source', p.fx_source,\n"                   \
	" 'grade', p.grade, 'grade_lo', p.grade_lo, 'grade_hi', p.grade_hi,\n"                               \
	" 'certifier', p.certifier, 'designations', p.designations, 'stored', true)::text"

/*
 * An earlier point of the intake, with only what valuate reads: an intake with a long
 * history costs each of its jobs as little per point as it can (no title, url, amounts
 * as listed, fx details).
 */
#define HISTORY_POINT_JSON                                                                                   \
	"json_build_object('kind', 'price_point', 'job_id', p.job_id,\n"                                     \
	" 'intake_id', p.intake_id, 'source_id', p.source_id, 'adapter', p.adapter,\n"                       \
	" 'external_id', p.external_id, 'price_type', p.price_type,\n"                                       \
	" 'sold_at', to_char(p.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),\n"          \
	" 'reputation_weight', s.reputation_weight, 'filtered_out', p.filtered_out,\n"                       \
	" 'price_cents', p.price_cents, 'grade', p.grade, 'grade_lo', p.grade_lo,\n"                         \
	" 'grade_hi', p.grade_hi, 'certifier', p.certifier, 'designations', p.designations,\n"               \
	" 'stored', true)::text"

/* Which stored points valuate gets: the intake's not filtered out, and this job's. */
#define REPLAY_WHERE(intake, job) "p.intake_id = " intake " AND (NOT p.filtered_out OR p.job_id = " job ")"

/*
 * A whole job in one statement, so one round trip: check that this worker still holds
 * the job (and touch its lock), upsert its points, log, and return the intake's points
 * for valuate. The statement does not see its own writes, so the job's points come from
 * what the upsert returns and the rest from the table. The first row (order 0) is there
 * only when the job was held. Parameters: $1 points, $2 intake, $3 source, $4 job,
 * $5 worker, $6 points, $7 filtered out.
 */
static const char job_sql[] =
	"WITH held AS (\n"
	" UPDATE scrape_jobs SET locked_at = now()\n"
	" WHERE id = $4 AND worker_id = $5 AND status = 'running' RETURNING id),\n" INPUT_CTE ",\n"
	"ins AS (\n" UPSERT_POINTS(
		"WHERE EXISTS (SELECT 1 FROM held)") " RETURNING *),\n"
						     "logged AS (\n"
						     " INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
						     " SELECT id, 'info', 'stored ' || $6 || ' price points',\n"
						     "  json_build_object('points', $6::int, 'filtered', $7::int) FROM held)\n"
						     "SELECT 0::bigint, NULL::text FROM held\n"
						     "UNION ALL\n"
						     "SELECT p.id, " POINT_JSON
						     " FROM ins p JOIN sources s ON s.id = p.source_id\n"
						     "UNION ALL\n"
						     "SELECT p.id, " HISTORY_POINT_JSON
						     " FROM price_points p JOIN sources s ON s.id = p.source_id\n"
						     "WHERE " REPLAY_WHERE(
							     "$2",
							     "$4") " AND EXISTS (SELECT 1 FROM held)\n"
								   " AND NOT (p.source_id = $3 AND p.external_id IN (SELECT external_id FROM input))\n"
								   "ORDER BY 1";

/* The slow way, after job_sql failed on some point: one point at a time. */
static const char hold_sql[] =
	"UPDATE scrape_jobs SET locked_at = now() WHERE id = $1 AND worker_id = $2 AND status = 'running'\n"
	"RETURNING id";

static const char upsert_sql[] = "WITH " INPUT_CTE UPSERT_POINTS("");

static const char stored_log_sql[] =
	"INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	"SELECT $1, 'info', 'stored ' || $2 || ' price points',\n"
	" json_build_object('points', $2::int, 'filtered', $3::int, 'left_out', $4::int)";

static const char replay_sql[] =
	"SELECT p.id, " POINT_JSON "\nFROM price_points p JOIN sources s ON s.id = p.source_id\n"
	"WHERE " REPLAY_WHERE("$1", "$2") " ORDER BY p.id";

/*
 * Back to pending after min(1 h, 30 s x 2^(attempts-1)) +-20 %, and at least $5 seconds
 * (a source's Retry-After), or failed; and a log row.
 */
static const char error_sql[] =
	"WITH j AS (\n"
	" SELECT id, attempts, max_attempts, $3::bool AND attempts < max_attempts AS retry\n"
	" FROM scrape_jobs WHERE id = $1 AND worker_id = $2 AND status = 'running' FOR UPDATE),\n"
	"upd AS (\n"
	" UPDATE scrape_jobs s SET status = CASE WHEN j.retry THEN 'pending' ELSE 'failed' END,\n"
	"  run_at = CASE WHEN j.retry THEN now() + greatest(coalesce($5::float8, 0),\n"
	"   least(3600, 30 * power(2, greatest(j.attempts, 1) - 1)) * (0.8 + random() * 0.4))\n"
	"   * interval '1 second' ELSE s.run_at END,\n"
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
	"  comps, outliers, candidates, sold, ask, confidence, confidence_parts, explanation,\n"
	"  method, target_grade, n_eff, grades, tiers)\n"
	" SELECT intake_id, job_id, p10_cents, median_cents, p90_cents, mean_cents, comps, outliers,\n"
	"  candidates, sold, ask, confidence, confidence_parts, explanation, method, target_grade,\n"
	"  n_eff, grades, tiers\n"
	" FROM json_to_record($1::json) AS x(intake_id uuid, job_id uuid, p10_cents bigint,\n"
	"  median_cents bigint, p90_cents bigint, mean_cents bigint, comps int, outliers int,\n"
	"  candidates int, sold int, ask int, confidence int, confidence_parts jsonb,\n"
	"  explanation text, method text, target_grade text, n_eff numeric, grades jsonb,\n"
	"  tiers jsonb)\n"
	" RETURNING id, job_id, confidence),\n"
	"done AS (\n"
	" UPDATE scrape_jobs s SET status = 'completed', completed_at = now(), locked_at = NULL\n"
	" FROM v WHERE s.id = v.job_id AND s.worker_id = $2 AND s.status = 'running'\n"
	" RETURNING s.id, s.started_at),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	" SELECT done.id, 'info', 'completed', json_build_object('valuation_id', v.id,\n"
	"  'confidence', v.confidence) FROM done, v)\n"
	"SELECT v.id, (SELECT count(*) FROM done),\n"
	" (SELECT round(extract(epoch FROM clock_timestamp() - started_at) * 1000) FROM done) FROM v";

static const char complete_sql[] =
	"WITH done AS (\n"
	" UPDATE scrape_jobs SET status = 'completed', completed_at = now(), locked_at = NULL\n"
	" WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING id, started_at),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message)\n"
	" SELECT id, 'info', 'completed with no price points to value' FROM done)\n"
	"SELECT count(*), max(round(extract(epoch FROM clock_timestamp() - started_at) * 1000))\n"
	"FROM done";

struct store {
	struct db db;
	const char *default_worker;
	int reconnect_seconds;
	/* The current job: from its job record to its job_end (or job_error). */
	int in_job, valued;
	char *job_id, *intake_id, *source_id, *worker;
	struct buf points; /* "[point,point,..." of the job */
	size_t *starts;	   /* where each point starts in points */
	struct buf ids;	   /* the points' external_ids, each NUL-terminated */
	size_t *id_starts; /* where each point's external_id starts in ids */
	size_t npoints, cap, nfiltered, left_out;
	PGresult *replayed; /* the intake's points for valuate, once the job is stored */
	/* For the second store's line per finished job. */
	long long median, duration_ms;
	int completed, has_median, confidence;
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
	       "               point's identity); then the job's points as stored, and the\n"
	       "               intake's earlier points not filtered out with only the fields\n"
	       "               valuate reads (no title, url, amount as listed, fx details), are\n"
	       "               written out for valuate.\n"
	       "               A sold_at PostgreSQL cannot take is stored as null, a point it\n"
	       "               refuses is left out (both with a warning); when the points cannot\n"
	       "               be stored at all, a job_error (retryable) replaces the job_end\n"
	       "  valuation    inserted; its job completed in the same transaction while this\n"
	       "               worker still holds it; then a job_done record\n"
	       "  job_error    the job back to pending with exponential backoff (at least\n"
	       "               retry_after_seconds) if retryable and attempts remain, else failed\n"
	       "Records it handled carry \"stored\": true; a second store passes them on. A stream\n"
	       "that ends before a job's job_end stores nothing of that job.\n"
	       "\n"
	       "  --worker ID   the worker that claimed the jobs, where a job record does not say\n"
	       "                (default WORKER_ID)\n"
	       "  --strict      stop at the first bad line\n"
	       "  -h, --help    print this help and exit\n"
	       "  -V, --version print the version and exit\n"
	       "\n"
	       "On a lost connection it reconnects for up to DB_RECONNECT_SECONDS (60), then\n"
	       "exits 75; the unfinished job is claimed again later.\n"
	       "Exit status: 0 ok, 64 usage, 65 some lines were bad, 74 I/O error, 75 the\n"
	       "database cannot be reached (try again), 78 configuration (wrong password, no\n"
	       "such database, bad sslmode or URL, not migrated: run scripts/migrate.sh).\n");
}

static int
is_true(const struct ndj_member *m)
{
	return ndj_is_true(m);
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
	s->in_job = s->valued = s->completed = s->has_median = 0;
	s->confidence = 0;
	s->median = s->duration_ms = 0;
	buf_reset(&s->points);
	buf_reset(&s->ids);
	s->npoints = s->nfiltered = s->left_out = 0;
	PQclear(s->replayed);
	s->replayed = NULL;
}

static const char *
worker_of(const struct store *s)
{
	return s->worker ? s->worker : s->default_worker;
}

/*
 * Run op (0 or -1) until it succeeds or fails with the connection up, reconnecting
 * after lost connections. 0, or -1 (with db_lost() still true when reconnecting failed).
 */
static int
with_reconnect(struct store *s, int (*op)(struct store *, void *), void *arg)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		if (op(s, arg) == 0)
			return 0;
		if (!db_lost(&s->db) || db_reconnect(&s->db, s->reconnect_seconds) < 0)
			return -1;
	}
	log_error("lost the connection to %s %d times in a row: giving up", s->db.target, tries);
	return -1;
}

/*
 * The exit status that stops the stream after a failure: 75 when the database cannot
 * be reached (the job is claimed again later), 78 when retrying will not help.
 */
static int
stop_status(const struct store *s)
{
	return db_exit_status(&s->db);
}

/* A transaction failed: roll it back (unless the connection is gone). -1. */
static int
failed(struct store *s)
{
	if (!db_lost(&s->db))
		PQclear(PQexec(s->db.conn, "ROLLBACK"));
	return -1;
}

/* The text of point i of the job, without the separators around it. */
static void
point_text(const struct store *s, size_t i, const char **text, size_t *len)
{
	size_t end = i + 1 < s->npoints ? s->starts[i + 1] - 1 : s->points.len;

	*text = s->points.data + s->starts[i];
	*len = end - s->starts[i];
}

/*
 * After the one statement failed on some point: the points one at a time, each under
 * a savepoint, leaving out (with a warning naming it) a point that PostgreSQL refuses,
 * then the intake's points for valuate. 0 (*held 0 when the lock was lost), or -1.
 */
static int
commit_one_by_one(struct store *s, int *held)
{
	const char *hold[2] = { s->job_id, worker_of(s) };
	const char *params[4] = { NULL, s->intake_id, s->source_id, s->job_id };
	const char *log_params[4], *replay_params[2] = { s->intake_id, s->job_id };
	char stored[24], nfiltered[24], left_out[24];
	struct buf one = BUF_INIT;
	const char *text;
	size_t i, len;
	PGresult *res;

	s->left_out = 0;
	if (db_run(&s->db, "begin", "BEGIN", 0, NULL) < 0 ||
	    (res = db_exec(&s->db, "hold the job", hold_sql, 2, hold)) == NULL)
		goto fail;
	*held = PQntuples(res) == 1;
	PQclear(res);
	if (!*held) {
		PQclear(PQexec(s->db.conn, "ROLLBACK"));
		buf_free(&one);
		return 0;
	}
	for (i = 0; i < s->npoints; i++) {
		point_text(s, i, &text, &len);
		buf_reset(&one);
		buf_addc(&one, '[');
		buf_add(&one, text, len);
		buf_addc(&one, ']');
		params[0] = one.data;
		if (db_run(&s->db, "savepoint", "SAVEPOINT point", 0, NULL) < 0)
			goto fail;
		if (db_run(&s->db, "store a price point", upsert_sql, 4, params) == 0) {
			if (db_run(&s->db, "release", "RELEASE SAVEPOINT point", 0, NULL) < 0)
				goto fail;
			continue;
		}
		if (db_lost(&s->db) || s->db.permanent)
			goto fail;
		log_warn("job %s: price_point %s left out, PostgreSQL refused it: %s", s->job_id,
			 s->ids.data + s->id_starts[i], s->db.error);
		s->left_out++;
		if (db_run(&s->db, "rollback to savepoint", "ROLLBACK TO SAVEPOINT point", 0, NULL) < 0)
			goto fail;
	}
	snprintf(stored, sizeof(stored), "%zu", s->npoints - s->left_out);
	snprintf(nfiltered, sizeof(nfiltered), "%zu", s->nfiltered);
	snprintf(left_out, sizeof(left_out), "%zu", s->left_out);
	log_params[0] = s->job_id;
	log_params[1] = stored;
	log_params[2] = nfiltered;
	log_params[3] = left_out;
	if (db_run(&s->db, "log", stored_log_sql, 4, log_params) < 0 ||
	    db_run(&s->db, "commit", "COMMIT", 0, NULL) < 0)
		goto fail;
	buf_free(&one);
	s->replayed = db_exec(&s->db, "read the intake's points", replay_sql, 2, replay_params);
	return s->replayed ? 0 : -1;
fail:
	buf_free(&one);
	return failed(s);
}

/*
 * The job's points, its log row and the lock check in one statement, and the intake's
 * points for valuate in its result (s->replayed). 0 (with *(int *)held 0 when the lock
 * was lost), or -1 (s->db says whether the connection was lost or it is for good).
 */
static int
commit_points(struct store *s, void *held)
{
	const char *params[7];
	char npoints[24], nfiltered[24];
	PGresult *res;

	*(int *)held = 1;
	PQclear(s->replayed);
	s->replayed = NULL;
	s->left_out = 0;
	snprintf(npoints, sizeof(npoints), "%zu", s->npoints);
	snprintf(nfiltered, sizeof(nfiltered), "%zu", s->nfiltered);
	buf_adds(&s->points, s->npoints ? "]" : "[]");
	params[0] = s->points.data;
	params[1] = s->intake_id;
	params[2] = s->source_id;
	params[3] = s->job_id;
	params[4] = worker_of(s);
	params[5] = npoints;
	params[6] = nfiltered;
	res = db_exec(&s->db, "store the job", job_sql, 7, params);
	/* The "]" (or "[]") off again, for a retry. */
	s->points.len -= s->npoints ? 1 : 2;
	s->points.data[s->points.len] = '\0';
	if (res != NULL) {
		if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
			PQclear(res);
			*(int *)held = 0;
			return 0;
		}
		s->replayed = res;
		return 0;
	}
	if (db_lost(&s->db) || s->db.permanent || s->npoints == 0)
		return -1;
	log_warn("job %s: storing its %zu price points in one statement failed; storing them one "
		 "at a time",
		 s->job_id, s->npoints);
	return commit_one_by_one(s, held);
}

/* Write the intake's points (skipping the first row, the lock marker, of job_sql's). */
static void
write_replayed(struct store *s)
{
	int i;

	for (i = 0; i < PQntuples(s->replayed); i++) {
		if (PQgetisnull(s->replayed, i, 1))
			continue;
		ndj_write(PQgetvalue(s->replayed, i, 1), (size_t)PQgetlength(s->replayed, i, 1));
		ndj_write("\n", 1);
	}
	PQclear(s->replayed);
	s->replayed = NULL;
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
	buf_adds(b, "{\"kind\":\"job_done\"");
	buf_add_member_string(b, "job_id", job_id);
	buf_add_member_string(b, "intake_id", intake_id);
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

/* n decimal digits at p into *v: 0, or -1 when one is not a digit. */
static int
digits(const char *p, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

/*
 * Whether t is an RFC 3339 date-time that PostgreSQL takes as it means it: a real
 * calendar day of years 1 to 9999, seconds 0-59, Z or an offset of at most 15:59.
 */
static int
valid_time(const char *t, size_t len)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, last;
	size_t i = 19, start;

	if (len < 20 || digits(t, 4, &y) || t[4] != '-' || digits(t + 5, 2, &mo) || t[7] != '-' ||
	    digits(t + 8, 2, &d) || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || digits(t + 11, 2, &h) ||
	    t[13] != ':' || digits(t + 14, 2, &mi) || t[16] != ':' || digits(t + 17, 2, &sec))
		return 0;
	if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
		return 0;
	last = days[mo - 1] + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
	if (d < 1 || d > last)
		return 0;
	if (t[i] == '.') {
		start = ++i;
		while (i < len && t[i] >= '0' && t[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i + 1 == len && (t[i] == 'Z' || t[i] == 'z'))
		return 1;
	return i + 6 == len && (t[i] == '+' || t[i] == '-') && digits(t + i + 1, 2, &h) == 0 &&
	       t[i + 3] == ':' && digits(t + i + 4, 2, &mi) == 0 && h <= 15 && mi <= 59;
}

/* The point as written, with every "sold_at" member replaced by "sold_at":null. */
static void
add_without_sold_at(struct buf *b, const struct ndj_record *r)
{
	size_t i;

	buf_addc(b, '{');
	for (i = 0; i < r->nmembers; i++) {
		const struct ndj_member *m = &r->members[i];

		if (m->key_len == 7 && memcmp(m->key, "sold_at", 7) == 0)
			continue;
		buf_add(b, m->text, (size_t)(m->val + m->val_len - m->text));
		buf_addc(b, ',');
	}
	buf_adds(b, "\"sold_at\":null}");
}

static int
on_price_point(struct store *s, struct ndj_record *r)
{
	const struct ndj_member *sold_at;
	int rc;

	if (is_true(ndj_get(r, "stored"))) {
		ndj_pass(r);
		return 0;
	}
	if (check_point(s, r) != 0)
		return NDJ_BAD;
	if (s->npoints == s->cap) {
		size_t id_cap = s->cap; /* the two arrays grow together, by s->cap */

		BUF_ALLOC_GROW(s->id_starts, s->npoints + 1, id_cap);
		BUF_ALLOC_GROW(s->starts, s->npoints + 1, s->cap);
	}
	/* check_point left the external_id in s1. */
	s->id_starts[s->npoints] = s->ids.len;
	buf_add(&s->ids, s->s1.data, s->s1.len + 1);
	buf_addc(&s->points, s->npoints ? ',' : '[');
	s->starts[s->npoints] = s->points.len;
	sold_at = ndj_get(r, "sold_at");
	rc = ndj_string(sold_at, &s->s1);
	if (rc < 0 || (rc == 0 && !valid_time(s->s1.data, s->s1.len))) {
		log_warn("line %lu: job %s: price_point %s: sold_at %.*s is not an RFC 3339 time "
			 "PostgreSQL can store: stored as null",
			 r->lineno, s->job_id, s->ids.data + s->id_starts[s->npoints],
			 (int)(sold_at->val_len > 64 ? 64 : sold_at->val_len), sold_at->val);
		add_without_sold_at(&s->points, r);
	} else {
		buf_add(&s->points, r->line, r->len);
	}
	s->npoints++;
	s->nfiltered += is_true(ndj_get(r, "filtered_out"));
	return 0;
}

struct job_error {
	const char *retryable, *message, *retry_after;
	char status[16], run_at[32];
	int found;
};

static int
send_back(struct store *s, void *arg)
{
	struct job_error *e = arg;
	const char *params[5] = { s->job_id, worker_of(s), e->retryable, e->message, e->retry_after };
	PGresult *res = db_exec(&s->db, "record the job's failure", error_sql, 5, params);

	if (res == NULL)
		return -1;
	e->found = PQntuples(res) == 1;
	if (e->found) {
		snprintf(e->status, sizeof(e->status), "%s", PQgetvalue(res, 0, 0));
		snprintf(e->run_at, sizeof(e->run_at), "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return 0;
}

/*
 * Send the current job back to pending (retryable, attempts left) or fail it, and add
 * its new status to extra (",\"job_status\":...,\"retry_at\":..."). 0, or -1 when the
 * failure could not be recorded.
 */
static int
record_failure(struct store *s, struct job_error *e, struct buf *extra)
{
	if (with_reconnect(s, send_back, e) < 0)
		return -1;
	if (!e->found) {
		log_warn("job %s is no longer held by %s: its failure was not recorded", s->job_id,
			 worker_of(s));
		return 0;
	}
	if (strcmp(e->status, "pending") == 0)
		log_warn("job %s (intake %s) failed: %s; it will be retried after %s", s->job_id,
			 s->intake_id, e->message, e->run_at);
	else
		log_error("job %s (intake %s) failed for good: %s", s->job_id, s->intake_id, e->message);
	buf_addf(extra, ",\"job_status\":\"%s\"", e->status);
	if (strcmp(e->status, "pending") == 0)
		buf_addf(extra, ",\"retry_at\":\"%s\"", e->run_at);
	return 0;
}

/*
 * The job's points could not be stored: never let it be completed. Back to pending
 * (or failed at its last attempt) with the reason, and a job_error in place of its
 * job_end, so that valuate drops it and the second store passes it on.
 */
static int
store_failed(struct store *s)
{
	struct buf message = BUF_INIT, extra = BUF_INIT;
	struct job_error e = { "true", NULL, NULL, "", "", 0 };
	int rc;

	buf_addf(&message, "store: the job's %zu price points could not be stored (%s)", s->npoints,
		 s->db.error);
	e.message = message.data;
	rc = record_failure(s, &e, &extra);
	if (rc == 0) {
		buf_reset(&s->s1);
		buf_adds(&s->s1, "{\"kind\":\"job_error\",\"job_id\":");
		buf_add_json_string(&s->s1, s->job_id, strlen(s->job_id));
		buf_adds(&s->s1, ",\"intake_id\":");
		buf_add_json_string(&s->s1, s->intake_id, strlen(s->intake_id));
		buf_adds(&s->s1, ",\"error\":");
		buf_add_json_string(&s->s1, message.data, message.len);
		buf_adds(&s->s1, ",\"retryable\":true,\"stored\":true");
		buf_add(&s->s1, extra.data, extra.len);
		buf_adds(&s->s1, "}\n");
		ndj_write(s->s1.data, s->s1.len);
	}
	buf_free(&message);
	buf_free(&extra);
	return rc;
}

/* The second store at a job's end: one log line for the finished job. */
static void
log_finished(struct store *s, const struct ndj_record *r)
{
	int64_t points = -1, filtered = -1;
	char median[48];

	ndj_int(ndj_get(r, "points"), &points);
	ndj_int(ndj_get(r, "filtered"), &filtered);
	if (s->has_median)
		snprintf(median, sizeof(median), "$%lld.%02lld", s->median / 100, s->median % 100);
	else
		snprintf(median, sizeof(median), "none");
	log_info("job %s completed: intake %s, %lld points (%lld filtered out), median %s, "
		 "confidence %d, %lld ms",
		 s->job_id, s->intake_id, (long long)points, (long long)filtered, median, s->confidence,
		 s->duration_ms);
}

static int
on_job_end(struct store *s, struct ndj_record *r)
{
	int rc, held;

	if (is_true(ndj_get(r, "stored"))) {
		/* The second store: a job whose points gave no valuation is done all the same. */
		int completed = s->completed;

		if (s->in_job && !s->valued && !is_true(ndj_get(r, "lock_lost"))) {
			const char *params[2] = { s->job_id, worker_of(s) };
			PGresult *res = db_exec(&s->db, "complete the job", complete_sql, 2, params);

			if (res == NULL)
				return db_lost(&s->db) || s->db.permanent ? stop_status(s) : 0;
			completed = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
			if (completed)
				s->duration_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
			PQclear(res);
			if (!completed)
				log_warn("job %s is no longer held by %s: left alone", s->job_id,
					 worker_of(s));
			write_job_done(s, s->job_id, s->intake_id, NULL, completed);
		}
		if (s->in_job && completed)
			log_finished(s, r);
		ndj_pass(r);
		end_job(s);
		ndj_flush();
		return 0;
	}
	if (!s->in_job) {
		snprintf(r->err, sizeof(r->err), "a job_end outside a job");
		return NDJ_BAD;
	}
	rc = with_reconnect(s, commit_points, &held);
	if (rc < 0 && db_lost(&s->db))
		return stop_status(s);
	if (rc == 0 && !held) {
		log_warn("job %s is no longer held by %s (its lock expired and another worker took "
			 "it): its %zu price points were not stored",
			 s->job_id, worker_of(s), s->npoints);
		pass_stored(r, ",\"lock_lost\":true");
	} else if (rc < 0 && s->db.permanent) {
		log_error("job %s: its price points could not be stored, and retrying will not help "
			  "until the database is fixed",
			  s->job_id);
		return stop_status(s);
	} else if (rc < 0) {
		if (store_failed(s) < 0)
			return stop_status(s);
		end_job(s);
	} else {
		log_debug("job %s: stored %zu price points (%zu filtered out, %zu left out)", s->job_id,
			  s->npoints - s->left_out, s->nfiltered, s->left_out);
		write_replayed(s);
		buf_reset(&s->extra);
		buf_addf(&s->extra, ",\"points\":%zu,\"filtered\":%zu", s->npoints - s->left_out,
			 s->nfiltered);
		pass_stored(r, s->extra.data);
	}
	buf_reset(&s->points);
	buf_reset(&s->ids);
	s->npoints = s->nfiltered = s->left_out = 0;
	ndj_flush();
	return 0;
}

static int
on_job_error(struct store *s, struct ndj_record *r)
{
	struct job_error e = { "false", NULL, NULL, "", "", 0 };
	const struct ndj_member *job = ndj_get(r, "job_id");
	const struct ndj_member *after = ndj_get(r, "retry_after_seconds");
	struct buf message = BUF_INIT, extra = BUF_INIT;
	char retry_after[32];
	double seconds;
	char *end;
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
	if (!ndj_is_null(after)) {
		/* A number of seconds (a source's Retry-After); the next try waits at least that. */
		snprintf(retry_after, sizeof(retry_after), "%.*s",
			 (int)(after->val_len < 31 ? after->val_len : 31), after->val);
		seconds = strtod(retry_after, &end);
		if (*end == '\0' && seconds >= 0 && seconds <= 30 * 86400)
			e.retry_after = retry_after;
		else
			log_warn("line %lu: job %s: retry_after_seconds %s is not a number of seconds from 0 "
				 "to 2592000: ignored",
				 r->lineno, s->job_id, retry_after);
	}
	if (ndj_string(ndj_get(r, "error"), &message) != 0 || message.len == 0)
		buf_adds(&message, "failed (no message)");
	e.message = message.data;
	e.retryable = is_true(ndj_get(r, "retryable")) ? "true" : "false";
	rc = record_failure(s, &e, &extra);
	buf_free(&message);
	if (rc < 0) {
		buf_free(&extra);
		return stop_status(s);
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
	long long duration_ms;
};

static int
insert_valuation(struct store *s, void *arg)
{
	struct valuation *v = arg;
	const char *params[2] = { v->r->line, worker_of(s) };
	PGresult *res = db_exec(&s->db, "store the valuation", valuation_sql, 2, params);

	if (res == NULL)
		return -1;
	snprintf(v->id, sizeof(v->id), "%s", PQgetvalue(res, 0, 0));
	v->completed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
	v->duration_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return 0;
}

static int
on_valuation(struct store *s, struct ndj_record *r)
{
	struct valuation v = { r, "", 0, 0 };
	int64_t n;
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
	if (rc < 0) {
		buf_free(&intake);
		if (db_lost(&s->db))
			return stop_status(s);
		snprintf(r->err, sizeof(r->err), "the valuation could not be stored");
		return NDJ_BAD;
	}
	has_job = ndj_string(job, &s->s1) == 0;
	if (s->in_job && has_job && strcmp(s->s1.data, s->job_id) == 0)
		s->valued = 1;
	if (s->in_job && has_job && strcmp(s->s1.data, s->job_id) == 0 && v.completed) {
		s->completed = 1;
		s->duration_ms = v.duration_ms;
		s->has_median = ndj_int(ndj_get(r, "median_cents"), &n) == 0;
		s->median = s->has_median ? (long long)n : 0;
		s->confidence = ndj_int(ndj_get(r, "confidence"), &n) == 0 ? (int)n : 0;
	}
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
	if (log_init("store") < 0)
		return EXIT_CONFIG;
	opterr = 0;
	s.default_worker = getenv("WORKER_ID");
	s.reconnect_seconds = (int)cli_env_number("DB_RECONNECT_SECONDS", 60, 1, 86400);
	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
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
		status = db_exit_status(&s.db);
		ndj_close_output();
		goto out;
	}
	status = ndj_run(&stage);
	if (status == EXIT_TEMPFAIL)
		log_error("giving up: the database at %s cannot be reached; the unfinished job will "
			  "be claimed again",
			  s.db.target);
out:
	end_job(&s);
	free(s.starts);
	free(s.id_starts);
	buf_free(&s.ids);
	buf_free(&s.points);
	buf_free(&s.s1);
	buf_free(&s.extra);
	db_close(&s.db);
	log_cleanup();
	return status;
}
