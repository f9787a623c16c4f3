-- A source, an intake (1921-S Morgan dollar), fx rates and one pending job, with the
-- ids that tests/data/finding-points.ndjson carries. Used by the database tests and
-- the demo. Idempotent.
INSERT INTO sources (id, name, adapter_type, reputation_weight, config)
VALUES ('8b3f4e5d-0000-4000-8000-000000000001', 'eBay Sold Listings', 'ebay_finding', 1.0,
        '{"max_pages": 5, "category_id": "39464"}')
ON CONFLICT (id) DO NOTHING;
INSERT INTO source_rules (source_id, rule_type, rule_value, priority)
SELECT '8b3f4e5d-0000-4000-8000-000000000001', 'min_price_cents', '1000', 1
WHERE NOT EXISTS (SELECT 1 FROM source_rules WHERE source_id = '8b3f4e5d-0000-4000-8000-000000000001');
INSERT INTO intakes (id) VALUES ('7a2e3d4c-0000-4000-8000-000000000001') ON CONFLICT DO NOTHING;
INSERT INTO attributions (intake_id, year, mintmark, denomination, series, title, grade)
VALUES ('7a2e3d4c-0000-4000-8000-000000000001', 1921, 'S', 'dollar', 'Morgan', 'Morgan Dollar', 'VF')
ON CONFLICT (intake_id) DO NOTHING;
INSERT INTO fx_rates (currency, usd_per_unit, as_of) VALUES
    ('GBP', 1.2500, '2026-11-20'), ('GBP', 1.2712, '2026-11-27'),
    ('EUR', 1.0800, '2026-11-27'), ('CAD', 0.7200, '2026-11-27')
ON CONFLICT DO NOTHING;
INSERT INTO scrape_jobs (id, intake_id, source_id, priority)
VALUES ('6f1d2c3b-0000-4000-8000-000000000001', '7a2e3d4c-0000-4000-8000-000000000001',
        '8b3f4e5d-0000-4000-8000-000000000001', 10)
ON CONFLICT (id) DO NOTHING;
