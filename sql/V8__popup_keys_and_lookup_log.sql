-- Per-tenant keys that sign screen-pop links. A new key signs from its creation on;
-- older keys still verify the links they signed until those expire.
CREATE TABLE popup_keys (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id     INTEGER NOT NULL CHECK (key_id > 0),
    secret     BYTEA NOT NULL CHECK (length(secret) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key_id)
);

-- Every lookup, written in batches off the request path; pruned after the retention.
CREATE TABLE lookup_log (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at         TIMESTAMPTZ NOT NULL,
    -- Normalized caller number; NULL for withheld or unparseable callers.
    number     TEXT,
    dnid       TEXT,
    crm_id     TEXT,
    outcome    TEXT NOT NULL CHECK (outcome IN ('found', 'unknown', 'degraded')),
    latency_us INTEGER NOT NULL
);

-- The screen pop's "recent calls from this number".
CREATE INDEX lookup_log_number_idx ON lookup_log (tenant_id, number, at DESC);
-- Pruning by age.
CREATE INDEX lookup_log_at_idx ON lookup_log (at);
