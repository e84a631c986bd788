-- A tenant's spam list (issue 36): numbers reported as unwanted (imported complaint
-- data counts reports) or added by the tenant itself. A number is flagged when the
-- tenant added it, or once its reports reach the tenant's threshold (tenants.settings
-- -> 'spam' -> 'threshold', default 2); every instance holds the flagged numbers in
-- memory, so screening an unknown caller costs no query.
CREATE TABLE spam_numbers (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Normalized as lookups normalize the caller (E.164 with the tenant's region).
    number     TEXT NOT NULL CHECK (length(number) BETWEEN 1 AND 64),
    reports    INTEGER NOT NULL DEFAULT 0 CHECK (reports >= 0),
    -- `spam add` / PUT: the tenant's own decision, flagged whatever the reports.
    added      BOOLEAN NOT NULL DEFAULT false,
    label      TEXT CHECK (length(label) <= 200),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, number)
);
