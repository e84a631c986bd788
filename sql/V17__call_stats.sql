-- Report figures per UTC day and per UTC hour (DESIGN §10). A month of ten million calls
-- sums from a month of days, the hours at its ends and the calls of its partial hours
-- (store::report_stats), where reading the calls themselves takes seconds. Triggers on
-- `calls` keep them in the transaction that writes the call: each write takes the call's
-- old figures out and puts its new ones in; only ended calls count. They are partitioned
-- by the call's month like `calls`, so retention drops them together
-- (store::call_partitions). Calls are only ever removed with their month's partition or
-- their tenant, so there is no DELETE trigger: deleting single calls would leave their
-- figures behind.
CREATE TABLE call_stats (
    tenant_id   BIGINT NOT NULL,
    month       DATE NOT NULL,
    -- The UTC day (`daily`) or hour the calls started in.
    daily       BOOLEAN NOT NULL,
    bucket      TIMESTAMPTZ NOT NULL,
    -- '' where the call names none (a key column cannot be NULL).
    agent_ext   TEXT NOT NULL,
    call_group  TEXT NOT NULL,
    direction   TEXT NOT NULL,
    dnis        TEXT NOT NULL,
    calls       BIGINT NOT NULL,
    answered    BIGINT NOT NULL,
    -- Of the answered calls.
    talk_ms     BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, daily, bucket, agent_ext, call_group, direction, dnis, month)
) PARTITION BY RANGE (month);

-- The same per account code: a call with two codes counts under each.
CREATE TABLE call_code_stats (
    tenant_id    BIGINT NOT NULL,
    month        DATE NOT NULL,
    daily        BOOLEAN NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    account_code TEXT NOT NULL,
    agent_ext    TEXT NOT NULL,
    call_group   TEXT NOT NULL,
    calls        BIGINT NOT NULL,
    answered     BIGINT NOT NULL,
    talk_ms      BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, daily, bucket, account_code, agent_ext, call_group, month)
) PARTITION BY RANGE (month);

-- What of a call its figures come from.
CREATE TYPE call_fact AS (
    tenant_id     BIGINT,
    month         DATE,
    started_at    TIMESTAMPTZ,
    agent         TEXT,
    call_group    TEXT,
    direction     TEXT,
    dnis          TEXT,
    account_codes TEXT[],
    outcome       TEXT,
    talk_ms       BIGINT,
    duration_ms   BIGINT
);

-- Takes `removed` calls' figures out and puts `added` ones in; changes that cancel out
-- (a late event that changed nothing counted) write nothing.
CREATE FUNCTION call_stats_apply(removed call_fact[], added call_fact[]) RETURNS void
LANGUAGE sql AS $$
    WITH f AS (
        SELECT -1 AS sign, r.* FROM unnest(removed) r
        UNION ALL
        SELECT 1, a.* FROM unnest(added) a
    ), d AS (
        SELECT tenant_id, month, daily,
               date_trunc(CASE WHEN daily THEN 'day' ELSE 'hour' END, started_at, 'UTC') AS bucket,
               coalesce(agent_extension(agent), '') AS agent_ext,
               coalesce(call_group, '') AS call_group, coalesce(direction, '') AS direction,
               coalesce(dnis, '') AS dnis, account_codes, sign AS calls,
               CASE WHEN outcome = 'answered' THEN sign ELSE 0 END AS answered,
               CASE WHEN outcome = 'answered' THEN sign * coalesce(talk_ms, 0) ELSE 0 END
                   AS talk_ms,
               sign * coalesce(duration_ms, 0) AS duration_ms
        FROM f, (VALUES (true), (false)) AS spans (daily)
    ), by_call AS (
        INSERT INTO call_stats AS s (tenant_id, month, daily, bucket, agent_ext, call_group,
                                     direction, dnis, calls, answered, talk_ms, duration_ms)
        SELECT tenant_id, month, daily, bucket, agent_ext, call_group, direction, dnis,
               sum(calls), sum(answered), sum(talk_ms), sum(duration_ms)
        FROM d
        GROUP BY tenant_id, month, daily, bucket, agent_ext, call_group, direction, dnis
        HAVING sum(calls) <> 0 OR sum(answered) <> 0 OR sum(talk_ms) <> 0
            OR sum(duration_ms) <> 0
        ON CONFLICT (tenant_id, daily, bucket, agent_ext, call_group, direction, dnis, month)
        DO UPDATE SET calls = s.calls + excluded.calls,
                      answered = s.answered + excluded.answered,
                      talk_ms = s.talk_ms + excluded.talk_ms,
                      duration_ms = s.duration_ms + excluded.duration_ms
    )
    INSERT INTO call_code_stats AS s (tenant_id, month, daily, bucket, account_code, agent_ext,
                                      call_group, calls, answered, talk_ms, duration_ms)
    SELECT tenant_id, month, daily, bucket, code, agent_ext, call_group,
           sum(calls), sum(answered), sum(talk_ms), sum(duration_ms)
    FROM d, unnest(account_codes) AS code
    GROUP BY tenant_id, month, daily, bucket, code, agent_ext, call_group
    HAVING sum(calls) <> 0 OR sum(answered) <> 0 OR sum(talk_ms) <> 0 OR sum(duration_ms) <> 0
    ON CONFLICT (tenant_id, daily, bucket, account_code, agent_ext, call_group, month)
    DO UPDATE SET calls = s.calls + excluded.calls,
                  answered = s.answered + excluded.answered,
                  talk_ms = s.talk_ms + excluded.talk_ms,
                  duration_ms = s.duration_ms + excluded.duration_ms
