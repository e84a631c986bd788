-- The CRM mirror. `crm_id` is the CRM's own id, unique per tenant.
CREATE TABLE contacts (
    tenant_id         BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    crm_id            TEXT NOT NULL CHECK (length(crm_id) BETWEEN 1 AND 128),
    name              TEXT NOT NULL,
    direct_line       TEXT,
    queue_position    SMALLINT CHECK (queue_position BETWEEN 0 AND 100),
    route_identifier  TEXT,
    outbound_number   TEXT,
    language          TEXT,
    external_id       TEXT,
    crm_url           TEXT,
    attributes        JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    -- The source's own modification time; older writes are ignored as stale.
    source_updated_at TIMESTAMPTZ,
    written_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, crm_id)
);

-- Numbers normalized to E.164 (or bare digits for extensions) by the application.
CREATE TABLE contact_phones (
    tenant_id BIGINT NOT NULL,
    crm_id    TEXT NOT NULL,
    number    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, crm_id, number),
    FOREIGN KEY (tenant_id, crm_id) REFERENCES contacts (tenant_id, crm_id) ON DELETE CASCADE
);

-- The lookup: tenant + number -> contacts sharing that number.
CREATE INDEX contact_phones_lookup_idx ON contact_phones (tenant_id, number) INCLUDE (crm_id);
