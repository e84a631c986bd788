-- The lookup log takes one row per call, so its per-row cost is paid at the PBX's call
-- rate (the benchmark showed PostgreSQL spending ~9 us per row, half of it here):
-- * no foreign key: its check is a trigger and a row lock on `tenants` for every row,
--   and tenants are never deleted while they have traffic (rows of a removed tenant age
--   out with the retention);
-- * the age index for pruning becomes BRIN: rows arrive in time order, so a summary per
--   block range finds the old ones at a fraction of a B-tree's upkeep.
ALTER TABLE lookup_log DROP CONSTRAINT lookup_log_tenant_id_fkey;
DROP INDEX lookup_log_at_idx;
CREATE INDEX lookup_log_at_brin ON lookup_log USING brin (at);
