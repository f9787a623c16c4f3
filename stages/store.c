/*
 * store: persist what flows through the pipeline. A job's price points are written in
 * one transaction at its job_end, then every stored point of the intake is replayed
 * for valuate; a valuation is inserted and completes its job; a job_error sends the
 * job back to pending with backoff, or fails it. What it has written carries
 * "stored": true, so that a second store in the same pipeline passes it on untouched.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
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

/* The columns of a price_point as jsonb_to_record() reads them from a record. */
#define POINT_INPUT                                                                                          \
	"json_to_record(o.rec) AS p(external_id text, adapter text,\n"                                       \
	"  title text, url text, condition text, price_type text, amount text, currency text,\n"             \
	"  converted_usd text, quantity int, price_cents bigint, shipping_cents bigint,\n"                   \
	"  fx_rate text, fx_as_of date, fx_source text, sold_at timestamptz, filtered_out boolean,\n"        \
	"  filter_reason text, raw jsonb, grade text, grade_lo int, grade_hi int, certifier text,\n"         \
	"  designations text[])\n"

/*
 * Insert the rows of from (each point with its intake, source and job in ids), or update
 * the point of the same identity when its data changed (migration 008 says what counts):
 * a row for each point written, true when it is new.
 */
#define UPSERT_POINTS(ids, from)                                                                             \
	"INSERT INTO price_points AS t (intake_id, source_id, job_id, external_id, adapter, title, url,\n"   \
	" condition, price_type, original_amount, original_currency, converted_usd, quantity,\n"             \
	" price_cents, shipping_cents, fx_rate, fx_as_of, fx_source, sold_at, filtered_out,\n"               \
	" filter_reason, raw, grade, grade_lo, grade_hi, certifier, designations)\n"                         \
	"SELECT " ids ", external_id, adapter, title, url, condition, price_type,\n"                         \
	" CASE WHEN amount ~ '^[0-9]+(\\.[0-9]+)?$' THEN amount::numeric END, currency,\n"                   \
	" CASE WHEN converted_usd ~ '^[0-9]+(\\.[0-9]+)?$' THEN converted_usd::numeric END,\n"               \
	" quantity, price_cents, shipping_cents,\n"                                                          \
	" CASE WHEN fx_rate ~ '^[0-9]+(\\.[0-9]+)?$' THEN fx_rate::numeric END, fx_as_of, fx_source,\n"      \
	" sold_at, coalesce(filtered_out, false), filter_reason, raw, grade, grade_lo, grade_hi,\n"          \
	" certifier, designations\n"                                                                         \
	"FROM " from "\n"                                                                                    \
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
	" designations = EXCLUDED.designations, updated_at = now()\n"                                        \
	"WHERE (t.adapter, t.title, t.url, t.condition, t.price_type, t.original_amount::text,\n"            \
	"  t.original_currency, t.converted_usd::text, t.quantity, t.price_cents, t.shipping_cents,\n"       \
	"  t.fx_rate::text, t.fx_as_of, t.fx_source, t.sold_at, t.filtered_out, t.filter_reason,\n"          \
	"  t.raw, t.grade, t.grade_lo, t.grade_hi, t.certifier, t.designations)\n"                           \
	" IS DISTINCT FROM (EXCLUDED.adapter, EXCLUDED.title, EXCLUDED.url, EXCLUDED.condition,\n"           \
	"  EXCLUDED.price_type, EXCLUDED.original_amount::text, EXCLUDED.original_currency,\n"               \
	"  EXCLUDED.converted_usd::text, EXCLUDED.quantity, EXCLUDED.price_cents,\n"                         \
	"  EXCLUDED.shipping_cents, EXCLUDED.fx_rate::text, EXCLUDED.fx_as_of, EXCLUDED.fx_source,\n"        \
	"  EXCLUDED.sold_at, EXCLUDED.filtered_out, EXCLUDED.filter_reason, EXCLUDED.raw,\n"                 \
	"  EXCLUDED.grade, EXCLUDED.grade_lo, EXCLUDED.grade_hi, EXCLUDED.certifier,\n"                      \
	"  EXCLUDED.designations)\n"                                                                         \
	"RETURNING t.xmax = 0\n"

/*
 * Several jobs in one statement, so one round trip for all: migration 008's function
 * (planned once per connection) checks that this worker still holds each job at the
 * attempt its record says (and touches its lock), writes the points of those it holds
 * that are new or changed, logs, and returns each held job's points and the newest of its
 * intake's earlier points for valuate. A late statement of an earlier attempt (its
 * process killed, the job back in the queue and claimed again, even by the same worker
 * id) writes nothing. The jobs of one statement have distinct intakes (flush_batch()), so
 * no job needs the points of another. Each held job has a first row with its number k, a
 * null id, its counts of new, changed and unchanged points and whether earlier points
 * were left out; then its points; a job not held has no row; the rows come in no order
 * (sort_rows()). Every parameter but the last two is a text[] in binary form: one per job
 * field (JOB_ARRAYS), then the points' job numbers and one per point column
 * (point_columns[]), so that the server reads no JSON but raw's; then the bound of the
 * replay (null: none) and whether to write (false: store's slow path stored the points
 * already, only the rows are wanted).
 */
#define JOB_ARRAYS     7
#define NPOINT_COLUMNS 24
#define ARRAY_PARAMS   (JOB_ARRAYS + 1 + NPOINT_COLUMNS)
#define JOBS_PARAMS    (ARRAY_PARAMS + 2)
static const char jobs_sql[] =
	"SELECT * FROM coin_pricer_store_points($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],\n"
	" $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],\n"
	" $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],\n"
	" $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[],\n"
	" $28::text[], $29::text[], $30::text[], $31::text[], $32::text[], $33::int, $34::bool)";

/* The slow way, after jobs_sql failed on some point of a job: one point at a time. */
static const char hold_sql[] = "UPDATE scrape_jobs SET locked_at = now()\n"
			       "WHERE id = $1 AND worker_id IS NOT DISTINCT FROM $2 AND status = 'running'\n"
			       " AND attempts = coalesce($3::int, attempts) RETURNING id";

static const char upsert_sql[] =
	"WITH input AS (\n"
	" SELECT DISTINCT ON (p.external_id) p.*\n"
	" FROM json_array_elements($1::json) WITH ORDINALITY AS o(rec, n)\n"
	" CROSS JOIN LATERAL " POINT_INPUT
	" ORDER BY p.external_id, o.n DESC)\n" UPSERT_POINTS("$2::uuid, $3::uuid, $4::uuid", "input");

static const char stored_log_sql[] =
	"INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)\n"
	"SELECT $1, 'info', 'stored ' || $2 || ' price points',\n"
	" json_build_object('points', $2::int, 'filtered', $3::int, 'left_out', $4::int, 'new', $5::int,\n"
	"  'changed', $6::int, 'unchanged', $7::int)";

/*
 * Back to pending after min(1 h, 30 s x 2^(attempts-1)) +-20 %, and at least $5 seconds
 * (a source's Retry-After), or failed; and a log row.
 */
static const char error_sql[] =
	"WITH j AS (\n"
	" SELECT id, attempts, max_attempts, $3::bool AND attempts < max_attempts AS retry\n"
	" FROM scrape_jobs WHERE id = $1 AND worker_id = $2 AND status = 'running'\n"
	"  AND attempts = coalesce($6::int, attempts) FOR UPDATE),\n"
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

/*
 * A valuation is stored, and its job completed, only while the job runs for this worker at
 * the attempt ($3) its record says (or when it has no job): a late valuation of an
 * attempt whose job went back to the queue is not stored.
 */
static const char valuation_sql[] = "SELECT * FROM coin_pricer_store_valuation($1::json, $2, $3::int)";

