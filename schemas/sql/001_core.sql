-- coin-pricer 001: the tables of DESIGN.md. Idempotent (IF NOT EXISTS, OR REPLACE),
-- no superuser-only statements, so it runs on Supabase as on any PostgreSQL >= 13.

CREATE TABLE IF NOT EXISTS sources (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL UNIQUE,
    adapter_type      text NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    reputation_weight numeric NOT NULL DEFAULT 1.0
                      CHECK (reputation_weight >= 0 AND reputation_weight <= 1),
    config            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS source_rules (
    id         bigserial PRIMARY KEY,
    source_id  uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    rule_type  text NOT NULL CHECK (rule_type IN ('exclude_keywords', 'include_keywords',
                                                  'min_price_cents', 'max_price_cents')),
    rule_value text NOT NULL,
    priority   integer NOT NULL DEFAULT 100,
    active     boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS source_rules_source ON source_rules (source_id, priority) WHERE active;

CREATE TABLE IF NOT EXISTS intakes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS attributions (
    intake_id    uuid NOT NULL UNIQUE REFERENCES intakes (id) ON DELETE CASCADE,
    year         integer,
    mintmark     text,
    denomination text CHECK (denomination IN ('penny', 'nickel', 'dime', 'quarter',
                                              'half_dollar', 'dollar')),
    series       text,
    title        text,
    grade        text,
    variety      text
);

CREATE TABLE IF NOT EXISTS scrape_jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    intake_id     uuid NOT NULL REFERENCES intakes (id) ON DELETE CASCADE,
    source_id     uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority      integer NOT NULL DEFAULT 100,
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    worker_id     text,
    locked_at     timestamptz,
    started_at    timestamptz,
    completed_at  timestamptz,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- The claim walks this index one priority at a time, from now() back, so it never steps
-- over a job that is not due yet, however many wait out a backoff.
CREATE INDEX IF NOT EXISTS scrape_jobs_pending ON scrape_jobs (priority, run_at)
    WHERE status = 'pending';
-- Running jobs by lock age: finds the ones whose worker died.
CREATE INDEX IF NOT EXISTS scrape_jobs_running ON scrape_jobs (locked_at)
    WHERE status = 'running';
CREATE INDEX IF NOT EXISTS scrape_jobs_worker ON scrape_jobs (worker_id)
    WHERE status = 'running';
CREATE INDEX IF NOT EXISTS scrape_jobs_intake ON scrape_jobs (intake_id);

CREATE TABLE IF NOT EXISTS scrape_job_logs (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES scrape_jobs (id) ON DELETE CASCADE,
    log_level  text NOT NULL DEFAULT 'info' CHECK (log_level IN ('debug', 'info', 'warn', 'error')),
    message    text NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scrape_job_logs_job ON scrape_job_logs (job_id, id);

CREATE TABLE IF NOT EXISTS price_points (
    id                bigserial PRIMARY KEY,
    intake_id         uuid NOT NULL REFERENCES intakes (id) ON DELETE CASCADE,
    source_id         uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    job_id            uuid REFERENCES scrape_jobs (id) ON DELETE SET NULL,
    external_id       text NOT NULL,
    adapter           text,
    title             text,
    url               text,
    condition         text,
    price_type        text NOT NULL CHECK (price_type IN ('sold', 'ask')),
    original_amount   numeric,
    original_currency text,
    converted_usd     numeric,
    quantity          integer,
    price_cents       bigint,
    shipping_cents    bigint,
    fx_rate           numeric,
    fx_as_of          date,
    fx_source         text,
    sold_at           timestamptz,
    filtered_out      boolean NOT NULL DEFAULT false,
    filter_reason     text,
    raw               jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (intake_id, source_id, external_id)
);

CREATE TABLE IF NOT EXISTS valuations (
    id               bigserial PRIMARY KEY,
    intake_id        uuid NOT NULL REFERENCES intakes (id) ON DELETE CASCADE,
    job_id           uuid REFERENCES scrape_jobs (id) ON DELETE SET NULL,
    p10_cents        bigint,
    median_cents     bigint,
    p90_cents        bigint,
    mean_cents       bigint,
    comps            integer NOT NULL,
    outliers         integer NOT NULL,
    candidates       integer NOT NULL,
    sold             integer NOT NULL,
    ask              integer NOT NULL,
    confidence       integer NOT NULL CHECK (confidence BETWEEN 1 AND 10),
    confidence_parts jsonb NOT NULL,
    explanation      text NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now()
);
-- The newest per intake is the current one.
CREATE INDEX IF NOT EXISTS valuations_intake ON valuations (intake_id, computed_at DESC);

CREATE TABLE IF NOT EXISTS fx_rates (
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    usd_per_unit numeric NOT NULL CHECK (usd_per_unit > 0),
    as_of        date NOT NULL,
    PRIMARY KEY (currency, as_of)
);

CREATE OR REPLACE FUNCTION coin_pricer_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- A new or re-queued pending job wakes waiting workers (claim-job --wait).
CREATE OR REPLACE FUNCTION coin_pricer_notify_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'pending') THEN
        PERFORM pg_notify('coin_pricer_jobs', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS scrape_jobs_updated_at ON scrape_jobs;
CREATE TRIGGER scrape_jobs_updated_at BEFORE UPDATE ON scrape_jobs
    FOR EACH ROW EXECUTE FUNCTION coin_pricer_touch_updated_at();
DROP TRIGGER IF EXISTS price_points_updated_at ON price_points;
CREATE TRIGGER price_points_updated_at BEFORE UPDATE ON price_points
    FOR EACH ROW EXECUTE FUNCTION coin_pricer_touch_updated_at();
DROP TRIGGER IF EXISTS scrape_jobs_notify ON scrape_jobs;
CREATE TRIGGER scrape_jobs_notify AFTER INSERT OR UPDATE OF status ON scrape_jobs
    FOR EACH ROW EXECUTE FUNCTION coin_pricer_notify_pending();
