-- What a control plane's /metrics scrape reads from PostgreSQL (issue 15 item 2), at scale: 100,000
-- machines in 20 groups (as bench/liveness-gauges.sql) and 1,000,000 deliveries (10 secret versions
-- to every machine: 9 in 10 acked, the rest pending, ready or failed). Run against a scratch database
-- migrated with `rackseal migrate` (bench/README.md "metrics-scrape" has the commands). Each query
-- runs 5 times; psql's \timing prints each.
INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at, first_attested_at, last_attested_at)
SELECT rackseal_uuid_v7(), 'SN-' || lpad(i::text, 6, '0'), 'g' || (i % 20), encode(sha256(i::text::bytea), 'hex'),
       CASE WHEN i % 50 = 0 THEN 'revoked' WHEN i % 7 = 0 THEN 'imported' ELSE 'attested' END, now(), now(),
       CASE WHEN i % 7 = 0 THEN NULL ELSE now() - (i % 1440) * interval '1 minute' END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE now() - (i % 1440) * interval '1 minute' END
FROM generate_series(1, 100000) i;
INSERT INTO group_attestation_intervals SELECT 'g' || i, 900 * (i + 1), now(), 'bench' FROM generate_series(0, 9) i;
INSERT INTO secrets (id, name, kind, target_group, binding, parameters, created_at, created_by)
SELECT rackseal_uuid_v7(), 'bench-' || s, 'opaque', 'g0', 'certified-key', '{}'::jsonb, now(), 'bench' FROM generate_series(1, 10) s;
INSERT INTO secret_versions (id, secret_id, version, created_at, created_by) SELECT rackseal_uuid_v7(), id, 1, now(), 'bench' FROM secrets;
INSERT INTO deliveries (id, secret_id, version_id, machine_id, binding, state, envelope, ack_proof_hash, created_at, ready_at, acked_at, expires_at, updated_at)
SELECT rackseal_uuid_v7(), v.secret_id, v.id, m.id, 'certified-key', st.state,
       CASE WHEN st.state = 'ready' THEN '\x00'::bytea END,
       CASE WHEN st.state IN ('ready', 'acked') THEN sha256(m.serial::bytea) END,
       now(), CASE WHEN st.state IN ('ready', 'acked') THEN now() END, CASE WHEN st.state = 'acked' THEN now() END,
       now() + interval '7 days', now()
FROM secret_versions v CROSS JOIN machines m
CROSS JOIN LATERAL (SELECT CASE WHEN hashtext(m.serial || v.id::text) % 10 <> 0 THEN 'acked'
                                WHEN hashtext(v.id::text || m.serial) % 3 = 0 THEN 'pending'
                                WHEN hashtext(v.id::text || m.serial) % 3 = 1 THEN 'ready' ELSE 'failed' END AS state) st;
VACUUM ANALYZE;
\timing on
\echo deliveries per state (DeliveriesRepository.countAllByState, rackseal_deliveries)
SELECT state, count(*)::int AS n FROM deliveries GROUP BY state \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo machines per state (countByState, rackseal_machines)
SELECT state, count(*)::int AS n FROM machines GROUP BY state \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo per-group overdue count (countOverdue, rackseal_*not_attested_within_interval)
SELECT m.group_name, g.interval_seconds, m.state, count(*) FILTER (WHERE m.state <> 'revoked' AND (m.last_attested_at IS NULL OR m.last_attested_at < now() - make_interval(secs => COALESCE(g.interval_seconds, 86400::float8))))::int AS n FROM machines m LEFT JOIN group_attestation_intervals g ON g.group_name = m.group_name WHERE m.state <> 'revoked' GROUP BY 1, 2, 3 \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo audit backlog (AuditLog.sequencerStatus, rackseal_audit_*)
SELECT (SELECT count(*)::int FROM audit_log WHERE seq IS NULL) AS pending, (SELECT min(recorded_at) FROM audit_log WHERE seq IS NULL) AS oldest, h.size, h.updated_at, (SELECT max(tree_size) FROM audit_checkpoints) AS signed FROM audit_tree_head h WHERE h.id = 1 \g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\g /dev/null
\echo plan of the deliveries count
EXPLAIN (COSTS OFF) SELECT state, count(*)::int AS n FROM deliveries GROUP BY state;
