/*
 * claim-job: claim scrape jobs from PostgreSQL and write one "job" record each, with
 * everything later stages need (source, attribution, rules, fx rates), then exit.
 * Also the supervisor's heartbeat (--touch) and crash recovery (--release).
 */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "db.h"
#include "exits.h"
#include "log.h"
#include "ndjson.h"

/*
 * The claim is migration 009's coin_pricer_claim(), whose plans the server makes once per
 * connection (it planned the whole statement anew for every claim): one statement, no
 * session state, so it works on a direct connection and through any pooler. Stale running
 * jobs (their worker died) first, then pending jobs that are due, best priority first,
 * oldest first, walking the distinct priorities (at most 100) one index probe each, so
 * that jobs waiting out a backoff are never stepped over; rows are locked (FOR NO KEY
 * UPDATE SKIP LOCKED) only as the LIMIT pulls them. With the upkeep ($9), a job that has
 * used up its attempts, or that no collector of the worker handles (--collects), is failed
 * with the reason rather than run. With $5 (--follow's --in-flight) it claims only as many
 * as keep the worker's running jobs (claimed within the last $6 seconds, and since $8,
 * when this claimer started) at $5. Rows: the job record, the jobs the upkeep failed, and
 * how many it had room for.
 */
static const char claim_sql[] =
	"SELECT o_job, o_failed, o_room FROM coin_pricer_claim($1::int, $2::int, $3, $4, $5::int, $6::int, $7,\n"
	" $8::timestamptz, $9::boolean)";

/* How many --worker a --release takes (pipeline.sh's workers, released at its start). */
#define MAX_RELEASE 1000

/*
 * The longest a wait lasts before it looks at the stop flag again: a SIGTERM that came
 * while a statement ran (libpq goes on through EINTR) sets the flag before the wait
 * starts, and no signal ends that wait; it ended at the poll interval (30 s with
 * POLL_INTERVAL_SECONDS=30, the whole grace period of pipeline.sh).
 */
#define STOP_CHECK_MS 250

/* How long --follow waits at start for a NOTIFY to itself. */
#define NOTIFY_CHECK_MS 1000

static const char touch_sql[] =
	"UPDATE scrape_jobs SET locked_at = now() WHERE worker_id = $1 AND status = 'running'";

/*
 * The heartbeat of --follow: only jobs claimed within JOB_MAX_SECONDS, so that a job a
 * stage dropped (refused as a bad line) is not kept locked for ever: its lock expires
 * and the claim takes it again, or fails it on its last attempt.
 */
static const char follow_touch_sql[] =
	"UPDATE scrape_jobs SET locked_at = now() WHERE worker_id = $1 AND status = 'running'\n"
	" AND started_at > now() - make_interval(secs => $2::int) AND started_at >= $3::timestamptz";

static const char in_flight_sql[] =
	"SELECT count(*) FROM scrape_jobs WHERE worker_id = $1 AND status = 'running'\n"
	" AND started_at > now() - make_interval(secs => $2::int) AND started_at >= $3::timestamptz";

/*
 * Whether --once must go on although its claim found nothing: a due job that it could
 * not take (locked by a claim on its way: another worker's, or one of an earlier run of
 * this worker that will land any moment), or a job that such a claim of an earlier run
 * took (one snapshot sees the claim either landed or not).
 */
static const char jobs_left_sql[] =
	"SELECT EXISTS (SELECT 1 FROM scrape_jobs j JOIN sources s ON s.id = j.source_id\n"
	"  WHERE j.status = 'pending' AND j.attempts < j.max_attempts AND j.run_at <= now()\n"
	"   AND s.enabled AND ($2::text IS NULL OR s.adapter_type = $2)\n"
	"   AND ($3::text IS NULL OR s.adapter_type LIKE $3))\n"
	" OR EXISTS (SELECT 1 FROM scrape_jobs WHERE worker_id = $1 AND status = 'running'\n"
	"  AND started_at < $4::timestamptz)";

