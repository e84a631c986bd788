-- How a tenant's PBX proves who it is on lookups: a token, its source address, or both.
-- The reference demands "IP restriction or secret token"; a tenant chooses.
ALTER TABLE tenants
    ADD COLUMN auth_policy TEXT NOT NULL DEFAULT 'token'
        CHECK (auth_policy IN ('token', 'ip', 'token+ip')),
    -- Lookups per second this tenant may make; NULL means the gateway's default.
    ADD COLUMN lookup_rate_per_sec INTEGER CHECK (lookup_rate_per_sec > 0);
