-- coin-pricer 005: row-level security on every table. Idempotent (ENABLE twice is a no-op);
-- no superuser-only statements, so it runs on Supabase as it is.
--
-- Why: on Supabase every table in "public" is reachable through its HTTP API with the
-- anon and authenticated roles, which have table privileges by default. With RLS on and
-- no policy, those roles see and change nothing; the data stays the worker's.
--
-- Who is not affected: the tables' owner (the role that ran the migrations) and any role
-- with BYPASSRLS (Supabase's "postgres", superusers). RLS is enabled, not FORCEd, so the
-- owner's own queries pass as before; a worker that connects as the owner needs nothing
-- more. A worker with a role of its own needs GRANTs and policies: README, "Row-level
-- security". `coin-pricer doctor` says which case a connection is in.

ALTER TABLE sources         ENABLE ROW LEVEL SECURITY;
ALTER TABLE source_rules    ENABLE ROW LEVEL SECURITY;
ALTER TABLE intakes         ENABLE ROW LEVEL SECURITY;
ALTER TABLE attributions    ENABLE ROW LEVEL SECURITY;
ALTER TABLE scrape_jobs     ENABLE ROW LEVEL SECURITY;
ALTER TABLE scrape_job_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE price_points    ENABLE ROW LEVEL SECURITY;
ALTER TABLE valuations      ENABLE ROW LEVEL SECURITY;
ALTER TABLE fx_rates        ENABLE ROW LEVEL SECURITY;
-- The migrations' own record, created by scripts/migrate.sh before any file runs.
ALTER TABLE IF EXISTS schema_migrations ENABLE ROW LEVEL SECURITY;