static const char complete_sql[] =
	"WITH done AS (\n"
	" UPDATE scrape_jobs SET status = 'completed', completed_at = now(), locked_at = NULL\n"
	" WHERE id = $1 AND worker_id = $2 AND status = 'running'\n"
	"  AND attempts = coalesce($3::int, attempts) RETURNING id, started_at),\n"
	"logged AS (\n"
	" INSERT INTO scrape_job_logs (job_id, log_level, message)\n"
	" SELECT id, 'info', 'completed with no price points to value' FROM done)\n"
	"SELECT count(*), max(round(extract(epoch FROM clock_timestamp() - started_at) * 1000))\n"
	"FROM done";

/* A job and the points store holds of it until they are stored. */
struct job {
	char *job_id, *intake_id, *source_id, *worker;
	char *attempt;	   /* its record's attempt, in digits, or NULL when it has none */
	struct buf points; /* "[point,point,..." of the job */
	size_t *starts;	   /* where each point starts in points */
	struct buf ids;	   /* the points' external_ids, each NUL-terminated */
	size_t *id_starts; /* where each point's external_id starts in ids */
	/* The points' values of each of point_columns[], as elements of a binary text[]. */
	struct buf cols[NPOINT_COLUMNS];
	size_t npoints, cap, nfiltered, left_out;
	/* Once stored: how many of its points were new, changed and unchanged, how many
	 * earlier points of its intake were replayed, and whether more were left out. */
	long n_new, n_changed, n_unchanged, history;
	int more;
	/* In a batch: its job record when that waits to be written with the batch (empty
	 * when written already), and its job_end record. */
	struct buf job_line, end_line;
	/* Once stored: the outcome (0, or -1 and s->db says why), whether it was held, and
	 * its rows [from, to) of res in the order of order[] (both owned when own_res). */
	PGresult *res;
	int *order;
	int own_res, rc, held, from, to;
};

/*
 * At most this many jobs, and about this many points, are stored in one statement. A
 * batch is only ever made of jobs whose input was already waiting: store never holds a
 * job back when its input would block.
 */
#define BATCH_JOBS   64
#define BATCH_POINTS 2000

/* Earlier points of an intake replayed at most (--history, STORE_HISTORY_POINTS). */
#define HISTORY_DEFAULT 1000
#define HISTORY_MAX	100000000

