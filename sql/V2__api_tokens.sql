-- Tokens are shown once at creation; only a SHA-256 of the whole token is kept.
-- SHA-256 (not a slow KDF) is right here: tokens are 190 random bits, not passwords.
CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL CHECK (scope IN ('lookup', 'sync', 'report', 'admin')),
    label        TEXT NOT NULL DEFAULT '',
    token_hash   BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id);