/*
 * When this --follow started, by the database's clock: its own claims are not older; the
 * server process's id, which says whether the connection is direct (see direct); and the
 * channel of its worker's jobs leaving "running", named as migration 009's trigger names it.
 */
static const char now_sql[] =
	"SELECT now()::text, pg_backend_pid(),\n"
	" 'coin_pricer_done_' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 32)";

/*
 * Back to pending at once, or failed when the job has used up its attempts. With $2, only
 * the jobs claimed before then: --follow returns those that a claim of an earlier run of
 * its worker took after that run was stopped (the statement was on its way, and landed
 * after the supervisor's release); no process of its own runs them.
 */
#define RELEASE_SQL(where, why)                                                                              \
	"WITH released AS (\n"                                                                               \
	" UPDATE scrape_jobs SET\n"                                                                          \
	"  status = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END,\n"                   \
	"  completed_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,\n"                     \
	"  error_message = CASE WHEN attempts < max_attempts THEN error_message\n"                           \
	"   ELSE 'used up its ' || max_attempts || ' attempts: the worker ' || $1\n"                         \
	"    || ' stopped or a stage failed on each' END,\n"                                                 \
	"  worker_id = NULL, locked_at = NULL, run_at = now()\n"                                             \
	" WHERE worker_id = $1 AND status = 'running'" where " RETURNING id, status, error_message)\n"       \
	"INSERT INTO scrape_job_logs (job_id, log_level, message)\n"                                         \
	"SELECT id, CASE WHEN status = 'failed' THEN 'error' ELSE 'warn' END,\n"                             \
	" CASE WHEN status = 'failed' THEN error_message\n"                                                  \
	"  ELSE 'released by ' || $1 || ' (" why ")' END FROM released"

static const char release_sql[] = RELEASE_SQL("", "worker restart or a failed stage");
static const char release_before_sql[] = RELEASE_SQL(
	" AND started_at < $2::timestamptz", "claimed by an earlier run of the worker after it stopped");

static volatile sig_atomic_t stopping;

/*
 * The process that started this one, as it was at start: when getppid() no longer says
 * it, the parent is gone (whoever adopted this process, init or a subreaper such as
 * systemd --user, tini or a container runtime, is not the parent that was).
 */
static pid_t parent;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: claim-job [--limit N] [--adapter TYPE] [--collects LIKE] [--wait SECONDS] [--worker ID]\n"
		"       claim-job --follow [--in-flight N] [--once] [--adapter TYPE] [--collects LIKE] [--worker ID]\n"
		"       claim-job --touch [--worker ID]\n"
		"       claim-job --release [--worker ID]...\n");
}

static void
help(void)
{
	usage(stdout);
	printf("\n"
	       "Claims scrape jobs from PostgreSQL (DATABASE_URL, else libpq's PG* variables)\n"
	       "and writes one \"job\" record per claimed job to stdout, then exits.\n"
	       "\n"
	       "  --limit N         claim up to N jobs in one statement (default 1)\n"
	       "  --adapter TYPE    only jobs of enabled sources with this adapter_type\n"
	       "  --collects LIKE   the adapter_types this worker has a collector for (an SQL\n"
	       "                    LIKE pattern, e.g. ebay_%%): pending jobs of other enabled\n"
	       "                    sources are failed with the reason, never claimed\n"
	       "  --wait SECONDS    when nothing is claimable, wait up to this long for a job\n"
	       "                    (LISTEN/NOTIFY, re-checking every POLL_INTERVAL_SECONDS);\n"
	       "                    no output when the wait ends empty (default 0)\n"
	       "  --follow          keep running: claim whenever this worker has fewer than\n"
	       "                    --in-flight N (1) jobs running, woken by NOTIFY (polling\n"
	       "                    every POLL_INTERVAL_SECONDS where LISTEN is refused); touch\n"
	       "                    their locks every JOB_LOCK_TIMEOUT_SECONDS / 3; end on\n"
	       "                    SIGTERM, when the parent dies or the output is closed\n"
	       "  --once            with --follow: end when nothing is left to claim\n"
	       "                    (jobs of its worker claimed before it started go back to\n"
	       "                    the queue first)\n"
	       "  --worker ID       this worker's id (default WORKER_ID, else host:pid)\n"
	       "  --touch           extend the lock of this worker's running jobs (heartbeat)\n"
	       "  --release         return this worker's running jobs to pending (after a crash);\n"
	       "                    --worker may be given several times: each worker's jobs,\n"
	       "                    over one connection\n"
	       "  -h, --help        print this help and exit\n"
	       "  -V, --version     print the version and exit\n"
	       "\n"
	       "Claimable: pending jobs whose run_at has come, best priority first, then\n"
	       "oldest; and running jobs locked longer than JOB_LOCK_TIMEOUT_SECONDS (300).\n"
	       "Exit status: 0 ok (also when nothing was claimed), 64 usage, 70 internal,\n"
	       "74 I/O error, 75 the database cannot be reached (try again), 78 configuration:\n"
	       "wrong password, no such database, bad sslmode or URL, not migrated.\n");
}

