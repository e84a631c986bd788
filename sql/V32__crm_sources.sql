-- CRM sources (issue 34): where a lookup asks when the mirror does not know a number.
-- `params` holds the kind's parameters; secret ones (passwords, tokens, API keys, header
-- values) are sealed with CIDGATE_SECRETS_KEY like profiles' secret headers.
CREATE TABLE crm_sources (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    kind        TEXT NOT NULL,
    params      JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    timeout_ms  INTEGER NOT NULL CHECK (timeout_ms BETWEEN 10 AND 30000),
    mode        TEXT NOT NULL CHECK (mode IN ('inline', 'background')),
    -- Sources are asked in this order (then by id).
    position    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- What the sources answered for a number: found (by which source, as which contact) or
-- not, and when; a found number is asked again after a TTL, an unknown one sooner.
CREATE TABLE crm_source_answers (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number      TEXT NOT NULL,
    source_id   BIGINT REFERENCES crm_sources (id) ON DELETE CASCADE,
    crm_id      TEXT,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX crm_source_answers_found ON crm_source_answers (checked_at) WHERE source_id IS NOT NULL;
