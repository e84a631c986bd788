-- Seeds ended calls first..last (of total) for deploy/bench/calls.sh, straight into the
-- partitioned call tables (the gateway has created the monthly partitions):
--
--   psql -v tenant=ID -v first=1 -v last=1000000 -v total=10000000 -v t_end=EPOCH \
--        -v span_days=365 -f calls_seed.sql
--
-- Call i starts at t_end - span_days + (i - 1) * span_days / total: calls are stored in
-- the order they happened, as a PBX reports them, spread evenly over span_days, so every
-- monthly partition of that span holds its share. The call is `bc-i` for the PBX (its
-- activecallkey and its one leg), its UUID md5('cidgate-bench-call-' || i), its report
-- call id i. 80 % are answered (and recorded), 20 % missed; two in three inbound. Its row
-- mirrors what src/store/calls.rs writes for such a call; call_keys gets its `c:` key,
-- as the event writer would. One statement per table, in one transaction.
\set ON_ERROR_STOP on
SET TIME ZONE 'UTC';
BEGIN;
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT i,
       md5('cidgate-bench-call-' || i)::uuid AS id,
       s.started_at,
       date_trunc('month', s.started_at)::date AS month,
       i % 5 <> 0 AS answered,
       s.started_at + make_interval(secs => 3 + i % 10) AS answered_at,
       CASE WHEN i % 5 <> 0
            THEN s.started_at + make_interval(secs => 3 + i % 10 + 20 + (i * 7919) % 600)
            ELSE s.started_at + make_interval(secs => 30) END AS ended_at,
       CASE WHEN i % 3 = 0 THEN 'Outbound' ELSE 'Inbound' END AS direction,
       '+40720' || lpad((i % 1000000)::text, 6, '0') AS other_number
FROM generate_series(:first::bigint, :last::bigint) AS i
CROSS JOIN LATERAL (
    SELECT to_timestamp(:t_end::double precision - :span_days::double precision * 86400
                        + (i - 1) * (:span_days::double precision * 86400 / :total::double precision))
               AS started_at) AS s;

INSERT INTO calls (tenant_id, month, id, report_call_id, activecallkey, request_id, direction,
    caller_number, caller_name, contact_id, dnis, external_number, other_number, agent,
    call_group, account_codes, tags, started_at, answered_at, ended_at, duration_ms, talk_ms,
    outcome, recorded, recording_url, legs, lookup, extra, change_seq)
SELECT :tenant, month, id, i, 'bc-' || i, NULL, direction,
       CASE WHEN direction = 'Inbound' THEN other_number END,
       CASE WHEN i % 4 = 0 THEN 'Contact ' || (i % 1000000) END,
       CASE WHEN i % 4 = 0 THEN (i % 1000000)::text END,
       CASE WHEN direction = 'Inbound' THEN '0215550100' END,
       CASE WHEN direction = 'Outbound' THEN other_number END,
       other_number,
       'agent ' || (i % 200), NULL, '{}', '{}',
       started_at,
       CASE WHEN answered THEN answered_at END,
       ended_at,
       (extract(epoch FROM ended_at - started_at) * 1000)::bigint,
       CASE WHEN answered THEN (extract(epoch FROM ended_at - answered_at) * 1000)::bigint ELSE 0 END,
       CASE WHEN answered THEN 'answered' ELSE 'missed' END,
       answered,
       CASE WHEN answered THEN 'https://recordings.example/bc-' || i || '.mp3' END,
       jsonb_build_array(jsonb_build_object(
           'call_id', 'bc-' || i, 'guid', NULL, 'leg', NULL,
           'answered_at', CASE WHEN answered THEN answered_at END,
           'ended_at', ended_at,
           'outcome', CASE WHEN answered THEN 'answered' ELSE 'missed' END)),
       NULL, '{}', 1
FROM seed;

INSERT INTO call_keys (tenant_id, month, key, call_id)
SELECT :tenant, month, 'c:bc-' || i, id FROM seed;

-- Report call ids handed out from here on follow the seeded ones.
-- The seeded calls are change 1 of the tenant's; later writes follow.
INSERT INTO call_counters AS c (tenant_id, last_report_call_id, last_change_seq) VALUES (:tenant, :last, 1)
ON CONFLICT (tenant_id) DO UPDATE SET last_report_call_id = greatest(c.last_report_call_id, excluded.last_report_call_id),
    last_change_seq = greatest(c.last_change_seq, 1);
COMMIT;
