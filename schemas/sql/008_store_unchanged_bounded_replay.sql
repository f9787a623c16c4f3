-- coin-pricer 008: store leaves a re-seen point whose data has not changed as it is, and
-- replays a bounded part of an intake's history. Idempotent (IF NOT EXISTS, OR REPLACE);
-- no superuser-only statements.
--
-- price_points.job_id is the job that first stored the point or last changed its data,
-- and updated_at the time of that change (created_at the first store). A job that sees a
-- listing again with the same data writes nothing to its row: before, every re-seen point
-- was rewritten (a new row version, not HOT since job_id is indexed, and its index
-- entries: 69 KB of WAL a job when 250 intakes saw the same 29 listings at each of 4 jobs).
-- "The same data" is every stored field that comes from the listing: adapter, title, url,
-- condition, price_type, the amounts as listed (numbers compared as written: 45.0 is not
-- 45.00), converted_usd, quantity, price_cents, shipping_cents, the fx fields, sold_at,
-- filtered_out, filter_reason, raw (as jsonb: the same JSON value), and the title facts.
--
-- coin_pricer_store_points() does what 007's coin_pricer_store_batch() does, with these
-- differences:
--  * a point is written only when it is new or its data changed; each held job's first
--    row says how many of its points were new, changed and unchanged (also in its log
--    row's metadata: new, changed, unchanged beside points and filtered);
--  * the job's own points are read back after the write (a second statement, which sees
--    it), by their identity, so that unchanged ones come back too; their job_id is the
--    job's (the stream's), whatever the column says;
--  * of the intake's earlier points that valuate can use (not filtered out, with
--    price_cents), only the newest p_history come back: by sold_at, newest first, points
--    with no sold_at (asking prices) after every dated one, ties by id, newest first. The
--    job's first row says whether more were left out ("more"). p_history null: all of
--    them, as before. price_points_usable_newest serves that walk, so that a job
--    costs O(p_history + log history), not O(history);
--  * p_write false: nothing is written or checked (store's slow path, which stored the
--    points one at a time itself and holds the job); only the rows for valuate.
-- Its plans are made once per connection, maybe while the tables are empty (a new
-- database): enable_bitmapscan = off as well as 007's enable_seqscan = off, or the
-- replay, planned on an empty table, would read all of an intake's points and sort
-- them, and every lookup is by a whole identity (LATERAL ... OFFSET 0).
-- 006's and 007's functions stay for workers of the previous versions.

COMMENT ON COLUMN price_points.job_id IS
    'The job that first stored the point or last changed its data (a job that sees the listing again unchanged does not write it).';
COMMENT ON COLUMN price_points.updated_at IS
    'When the point''s data last changed (created_at: when it was first stored).';

CREATE INDEX IF NOT EXISTS price_points_usable_newest
    ON price_points (intake_id, sold_at DESC NULLS LAST, id DESC)
    WHERE NOT filtered_out AND price_cents IS NOT NULL;

CREATE OR REPLACE FUNCTION coin_pricer_store_points(
    p_jobs text[], p_intakes text[], p_sources text[], p_workers text[], p_attempts text[],
    p_npoints text[], p_nfiltered text[],
    p_k text[], p_external_id text[], p_adapter text[], p_title text[], p_url text[],
    p_condition text[], p_price_type text[], p_amount text[], p_currency text[],
    p_converted_usd text[], p_quantity text[], p_price_cents text[], p_shipping_cents text[],
    p_fx_rate text[], p_fx_as_of text[], p_fx_source text[], p_sold_at text[],
    p_filtered_out text[], p_filter_reason text[], p_raw text[], p_grade text[],
    p_grade_lo text[], p_grade_hi text[], p_certifier text[], p_designations text[],
    p_history integer, p_write boolean)