struct store {
	struct db db;
	const char *default_worker;
	int reconnect_seconds;
	long history_limit; /* earlier points of an intake replayed at most; 0: all */
	/* The current job: from its job record to its job_end (or job_error). */
	int in_job, valued;
	struct job cur;
	PGresult *replayed; /* the intake's points for valuate, once the job is stored */
	/* Jobs at their job_end, stored together when input would block or the batch is full. */
	struct job *batch;
	size_t nbatch, batch_cap, batch_points;
	/* For the second store's line per finished job. */
	long long median, duration_ms;
	int completed, has_median, confidence;
	struct buf s1, extra, s2, s3;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: store [--strict] [--worker ID] [--history N]\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Persists pipeline records in PostgreSQL (DATABASE_URL, else libpq's PG*\n"
	       "variables) and passes on what comes next:\n"
	       "  price_point  held until the job's job_end, then all of the job's points are\n"
	       "               stored in one transaction (intake, source, external_id is a\n"
	       "               point's identity; a point stored before is rewritten only when\n"
	       "               its data changed); then the job's points as stored, and the\n"
	       "               newest --history earlier points of the intake not filtered out,\n"
	       "               with only the fields valuate reads (no title, url, amount as\n"
	       "               listed, fx details), are written out for valuate; the job_end\n"
	       "               says how many points were new, changed and unchanged, and how\n"
	       "               many earlier ones came (\"history\").\n"
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
	       "  --history N   replay at most the N newest earlier points of the intake (by\n"
	       "                sold_at; 0: all of them); default STORE_HISTORY_POINTS, else 1000\n"
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

/*
 * Whether s reads as a uuid to PostgreSQL: 32 hex digits, a hyphen allowed after any group
 * of four, in optional braces. Checked at the job record, so that an id a hand-made file
 * got wrong is a bad line, not a failed statement taken for a lost database.
 */
static int
is_uuid(const char *s)
{
	size_t len = strlen(s), i, digits = 0;
	int hyphen_ok = 0;

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	for (i = 0; i < len; i++) {
		if (isxdigit((unsigned char)s[i])) {
			digits++;
			hyphen_ok = digits % 4 == 0;
		} else if (s[i] == '-' && hyphen_ok && i + 1 < len) {
			hyphen_ok = 0;
		} else {
			return 0;
		}
	}
	return digits == 32;
}

/* A job record's attempt in digits, newly allocated, or NULL when it has none. */
static char *
attempt_of(const struct ndj_record *r)
{
	int64_t n;
	char digits[24];

	if (ndj_int(ndj_get(r, "attempt"), &n) != 0 || n < 1 || n > INT32_MAX)
		return NULL;
	snprintf(digits, sizeof(digits), "%lld", (long long)n);
	return xstrdup(digits);
}

/*
 * Free a job's ids and empty its points. keep: the buffers stay allocated for the next
 * job; else they are freed too (the job is done with for good).
 */
static void
release_job(struct job *j, int keep)
{
	struct buf *bufs[4 + NPOINT_COLUMNS] = { &j->points, &j->ids, &j->job_line, &j->end_line };
	size_t c;

	free(j->job_id);
	free(j->intake_id);
	free(j->source_id);
	free(j->worker);
	free(j->attempt);
	j->job_id = j->intake_id = j->source_id = j->worker = j->attempt = NULL;
	for (c = 0; c < NPOINT_COLUMNS; c++)
		bufs[4 + c] = &j->cols[c];
	for (c = 0; c < sizeof(bufs) / sizeof(bufs[0]); c++)
		if (keep)
			buf_reset(bufs[c]);
		else
			buf_free(bufs[c]);
	if (!keep) {
		free(j->starts);
		free(j->id_starts);
		j->starts = j->id_starts = NULL;
		j->cap = 0;
	}
	j->npoints = j->nfiltered = j->left_out = 0;
	j->n_new = j->n_changed = j->n_unchanged = j->history = 0;
	j->more = 0;
	j->res = NULL;
	j->order = NULL;
	j->own_res = j->rc = j->held = j->from = j->to = 0;
}

static void
clear_job(struct job *j)
{
	release_job(j, 1);
}

static void
end_job(struct store *s)
{
	clear_job(&s->cur);
	s->in_job = s->valued = s->completed = s->has_median = 0;
	s->confidence = 0;
	s->median = s->duration_ms = 0;
	PQclear(s->replayed);
	s->replayed = NULL;
}

static const char *
worker_of(const struct store *s)
{
	return s->cur.worker ? s->cur.worker : s->default_worker;
}

/*
 * The worker as messages name it: its id, or when none came (no worker_id in the job
 * record, no --worker, no WORKER_ID) a phrase that says so rather than an empty name.
 */
static const char *
worker_label(const struct store *s)
{
	const char *w = worker_of(s);

	return *w ? w : "a worker with no id (none in the job record, no --worker, no WORKER_ID)";
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
	size_t end = i + 1 < s->cur.npoints ? s->cur.starts[i + 1] - 1 : s->cur.points.len;

	*text = s->cur.points.data + s->cur.starts[i];
	*len = end - s->cur.starts[i];
}

/*
 * After the one statement failed on some point: the points one at a time, each under
 * a savepoint, leaving out (with a warning naming it) a point that PostgreSQL refuses.
 * 0 (*held 0 when the lock was lost), or -1. The rows for valuate are read after it.
 */
static int
commit_one_by_one(struct store *s, int *held)
{
	const char *hold[3] = { s->cur.job_id, worker_of(s), s->cur.attempt };
	const char *params[4] = { NULL, s->cur.intake_id, s->cur.source_id, s->cur.job_id };
	const char *log_params[7];
	char counts[6][24];
	struct buf one = BUF_INIT;
	const char *text;
	size_t i, len;
	PGresult *res;
	int c;

	s->cur.left_out = 0;
	s->cur.n_new = s->cur.n_changed = 0;
	if (db_run(&s->db, "begin", "BEGIN", 0, NULL) < 0 ||
	    (res = db_exec(&s->db, "hold the job", hold_sql, 3, hold)) == NULL)
		goto fail;
	*held = PQntuples(res) == 1;
	PQclear(res);
	if (!*held) {
		PQclear(PQexec(s->db.conn, "ROLLBACK"));
		buf_free(&one);
		return 0;
	}
	for (i = 0; i < s->cur.npoints; i++) {
		point_text(s, i, &text, &len);
		buf_reset(&one);
		buf_addc(&one, '[');
		buf_add(&one, text, len);
		buf_addc(&one, ']');
		params[0] = one.data;
		if (db_run(&s->db, "savepoint", "SAVEPOINT point", 0, NULL) < 0)
			goto fail;
		if ((res = db_exec(&s->db, "store a price point", upsert_sql, 4, params)) != NULL) {
			/* A row when it was written: "t" new, "f" changed. */
			if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't')
				s->cur.n_new++;
			else if (PQntuples(res) == 1)
				s->cur.n_changed++;
			PQclear(res);
			if (db_run(&s->db, "release", "RELEASE SAVEPOINT point", 0, NULL) < 0)
				goto fail;
			continue;
		}
		if (db_lost(&s->db) || s->db.permanent)
			goto fail;
		log_warn("job %s: price_point %s left out, PostgreSQL refused it: %s", s->cur.job_id,
			 s->cur.ids.data + s->cur.id_starts[i], s->db.error);
		s->cur.left_out++;
		if (db_run(&s->db, "rollback to savepoint", "ROLLBACK TO SAVEPOINT point", 0, NULL) < 0)
			goto fail;
	}
	s->cur.n_unchanged = (long)(s->cur.npoints - s->cur.left_out) - s->cur.n_new - s->cur.n_changed;
	snprintf(counts[0], sizeof(counts[0]), "%zu", s->cur.npoints - s->cur.left_out);
	snprintf(counts[1], sizeof(counts[1]), "%zu", s->cur.nfiltered);
	snprintf(counts[2], sizeof(counts[2]), "%zu", s->cur.left_out);
	snprintf(counts[3], sizeof(counts[3]), "%ld", s->cur.n_new);
	snprintf(counts[4], sizeof(counts[4]), "%ld", s->cur.n_changed);
	snprintf(counts[5], sizeof(counts[5]), "%ld", s->cur.n_unchanged);
	log_params[0] = s->cur.job_id;
	for (c = 0; c < 6; c++)
		log_params[c + 1] = counts[c];
	if (db_run(&s->db, "log", stored_log_sql, 7, log_params) < 0 ||
	    db_run(&s->db, "commit", "COMMIT", 0, NULL) < 0)
		goto fail;
	buf_free(&one);
	return 0;
fail:
	buf_free(&one);
	return failed(s);
}

/*
 * The columns of a result of jobs_sql: job number, id, own, the fields (point_fields[]),
 * then on a job's first row its counts of new, changed and unchanged points and whether
 * earlier points of its intake were left out.
 */
#define COL_K	      0
#define COL_ID	      1
#define COL_OWN	      2
#define COL_FIELDS    3
#define COL_NEW	      (COL_FIELDS + 27)
#define COL_CHANGED   (COL_NEW + 1)
#define COL_UNCHANGED (COL_NEW + 2)
#define COL_MORE      (COL_NEW + 3)

/* Append one element to a binary text[]: its length, then its bytes (v NULL: a null). */
static void
add_element(struct buf *b, const char *v, size_t len)
{
	uint32_t n = htonl(v ? (uint32_t)len : 0xffffffffu);

	buf_add(b, &n, sizeof(n));
	if (v)
		buf_add(b, v, len);
}

/* Start b as a binary one-dimensional text[] of n elements (the elements follow). */
static void
begin_array(struct buf *b, size_t n)
{
	uint32_t head[5] = { htonl(n ? 1 : 0), htonl(1), htonl(25 /* text */), htonl((uint32_t)n), htonl(1) };

	buf_reset(b);
	buf_add(b, head, n ? sizeof(head) : 3 * sizeof(head[0]));
}

/* One field of n jobs (a string, or NULL for a null) as a binary text[] in b (replacing it). */
static void
add_array(struct buf *b, const struct job *jobs, const size_t *idx, size_t n, size_t field)
{
	const char *p;
	size_t i;

	begin_array(b, n);
	for (i = 0; i < n; i++) {
		p = *(char *const *)((const char *)&jobs[idx[i]] + field);
		add_element(b, p, p ? strlen(p) : 0);
	}
}

/* One count of n jobs as a binary text[] in b (replacing it). */
static void
add_count_array(struct buf *b, const struct job *jobs, const size_t *idx, size_t n, size_t field)
{
	char digits[24];
	size_t i;

	begin_array(b, n);
	for (i = 0; i < n; i++) {
		snprintf(digits, sizeof(digits), "%zu",
			 *(const size_t *)((const char *)&jobs[idx[i]] + field));
		add_element(b, digits, strlen(digits));
	}
}

/* Which jobs of the batch run_jobs() stores. */
struct batch_run {
	const size_t *idx; /* indexes into s->batch */
	size_t n;
	int write; /* 0: only read their rows (stored already, the slow way) */
};

/*
 * jobs_sql over the jobs of the batch that arg says: the rows in s->replayed. 0, or -1
 * (s->db says whether the connection was lost or the failure is for good).
 */
static int
run_jobs(struct store *s, void *arg)
{
	const struct batch_run *run = arg;
	const struct job *jobs = s->batch;
	const size_t *idx = run->idx;
	struct buf arrays[ARRAY_PARAMS];
	const char *params[JOBS_PARAMS];
	int lengths[JOBS_PARAMS], formats[JOBS_PARAMS];
	char digits[24], history[24];
	size_t i, p, npoints = 0;
	int k;

	PQclear(s->replayed);
	s->replayed = NULL;
	memset(arrays, 0, sizeof(arrays));
	/* (A job of the batch always has its worker: worker_of() when it joined.) */
	add_array(&arrays[0], jobs, idx, run->n, offsetof(struct job, job_id));
	add_array(&arrays[1], jobs, idx, run->n, offsetof(struct job, intake_id));
	add_array(&arrays[2], jobs, idx, run->n, offsetof(struct job, source_id));
	add_array(&arrays[3], jobs, idx, run->n, offsetof(struct job, worker));
	add_array(&arrays[4], jobs, idx, run->n, offsetof(struct job, attempt));
	add_count_array(&arrays[5], jobs, idx, run->n, offsetof(struct job, npoints));
	add_count_array(&arrays[6], jobs, idx, run->n, offsetof(struct job, nfiltered));
	for (i = 0; i < run->n; i++)
		npoints += jobs[idx[i]].npoints;
	begin_array(&arrays[JOB_ARRAYS], npoints);
	for (i = 0; i < run->n; i++) {
		snprintf(digits, sizeof(digits), "%zu", i + 1);
		for (p = 0; p < jobs[idx[i]].npoints; p++)
			add_element(&arrays[JOB_ARRAYS], digits, strlen(digits));
	}
	for (k = 0; k < NPOINT_COLUMNS; k++) {
		struct buf *b = &arrays[JOB_ARRAYS + 1 + k];

		begin_array(b, npoints);
		for (i = 0; i < run->n; i++)
			buf_add(b, jobs[idx[i]].cols[k].data, jobs[idx[i]].cols[k].len);
	}
	for (k = 0; k < ARRAY_PARAMS; k++) {
		params[k] = arrays[k].data;
		lengths[k] = (int)arrays[k].len;
		formats[k] = 1;
	}
	snprintf(history, sizeof(history), "%ld", s->history_limit);
	params[ARRAY_PARAMS] = s->history_limit > 0 ? history : NULL;
	params[ARRAY_PARAMS + 1] = run->write ? "true" : "false";
	for (k = ARRAY_PARAMS; k < JOBS_PARAMS; k++) {
		lengths[k] = 0;
		formats[k] = 0;
	}
	s->replayed = db_exec_format(&s->db,
				     !run->write   ? "read the intake's points"
				     : run->n == 1 ? "store the job"
						   : "store the jobs",
				     jobs_sql, JOBS_PARAMS, params, lengths, formats, 1);
	for (k = 0; k < ARRAY_PARAMS; k++)
		buf_free(&arrays[k]);
	return s->replayed ? 0 : -1;
}

/* How a column of OWN_POINT_COLUMNS, in binary form, goes into the record. */
enum field_kind {
	F_STRING, /* text: a JSON string */
	F_JSON,	  /* text that is JSON already (a number's text, json) */
	F_BOOL,
	F_INT,	/* int4 or int8 */
	F_UUID, /* 16 bytes */
	F_TIME, /* timestamptz: as to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') */
};

/* The members of a replayed price_point, in the order of the columns after own. */
static const struct {
	const char *name;
	enum field_kind kind;
	int own_only; /* left out of an earlier point of the intake */
} point_fields[] = {
	{ "job_id", F_UUID, 0 },	{ "intake_id", F_UUID, 0 },	  { "source_id", F_UUID, 0 },
	{ "adapter", F_STRING, 0 },	{ "external_id", F_STRING, 0 },	  { "title", F_STRING, 1 },
	{ "url", F_STRING, 1 },		{ "condition", F_STRING, 1 },	  { "price_type", F_STRING, 0 },
	{ "amount", F_STRING, 1 },	{ "currency", F_STRING, 1 },	  { "converted_usd", F_STRING, 1 },
	{ "sold_at", F_TIME, 0 },	{ "quantity", F_INT, 1 },	  { "reputation_weight", F_JSON, 0 },
	{ "filtered_out", F_BOOL, 0 },	{ "filter_reason", F_STRING, 1 }, { "price_cents", F_INT, 0 },
	{ "shipping_cents", F_INT, 1 }, { "fx_rate", F_STRING, 1 },	  { "fx_as_of", F_STRING, 1 },
	{ "fx_source", F_STRING, 1 },	{ "grade", F_STRING, 0 },	  { "grade_lo", F_INT, 0 },
	{ "grade_hi", F_INT, 0 },	{ "certifier", F_STRING, 0 },	  { "designations", F_JSON, 0 },
};

/* A binary int4 or int8 column of row i. */
static int64_t
binary_int(const PGresult *res, int i, int col)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(res, i, col);
	int len = PQgetlength(res, i, col), n;
	uint64_t u = 0;

