-- coin-pricer 009: the claim as a function, whose plans the server makes once per
-- connection, and a channel per worker for the jobs that leave "running". Idempotent (OR
-- REPLACE, REVOKE of what may not be granted); no superuser-only statements.
--
-- coin_pricer_claim() is the statement claim-job sent before (README, "claim-job"), word
-- for word, in PL/pgSQL: PostgreSQL parsed and planned all of it anew for every claim, a
-- cold connection's first claim most of all; a function's statements are planned once
-- per connection, for any arguments (force_generic_plan: every value the claim takes is a
-- run-time one, as the walk's priorities and the LIMIT already were), and jit = off as in
-- 007. Still one statement and no session state for the caller (SELECT * FROM
-- coin_pricer_claim(...) through PQexecParams), so it works through any pooler; the plan
-- cache is the server process's own, whichever client it serves. The arguments, in
-- order: how many to claim, JOB_LOCK_TIMEOUT_SECONDS, --adapter (NULL: any), the worker,
-- --follow's --in-flight (NULL: --limit alone), JOB_MAX_SECONDS, --collects (NULL: any),
-- when this --follow started (its own claims are not older), and whether to do the upkeep
-- (fail what no collector handles and what used up its attempts): --follow skips it when
-- woken by a notification. Rows: the job record, the jobs failed by the upkeep, and how
-- many it had room for.
--
-- A job leaving "running" wakes only its own worker's claim-job: coin_pricer_done_ and
-- the first 32 hex digits of the SHA-256 of its worker id (payload: the worker id), where
-- every claim-job of every worker was woken by each job any of them finished (three
-- wake-ups in four wasted with four workers). A claim-job older than this listens on
-- coin_pricer_done, which no longer carries these: it claims at its poll interval.
--
-- EXECUTE is revoked from PUBLIC, anon and authenticated as 007 does for store's
-- functions; the owner keeps it, a worker with a role of its own is granted it (README,
-- "Row-level security").

CREATE OR REPLACE FUNCTION coin_pricer_claim(
    p_limit int, p_timeout int, p_adapter text, p_worker text, p_in_flight int,
    p_max_seconds int, p_collects text, p_since timestamptz, p_upkeep boolean)
RETURNS TABLE (o_job text, o_failed bigint, o_room int)
LANGUAGE plpgsql VOLATILE
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
BEGIN
    IF p_upkeep THEN
        RETURN QUERY
        WITH RECURSIVE
         room AS MATERIALIZED (
          SELECT CASE WHEN $5::int IS NULL THEN $1::int ELSE least($1::int, greatest(0, $5::int - (
           SELECT count(*) FROM scrape_jobs WHERE worker_id = $4 AND status = 'running'
            AND started_at > now() - make_interval(secs => $6::int)
            AND started_at >= $8::timestamptz))::int) END AS n),
         srcs AS MATERIALIZED (
          SELECT id FROM sources WHERE enabled AND ($3::text IS NULL OR adapter_type = $3)
           AND ($7::text IS NULL OR adapter_type LIKE $7)),
         uncollected AS (
          UPDATE scrape_jobs j SET status = 'failed', completed_at = now(),
           error_message = 'no collector for adapter_type ' || s.adapter_type
            || ' (this worker collects ' || $7 || ')'
          FROM sources s WHERE s.id = j.source_id AND j.id IN (
           SELECT p.id FROM sources o JOIN scrape_jobs p ON p.source_id = o.id
           WHERE $7::text IS NOT NULL AND o.enabled AND o.adapter_type NOT LIKE $7
            AND p.status = 'pending' LIMIT 100 FOR UPDATE OF p SKIP LOCKED)
          RETURNING j.id, j.error_message),
         uncollected_logged AS (
          INSERT INTO scrape_job_logs (job_id, log_level, message)
          SELECT id, 'error', error_message FROM uncollected),
         expired AS (
          UPDATE scrape_jobs SET status = 'failed', completed_at = now(), locked_at = NULL,
           error_message = 'the worker ' || coalesce(worker_id, '?') || ' died on the last attempt'
          WHERE status = 'running' AND locked_at < now() - make_interval(secs => $2::int)
           AND attempts >= max_attempts
          RETURNING id),
         spent AS (
          UPDATE scrape_jobs SET status = 'failed', completed_at = now(), locked_at = NULL,
           worker_id = NULL, error_message = 'used up its ' || max_attempts || ' attempts'
            || coalesce(' (last error: ' || error_message || ')', '')
          WHERE id IN (SELECT id FROM scrape_jobs WHERE status = 'pending'
           AND attempts >= max_attempts ORDER BY run_at LIMIT 100 FOR UPDATE SKIP LOCKED)
          RETURNING id, error_message),
         spent_logged AS (
          INSERT INTO scrape_job_logs (job_id, log_level, message)
          SELECT id, 'error', error_message FROM spent),
         stale AS (
          SELECT j.id, 0 AS part FROM scrape_jobs j
          WHERE j.status = 'running' AND j.locked_at < now() - make_interval(secs => $2::int)
           AND j.attempts < j.max_attempts AND j.source_id IN (SELECT id FROM srcs)
          ORDER BY j.locked_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED),
         prios AS (
          (SELECT priority AS p, 1 AS depth FROM scrape_jobs
           WHERE status = 'pending' AND attempts < max_attempts ORDER BY priority LIMIT 1)
          UNION ALL
          SELECT (SELECT j.priority FROM scrape_jobs j WHERE j.status = 'pending'
                  AND j.attempts < j.max_attempts AND j.priority > prios.p
                  ORDER BY j.priority LIMIT 1), prios.depth + 1
          FROM prios WHERE prios.p IS NOT NULL AND prios.depth < 100),
         due AS (
          SELECT d.id, 1 AS part FROM prios CROSS JOIN LATERAL (
           SELECT j.id FROM scrape_jobs j
           WHERE j.status = 'pending' AND j.attempts < j.max_attempts AND j.priority = prios.p
            AND j.run_at <= now() AND j.source_id IN (SELECT id FROM srcs)
           ORDER BY j.run_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED) d
          WHERE prios.p IS NOT NULL),
         walked AS (SELECT max(p) AS last, count(p) AS n FROM prios),
         beyond AS (
          SELECT j.id, 2 AS part FROM scrape_jobs j
          WHERE j.status = 'pending' AND j.attempts < j.max_attempts AND j.run_at <= now()
           AND (SELECT n FROM walked) >= 100 AND j.priority > (SELECT last FROM walked)
           AND j.source_id IN (SELECT id FROM srcs)
          ORDER BY j.run_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED),
         picked AS MATERIALIZED (
          SELECT id FROM (SELECT id FROM stale UNION ALL SELECT id FROM due
           UNION ALL SELECT id FROM beyond) u LIMIT (SELECT n FROM room)),
         claimed AS (
          UPDATE scrape_jobs j SET status = 'running', worker_id = $4, locked_at = now(),
           started_at = now(), attempts = j.attempts + 1, error_message = NULL
          FROM picked WHERE j.id = picked.id
          RETURNING j.id, j.intake_id, j.source_id, j.attempts, j.priority, j.run_at),
         logged AS (
          INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
          SELECT id, 'info', 'claimed by ' || $4,
           json_build_object('attempt', attempts, 'worker_id', $4::text) FROM claimed),
         rates AS (
          SELECT json_object_agg(currency, json_build_object('usd_per_unit', usd_per_unit::text,
           'as_of', as_of)) AS fx
          FROM (SELECT DISTINCT ON (currency) currency, usd_per_unit, as_of FROM fx_rates
                ORDER BY currency, as_of DESC) r)
        SELECT json_build_object('kind', 'job', 'job_id', c.id, 'intake_id', c.intake_id,
          'source_id', c.source_id, 'attempt', c.attempts, 'worker_id', $4::text,
          'source', json_build_object('name', s.name, 'adapter_type', s.adapter_type,
            'reputation_weight', s.reputation_weight, 'config', s.config),
          'attribution', json_build_object('year', a.year, 'mintmark', a.mintmark,
            'denomination', a.denomination, 'series', a.series, 'title', a.title,
            'grade', a.grade, 'variety', a.variety),
          'rules', (SELECT coalesce(json_agg(json_build_object('rule_type', r.rule_type,
              'rule_value', r.rule_value, 'priority', r.priority) ORDER BY r.priority, r.id), '[]')
            FROM source_rules r WHERE r.source_id = c.source_id AND r.active),
          'fx_rates', coalesce((SELECT fx FROM rates), '{}'))::text,
          (SELECT count(*) FROM expired) + (SELECT count(*) FROM spent)
           + (SELECT count(*) FROM uncollected), (SELECT n FROM room)::int
        FROM claimed c JOIN sources s ON s.id = c.source_id
        LEFT JOIN attributions a ON a.intake_id = c.intake_id
        ORDER BY c.priority, c.run_at;
    ELSE
        RETURN QUERY
        WITH RECURSIVE
         room AS MATERIALIZED (
          SELECT CASE WHEN $5::int IS NULL THEN $1::int ELSE least($1::int, greatest(0, $5::int - (
           SELECT count(*) FROM scrape_jobs WHERE worker_id = $4 AND status = 'running'
            AND started_at > now() - make_interval(secs => $6::int)
            AND started_at >= $8::timestamptz))::int) END AS n),
         srcs AS MATERIALIZED (
          SELECT id FROM sources WHERE enabled AND ($3::text IS NULL OR adapter_type = $3)
           AND ($7::text IS NULL OR adapter_type LIKE $7)),
         stale AS (
          SELECT j.id, 0 AS part FROM scrape_jobs j
          WHERE j.status = 'running' AND j.locked_at < now() - make_interval(secs => $2::int)
           AND j.attempts < j.max_attempts AND j.source_id IN (SELECT id FROM srcs)
          ORDER BY j.locked_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED),
         prios AS (
          (SELECT priority AS p, 1 AS depth FROM scrape_jobs
           WHERE status = 'pending' AND attempts < max_attempts ORDER BY priority LIMIT 1)
          UNION ALL
          SELECT (SELECT j.priority FROM scrape_jobs j WHERE j.status = 'pending'
                  AND j.attempts < j.max_attempts AND j.priority > prios.p
                  ORDER BY j.priority LIMIT 1), prios.depth + 1
          FROM prios WHERE prios.p IS NOT NULL AND prios.depth < 100),
         due AS (
          SELECT d.id, 1 AS part FROM prios CROSS JOIN LATERAL (
           SELECT j.id FROM scrape_jobs j
           WHERE j.status = 'pending' AND j.attempts < j.max_attempts AND j.priority = prios.p
            AND j.run_at <= now() AND j.source_id IN (SELECT id FROM srcs)
           ORDER BY j.run_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED) d
          WHERE prios.p IS NOT NULL),
         walked AS (SELECT max(p) AS last, count(p) AS n FROM prios),
         beyond AS (
          SELECT j.id, 2 AS part FROM scrape_jobs j
          WHERE j.status = 'pending' AND j.attempts < j.max_attempts AND j.run_at <= now()
           AND (SELECT n FROM walked) >= 100 AND j.priority > (SELECT last FROM walked)
           AND j.source_id IN (SELECT id FROM srcs)
          ORDER BY j.run_at LIMIT (SELECT n FROM room) FOR NO KEY UPDATE SKIP LOCKED),
         picked AS MATERIALIZED (
          SELECT id FROM (SELECT id FROM stale UNION ALL SELECT id FROM due
           UNION ALL SELECT id FROM beyond) u LIMIT (SELECT n FROM room)),
         claimed AS (
          UPDATE scrape_jobs j SET status = 'running', worker_id = $4, locked_at = now(),
           started_at = now(), attempts = j.attempts + 1, error_message = NULL
          FROM picked WHERE j.id = picked.id
          RETURNING j.id, j.intake_id, j.source_id, j.attempts, j.priority, j.run_at),
         logged AS (
          INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
          SELECT id, 'info', 'claimed by ' || $4,
           json_build_object('attempt', attempts, 'worker_id', $4::text) FROM claimed),
         rates AS (
          SELECT json_object_agg(currency, json_build_object('usd_per_unit', usd_per_unit::text,
           'as_of', as_of)) AS fx
          FROM (SELECT DISTINCT ON (currency) currency, usd_per_unit, as_of FROM fx_rates
                ORDER BY currency, as_of DESC) r)
        SELECT json_build_object('kind', 'job', 'job_id', c.id, 'intake_id', c.intake_id,
          'source_id', c.source_id, 'attempt', c.attempts, 'worker_id', $4::text,
          'source', json_build_object('name', s.name, 'adapter_type', s.adapter_type,
            'reputation_weight', s.reputation_weight, 'config', s.config),
          'attribution', json_build_object('year', a.year, 'mintmark', a.mintmark,
            'denomination', a.denomination, 'series', a.series, 'title', a.title,
            'grade', a.grade, 'variety', a.variety),
          'rules', (SELECT coalesce(json_agg(json_build_object('rule_type', r.rule_type,
              'rule_value', r.rule_value, 'priority', r.priority) ORDER BY r.priority, r.id), '[]')
            FROM source_rules r WHERE r.source_id = c.source_id AND r.active),
          'fx_rates', coalesce((SELECT fx FROM rates), '{}'))::text,
          0::bigint, (SELECT n FROM room)::int
        FROM claimed c JOIN sources s ON s.id = c.source_id
        LEFT JOIN attributions a ON a.intake_id = c.intake_id
        ORDER BY c.priority, c.run_at;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION coin_pricer_notify_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'pending') THEN
        PERFORM pg_notify('coin_pricer_jobs', NEW.id::text);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'running' AND NEW.status <> 'running' THEN
        PERFORM pg_notify('coin_pricer_done_'
            || left(encode(sha256(convert_to(coalesce(OLD.worker_id, ''), 'UTF8')), 'hex'), 32),
            coalesce(OLD.worker_id, ''));
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    f regprocedure;
    r text;
BEGIN
    FOREACH f IN ARRAY ARRAY['coin_pricer_claim(int, int, text, text, int, int, text, timestamptz, boolean)']::regprocedure[]
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, r);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
