-- Click-to-call (DESIGN §9, issue 18): agents' sessions, the tenant's dialer and dial
-- policy, and the requests with their per-tenant RequestIDs.

-- A session is the reference's Login: minted by the CRM's server for one agent, valid
-- for the tenant's session length. Only the SHA-256 of its secret is kept. Removing the
-- agent ends its sessions.
CREATE TABLE agent_sessions (
    secret_hash BYTEA PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    extension   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (tenant_id, extension) REFERENCES agents (tenant_id, extension)
        ON DELETE CASCADE
);
CREATE INDEX agent_sessions_agent_idx ON agent_sessions (tenant_id, extension);
-- Expired sessions are pruned by the retention job.
CREATE INDEX agent_sessions_expiry_idx ON agent_sessions (expires_at);

-- How a tenant's PBX is asked to place a call: one dialer per tenant, set by the operator.
-- `settings` holds what may be shown (host, templates); `secret` what may not (AMI
-- secret, ESL password, secret headers), never printed back. There is no key outside
-- the database to encrypt it with, so it is as safe as the database's own access rules.
CREATE TABLE dialers (
    tenant_id  BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('http', 'asterisk-ami', 'freeswitch-esl')),
    settings   JSONB NOT NULL,
    secret     JSONB,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which numbers a tenant's agents may call, how often, and for how long a session holds.
-- A tenant without a row has the defaults in src/domain/dial_policy.rs.
CREATE TABLE dial_policies (
    tenant_id  BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    policy     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- RequestIDs increase per tenant: one counter row each (a global sequence would leak
-- other tenants' volume and skip numbers).
CREATE TABLE click2call_counters (
    tenant_id       BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_request_id BIGINT NOT NULL DEFAULT 0
);

-- One row per click-to-call request: what was asked, and what the dialer said. Where the
-- call stands afterwards comes from the PBX's events (the call whose key is `r:<id>`).
CREATE TABLE click2call_requests (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_id  BIGINT NOT NULL,
    extension   TEXT NOT NULL,
    agent       TEXT NOT NULL,
    number      TEXT NOT NULL,
    dialled     TEXT NOT NULL,
    queue       TEXT,
    -- `pending` until the dialer answers, then `accepted` or `failed` (with `reason`).
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'failed')),
    reason      TEXT,
    pbx_id      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);
-- The throttle counts an agent's recent requests.
CREATE INDEX click2call_requests_agent_idx ON click2call_requests (tenant_id, extension, created_at);