	for (n = 0; n < len; n++)
		u = u << 8 | v[n];
	if (len == 4)
		return (int32_t)(uint32_t)u;
	return (int64_t)u;
}

/*
 * A timestamptz in binary form (microseconds from 2000-01-01 UTC) appended as to_char()
 * wrote it: "YYYY-MM-DDTHH:MM:SS.mmmZ" in UTC, milliseconds cut (not rounded), a year
 * before 1 as to_char numbers it (1 BC is 0001). Infinity: null, as to_char() gives.
 */
static void
add_time(struct buf *b, int64_t us)
{
	const int64_t day_us = INT64_C(86400000000);
	int64_t days, rem, z, era, doe, yoe, y, doy, mp, d, m;

	if (us == INT64_MAX || us == INT64_MIN) {
		buf_adds(b, "null");
		return;
	}
	days = us / day_us;
	rem = us % day_us;
	if (rem < 0) {
		rem += day_us;
		days--;
	}
	/* Days from 1970-01-01 to a civil date (proleptic Gregorian, as PostgreSQL counts). */
	z = days + 10957 + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	buf_addf(b, "\"%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ\"", (long long)(y > 0 ? y : 1 - y),
		 (long long)m, (long long)d, (long long)(rem / 3600000000), (long long)(rem / 60000000 % 60),
		 (long long)(rem / 1000000 % 60), (long long)(rem / 1000 % 1000));
}

/* Row i of a result of jobs_sql or replay_sql (binary) as a price_point record in b (replacing it). */
static void
point_record(struct buf *b, const PGresult *res, int i)
{
	static const char hex[] = "0123456789abcdef";
	int own = PQgetvalue(res, i, COL_OWN)[0] != 0;
	const unsigned char *u;
	char text[37];
	size_t f;
	int n, t;

	buf_reset(b);
	buf_adds(b, "{\"kind\":\"price_point\"");
	for (f = 0; f < sizeof(point_fields) / sizeof(point_fields[0]); f++) {
		int col = (int)f + COL_FIELDS;
		const char *v = PQgetvalue(res, i, col);

		if (point_fields[f].own_only && !own)
			continue;
		buf_addf(b, ",\"%s\":", point_fields[f].name);
		if (PQgetisnull(res, i, col)) {
			buf_adds(b, "null");
			continue;
		}
		switch (point_fields[f].kind) {
		case F_STRING:
			buf_add_json_string(b, v, (size_t)PQgetlength(res, i, col));
			break;
		case F_JSON:
			buf_add(b, v, (size_t)PQgetlength(res, i, col));
			break;
		case F_BOOL:
			buf_adds(b, v[0] ? "true" : "false");
			break;
		case F_INT:
			buf_addf(b, "%" PRId64, binary_int(res, i, col));
			break;
		case F_UUID:
			u = (const unsigned char *)v;
			for (n = 0, t = 0; n < 16; n++) {
				if (n == 4 || n == 6 || n == 8 || n == 10)
					text[t++] = '-';
				text[t++] = hex[u[n] >> 4];
				text[t++] = hex[u[n] & 15];
			}
			buf_addc(b, '"');
			buf_add(b, text, 36);
			buf_addc(b, '"');
			break;
		case F_TIME:
			add_time(b, binary_int(res, i, col));
			break;
		}
	}
	buf_adds(b, ",\"stored\":true}\n");
}

/* A row's job number and id (a job's first row: no id, before its points). */
struct row_key {
	int64_t k, id;
	int row;
};

static int
compare_rows(const void *a, const void *b)
{
	const struct row_key *x = a, *y = b;

	if (x->k != y->k)
		return x->k < y->k ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return 0;
}

/*
 * The rows of a result of jobs_sql or replay_sql in the order they are written: by job
 * number, then by id, a job's first row (no id) first. Newly allocated.
 */
static int *
sort_rows(const PGresult *res)
{
	int n = PQntuples(res), i;
	struct row_key *keys = xmalloc((size_t)(n ? n : 1) * sizeof(*keys));
	int *order = xmalloc((size_t)(n ? n : 1) * sizeof(*order));

	for (i = 0; i < n; i++) {
		keys[i].k = binary_int(res, i, COL_K);
		keys[i].id = PQgetisnull(res, i, COL_ID) ? INT64_MIN : binary_int(res, i, COL_ID);
		keys[i].row = i;
	}
	qsort(keys, (size_t)n, sizeof(*keys), compare_rows);
	for (i = 0; i < n; i++)
		order[i] = keys[i].row;
	free(keys);
	return order;
}

/*
 * Write rows order[from .. to) of res as points (a row with a null id: the job held, no
 * point).
 */
