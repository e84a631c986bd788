-- Service users (DESIGN §10): who BI, billing and payroll systems pull reports and call
-- records as. Each holds `report` keys (rows of api_tokens) limited to its agents.
CREATE TABLE service_users (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The extensions and groups whose calls it sees; both NULL: every agent's.
    agents     TEXT[],
    groups     TEXT[],
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Kept, not deleted: its keys point at it, and a key that lost its user must not
    -- become a key that sees everything.
    revoked_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX service_users_name_idx ON service_users (tenant_id, name)
    WHERE revoked_at IS NULL;

-- A key bound to a service user sees what the user may; a `report` token without one
-- sees the whole tenant, as before.
ALTER TABLE api_tokens ADD COLUMN service_user_id BIGINT REFERENCES service_users (id);
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_service_user_check
    CHECK (service_user_id IS NULL OR (scope = 'report' AND extra_scopes = '{}'));
CREATE INDEX api_tokens_service_user_idx ON api_tokens (service_user_id)
    WHERE service_user_id IS NOT NULL;

-- Reports enabled for the historical-data API; `id` is the reference's historicDataKey,
-- `report_id` its short reportId.
CREATE TABLE reports (
    id              UUID PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    report_id       BIGINT NOT NULL,
    template        TEXT NOT NULL,
    service_user_id BIGINT NOT NULL REFERENCES service_users (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at     TIMESTAMPTZ,
    UNIQUE (tenant_id, report_id)
);