RETURNS TABLE (k bigint, id bigint, own boolean, job_id uuid, intake_id uuid, source_id uuid,
    adapter text, external_id text, title text, url text, condition text, price_type text,
    amount text, currency text, converted_usd text, sold_at timestamptz, quantity integer,
    reputation_weight text, filtered_out boolean, filter_reason text, price_cents bigint,
    shipping_cents bigint, fx_rate text, fx_as_of text, fx_source text, grade text,
    grade_lo integer, grade_hi integer, certifier text, designations json,
    new_points integer, changed_points integer, unchanged_points integer, more boolean)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
    SET enable_bitmapscan = off SET jit = off AS $fn$
#variable_conflict use_column
DECLARE
    v_k bigint[];
    v_new integer[];
    v_changed integer[];
    v_unchanged integer[];
BEGIN
IF p_write THEN
    WITH j AS (
     SELECT * FROM unnest(p_jobs::uuid[], p_intakes::uuid[], p_sources::uuid[], p_workers,
      p_attempts::int[], p_npoints::int[], p_nfiltered::int[])
      WITH ORDINALITY AS j(job, intake, source, worker, attempt, npoints, nfiltered, k)),
    held AS (
     UPDATE scrape_jobs s SET locked_at = now() FROM j
     WHERE s.id = ANY (p_jobs::uuid[]) AND s.id = j.job AND s.worker_id IS NOT DISTINCT FROM j.worker
      AND s.status = 'running' AND s.attempts = coalesce(j.attempt, s.attempts)
     RETURNING j.k, j.job, j.intake, j.source, j.npoints, j.nfiltered),
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
    -- The points of the held jobs as they would be stored.
    typed AS (
     SELECT i.k, h.intake, h.source, h.job, i.external_id, i.adapter, i.title, i.url,
      i.condition, i.price_type, i.amount::numeric AS amount, i.currency,
      i.converted_usd::numeric AS converted_usd, i.quantity::int AS quantity,
      i.price_cents::bigint AS price_cents, i.shipping_cents::bigint AS shipping_cents,
      i.fx_rate::numeric AS fx_rate, i.fx_as_of::date AS fx_as_of, i.fx_source,
      i.sold_at::timestamptz AS sold_at, coalesce(i.filtered_out::boolean, false) AS filtered_out,
      i.filter_reason, i.raw::jsonb AS raw, i.grade, i.grade_lo::int AS grade_lo,
      i.grade_hi::int AS grade_hi, i.certifier, i.designations::text[] AS designations
     FROM input i JOIN held h USING (k)),
    -- Less those stored already with the same data: not written, not even locked. (OFFSET
    -- 0: each point looked up by its whole identity, whatever the plan made of the rest.)
    fresh AS (
     SELECT t.* FROM typed t
     LEFT JOIN LATERAL (SELECT * FROM price_points e
      WHERE e.intake_id = t.intake AND e.source_id = t.source AND e.external_id = t.external_id
      OFFSET 0) e ON true
     WHERE e.id IS NULL
      OR (e.adapter, e.title, e.url, e.condition, e.price_type, e.original_amount::text,
        e.original_currency, e.converted_usd::text, e.quantity, e.price_cents, e.shipping_cents,
        e.fx_rate::text, e.fx_as_of, e.fx_source, e.sold_at, e.filtered_out, e.filter_reason,
        e.raw, e.grade, e.grade_lo, e.grade_hi, e.certifier, e.designations)
        IS DISTINCT FROM (t.adapter, t.title, t.url, t.condition, t.price_type,
        t.amount::text, t.currency, t.converted_usd::text, t.quantity, t.price_cents,
        t.shipping_cents, t.fx_rate::text, t.fx_as_of, t.fx_source, t.sold_at, t.filtered_out,
        t.filter_reason, t.raw, t.grade, t.grade_lo, t.grade_hi, t.certifier, t.designations)),
    ins AS (
     INSERT INTO price_points AS t (intake_id, source_id, job_id, external_id, adapter, title, url,
      condition, price_type, original_amount, original_currency, converted_usd, quantity,
      price_cents, shipping_cents, fx_rate, fx_as_of, fx_source, sold_at, filtered_out,
      filter_reason, raw, grade, grade_lo, grade_hi, certifier, designations)
     SELECT f.intake, f.source, f.job, f.external_id, f.adapter, f.title, f.url, f.condition,
      f.price_type, f.amount, f.currency, f.converted_usd, f.quantity, f.price_cents,
      f.shipping_cents, f.fx_rate, f.fx_as_of, f.fx_source, f.sold_at, f.filtered_out,
      f.filter_reason, f.raw, f.grade, f.grade_lo, f.grade_hi, f.certifier, f.designations
     FROM fresh f
     ORDER BY f.k, f.external_id
     -- (the WHERE again: a point another job stored meanwhile with this data is left alone)
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
     WHERE (t.adapter, t.title, t.url, t.condition, t.price_type, t.original_amount::text,
       t.original_currency, t.converted_usd::text, t.quantity, t.price_cents, t.shipping_cents,
       t.fx_rate::text, t.fx_as_of, t.fx_source, t.sold_at, t.filtered_out, t.filter_reason,
       t.raw, t.grade, t.grade_lo, t.grade_hi, t.certifier, t.designations)
      IS DISTINCT FROM (EXCLUDED.adapter, EXCLUDED.title, EXCLUDED.url, EXCLUDED.condition,
       EXCLUDED.price_type, EXCLUDED.original_amount::text, EXCLUDED.original_currency,
       EXCLUDED.converted_usd::text, EXCLUDED.quantity, EXCLUDED.price_cents,
       EXCLUDED.shipping_cents, EXCLUDED.fx_rate::text, EXCLUDED.fx_as_of, EXCLUDED.fx_source,
       EXCLUDED.sold_at, EXCLUDED.filtered_out, EXCLUDED.filter_reason, EXCLUDED.raw,
       EXCLUDED.grade, EXCLUDED.grade_lo, EXCLUDED.grade_hi, EXCLUDED.certifier,
       EXCLUDED.designations)
     -- (xmax is 0 on a row version an INSERT made, the locker's on one an update made)
     RETURNING t.job_id, t.xmax = 0 AS inserted),
    counts AS (
     SELECT h.k, h.job, h.npoints, h.nfiltered, coalesce(w.n, 0)::int AS n_new,
      coalesce(c.n, 0)::int AS n_changed, (coalesce(a.n, 0) - coalesce(w.n, 0) - coalesce(c.n, 0))::int AS n_unchanged
     FROM held h
     LEFT JOIN (SELECT i.k, count(*) AS n FROM input i GROUP BY i.k) a ON a.k = h.k
     LEFT JOIN (SELECT s.job_id, count(*) AS n FROM ins s WHERE s.inserted GROUP BY s.job_id) w ON w.job_id = h.job
     LEFT JOIN (SELECT s.job_id, count(*) AS n FROM ins s WHERE NOT s.inserted GROUP BY s.job_id) c ON c.job_id = h.job),
    logged AS (
     INSERT INTO scrape_job_logs (job_id, log_level, message, metadata)
     SELECT n.job, 'info', 'stored ' || n.npoints || ' price points',
      json_build_object('points', n.npoints, 'filtered', n.nfiltered, 'new', n.n_new,
       'changed', n.n_changed, 'unchanged', n.n_unchanged)
     FROM counts n ORDER BY n.k)
    SELECT array_agg(n.k ORDER BY n.k), array_agg(n.n_new ORDER BY n.k),
     array_agg(n.n_changed ORDER BY n.k), array_agg(n.n_unchanged ORDER BY n.k)
    INTO v_k, v_new, v_changed, v_unchanged
    FROM counts n;
ELSE
    v_k := ARRAY(SELECT generate_series(1, cardinality(p_jobs))::bigint);
END IF;

RETURN QUERY
WITH h AS MATERIALIZED (
 SELECT x.k, x.job, x.intake, x.source, c.n_new, c.n_changed, c.n_unchanged
 FROM unnest(p_jobs::uuid[], p_intakes::uuid[], p_sources::uuid[])
  WITH ORDINALITY AS x(job, intake, source, k)
 JOIN unnest(v_k, v_new, v_changed, v_unchanged) AS c(k, n_new, n_changed, n_unchanged)
  ON c.k = x.k),
-- The weights as text, once: a handful of sources, however many points.
w AS MATERIALIZED (SELECT w.id, w.reputation_weight::text AS weight FROM sources w),
-- The jobs' own points as stored now (by this call or before it), by their identity.
mine AS MATERIALIZED (
 SELECT h.k, h.job, e.*
 FROM (SELECT DISTINCT p.k, p.external_id
  FROM unnest(p_k::bigint[], p_external_id) AS p(k, external_id)) i
 JOIN h ON h.k = i.k
 CROSS JOIN LATERAL (SELECT * FROM price_points e WHERE e.intake_id = h.intake
  AND e.source_id = h.source AND e.external_id = i.external_id OFFSET 0) e),
-- The newest p_history + 1 earlier points of each job's intake that valuate can use: the
-- last one only says that there were more.
hist AS MATERIALIZED (
 SELECT h.k, p.*
 FROM h CROSS JOIN LATERAL (
  SELECT e.id, e.job_id, e.intake_id, e.source_id, e.adapter, e.external_id, e.price_type,
   e.sold_at, e.filtered_out, e.price_cents, e.grade, e.grade_lo, e.grade_hi, e.certifier,
   e.designations, row_number() OVER (ORDER BY e.sold_at DESC NULLS LAST, e.id DESC) AS rn
  FROM price_points e
  WHERE e.intake_id = h.intake AND NOT e.filtered_out AND e.price_cents IS NOT NULL
   AND e.id NOT IN (SELECT mine.id FROM mine)
  ORDER BY e.sold_at DESC NULLS LAST, e.id DESC
  LIMIT p_history + 1) p),
cut AS (SELECT hist.k FROM hist WHERE hist.rn > p_history)
SELECT h.k, NULL::bigint, NULL::boolean, NULL::uuid, NULL::uuid, NULL::uuid, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL::timestamptz, NULL::int, NULL, NULL::boolean,
 NULL, NULL::bigint, NULL::bigint, NULL, NULL, NULL, NULL, NULL::int, NULL::int, NULL,
 NULL::json, h.n_new, h.n_changed, h.n_unchanged, h.k IN (SELECT cut.k FROM cut)
FROM h
UNION ALL
SELECT p.k, p.id, true, p.job, p.intake_id, p.source_id, p.adapter, p.external_id, p.title,
 p.url, p.condition, p.price_type, p.original_amount::text, p.original_currency,
 p.converted_usd::text, p.sold_at, p.quantity, w.weight, p.filtered_out, p.filter_reason,
 p.price_cents, p.shipping_cents, p.fx_rate::text, p.fx_as_of::text, p.fx_source, p.grade,
 p.grade_lo, p.grade_hi, p.certifier, array_to_json(p.designations), NULL::int, NULL::int,
 NULL::int, NULL::boolean
FROM mine p JOIN w ON w.id = p.source_id
UNION ALL
SELECT p.k, p.id, false, p.job_id, p.intake_id, p.source_id, p.adapter, p.external_id, NULL,
 NULL, NULL, p.price_type, NULL, NULL, NULL, p.sold_at, NULL, w.weight, p.filtered_out, NULL,
 p.price_cents, NULL, NULL, NULL, NULL, p.grade, p.grade_lo, p.grade_hi, p.certifier,
 array_to_json(p.designations), NULL::int, NULL::int, NULL::int, NULL::boolean
FROM hist p JOIN w ON w.id = p.source_id
WHERE p_history IS NULL OR p.rn <= p_history;
END
$fn$;

-- As 007 did for the functions before it: no EXECUTE for PUBLIC, nor for Supabase's API
-- roles where they exist; the owner keeps it, a worker's own role is granted it (README,
-- "Row-level security").
DO $$
DECLARE
    r text;
BEGIN
    REVOKE EXECUTE ON FUNCTION coin_pricer_store_points(text[], text[], text[], text[], text[],
        text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[],
        text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[],
        text[], text[], text[], text[], text[], integer, boolean) FROM PUBLIC;
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION coin_pricer_store_points FROM %I', r);
        END IF;
    END LOOP;
END
$$;