static void
write_replayed(struct store *s, const PGresult *res, const int *order, int from, int to)
{
	int i;

	for (i = from; i < to; i++) {
		if (PQgetisnull(res, order[i], COL_ID))
			continue;
		point_record(&s->s1, res, order[i]);
		ndj_write(s->s1.data, s->s1.len);
	}
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

static int flush_batch(struct store *s);
static int in_batch(const struct store *s, const char *job_id);

static int
on_job(struct store *s, struct ndj_record *r)
{
	char *job_id = string_of(ndj_get(r, "job_id"), &s->s1);
	char *intake_id = string_of(ndj_get(r, "intake_id"), &s->s1);
	char *source_id = string_of(ndj_get(r, "source_id"), &s->s1);

	int status = NDJ_BAD;

	if (!job_id || !intake_id || !source_id) {
		snprintf(r->err, sizeof(r->err), "a job record needs string job_id, intake_id and source_id");
		goto fail;
	}
	if (!is_uuid(job_id) || !is_uuid(intake_id) || !is_uuid(source_id)) {
		snprintf(r->err, sizeof(r->err), "job %.40s: job_id, intake_id and source_id must be uuids",
			 job_id);
		goto fail;
	}
	/* A job record waits with the batch; before one of a job in the batch, or after one
	 * that waited already (its job had no job_end), the batch is stored. */
	if (s->nbatch && (s->cur.job_line.len || in_batch(s, job_id)) && (status = flush_batch(s)) != 0)
		goto fail;
	if (s->in_job && s->cur.npoints)
		log_warn("line %lu: job %s ended without job_end: its %zu price points were not stored",
			 r->lineno, s->cur.job_id, s->cur.npoints);
	end_job(s);
	s->cur.job_id = job_id;
	s->cur.intake_id = intake_id;
	s->cur.source_id = source_id;
	s->cur.worker = string_of(ndj_get(r, "worker_id"), &s->s1);
	s->cur.attempt = attempt_of(r);
	s->in_job = 1;
	if (s->nbatch)
		buf_add(&s->cur.job_line, r->line, r->len);
	else
		ndj_pass(r);
	return 0;
fail:
	free(job_id);
	free(intake_id);
	free(source_id);
	return status;
}

/*
 * Whether member m (absent or null: yes) reads as a whole number from min to max as
 * PostgreSQL casts it into an integer column: a JSON number or a string of one, white
 * space around it allowed. Checked here, so that a value out of range is a bad line of
 * its own, not a failed statement for every job stored with it.
 */
static int
fits_integer(struct store *s, const struct ndj_member *m, long long min, long long max)
{
	const char *p;
	size_t i = 0, len;
	unsigned long long v = 0, limit;
	int negative = 0, digits = 0;

	if (ndj_is_null(m))
		return 1;
	p = m->val;
	len = m->val_len;
	if (*p == '"') {
		if (ndj_string(m, &s->s2) != 0)
			return 0;
		p = s->s2.data;
		len = s->s2.len;
	} else if (*p == '[' || *p == '{') {
		return 0;
	}
	while (i < len && isspace((unsigned char)p[i]))
		i++;
	if (i < len && (p[i] == '-' || p[i] == '+'))
		negative = p[i++] == '-';
	limit = negative ? (unsigned long long)-(min + 1) + 1 : (unsigned long long)max;
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
		if (v > (limit - (unsigned long long)(p[i] - '0')) / 10)
			return 0;
		v = v * 10 + (unsigned long long)(p[i] - '0');
	}
	while (i < len && isspace((unsigned char)p[i]))
		i++;
	return digits > 0 && i == len;
}

/* The integer members of a price_point, with their columns' ranges. */
static const struct {
	const char *name;
	long long min, max;
} integer_members[] = {
	{ "quantity", INT32_MIN, INT32_MAX },	    { "grade_lo", INT32_MIN, INT32_MAX },
	{ "grade_hi", INT32_MIN, INT32_MAX },	    { "price_cents", INT64_MIN, INT64_MAX },
	{ "shipping_cents", INT64_MIN, INT64_MAX },
};