/*
 * Claim once (with the upkeep, or without: --follow woken by a notification, a third
 * cheaper) and write the records. Returns how many, or -1 on a database error; *room
 * (when not NULL and jobs were claimed) is how many it had room for: claiming fewer, the
 * queue ran dry.
 */
static int
claim(struct db *db, int upkeep, const char *limit, const char *timeout, const char *adapter,
      const char *worker, const char *in_flight, const char *max_seconds, const char *collects,
      const char *since, int *room)
{
	const char *params[9] = { limit,    timeout,   adapter,
				  worker,   in_flight, max_seconds,
				  collects, since,     upkeep ? "true" : "false" };
	double t0 = clock_ms();
	PGresult *res = db_exec(db, "claim", claim_sql, 9, params);
	int i, n;

	if (res == NULL) {
		if (db->permanent && strstr(db->error, "coin_pricer_claim") != NULL)
			log_error("the database at %s lacks migration 009 (the claim function "
				  "coin_pricer_claim): run scripts/migrate.sh (with this DATABASE_URL)",
				  db->target);
		return -1;
	}
	log_debug("claim statement%s: %.3f ms", upkeep ? "" : " (quick)", clock_ms() - t0);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		ndj_write(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
		ndj_write("\n", 1);
	}
	if (n > 0 && room)
		*room = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
	if (n > 0 && strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		log_warn("failed %s job(s) whose worker died on their last attempt", PQgetvalue(res, 0, 1));
	if (n > 0)
		log_info("claimed %d job(s) as %s", n, worker);
	PQclear(res);
	ndj_flush();
	return n;
}

struct follow {
	const char *limit, *timeout, *adapter, *worker, *in_flight, *max_seconds, *collects;
	char since[64]; /* when this --follow started, by the database's clock */
	long in_flight_n;
	int once, poll_seconds, touch_seconds, reconnect_seconds;
	/*
	 * The connection reaches the server process that answers it: the process id that
	 * libpq got when it connected is the one the server names. A pooler hands out keys of
	 * its own (PgBouncer, Supavisor), and one that passes a server's on keeps its client on
	 * that server: LISTEN holds, and notifications arrive without a check.
	 */
	int direct;
	/* Where this worker's jobs leaving "running" are told: migration 009's trigger. */
	char done_channel[64];
};

/* LISTEN for new jobs and for this worker's jobs leaving "running" (room for another). */
static void
listen_all(struct db *db, const struct follow *f)
{
	if (db_listen(db, "coin_pricer_jobs") == 0)
		db_listen(db, f->done_channel);
}

/*
 * What wakes a waiting --follow: a new job wakes every worker; jobs leaving "running" only
 * their own (each worker has a channel of its own, f->done_channel), so that K workers do
 * not each wake in vain at every job any of them finishes, and only once `want` of them
 * have ended, so that one claim takes several jobs (a claim per job was a fifth of the
 * database's work per job).
 */
struct wake {
	const struct follow *f;
	int ended, want;
};

static int
wakes_worker(const char *channel, const char *payload, void *arg)
{
	struct wake *w = arg;

	if (strcmp(channel, w->f->done_channel) != 0)
		return 1;
	if (strcmp(payload, w->f->worker) != 0)
		return 0;
	return ++w->ended >= w->want;
}

/*
 * Whether notifications arrive at all: through a transaction-mode pooler (PgBouncer,
 * Supabase's) LISTEN is accepted but notifications are dropped without an error, and a
 * worker waiting for them would only ever wake at the poll. Said once.
 */
static int
notifications_arrive(struct db *db, const struct follow *f)
{
	int rc;

	if (!db->listening)
		return 0;
	if (f->direct) {
		log_debug("a direct connection to %s: notifications arrive, no check needed", db->target);
		return 1;
	}
	rc = db_notify_arrives(db, "coin_pricer_jobs", NOTIFY_CHECK_MS);
	if (rc == 1)
		return 1;
	log_warn("notifications do not arrive through %s (%s): polling for jobs every %d s "
		 "(POLL_INTERVAL_SECONDS); connect directly or through a session-mode pooler for "
		 "pickup at once",
		 db->target,
		 rc == 0 ? "a NOTIFY to itself did not come back within 1 s; a transaction-mode "
			   "pooler such as PgBouncer or Supabase's drops them"
			 : "the check failed",
		 f->poll_seconds);
	db->listening = 0;
	return 0;
}

/* How many of the worker's recent jobs are running, or -1. */
static int
running_jobs(struct db *db, const struct follow *f)
{
	const char *params[3] = { f->worker, f->max_seconds, f->since };
	PGresult *res = db_exec(db, "count running jobs", in_flight_sql, 3, params);
	int n;

	if (res == NULL)
		return -1;
	n = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

/*
 * --follow: claim whenever there is room and a job, touch the running jobs' locks every
 * touch_seconds, and end (closing the output, so that the pipeline drains) on SIGTERM,
 * when the parent dies, when the reader goes away, or with --once when nothing is
 * left to claim. Returns the exit status.
 */
/* 1 when --once must go on (jobs_left_sql), 0 when it may end, -1 on a database error. */
static int
jobs_left(struct db *db, const struct follow *f)
{
	const char *params[4] = { f->worker, f->adapter, f->collects, f->since };
	PGresult *res = db_exec(db, "look for jobs left", jobs_left_sql, 4, params);
	int left;

	if (res == NULL)
		return -1;
	left = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return left;
}

/*
 * Polling after a full claim: looks at the number of the worker's running jobs at short
 * intervals until `want` of them have ended (1), the output is closed (2), or until the
 * clock reaches `until` (0; the usual poll follows). -1 on a database error.
 */
static int
wait_for_room(struct db *db, const struct follow *f, int want, double until)
{
	struct pollfd out;
	int step = 25, running;

	while (!stopping && clock_ms() < until) {
		out.fd = STDOUT_FILENO;
		out.events = 0;
		out.revents = 0;
		if (poll(&out, 1, step) > 0)
			return 2;
		if ((running = running_jobs(db, f)) < 0)
			return -1;
		if (f->in_flight_n - running >= want)
			return 1;
		if (step < 200)
			step *= 2;
	}
	return 0;
}

/*
 * Returns the jobs of this worker that a claim of an earlier run of it took after the
 * supervisor had released its jobs: 0, or -1 on a database error.
 */
static int
release_earlier(struct db *db, const struct follow *f)
{
	const char *params[2] = { f->worker, f->since };
	PGresult *res = db_exec(db, "release", release_before_sql, 2, params);

	if (res == NULL)
		return -1;
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_warn("released %s job(s) of %s that an earlier run of it claimed after it stopped",
			 PQcmdTuples(res), f->worker);
	PQclear(res);
	return 0;
}

/*
 * Waits up to ms for what db_wait_notify waits for (with listening), else for the
 * output's reader to go away (watch >= 0) or the time: in slices of STOP_CHECK_MS, ending
 * early on a stop. Returns as db_wait_notify: 1 woken, 2 the output closed, 0 time or a
 * stop, -1 a database error.
 */
static int
wait_for_wake(struct db *db, double ms, int watch, db_notify_wanted *wanted, void *arg)
{
	double until = clock_ms() + ms, left;
	int rc = 0;

	while (!stopping && rc == 0 && (left = until - clock_ms()) > 0) {
		if (left > STOP_CHECK_MS)
			left = STOP_CHECK_MS;
		if (db->listening) {
			rc = db_wait_notify(db, (int)left + 1, watch, wanted, arg);
		} else if (watch >= 0) {
			struct pollfd out = { watch, 0, 0 };

			if (poll(&out, 1, (int)left + 1) > 0)
				rc = 2;
		} else {
			clock_sleep_ms((int)left + 1);
		}
	}
	return rc;
}

static int
follow(struct db *db, const struct follow *f)
{
	const char *touch[3] = { f->worker, f->max_seconds, f->since };
	double next_touch = clock_ms() + 1000.0 * f->touch_seconds, ms, last_full = 0;
	int n, woke = 0, running, notified, batch = (int)(f->in_flight_n + 1) / 2, room = 0, upkeep;
	struct wake w = { f, 0, 1 };

	listen_all(db, f);
	notified = notifications_arrive(db, f);
	while (!stopping) {
		if (getppid() != parent) {
			log_warn("the supervisor is gone: stopping");
			break;
		}
		if (clock_ms() >= next_touch) {
			if (db_run(db, "touch", follow_touch_sql, 3, touch) < 0)
				goto failed;
			next_touch = clock_ms() + 1000.0 * f->touch_seconds;
		}
		/*
		 * Woken by a notification: the claim without the upkeep, a third cheaper, unless
		 * the upkeep is due: at start, at every poll and at least every
		 * POLL_INTERVAL_SECONDS, and before --once ends.
		 */
		upkeep = woke != 1 || clock_ms() - last_full >= f->poll_seconds * 1000.0;
		if (upkeep) {
			last_full = clock_ms();
			if (release_earlier(db, f) < 0)
				goto failed;
		}
		n = claim(db, upkeep, f->limit, f->timeout, f->adapter, f->worker, f->in_flight,
			  f->max_seconds, f->collects, f->since, &room);
		woke = 0;
		if (n < 0)
			goto failed;
		/*
		 * Claim again once half the jobs in flight have ended; but when this claim
		 * found fewer jobs than it had room for (the queue runs dry), at the end of each.
		 */
		w.ended = 0;
		w.want = n > 0 && n >= room ? batch : 1;
		if (ndj_output_failed())
			break;
		/*
		 * A claim takes as many jobs as there is room for, or all that are due: the
		 * next one is worth trying only when woken (a job came, one of ours ended).
		 * Polling, there is no waking: try again at once; and after a full claim (more
		 * jobs may wait) as soon as the room for the next is there, not a poll
		 * interval later, so that a backlog drains at full speed.
		 */
		if (n > 0 && !db->listening) {
			if (n < room)
				continue;
			ms = next_touch - clock_ms();
			if (ms > f->poll_seconds * 1000.0)
				ms = f->poll_seconds * 1000.0;
			woke = wait_for_room(db, f, w.want, clock_ms() + ms);
			if (woke == 2)
				break;
			if (woke < 0)
				goto failed;
			continue;
		}
		if (n == 0 && f->once) {
			/*
			 * Nothing claimed: for want of jobs or of room? Only this process claims
			 * for its worker, so once there is room, there is at least as much at the
			 * next claim: when that one finds nothing, the queue is empty.
			 */
			if ((running = running_jobs(db, f)) < 0)
				goto failed;
			if (running < f->in_flight_n) {
				if (release_earlier(db, f) < 0)
					goto failed;
				n = claim(db, 1, f->limit, f->timeout, f->adapter, f->worker, f->in_flight,
					  f->max_seconds, f->collects, f->since, NULL);
				if (n < 0)
					goto failed;
				if (n == 0) {
					if ((n = jobs_left(db, f)) < 0)
						goto failed;
					if (n == 0)
						break;
					/* A claim on its way holds them: look again in a moment. */
					clock_sleep_ms(100);
				}
				continue;
			}
		}
		ms = next_touch - clock_ms();
		if (ms > f->poll_seconds * 1000.0)
			ms = f->poll_seconds * 1000.0;
		if (ms < 1)
			ms = 1;
		/* Polling, the wait still notices a closed output at once. */
		woke = wait_for_wake(db, ms, STDOUT_FILENO, wakes_worker, &w);
		if (woke == 2)
			break;
		if (woke < 0 && !stopping && db_lost(db))
			goto failed;
		continue;
	failed:
		if (!db_lost(db) || db_reconnect(db, f->reconnect_seconds) < 0)
			return db_lost(db) || db->permanent ? db_exit_status(db) : EXIT_SOFTWARE;
		listen_all(db, f);
		if (!notified)
			db->listening = 0;
	}
	return EXIT_OK;
}

/* The database's clock now into f->since, f->direct and f->done_channel: 0, or -1 on a database error. */
static int
started_at(struct db *db, struct follow *f)
{
	const char *params[1] = { f->worker };
	PGresult *res = db_exec(db, "read the clock", now_sql, 1, params);

	if (res == NULL)
		return -1;
	snprintf(f->since, sizeof(f->since), "%s", PQgetvalue(res, 0, 0));
	f->direct = strtol(PQgetvalue(res, 0, 1), NULL, 10) == (long)PQbackendPID(db->conn);
	snprintf(f->done_channel, sizeof(f->done_channel), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "adapter", required_argument, NULL, 'a' },
		{ "wait", required_argument, NULL, 'w' },
		{ "worker", required_argument, NULL, 'W' },
		{ "touch", no_argument, NULL, 't' },
		{ "release", no_argument, NULL, 'r' },
		{ "follow", no_argument, NULL, 'f' },
		{ "in-flight", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, 'o' },
		{ "collects", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct db db;
	struct sigaction sa;
	const char *adapter = NULL, *collects = NULL, *worker = getenv("WORKER_ID");
	const char *workers[MAX_RELEASE];
	char default_worker[300], limit_text[24], timeout_text[24], host[256];
	long limit = 1, wait_seconds = 0, in_flight = 1;
	int c, mode = 0, status = EXIT_OK, n, poll_seconds, following = 0, once = 0, n_workers = 0, i;
	char in_flight_text[24], max_text[24];
	struct follow f;
	double deadline;

	parent = getppid();
	cli_die_with_parent();
	if (log_init("claim-job") < 0)
		return EXIT_CONFIG;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (cli_number(optarg, 1, 10000, &limit) < 0) {
				log_error("--limit wants a number from 1 to 10000, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			break;
		case 'w':
			if (cli_number(optarg, 0, 86400, &wait_seconds) < 0) {
				log_error("--wait wants seconds from 0 to 86400, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			break;
		case 'i':
			if (cli_number(optarg, 1, 10000, &in_flight) < 0) {
				log_error("--in-flight wants a number from 1 to 10000, not \"%s\"", optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			following = 1;
			break;
		case 'o':
			once = 1;
			break;
		case 'a':
			adapter = optarg;
			break;
		case 'c':
			collects = optarg;
			break;
		case 'W':
			if (n_workers == MAX_RELEASE) {
				log_error("--worker given more than %d times", MAX_RELEASE);
				usage(stderr);
				return EXIT_USAGE;
			}
			worker = workers[n_workers++] = optarg;
			break;
		case 't':
		case 'r':
			mode = c;
			break;
		default:
			return cli_common_option(c, argv, "claim-job", help, usage);
		}
	}
	if (cli_no_operands(argc, argv, usage) != 0)
		return EXIT_USAGE;
	if (n_workers > 1 && mode != 'r') {
		log_error("--worker goes more than once only with --release");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (once && !following) {
		log_error("--once goes with --follow");
		usage(stderr);
		return EXIT_USAGE;
	}
	/*
	 * A long-lived claimer ends with the supervisor that started it: SIGTERM when it
	 * dies (in place of cli_die_with_parent()'s SIGKILL under the worker, which has also
	 * checked that the parent the worker named is the one at start), and a parent gone
	 * later is seen by the check of getppid() against the parent at start.
	 */
	if (following)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (worker == NULL || *worker == '\0') {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(default_worker, sizeof(default_worker), "%s:%ld", host, (long)getpid());
		worker = default_worker;
	}

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (db_connect(&db) < 0) {
		ndj_close_output();
		log_cleanup();
		return db_exit_status(&db);
	}
	if (mode) {
		if (n_workers == 0)
			workers[n_workers++] = worker;
		for (i = 0; i < n_workers && status == EXIT_OK; i++) {
			const char *params[1] = { workers[i] };
			PGresult *res = db_exec(&db, mode == 't' ? "touch" : "release",
						mode == 't' ? touch_sql : release_sql, 1, params);

			if (res == NULL)
				status = db_lost(&db) || db.permanent ? db_exit_status(&db) : EXIT_SOFTWARE;
			else
				log_info("%s %s job(s) of %s", mode == 't' ? "touched" : "released",
					 PQcmdTuples(res), workers[i]);
			PQclear(res);
		}
		goto out;
	}

	snprintf(limit_text, sizeof(limit_text), "%ld", limit);
	snprintf(timeout_text, sizeof(timeout_text), "%d",
		 (int)cli_env_number("JOB_LOCK_TIMEOUT_SECONDS", 300, 1, 86400 * 30));
	poll_seconds = (int)cli_env_number("POLL_INTERVAL_SECONDS", 5, 1, 3600);
	if (following) {
		long lock_timeout = cli_env_number("JOB_LOCK_TIMEOUT_SECONDS", 300, 1, 86400 * 30);

		snprintf(in_flight_text, sizeof(in_flight_text), "%ld", in_flight);
		snprintf(max_text, sizeof(max_text), "%ld",
			 cli_env_number("JOB_MAX_SECONDS", 1800, 1, 86400 * 30));
		f.limit = in_flight_text;
		f.timeout = timeout_text;
		f.adapter = adapter;
		f.collects = collects;
		f.worker = worker;
		f.in_flight = in_flight_text;
		f.in_flight_n = in_flight;
		f.max_seconds = max_text;
		f.once = once;
		f.poll_seconds = poll_seconds;
		f.touch_seconds = (int)(lock_timeout / 3 > 1 ? lock_timeout / 3 : 1);
		f.reconnect_seconds = (int)cli_env_number("DB_RECONNECT_SECONDS", 60, 1, 86400);
		if (started_at(&db, &f) < 0) {
			status = db_lost(&db) || db.permanent ? db_exit_status(&db) : EXIT_SOFTWARE;
			goto out;
		}
		status = follow(&db, &f);
		goto out;
	}
	deadline = clock_ms() + 1000.0 * (double)wait_seconds;
	/* Listen before the first claim, so that no job inserted in between is missed. */
	if (wait_seconds > 0)
		db_listen(&db, "coin_pricer_jobs");
	for (;;) {
		double left;
		int ms;

		n = claim(&db, 1, limit_text, timeout_text, adapter, worker, NULL, NULL, collects, NULL,
			  NULL);
		if (n != 0 || stopping)
			break;
		left = (deadline - clock_ms()) / 1000;
		if (left <= 0)
			break;
		ms = (int)(1000 * (left < poll_seconds ? left : poll_seconds)) + 1;
		if (wait_for_wake(&db, ms, -1, NULL, NULL) < 0 && !stopping && db_lost(&db)) {
			n = -1;
			break;
		}
		if (stopping)
			break;
	}
	if (n < 0)
		status = db_lost(&db) || db.permanent ? db_exit_status(&db) : EXIT_SOFTWARE;
out:
	db_close(&db);
	if (ndj_close_output() != EXIT_OK && status == EXIT_OK)
		status = EXIT_IOERR;
	log_cleanup();
	return status;
}
