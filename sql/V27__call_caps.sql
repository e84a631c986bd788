-- Caps that keep one tenant's calls from hurting the others (issue 29).

-- Most calls a tenant stores (`cidgate tenant set --max-calls`): a new call past it is
-- refused (422). Its calls are counted on its `call_counters` row, in the short section
-- at the end of an event write that holds that row (store::calls), and taken out when
-- retention drops a month (store::call_partitions).
ALTER TABLE tenants ADD COLUMN max_calls BIGINT NOT NULL DEFAULT 10000000
    CHECK (max_calls >= 0);
ALTER TABLE call_counters ADD COLUMN calls BIGINT NOT NULL DEFAULT 0;

-- Events recorded for the call (`CIDGATE_CALL_MAX_EVENTS` caps them). NULL for calls
-- written before this migration: counted the next time one of them gains an event,
-- rather than rewriting every call (and its report figures) here.
ALTER TABLE calls ADD COLUMN event_count INTEGER;

-- Event writers are started after migrations, so nothing is written between the count
-- and the first write that keeps it.
UPDATE call_counters c SET calls = n.calls
FROM (SELECT tenant_id, count(*) AS calls FROM calls GROUP BY tenant_id) n
WHERE c.tenant_id = n.tenant_id;
