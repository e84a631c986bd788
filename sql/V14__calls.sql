-- Calls reported by PBXs (DESIGN §7). Each table is partitioned by the call's month: the
-- month of its first event, fixed when the call is created, so that a call, its keys and
-- its events live and expire together. Retention drops whole partitions; cidgate creates
-- the partitions ahead of time (store::call_partitions), none are made here.

-- One row per call: the record computed from its events, rewritten whenever one arrives.
CREATE TABLE calls (
    tenant_id       BIGINT NOT NULL,
    month           DATE NOT NULL,
    id              UUID NOT NULL,
    -- Short per-tenant number (the reference's Report Call ID).
    report_call_id  BIGINT NOT NULL,
    activecallkey   TEXT NOT NULL,
    request_id      BIGINT,
    direction       TEXT,
    caller_number   TEXT,
    caller_name     TEXT,
    contact_id      TEXT,
    dnis            TEXT,
    external_number TEXT,
    -- The other party, normalized: who called in, or who was called out to.
    other_number    TEXT,
    agent           TEXT,
    call_group      TEXT,
    account_codes   TEXT[] NOT NULL DEFAULT '{}',
    tags            TEXT[] NOT NULL DEFAULT '{}',
    started_at      TIMESTAMPTZ NOT NULL,
    answered_at     TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    duration_ms     BIGINT,
    talk_ms         BIGINT,
    outcome         TEXT NOT NULL,
    recorded        BOOLEAN NOT NULL DEFAULT false,
    recording_url   TEXT,
    legs            JSONB NOT NULL,
    lookup          JSONB,
    extra           JSONB NOT NULL DEFAULT '{}',
    -- The tenant's write that last changed the row. A tenant's event writes take turns
    -- (on its `call_counters` row), so these numbers become visible in order: a cursor
    -- past one can never have a smaller one commit behind it, as a plain sequence could.
    change_seq      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id, month)
) PARTITION BY RANGE (month);

-- CDR pages by start time, and the change feed that follows them.
CREATE INDEX calls_started_idx ON calls (tenant_id, started_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX calls_changed_idx ON calls (tenant_id, change_seq, id) WHERE ended_at IS NOT NULL;
-- A number's recent calls (the screen pop, the CDR API's `number` filter).
CREATE INDEX calls_number_idx ON calls (tenant_id, other_number, started_at);

-- What finds a call: `c:` a leg's PBX call id, `r:` a click-to-call RequestID, `g:` a
-- leg's GUID. Events are grouped into calls through these keys.
CREATE TABLE call_keys (
    tenant_id BIGINT NOT NULL,
    month     DATE NOT NULL,
    key       TEXT NOT NULL,
    call_id   UUID NOT NULL,
    PRIMARY KEY (tenant_id, key, month)
) PARTITION BY RANGE (month);

-- Every event as received (`raw`, credentials left out) and as applied (`event`). The
-- fingerprint makes a repeated report a no-op.
CREATE TABLE call_events (
    tenant_id   BIGINT NOT NULL,
    month       DATE NOT NULL,
    call_id     UUID NOT NULL,
    fingerprint BYTEA NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    event       JSONB NOT NULL,
    raw         JSONB NOT NULL,
    PRIMARY KEY (tenant_id, month, call_id, fingerprint)
) PARTITION BY RANGE (month);

-- One row per tenant (not the tenant row itself, which contact writes lock): every event
-- write of the tenant locks it first, so the tenant's writes take turns and commit in
-- the order of `last_change_seq`; it also hands out report call ids in blocks.
CREATE TABLE call_counters (
    tenant_id           BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_report_call_id BIGINT NOT NULL DEFAULT 0,
    last_change_seq     BIGINT NOT NULL DEFAULT 0
);

-- A tenant's calls go with it.
CREATE FUNCTION tenants_deleted_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM calls c USING deleted d WHERE c.tenant_id = d.id;
    DELETE FROM call_keys k USING deleted d WHERE k.tenant_id = d.id;
    DELETE FROM call_events e USING deleted d WHERE e.tenant_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_deleted_calls AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_deleted_calls();

-- Tokens may carry several scopes (`token create --scope lookup,events`: one token a PBX
-- uses for lookups and call events). `scope` stays the first, and names the prefix.
ALTER TABLE api_tokens ADD COLUMN extra_scopes TEXT[] NOT NULL DEFAULT '{}'
    CHECK (extra_scopes <@ ARRAY['lookup', 'sync', 'report', 'admin', 'events']);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check
    CHECK (scope IN ('lookup', 'sync', 'report', 'admin', 'events'));
