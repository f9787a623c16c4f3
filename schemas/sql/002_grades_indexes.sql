-- coin-pricer 002: the title facts and the graded valuation's fields (DESIGN.md
-- "Database"), indexes on the foreign keys rows are deleted through, and a claim index
-- that leaves out jobs which have used up their attempts. Idempotent; no superuser-only
-- statements.

ALTER TABLE price_points
    ADD COLUMN IF NOT EXISTS grade        text,
    ADD COLUMN IF NOT EXISTS grade_lo     integer,
    ADD COLUMN IF NOT EXISTS grade_hi     integer,
    ADD COLUMN IF NOT EXISTS certifier    text,
    ADD COLUMN IF NOT EXISTS designations text[],
    ADD COLUMN IF NOT EXISTS quantity     integer;

ALTER TABLE valuations
    ADD COLUMN IF NOT EXISTS method       text,
    ADD COLUMN IF NOT EXISTS target_grade text,
    ADD COLUMN IF NOT EXISTS n_eff        numeric,
    ADD COLUMN IF NOT EXISTS grades       jsonb,
    ADD COLUMN IF NOT EXISTS tiers        jsonb;

-- Deleting a job (or a source, an intake) reaches these rows through job_id: without an
-- index each deleted job scans every price point. scrape_job_logs already has
-- (job_id, id), which serves the same purpose.
CREATE INDEX IF NOT EXISTS price_points_job ON price_points (job_id);
CREATE INDEX IF NOT EXISTS valuations_job ON valuations (job_id);
CREATE INDEX IF NOT EXISTS scrape_job_logs_job ON scrape_job_logs (job_id, id);

-- The claim walks due jobs that still have attempts left; a pending job that has used
-- them up (only a manual change makes one) is failed by the claim through its own,
-- normally empty, index and never stepped over.
CREATE INDEX IF NOT EXISTS scrape_jobs_due ON scrape_jobs (priority, run_at)
    WHERE status = 'pending' AND attempts < max_attempts;
-- Past the priorities the claim walks one by one, due jobs oldest first.
CREATE INDEX IF NOT EXISTS scrape_jobs_due_at ON scrape_jobs (run_at)
    WHERE status = 'pending' AND attempts < max_attempts;
CREATE INDEX IF NOT EXISTS scrape_jobs_spent ON scrape_jobs (run_at)
    WHERE status = 'pending' AND attempts >= max_attempts;
DROP INDEX IF EXISTS scrape_jobs_pending;

-- A job leaving "running" makes room in its worker's pipeline: claim-job --follow
-- listens on coin_pricer_done (payload: the worker) as on coin_pricer_jobs.
CREATE OR REPLACE FUNCTION coin_pricer_notify_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'pending') THEN
        PERFORM pg_notify('coin_pricer_jobs', NEW.id::text);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'running' AND NEW.status <> 'running' THEN
        PERFORM pg_notify('coin_pricer_done', coalesce(OLD.worker_id, ''));
    END IF;
    RETURN NULL;
END
$$;

-- Pending jobs by source: the claim fails those of sources no collector of the worker
-- handles, through this index rather than a scan of the queue.
CREATE INDEX IF NOT EXISTS scrape_jobs_pending_source ON scrape_jobs (source_id)
    WHERE status = 'pending';
