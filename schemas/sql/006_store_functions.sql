-- coin-pricer 006: what store runs for each batch of jobs and each valuation, as functions.
-- Idempotent (OR REPLACE); no superuser-only statements.
--
-- Why functions: store sends unnamed statements only (no PQprepare, nothing kept across
-- transactions, so that it works through any pooler), and PostgreSQL parsed and planned
-- its large statements again at every call: a third of the server's time per job. The
-- statements of a PL/pgSQL function are planned once per server connection and kept,
-- whatever pooler is in between. plan_cache_mode = force_generic_plan: the plan never
-- depends on the parameters (arrays of any length), so it is made once; enable_seqscan =
-- off: every table is reached by key (a job by its id, an intake's points by intake_id),
-- and a plan made while a table is small (a new database) must not scan it whole once it
-- has grown.
--
-- Both are SECURITY INVOKER (the default): they run with the caller's rights and row-level
-- security, exactly as the statements did; a role needs EXECUTE on them (PUBLIC has it by
-- default) besides its table rights.

-- One statement for a batch of jobs: check that this worker still holds each job at the
-- attempt its record names (and touch its lock), upsert the points of those it holds (the
-- last of a job's points with one external_id wins), log one row per job, and return for
-- each held job a first row (k, null id), then its points as stored, then the intake's
-- earlier points that valuate can use (not filtered out, with price_cents) with only what
-- valuate reads. The statement does not see its own writes: a job's points come from what
-- the upsert returns, the rest from the table, less those the upsert replaced (an update
-- keeps the row's id; the jobs of one call have distinct intakes, so only its own job's
-- upsert replaces an earlier point of an intake). The jobs of
-- one call have distinct intakes. (The lock check finds a job by its primary key: with
-- scrape_jobs_worker the planner would walk every running job.) Every argument is an array of text, the jobs' in
-- p_jobs' order, the points' in their order with p_k numbering their jobs from 1; values
-- are cast here as json_to_record() cast them (p_amount, p_converted_usd and p_fx_rate
-- hold only plain decimals, ^[0-9]+(\.[0-9]+)?$: store sends null for anything else).
CREATE OR REPLACE FUNCTION coin_pricer_store_jobs(
    p_jobs text[], p_intakes text[], p_sources text[], p_workers text[], p_attempts text[],
    p_npoints text[], p_nfiltered text[],
    p_k text[], p_external_id text[], p_adapter text[], p_title text[], p_url text[],
    p_condition text[], p_price_type text[], p_amount text[], p_currency text[],
    p_converted_usd text[], p_quantity text[], p_price_cents text[], p_shipping_cents text[],
    p_fx_rate text[], p_fx_as_of text[], p_fx_source text[], p_sold_at text[],
    p_filtered_out text[], p_filter_reason text[], p_raw text[], p_grade text[],
    p_grade_lo text[], p_grade_hi text[], p_certifier text[], p_designations text[])
RETURNS TABLE (k bigint, id bigint, own boolean, job_id uuid, intake_id uuid, source_id uuid,
    adapter text, external_id text, title text, url text, condition text, price_type text,
    amount text, currency text, converted_usd text, sold_at text, quantity integer,
    reputation_weight numeric, filtered_out boolean, filter_reason text, price_cents bigint,
    shipping_cents bigint, fx_rate text, fx_as_of date, fx_source text, grade text,
    grade_lo integer, grade_hi integer, certifier text, designations json)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH j AS (
 SELECT * FROM unnest(p_jobs::uuid[], p_intakes::uuid[], p_sources::uuid[], p_workers,
  p_attempts::int[], p_npoints::int[], p_nfiltered::int[])
  WITH ORDINALITY AS j(job, intake, source, worker, attempt, npoints, nfiltered, k)),
held AS (
 UPDATE scrape_jobs s SET locked_at = now() FROM j
 WHERE s.id = ANY (p_jobs::uuid[]) AND s.id = j.job AND s.worker_id IS NOT DISTINCT FROM j.worker
  AND s.status = 'running' AND s.attempts = coalesce(j.attempt, s.attempts)
 RETURNING j.k, j.job, j.intake, j.source, j.npoints, j.nfiltered,
  (SELECT w.reputation_weight FROM sources w WHERE w.id = j.source) AS weight),
input AS (
 SELECT DISTINCT ON (p.k, p.external_id) p.*
 FROM unnest(p_k::bigint[], p_external_id, p_adapter, p_title, p_url, p_condition,
  p_price_type, p_amount, p_currency, p_converted_usd, p_quantity, p_price_cents,
  p_shipping_cents, p_fx_rate, p_fx_as_of, p_fx_source, p_sold_at, p_filtered_out,
  p_filter_reason, p_raw, p_grade, p_grade_lo, p_grade_hi, p_certifier, p_designations)
  WITH ORDINALITY AS p(k, external_id, adapter, title, url, condition, price_type, amount,
  currency, converted_usd, quantity, price_cents, shipping_cents, fx_rate, fx_as_of,
  fx_source, sold_at, filtered_out, filter_reason, raw, grade, grade_lo, grade_hi,
  certifier, designations, n)
 ORDER BY p.k, p.external_id, p.n DESC),
ins AS (
 INSERT INTO price_points AS t (intake_id, source_id, job_id, external_id, adapter, title, url,
  condition, price_type, original_amount, original_currency, converted_usd, quantity,
  price_cents, shipping_cents, fx_rate, fx_as_of, fx_source, sold_at, filtered_out,
  filter_reason, raw, grade, grade_lo, grade_hi, certifier, designations)
 SELECT h.intake, h.source, h.job, i.external_id, i.adapter, i.title, i.url, i.condition,
  i.price_type, i.amount::numeric, i.currency, i.converted_usd::numeric, i.quantity::int,
  i.price_cents::bigint, i.shipping_cents::bigint, i.fx_rate::numeric, i.fx_as_of::date,
  i.fx_source, i.sold_at::timestamptz, coalesce(i.filtered_out::boolean, false),
  i.filter_reason, i.raw::jsonb, i.grade, i.grade_lo::int, i.grade_hi::int, i.certifier,
  i.designations::text[]
 FROM input i JOIN held h USING (k)
 ORDER BY i.k, i.external_id
 ON CONFLICT (intake_id, source_id, external_id) DO UPDATE SET job_id = EXCLUDED.job_id,
  adapter = EXCLUDED.adapter, title = EXCLUDED.title, url = EXCLUDED.url,
  condition = EXCLUDED.condition, price_type = EXCLUDED.price_type,
  original_amount = EXCLUDED.original_amount, original_currency = EXCLUDED.original_currency,
  converted_usd = EXCLUDED.converted_usd, quantity = EXCLUDED.quantity,
  price_cents = EXCLUDED.price_cents, shipping_cents = EXCLUDED.shipping_cents,
  fx_rate = EXCLUDED.fx_rate, fx_as_of = EXCLUDED.fx_as_of, fx_source = EXCLUDED.fx_source,
  sold_at = EXCLUDED.sold_at, filtered_out = EXCLUDED.filtered_out,
  filter_reason = EXCLUDED.filter_reason, raw = EXCLUDED.raw, grade = EXCLUDED.grade,
  grade_lo = EXCLUDED.grade_lo, grade_hi = EXCLUDED.grade_hi, certifier = EXCLUDED.certifier,
  designations = EXCLUDED.designations
 RETURNING t.id, t.job_id, t.intake_id, t.source_id, t.adapter, t.external_id, t.title, t.url,
  t.condition, t.price_type, t.original_amount::text AS amount, t.original_currency,
  t.converted_usd::text AS converted_usd,
  to_char(t.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS sold_at,
  t.quantity, t.filtered_out, t.filter_reason, t.price_cents, t.shipping_cents,
  t.fx_rate::text AS fx_rate, t.fx_as_of, t.fx_source, t.grade, t.grade_lo, t.grade_hi,
  t.certifier, array_to_json(t.designations) AS designations),
logged AS (
 INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
 SELECT h.job, 'info', 'stored ' || h.npoints || ' price points',
  json_build_object('points', h.npoints, 'filtered', h.nfiltered) FROM held h ORDER BY h.k)
SELECT h.k, NULL::bigint, NULL::boolean, NULL::uuid, NULL::uuid, NULL::uuid, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL::int, NULL::numeric, NULL::boolean,
 NULL, NULL::bigint, NULL::bigint, NULL, NULL::date, NULL, NULL, NULL::int, NULL::int, NULL,
 NULL::json
FROM held h
UNION ALL
SELECT h.k, p.id, true, p.job_id, p.intake_id, p.source_id, p.adapter, p.external_id, p.title,
 p.url, p.condition, p.price_type, p.amount, p.original_currency, p.converted_usd, p.sold_at,
 p.quantity, h.weight, p.filtered_out, p.filter_reason, p.price_cents, p.shipping_cents,
 p.fx_rate, p.fx_as_of, p.fx_source, p.grade, p.grade_lo, p.grade_hi, p.certifier,
 p.designations
FROM ins p JOIN held h ON h.job = p.job_id
UNION ALL
SELECT h.k, p.id, false, p.job_id, p.intake_id, p.source_id, p.adapter, p.external_id, NULL,
 NULL, NULL, p.price_type, NULL, NULL, NULL,
 to_char(p.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), NULL, s.reputation_weight,
 p.filtered_out, NULL, p.price_cents, NULL, NULL, NULL, NULL, p.grade, p.grade_lo, p.grade_hi,
 p.certifier, array_to_json(p.designations)
FROM held h
-- (OFFSET 0: a scan of the intake's points per job, never a scan of all points joined)
CROSS JOIN LATERAL (SELECT * FROM price_points e WHERE e.intake_id = h.intake
 AND NOT e.filtered_out AND e.price_cents IS NOT NULL OFFSET 0) p
JOIN sources s ON s.id = p.source_id
WHERE p.id NOT IN (SELECT ins.id FROM ins)
ORDER BY 1, 2 NULLS FIRST;
END
$fn$;

-- A valuation, stored with its job completed in the same transaction only while the job
-- runs for this worker at the attempt its record names (or when it has no job): the
-- valuation's id, whether its job was completed (0 or 1), and the job's duration in ms;
-- no row when the valuation was not stored.
CREATE OR REPLACE FUNCTION coin_pricer_store_valuation(p_valuation json, p_worker text,
    p_attempt int)
RETURNS TABLE (id bigint, completed bigint, duration_ms numeric)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH x AS (
 SELECT * FROM json_to_record(p_valuation) AS x(intake_id uuid, job_id uuid, p10_cents bigint,
  median_cents bigint, p90_cents bigint, mean_cents bigint, comps int, outliers int,
  candidates int, sold int, ask int, confidence int, confidence_parts jsonb,
  explanation text, method text, target_grade text, n_eff numeric, grades jsonb,
  tiers jsonb)),
done AS (
 UPDATE scrape_jobs s SET status = 'completed', completed_at = now(), locked_at = NULL
 FROM x WHERE s.id = x.job_id AND s.worker_id = p_worker AND s.status = 'running'
  AND s.attempts = coalesce(p_attempt, s.attempts)
 RETURNING s.id, s.started_at),
v AS (
 INSERT INTO valuations AS t (intake_id, job_id, p10_cents, median_cents, p90_cents,
  mean_cents, comps, outliers, candidates, sold, ask, confidence, confidence_parts,
  explanation, method, target_grade, n_eff, grades, tiers)
 SELECT x.intake_id, x.job_id, x.p10_cents, x.median_cents, x.p90_cents, x.mean_cents,
  x.comps, x.outliers, x.candidates, x.sold, x.ask, x.confidence, x.confidence_parts,
  x.explanation, x.method, x.target_grade, x.n_eff, x.grades, x.tiers
 FROM x WHERE x.job_id IS NULL OR EXISTS (SELECT 1 FROM done)
 RETURNING t.id, t.job_id, t.confidence),
logged AS (
 INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
 SELECT done.id, 'info', 'completed', json_build_object('valuation_id', v.id,
  'confidence', v.confidence) FROM done, v)
SELECT v.id, (SELECT count(*) FROM done),
 (SELECT round(extract(epoch FROM clock_timestamp() - d.started_at) * 1000) FROM done d)
FROM v;
END
$fn$;
