-- Source networks allowed to call a tenant's lookup; no rows means any address.
CREATE TABLE ip_allowlist (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    network    CIDR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, network)
);
