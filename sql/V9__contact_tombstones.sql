-- The source time of a deletion, so that an older write arriving after the delete (out
-- of order, from a slow sync job) does not bring the contact back. Pruned after the
-- lookup-log retention: by then no sync is that late.
CREATE TABLE contact_tombstones (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    crm_id     TEXT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, crm_id)
);
