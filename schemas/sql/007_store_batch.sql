-- coin-pricer 007: store's batch function in a cheaper form, a cheaper updated_at on
-- price_points, and coin-pricer's functions closed to PUBLIC. Idempotent (OR REPLACE, IF
-- EXISTS, REVOKE of what may not be granted); no superuser-only statements.
--
-- coin_pricer_store_batch() does what 006's coin_pricer_store_jobs() does, with the same
-- arguments, but returns its rows for store to read in binary form and in no particular
-- order: store sorts them (a job's rows by id) and writes the records itself. The replay
-- of an intake's earlier points is most of the server's work on a long-lived intake, and
-- formatting each point's time (to_char), weight (numeric) and ids as text, then sorting
-- all of them with their text, was most of that. sold_at comes as a timestamptz (store
-- formats it as to_char did), the weight and fx_as_of as text, the weights read once per
-- call rather than once per point (a scan of sources, which enable_seqscan = off prices
-- at 1e10: hence jit = off, or PostgreSQL compiles the statement, 1.6 s, at every call).
-- 006's functions stay for workers of the previous version until they are replaced.
--
-- price_points' updated_at: the upsert sets it itself, so the row trigger (a PL/pgSQL call
-- per row) runs only for updates that leave updated_at as it was, as any other does.
--
-- EXECUTE: PostgreSQL grants it on new functions to PUBLIC, and on Supabase every function
-- in the public schema can be called through the HTTP API (/rpc) by the anon and
-- authenticated roles. These functions run with the caller's rights (SECURITY INVOKER)
-- and row-level security keeps those roles out of the tables, but nobody outside the
-- worker has any business calling them: EXECUTE is revoked from PUBLIC, anon and
-- authenticated. The owner (the role that migrated) keeps it; a worker with a role of its
-- own is granted it (README, "Row-level security").

CREATE OR REPLACE FUNCTION coin_pricer_store_batch(
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
    amount text, currency text, converted_usd text, sold_at timestamptz, quantity integer,
    reputation_weight text, filtered_out boolean, filter_reason text, price_cents bigint,
    shipping_cents bigint, fx_rate text, fx_as_of text, fx_source text, grade text,
    grade_lo integer, grade_hi integer, certifier text, designations json)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
    SET jit = off AS $fn$
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
 RETURNING j.k, j.job, j.intake, j.source, j.npoints, j.nfiltered),
-- The weights as text, once: a handful of sources, however many points.
w AS MATERIALIZED (SELECT w.id, w.reputation_weight::text AS weight FROM sources w),
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
  designations = EXCLUDED.designations, updated_at = now()
 RETURNING t.id, t.job_id, t.intake_id, t.source_id, t.adapter, t.external_id, t.title, t.url,
  t.condition, t.price_type, t.original_amount::text AS amount, t.original_currency,
  t.converted_usd::text AS converted_usd, t.sold_at, t.quantity, t.filtered_out,
  t.filter_reason, t.price_cents, t.shipping_cents, t.fx_rate::text AS fx_rate,
  t.fx_as_of::text AS fx_as_of, t.fx_source, t.grade, t.grade_lo, t.grade_hi, t.certifier,
  array_to_json(t.designations) AS designations),
logged AS (
 INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
 SELECT h.job, 'info', 'stored ' || h.npoints || ' price points',
  json_build_object('points', h.npoints, 'filtered', h.nfiltered) FROM held h ORDER BY h.k)
SELECT h.k, NULL::bigint, NULL::boolean, NULL::uuid, NULL::uuid, NULL::uuid, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL::timestamptz, NULL::int, NULL, NULL::boolean,
 NULL, NULL::bigint, NULL::bigint, NULL, NULL, NULL, NULL, NULL::int, NULL::int, NULL,
 NULL::json
FROM held h
UNION ALL
SELECT h.k, p.id, true, p.job_id, p.intake_id, p.source_id, p.adapter, p.external_id, p.title,
 p.url, p.condition, p.price_type, p.amount, p.original_currency, p.converted_usd, p.sold_at,
 p.quantity, w.weight, p.filtered_out, p.filter_reason, p.price_cents, p.shipping_cents,
 p.fx_rate, p.fx_as_of, p.fx_source, p.grade, p.grade_lo, p.grade_hi, p.certifier,
 p.designations
FROM ins p JOIN held h ON h.job = p.job_id JOIN w ON w.id = h.source
UNION ALL
SELECT h.k, p.id, false, p.job_id, p.intake_id, p.source_id, p.adapter, p.external_id, NULL,
 NULL, NULL, p.price_type, NULL, NULL, NULL, p.sold_at, NULL, w.weight, p.filtered_out, NULL,
 p.price_cents, NULL, NULL, NULL, NULL, p.grade, p.grade_lo, p.grade_hi, p.certifier,
 array_to_json(p.designations)
FROM held h
-- (OFFSET 0: a scan of the intake's points per job, never a scan of all points joined)
CROSS JOIN LATERAL (SELECT * FROM price_points e WHERE e.intake_id = h.intake
 AND NOT e.filtered_out AND e.price_cents IS NOT NULL OFFSET 0) p
JOIN w ON w.id = p.source_id
WHERE p.id NOT IN (SELECT ins.id FROM ins);
END
$fn$;

DROP TRIGGER IF EXISTS price_points_updated_at ON price_points;
CREATE TRIGGER price_points_updated_at BEFORE UPDATE ON price_points
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION coin_pricer_touch_updated_at();

DO $$
DECLARE
    f regprocedure;
    r text;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'coin\_pricer\_%'
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
