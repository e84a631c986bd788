-- Agents (DESIGN §9): a tenant's extensions, named `Name(extension)` in events and
-- reports, and the groups they answer for. Calls name their agent as the PBX sent it
-- (`Agent1(200)` or `200`); they are matched to an agent by extension.
CREATE TABLE agents (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    extension  TEXT NOT NULL,
    name       TEXT NOT NULL,
    groups     TEXT[] NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, extension)
);

-- The extension a call's `agent` names: the digits in its trailing parentheses
-- (`Agent1(200)`), or the whole value (`200`). src/domain/agent.rs reads it the same way.
CREATE FUNCTION agent_extension(agent TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(btrim(substring(btrim(agent) FROM '\(([^()]*)\)$')), ''),
                          nullif(btrim(agent), '')) $$;