$$;

-- One statement-level trigger per event (transition tables allow no more), each run
-- once per statement that writes calls (store::calls writes a batch in one).
CREATE FUNCTION calls_inserted_stats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added call_fact[] := ARRAY(
        SELECT (n.tenant_id, n.month, n.started_at, n.agent, n.call_group, n.direction,
                n.dnis, n.account_codes, n.outcome, n.talk_ms, n.duration_ms)::call_fact
        FROM new_calls n WHERE n.ended_at IS NOT NULL);
BEGIN
    IF cardinality(added) > 0 THEN
        PERFORM call_stats_apply('{}', added);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION calls_updated_stats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    removed call_fact[] := ARRAY(
        SELECT (o.tenant_id, o.month, o.started_at, o.agent, o.call_group, o.direction,
                o.dnis, o.account_codes, o.outcome, o.talk_ms, o.duration_ms)::call_fact
        FROM old_calls o WHERE o.ended_at IS NOT NULL);
    added call_fact[] := ARRAY(
        SELECT (n.tenant_id, n.month, n.started_at, n.agent, n.call_group, n.direction,
                n.dnis, n.account_codes, n.outcome, n.talk_ms, n.duration_ms)::call_fact
        FROM new_calls n WHERE n.ended_at IS NOT NULL);
BEGIN
    IF cardinality(removed) > 0 OR cardinality(added) > 0 THEN
        PERFORM call_stats_apply(removed, added);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_inserted_stats AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION calls_inserted_stats();

CREATE TRIGGER calls_updated_stats AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION calls_updated_stats();

-- A tenant's figures go with it (its calls go in tenants_deleted_calls, V14).
CREATE FUNCTION tenants_deleted_call_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM call_stats s USING deleted d WHERE s.tenant_id = d.id;
    DELETE FROM call_code_stats s USING deleted d WHERE s.tenant_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_deleted_call_stats AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_deleted_call_stats();

-- The months that already have calls get their partitions here (later ones come with
-- the calls' own, from store::call_partitions), and their figures, one month at a time.
DO $$
DECLARE
    part RECORD;
    m    DATE;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'calls' AND p.relnamespace = current_schema()::regnamespace
          AND c.relname ~ '^calls_y[0-9]{4}m[0-9]{2}$'
    LOOP
        m := make_date(substring(part.relname FROM 8 FOR 4)::int,
                           substring(part.relname FROM 13 FOR 2)::int, 1);
        EXECUTE format('CREATE TABLE %I PARTITION OF call_stats FOR VALUES FROM (%L) TO (%L)',
                       'call_stats' || substring(part.relname FROM 6), m,
                       (m + interval '1 month')::date);
        EXECUTE format('CREATE TABLE %I PARTITION OF call_code_stats FOR VALUES FROM (%L) TO (%L)',
                       'call_code_stats' || substring(part.relname FROM 6), m,
                       (m + interval '1 month')::date);
        PERFORM call_stats_apply('{}', ARRAY(
            SELECT (c.tenant_id, c.month, c.started_at, c.agent, c.call_group, c.direction,
                    c.dnis, c.account_codes, c.outcome, c.talk_ms, c.duration_ms)::call_fact
            FROM calls c WHERE c.month = m AND c.ended_at IS NOT NULL));
    END LOOP;
END
$$;
