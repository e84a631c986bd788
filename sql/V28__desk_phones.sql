-- Desk phones (issue 35): a `phones` token scope, and a directory search by name that
-- stays fast on a tenant of millions of contacts.

ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_extra_scopes_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_extra_scopes_check
    CHECK (extra_scopes <@ ARRAY['lookup', 'sync', 'report', 'admin', 'events', 'phones']);
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check
    CHECK (scope IN ('lookup', 'sync', 'report', 'admin', 'events', 'phones'));

-- "Name contains" (ILIKE '%term%') through trigrams: a bitmap scan of the few matching
-- contacts instead of reading every name. pg_trgm is a trusted extension (PostgreSQL 13+):
-- the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_name_trgm_idx ON contacts USING gin (name gin_trgm_ops);

-- Browsing (no term, or a term most names contain) walks the tenant's names in order and
-- stops at the page's end, instead of sorting them all.
CREATE INDEX contacts_tenant_name_idx ON contacts (tenant_id, name, crm_id);
