-- Caps on a tenant's click-to-call (issue 28, item 2). The CRM's `sync` token creates
-- agents and sessions, and the throttle is per agent, so without a cap on agents one
-- leaked token could start as many parallel calls as it creates agents.
-- `cidgate tenant set --max-agents`; an agent past the cap is refused (422).
ALTER TABLE tenants ADD COLUMN max_agents INTEGER NOT NULL DEFAULT 1000
    CHECK (max_agents >= 0);

-- The tenant-wide throttle (dial policy `tenant_per_minute`) counts a tenant's recent
-- requests, whatever the agent.
CREATE INDEX click2call_requests_tenant_idx ON click2call_requests (tenant_id, created_at);
