-- A cap on the phone numbers a tenant stores (`cidgate tenant set --max-numbers`): every
-- instance holds each tenant's numbers in memory (the number index), so one tenant's
-- mirror must not grow that without bound. A write that would take a tenant past its cap
-- is refused whole.
ALTER TABLE tenants ADD COLUMN max_numbers BIGINT NOT NULL DEFAULT 5000000
    CHECK (max_numbers >= 0);

-- How many numbers each tenant stores, kept by statement triggers on contact_phones, so
-- a write checks the cap without counting millions of rows. The tenant's writers take
-- turns on its row (store::contacts::BatchWriter), so its count row is never contended
-- by another tenant's writes.
CREATE TABLE tenant_number_counts (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    numbers   BIGINT NOT NULL
);

CREATE FUNCTION contact_phones_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_number_counts AS c (tenant_id, numbers)
    SELECT tenant_id, count(*) FROM inserted GROUP BY tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET numbers = c.numbers + EXCLUDED.numbers;
    RETURN NULL;
END
$$;

CREATE TRIGGER contact_phones_inserted AFTER INSERT ON contact_phones
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION contact_phones_inserted();

-- Only an update: while a tenant is deleted its count row may already be gone.
CREATE FUNCTION contact_phones_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenant_number_counts c SET numbers = c.numbers - d.numbers
    FROM (SELECT tenant_id, count(*) AS numbers FROM deleted GROUP BY tenant_id) d
    WHERE c.tenant_id = d.tenant_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER contact_phones_deleted AFTER DELETE ON contact_phones
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION contact_phones_deleted();

-- Counted after the triggers exist: creating them locks out writers until this
-- migration commits, so no write falls between the count and the triggers.
INSERT INTO tenant_number_counts (tenant_id, numbers)
SELECT tenant_id, count(*) FROM contact_phones GROUP BY tenant_id;
