-- The /metrics liveness queries at scale (issue 12 item 7): 100,000 machines in 20 groups, 10 of
-- them with an interval of their own, 1 in 50 revoked, 1 in 7 never attested. Run against a scratch
-- database migrated with `rackseal migrate` (bench/README.md "liveness-gauges" has the commands).
-- Each query runs 5 times; psql's \timing prints each.
INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at, first_attested_at, last_attested_at)
SELECT rackseal_uuid_v7(), 'SN-' || lpad(i::text, 6, '0'), 'g' || (i % 20), encode(sha256(i::text::bytea), 'hex'),
       CASE WHEN i % 50 = 0 THEN 'revoked' WHEN i % 7 = 0 THEN 'imported' ELSE 'attested' END, now(), now(),
       CASE WHEN i % 7 = 0 THEN NULL ELSE now() - (i % 1440) * interval '1 minute' END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE now() - (i % 1440) * interval '1 minute' END
FROM generate_series(1, 100000) i;
INSERT INTO group_attestation_intervals SELECT 'g' || i, 900 * (i + 1), now(), 'bench' FROM generate_series(0, 9) i;
ANALYZE;
\timing on
\echo per-group overdue count (MachinesRepository.countOverdue, the per-group gauges)
SELECT m.group_name, g.interval_seconds, m.state, count(*) FILTER (WHERE m.state <> 'revoked' AND (m.last_attested_at IS NULL OR m.last_attested_at < now() - make_interval(secs => COALESCE(g.interval_seconds, 86400::float8))))::int AS n FROM machines m LEFT JOIN group_attestation_intervals g ON g.group_name = m.group_name WHERE m.state <> 'revoked' GROUP BY 1, 2, 3 \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo fleet-wide not-attested-since count (countNotAttestedSince, the gauge before per-group intervals)
SELECT state, count(*)::int AS n FROM machines WHERE state <> 'revoked' AND (last_attested_at IS NULL OR last_attested_at < now() - interval '1 day') GROUP BY state \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo machines per state (countByState, already scraped)
SELECT state, count(*)::int AS n FROM machines GROUP BY state \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo first page of ?overdue=true (100 rows)
SELECT m.serial FROM machines m LEFT JOIN group_attestation_intervals g ON g.group_name = m.group_name WHERE m.state <> 'revoked' AND (m.last_attested_at IS NULL OR m.last_attested_at < now() - make_interval(secs => COALESCE(g.interval_seconds, 86400::float8))) ORDER BY m.serial LIMIT 100 \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