static int
check_point(struct store *s, struct ndj_record *r)
{
	const struct ndj_member *type = ndj_get(r, "price_type");
	const struct ndj_member *job = ndj_get(r, "job_id");
	size_t i;

	if (!s->in_job) {
		snprintf(r->err, sizeof(r->err),
			 "a price_point outside a job: store needs the job "
			 "record first");
		return NDJ_BAD;
	}
	if (!ndj_is_null(job) && (ndj_string(job, &s->s1) != 0 || strcmp(s->s1.data, s->cur.job_id) != 0)) {
		snprintf(r->err, sizeof(r->err), "a price_point of another job than %s", s->cur.job_id);
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
	for (i = 0; i < sizeof(integer_members) / sizeof(integer_members[0]); i++) {
		if (!fits_integer(s, ndj_get(r, integer_members[i].name), integer_members[i].min,
				  integer_members[i].max)) {
			snprintf(r->err, sizeof(r->err), "\"%s\" must be a whole number from %lld to %lld",
				 integer_members[i].name, integer_members[i].min, integer_members[i].max);
			return NDJ_BAD;
		}
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

/* How a member of a price_point goes into its column of coin_pricer_store_jobs(). */
enum column_kind {
	C_TEXT,	   /* a string decoded, any other value as written (the server casts the text) */
	C_DECIMAL, /* the same, or null when not ^[0-9]+(\.[0-9]+)?$ (original_amount and the like) */
	C_JSON,	   /* the value as written (raw: the server reads it as jsonb) */
	C_ARRAY,   /* an array as a PostgreSQL array literal, other values as C_TEXT */
};

/* The point columns of coin_pricer_store_jobs(), in the order of its arguments. */
static const struct {
	const char *name;
	enum column_kind kind;
} point_columns[NPOINT_COLUMNS] = {
	{ "external_id", C_TEXT }, { "adapter", C_TEXT },      { "title", C_TEXT },
	{ "url", C_TEXT },	   { "condition", C_TEXT },    { "price_type", C_TEXT },
	{ "amount", C_DECIMAL },   { "currency", C_TEXT },     { "converted_usd", C_DECIMAL },
	{ "quantity", C_TEXT },	   { "price_cents", C_TEXT },  { "shipping_cents", C_TEXT },
	{ "fx_rate", C_DECIMAL },  { "fx_as_of", C_TEXT },     { "fx_source", C_TEXT },
	{ "sold_at", C_TEXT },	   { "filtered_out", C_TEXT }, { "filter_reason", C_TEXT },
	{ "raw", C_JSON },	   { "grade", C_TEXT },	       { "grade_lo", C_TEXT },
	{ "grade_hi", C_TEXT },	   { "certifier", C_TEXT },    { "designations", C_ARRAY },
};
#define COLUMN_SOLD_AT 15

/* Whether v (len bytes) is ^[0-9]+(\.[0-9]+)?$. */
static int
is_decimal(const char *v, size_t len)
{
	size_t i = 0, frac;

	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++;
	if (i == 0 || i == len)
		return i > 0;
	if (v[i] != '.')
		return 0;
	frac = ++i;
	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++;
	return i > frac && i == len;
}

/* Where the JSON value at p (valid, as ndj_scan() checked its line) ends. */
static const char *
value_end(const char *p, const char *end)
{
	int depth = 0, in_string = 0;

	if (*p != '"' && *p != '[' && *p != '{') {
		while (p < end && !strchr(",]} \t\r\n", *p))
			p++;
		return p;
	}
	for (; p < end; p++) {
		if (in_string) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_string = 0;
		} else if (*p == '"') {
			in_string = 1;
		} else if (*p == '[' || *p == '{') {
			depth++;
		} else if (*p == ']' || *p == '}') {
			depth--;
		}
		if (!in_string && depth == 0)
			return p + 1;
	}
	return end;
}

/*
 * The JSON array at p as a PostgreSQL array literal, appended to out, as
 * json_to_record() reads one into a text[]: strings decoded, other scalars and objects as
 * written, null as NULL, an array in an array as a dimension. Returns where it ended.
 */
static const char *
add_array_literal(struct buf *out, const char *p, const char *end, struct buf *scratch)
{
	struct ndj_member m;
	const char *q, *v;
	size_t len, i;
	int first = 1;

	buf_addc(out, '{');
	for (p++; p < end;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ',') {
			p++;
			continue;
		}
		if (*p == ']')
			break;
		if (!first)
			buf_addc(out, ',');
		first = 0;
		if (*p == '[') {
			p = add_array_literal(out, p, end, scratch);
			continue;
		}
		q = value_end(p, end);
		if (q - p == 4 && memcmp(p, "null", 4) == 0) {
			buf_adds(out, "NULL");
		} else {
			v = p;
			len = (size_t)(q - p);
			if (*p == '"') {
				memset(&m, 0, sizeof(m));
				m.val = p;
				m.val_len = len;
				ndj_string(&m, scratch);
				v = scratch->data;
				len = scratch->len;
			}
			buf_addc(out, '"');
			for (i = 0; i < len; i++) {
				if (v[i] == '"' || v[i] == '\\')
					buf_addc(out, '\\');
				buf_addc(out, v[i]);
			}
			buf_addc(out, '"');
		}
		p = q;
	}
	buf_addc(out, '}');
	return p < end ? p + 1 : end;
}

/* Member m (NULL: absent) as an element of a column of kind k, appended to b. */
static void
add_column_element(struct store *s, struct buf *b, const struct ndj_member *m, enum column_kind k)
{
	const char *v;
	size_t len;

	if (ndj_is_null(m)) {
		add_element(b, NULL, 0);
		return;
	}
	v = m->val;
	len = m->val_len;
	if (k == C_ARRAY && *v == '[') {
		buf_reset(&s->s2);
		add_array_literal(&s->s2, v, v + len, &s->s3);
		v = s->s2.data;
		len = s->s2.len;
	} else if (k != C_JSON && *v == '"') {
		ndj_string(m, &s->s2);
		v = s->s2.data;
		len = s->s2.len;
	}
	add_element(b, k == C_DECIMAL && !is_decimal(v, len) ? NULL : v, len);
}

static int
on_price_point(struct store *s, struct ndj_record *r)
{
	const struct ndj_member *sold_at;
	int rc, bad_time;
	size_t c;

	if (is_true(ndj_get(r, "stored"))) {
		ndj_pass(r);
		return 0;
	}
	if (check_point(s, r) != 0)
		return NDJ_BAD;
	if (s->cur.npoints == s->cur.cap) {
		size_t id_cap = s->cur.cap; /* the two arrays grow together, by s->cur.cap */

		BUF_ALLOC_GROW(s->cur.id_starts, s->cur.npoints + 1, id_cap);
		BUF_ALLOC_GROW(s->cur.starts, s->cur.npoints + 1, s->cur.cap);
	}
	/* check_point left the external_id in s1. */
	s->cur.id_starts[s->cur.npoints] = s->cur.ids.len;
	buf_add(&s->cur.ids, s->s1.data, s->s1.len + 1);
	buf_addc(&s->cur.points, s->cur.npoints ? ',' : '[');
	s->cur.starts[s->cur.npoints] = s->cur.points.len;
	sold_at = ndj_get(r, "sold_at");
	rc = ndj_string(sold_at, &s->s1);
	bad_time = rc < 0 || (rc == 0 && !valid_time(s->s1.data, s->s1.len));
	if (bad_time) {
		log_warn("line %lu: job %s: price_point %s: sold_at %.*s is not an RFC 3339 time "
			 "PostgreSQL can store: stored as null",
			 r->lineno, s->cur.job_id, s->cur.ids.data + s->cur.id_starts[s->cur.npoints],
			 (int)(sold_at->val_len > 64 ? 64 : sold_at->val_len), sold_at->val);
		add_without_sold_at(&s->cur.points, r);
	} else {
		buf_add(&s->cur.points, r->line, r->len);
	}
	for (c = 0; c < NPOINT_COLUMNS; c++)
		add_column_element(s, &s->cur.cols[c],
				   c == COLUMN_SOLD_AT && bad_time ? NULL : ndj_get(r, point_columns[c].name),
				   point_columns[c].kind);
	s->cur.npoints++;
	s->cur.nfiltered += is_true(ndj_get(r, "filtered_out"));
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
	const char *params[6] = { s->cur.job_id, worker_of(s),	 e->retryable,
				  e->message,	 e->retry_after, s->cur.attempt };
	PGresult *res = db_exec(&s->db, "record the job's failure", error_sql, 6, params);

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
		log_warn("job %s is no longer held by %s: its failure was not recorded", s->cur.job_id,
			 worker_label(s));
		return 0;
	}
	if (strcmp(e->status, "pending") == 0)
		log_warn("job %s (intake %s) failed: %s; it will be retried after %s", s->cur.job_id,
			 s->cur.intake_id, e->message, e->run_at);
	else
		log_error("job %s (intake %s) failed for good: %s", s->cur.job_id, s->cur.intake_id,
			  e->message);
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

	buf_addf(&message, "store: the job's %zu price points could not be stored (%s)", s->cur.npoints,
		 s->db.error);
	e.message = message.data;
	rc = record_failure(s, &e, &extra);
	if (rc == 0) {
		buf_reset(&s->s1);
		buf_adds(&s->s1, "{\"kind\":\"job_error\",\"job_id\":");
		buf_add_json_string(&s->s1, s->cur.job_id, strlen(s->cur.job_id));
		buf_adds(&s->s1, ",\"intake_id\":");
		buf_add_json_string(&s->s1, s->cur.intake_id, strlen(s->cur.intake_id));
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

static void
swap_jobs(struct job *a, struct job *b)
{
	struct job t = *a;

	*a = *b;
	*b = t;
}

/*
 * From a held job's rows [from, to) of res in the order of order[] (its first row first):
 * its counts of new, changed and unchanged points when the first row has them (the slow
 * way counted them itself), how many earlier points of its intake came, whether more
 * were left out.
 */
static void
read_first_row(struct job *j, const PGresult *res, const int *order, int from, int to)
{
	int i, row;

	if (from >= to || !PQgetisnull(res, order[from], COL_ID))
		return;
	row = order[from];
	if (!PQgetisnull(res, row, COL_NEW)) {
		j->n_new = (long)binary_int(res, row, COL_NEW);
		j->n_changed = (long)binary_int(res, row, COL_CHANGED);
		j->n_unchanged = (long)binary_int(res, row, COL_UNCHANGED);
	}
	j->more = !PQgetisnull(res, row, COL_MORE) && PQgetvalue(res, row, COL_MORE)[0] != 0;
	j->history = 0;
	for (i = from + 1; i < to; i++)
		j->history += PQgetvalue(res, order[i], COL_OWN)[0] == 0;
}

/*
 * What store passes on for the job in s->cur (a job of the batch, swapped in) once its
 * points were stored or not (rc, held), with its rows [from, to) of res: its job record
 * when it waited, then its points and job_end, or its job_end marked lock_lost, or a
 * job_error. 0, or an exit status to stop.
 */
static int
finish_stored(struct store *s, const PGresult *res, const int *order, int from, int to, int rc, int held)
{
	struct ndj_record end = { 0 };
	int status = 0;

	if (s->cur.job_line.len) {
		buf_addc(&s->cur.job_line, '\n');
		ndj_write(s->cur.job_line.data, s->cur.job_line.len);
	}
	if (rc < 0 && s->db.permanent) {
		log_error("job %s: its price points could not be stored, and retrying will not help "
			  "until the database is fixed",
			  s->cur.job_id);
		return stop_status(s);
	}
	if (rc < 0)
		return store_failed(s) < 0 ? stop_status(s) : 0;
	/* The job_end passed ndj_scan() when it came: it passes again. */
	if (ndj_scan(&end, s->cur.end_line.data, s->cur.end_line.len) < 0) {
		ndj_record_free(&end);
		log_error("job %s: its job_end cannot be read again", s->cur.job_id);
		return EXIT_SOFTWARE;
	}
	if (!held) {
		log_warn("job %s is no longer held by %s (its lock expired and another worker took "
			 "it): its %zu price points were not stored",
			 s->cur.job_id, worker_label(s), s->cur.npoints);
		pass_stored(&end, ",\"lock_lost\":true");
	} else {
		if (res != NULL)
			read_first_row(&s->cur, res, order, from, to);
		log_debug("job %s: stored %zu price points (%zu filtered out, %zu left out; %ld new, %ld "
			  "changed, %ld unchanged); %ld earlier points of the intake replayed%s",
			  s->cur.job_id, s->cur.npoints - s->cur.left_out, s->cur.nfiltered, s->cur.left_out,
			  s->cur.n_new, s->cur.n_changed, s->cur.n_unchanged, s->cur.history,
			  s->cur.more ? ", older ones left out" : "");
		if (res != NULL)
			write_replayed(s, res, order, from, to);
		buf_reset(&s->extra);
		buf_addf(&s->extra,
			 ",\"points\":%zu,\"filtered\":%zu,\"new\":%ld,\"changed\":%ld,\"unchanged\":%ld,"
			 "\"history\":{\"points\":%ld,\"limit\":",
			 s->cur.npoints - s->cur.left_out, s->cur.nfiltered, s->cur.n_new, s->cur.n_changed,
			 s->cur.n_unchanged, s->cur.history);
		if (s->history_limit > 0)
			buf_addf(&s->extra, "%ld", s->history_limit);
		else
			buf_adds(&s->extra, "null");
		buf_addf(&s->extra, ",\"more\":%s}", s->cur.more ? "true" : "false");
		pass_stored(&end, s->extra.data);
	}
	ndj_record_free(&end);
	return status;
}

/*
 * Job i of the batch on its own, after the statement of its round failed: its own
 * statement, and when that fails too, one point at a time; its outcome in the job.
 * 0, or -1 when the connection is lost for good.
 */
static int
store_alone(struct store *s, size_t i)
{
	struct batch_run one = { &i, 1, 1 };
	struct job *j = &s->batch[i];
	int rc, held = 1;

	rc = with_reconnect(s, run_jobs, &one);
	if (rc < 0 && db_lost(&s->db))
		return -1;
	if (rc < 0 && !s->db.permanent && j->npoints > 0) {
		swap_jobs(&s->cur, j);
		log_warn("job %s: storing its %zu price points in one statement failed; storing them "
			 "one at a time",
			 s->cur.job_id, s->cur.npoints);
		rc = commit_one_by_one(s, &held);
		swap_jobs(&s->cur, j);
		one.write = 0;
		if (rc == 0 && held)
			rc = with_reconnect(s, run_jobs, &one);
		if (rc < 0 && db_lost(&s->db))
			return -1;
	} else if (rc == 0) {
		held = PQntuples(s->replayed) > 0;
	}
	j->res = s->replayed;
	j->order = j->res ? sort_rows(j->res) : NULL;
	j->own_res = 1;
	s->replayed = NULL;
	j->from = 0;
	j->to = j->res ? PQntuples(j->res) : 0;
	j->rc = rc;
	j->held = held;
	return 0;
}

/*
 * Store the jobs of the batch and write what follows each, in their order; then the
 * current job's record if it waited for the batch. The jobs go in rounds, one statement
 * each: a round holds at most one job of an intake, so that a job sees the points of the
 * jobs of its intake before it, stored by an earlier round. 0, or an exit status to stop
 * (the jobs not written out are claimed again later; what was stored is stored again).
 */
static int
flush_batch(struct store *s)
{
	size_t *idx = NULL, *round = NULL, i, m, r, n, nrounds = 0;
	PGresult **results = NULL;
	int **orders = NULL;
	int rc, row, status = 0;

	if (s->nbatch > 0) {
		idx = xmalloc(s->nbatch * sizeof(*idx));
		round = xmalloc(s->nbatch * sizeof(*round));
		for (i = 0; i < s->nbatch; i++) {
			round[i] = 0;
			for (m = 0; m < i; m++)
				if (strcmp(s->batch[m].intake_id, s->batch[i].intake_id) == 0)
					round[i]++;
			if (round[i] + 1 > nrounds)
				nrounds = round[i] + 1;
		}
		results = xmalloc(nrounds * sizeof(*results));
		orders = xmalloc(nrounds * sizeof(*orders));
		for (r = 0; r < nrounds; r++) {
			results[r] = NULL;
			orders[r] = NULL;
		}
	}
	for (r = 0; r < nrounds && status == 0; r++) {
		struct batch_run run = { idx, 0, 1 };

		for (i = 0; i < s->nbatch; i++)
			if (round[i] == r)
				idx[run.n++] = i;
		rc = with_reconnect(s, run_jobs, &run);
		if (rc < 0 && db_lost(&s->db)) {
			status = stop_status(s);
		} else if (rc == 0) {
			results[r] = s->replayed;
			s->replayed = NULL;
			orders[r] = sort_rows(results[r]);
			for (n = 0, row = 0; n < run.n; n++) {
				struct job *j = &s->batch[idx[n]];

				for (j->from = row;
				     row < PQntuples(results[r]) &&
				     binary_int(results[r], orders[r][row], COL_K) == (int64_t)n + 1;
				     row++)
					;
				j->to = row;
				j->res = results[r];
				j->order = orders[r];
				j->rc = 0;
				j->held = row > j->from;
			}
		} else if (s->db.permanent) {
			/* This round and the ones after it: none can be stored. */
			for (i = 0; i < s->nbatch; i++)
				if (round[i] >= r)
					s->batch[i].rc = -1;
			break;
		} else {
			for (n = 0; n < run.n && status == 0; n++)
				if (store_alone(s, idx[n]) < 0)
					status = stop_status(s);
		}
	}
	for (i = 0; i < s->nbatch && status == 0; i++) {
		struct job *j = &s->batch[i];

		swap_jobs(&s->cur, j);
		/* (the job is in s->cur now, its outcome with it) */
		status = finish_stored(s, s->cur.res, s->cur.order, s->cur.from, s->cur.to, s->cur.rc,
				       s->cur.held);
		swap_jobs(&s->cur, j);
	}
	for (i = 0; i < s->nbatch; i++) {
		if (s->batch[i].own_res) {
			PQclear(s->batch[i].res);
			free(s->batch[i].order);
		}
		clear_job(&s->batch[i]);
	}
	for (r = 0; r < nrounds; r++) {
		PQclear(results[r]);
		free(orders[r]);
	}
	free(results);
	free(orders);
	free(idx);
	free(round);
	s->nbatch = s->batch_points = 0;
	if (status == 0 && s->cur.job_line.len) {
		buf_addc(&s->cur.job_line, '\n');
		ndj_write(s->cur.job_line.data, s->cur.job_line.len);
		buf_reset(&s->cur.job_line);
	}
	return status;
}

/* Before a read that would block: the batch is stored now, never held back. */
static int
flush_when_idle(void *ctx)
{
	return flush_batch(ctx);
}

/* Whether this job is in the batch already. */
static int
in_batch(const struct store *s, const char *job_id)
{
	size_t i;

	for (i = 0; i < s->nbatch; i++)
		if (strcmp(s->batch[i].job_id, job_id) == 0)
			return 1;
	return 0;
}

/* The current job at its job_end (r) joins the batch with its points. */
static void
add_to_batch(struct store *s, const struct ndj_record *r)
{
	struct job *b, t;

	if (s->nbatch == s->batch_cap) {
		size_t cap = s->batch_cap ? 2 * s->batch_cap : 8;

		s->batch = xrealloc(s->batch, cap * sizeof(*s->batch));
		memset(s->batch + s->batch_cap, 0, (cap - s->batch_cap) * sizeof(*s->batch));
		s->batch_cap = cap;
	}
	b = &s->batch[s->nbatch++];
	/* The points (and a waiting job record) move; the ids are copied, the job goes on. */
	t = *b;
	*b = s->cur;
	s->cur.points = t.points;
	s->cur.starts = t.starts;
	s->cur.ids = t.ids;
	s->cur.id_starts = t.id_starts;
	memcpy(s->cur.cols, t.cols, sizeof(t.cols));
	s->cur.cap = t.cap;
	s->cur.job_line = t.job_line;
	s->cur.end_line = t.end_line;
	s->cur.npoints = s->cur.nfiltered = s->cur.left_out = 0;
	b->job_id = xstrdup(s->cur.job_id);
	b->intake_id = xstrdup(s->cur.intake_id);
	b->source_id = xstrdup(s->cur.source_id);
	b->worker = xstrdup(worker_of(s));
	b->attempt = s->cur.attempt ? xstrdup(s->cur.attempt) : NULL;
	buf_reset(&b->end_line);
	buf_add(&b->end_line, r->line, r->len);
	s->batch_points += b->npoints;
}

/* The second store at a job's end: one log line for the finished job. */
static void
log_finished(struct store *s, const struct ndj_record *r)
{
	int64_t points = -1, filtered = -1, n_new, n_changed, n_unchanged;
	char median[48], written[96] = "";

	ndj_int(ndj_get(r, "points"), &points);
	ndj_int(ndj_get(r, "filtered"), &filtered);
	if (ndj_int(ndj_get(r, "new"), &n_new) == 0 && ndj_int(ndj_get(r, "changed"), &n_changed) == 0 &&
	    ndj_int(ndj_get(r, "unchanged"), &n_unchanged) == 0)
		snprintf(written, sizeof(written), "; %lld new, %lld changed, %lld unchanged",
			 (long long)n_new, (long long)n_changed, (long long)n_unchanged);
	if (s->has_median)
		snprintf(median, sizeof(median), "$%lld.%02lld", s->median / 100, s->median % 100);
	else
		snprintf(median, sizeof(median), "none");
	log_info("job %s completed: intake %s, %lld points (%lld filtered out%s), median %s, "
		 "confidence %d, %lld ms",
		 s->cur.job_id, s->cur.intake_id, (long long)points, (long long)filtered, written, median,
		 s->confidence, s->duration_ms);
}

static int
on_job_end(struct store *s, struct ndj_record *r)
{
	int status;

	if (is_true(ndj_get(r, "stored"))) {
		/* The second store: a job whose points gave no valuation is done all the same. */
		int completed = s->completed;

		if (s->in_job && !s->valued && !is_true(ndj_get(r, "lock_lost"))) {
			const char *params[3] = { s->cur.job_id, worker_of(s), s->cur.attempt };
			PGresult *res = db_exec(&s->db, "complete the job", complete_sql, 3, params);

			if (res == NULL)
				return db_lost(&s->db) || s->db.permanent ? stop_status(s) : 0;
			completed = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
			if (completed)
				s->duration_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
			PQclear(res);
			if (!completed)
				log_warn("job %s is no longer held by %s: left alone", s->cur.job_id,
					 worker_label(s));
			write_job_done(s, s->cur.job_id, s->cur.intake_id, NULL, completed);
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
	/* Stored with the jobs whose input waits after it, or now when none does. */
	add_to_batch(s, r);
	if (s->nbatch < BATCH_JOBS && s->batch_points < BATCH_POINTS && ndj_input_waiting())
		return 0;
	status = flush_batch(s);
	ndj_flush();
	return status;
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
	if (!s->in_job || ndj_string(job, &s->s1) != 0 || strcmp(s->s1.data, s->cur.job_id) != 0) {
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
				 r->lineno, s->cur.job_id, retry_after);
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
	const char *attempt; /* its job's attempt, when that job is the current one */
	char id[24];
	int completed;
	long long duration_ms;
};

static int
insert_valuation(struct store *s, void *arg)
{
	struct valuation *v = arg;
	const char *params[3] = { v->r->line, worker_of(s), v->attempt };
	PGresult *res = db_exec(&s->db, "store the valuation", valuation_sql, 3, params);

	if (res == NULL)
		return -1;
	v->id[0] = '\0';
	v->completed = 0;
	if (PQntuples(res) == 1) { /* none: its job is no longer held, nothing stored */
		snprintf(v->id, sizeof(v->id), "%s", PQgetvalue(res, 0, 0));
		v->completed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
		v->duration_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	}
	PQclear(res);
	return 0;
}

static int
on_valuation(struct store *s, struct ndj_record *r)
{
	struct valuation v = { r, NULL, "", 0, 0 };
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
	if (s->in_job && ndj_string(job, &s->s1) == 0 && strcmp(s->s1.data, s->cur.job_id) == 0)
		v.attempt = s->cur.attempt;
	rc = with_reconnect(s, insert_valuation, &v);
	if (rc < 0) {
		buf_free(&intake);
		if (db_lost(&s->db))
			return stop_status(s);
		snprintf(r->err, sizeof(r->err), "the valuation could not be stored");
		return NDJ_BAD;
	}
	has_job = ndj_string(job, &s->s1) == 0;
	if (s->in_job && has_job && strcmp(s->s1.data, s->cur.job_id) == 0)
		s->valued = 1;
	if (s->in_job && has_job && strcmp(s->s1.data, s->cur.job_id) == 0 && v.completed) {
		s->completed = 1;
		s->duration_ms = v.duration_ms;
		s->has_median = ndj_int(ndj_get(r, "median_cents"), &n) == 0;
		s->median = s->has_median ? (long long)n : 0;
		s->confidence = ndj_int(ndj_get(r, "confidence"), &n) == 0 ? (int)n : 0;
	}
	if (!v.id[0]) {
		log_warn("the valuation of job %s was not stored: the job is no longer held by %s at "
			 "attempt %s (it went back to the queue, or another worker took it)",
			 has_job ? s->s1.data : "?", worker_label(s), v.attempt ? v.attempt : "any");
		ndj_pass(r);
	} else {
		pass_stored(r, NULL);
	}
	write_job_done(s, has_job ? s->s1.data : NULL, intake.data, v.id[0] ? v.id : NULL, v.completed);
	buf_free(&intake);
	return 0;
}

static int
on_record(struct ndj_record *r, void *ctx)
{
	struct store *s = ctx;
	int status;

	/* Only a job's record, points and job_end may come while a batch waits. */
	if (s->nbatch &&
	    (is_true(ndj_get(r, "stored")) ||
	     (strcmp(r->kind, "job") != 0 && strcmp(r->kind, "price_point") != 0 &&
	      strcmp(r->kind, "job_end") != 0)) &&
	    (status = flush_batch(s)) != 0)
		return status;

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
	int status = flush_batch(s);

	if (status != 0)
		return status;

	if (s->in_job && s->cur.npoints)
		log_warn("input ended before job %s's job_end: its %zu price points were not stored",
			 s->cur.job_id, s->cur.npoints);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "worker", required_argument, NULL, 'W' }, { "history", required_argument, NULL, 'H' },
		{ "strict", no_argument, NULL, 's' },	    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	    { NULL, 0, NULL, 0 },
	};
	struct store s;
	struct ndj_stage stage = { on_record, finish, &s, 0 };
	const char *history = NULL;
	int c, status;

	memset(&s, 0, sizeof(s));
	cli_die_with_parent();
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
		case 'H':
			if (cli_number(optarg, 0, HISTORY_MAX, &s.history_limit) < 0) {
				log_error("--history wants a number of points from 0 (all) to %d, not \"%s\"",
					  HISTORY_MAX, optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			history = optarg;
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
	if (history == NULL && (history = getenv("STORE_HISTORY_POINTS")) != NULL && *history &&
	    cli_number(history, 0, HISTORY_MAX, &s.history_limit) < 0) {
		log_error("STORE_HISTORY_POINTS wants a number of points from 0 (all) to %d, not \"%s\"",
			  HISTORY_MAX, history);
		return EXIT_CONFIG;
	}
	if (history == NULL || *history == '\0')
		s.history_limit = HISTORY_DEFAULT;
	if (s.default_worker == NULL)
		s.default_worker = "";
	if (db_connect(&s.db) < 0) {
		status = db_exit_status(&s.db);
		ndj_close_output();
		goto out;
	}
	ndj_set_idle(flush_when_idle, &s);
	status = ndj_run(&stage);
	if (status == EXIT_TEMPFAIL)
		log_error("giving up: the database at %s cannot be reached; the unfinished job will "
			  "be claimed again",
			  s.db.target);
out:
	end_job(&s);
	release_job(&s.cur, 0);
	for (c = 0; c < (int)s.batch_cap; c++)
		release_job(&s.batch[c], 0);
	free(s.batch);
	buf_free(&s.s1);
	buf_free(&s.extra);
	buf_free(&s.s2);
	buf_free(&s.s3);
	db_close(&s.db);
	log_cleanup();
	return status;
}
