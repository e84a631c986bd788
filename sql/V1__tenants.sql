-- A tenant is one PBX customer/project: its own contacts, tokens, allowlist and region.
CREATE TABLE tenants (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name           TEXT NOT NULL,
    -- ISO 3166 alpha-2 region used to read national numbers.
    default_region TEXT NOT NULL CHECK (default_region ~ '^[A-Z]{2}$'),
    -- Feature settings that later issues add (popup, auth policy, limits).
    settings       JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
