-- Web-service profiles (DESIGN §8): where call data is sent, the outbox of deliveries
-- written in the same transaction as the call events that trigger them, and the log of
-- every attempt.

CREATE TABLE webhook_profiles (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    -- The definition as written (domain::profile::ProfileInput): URL, method, event,
    -- criteria, parameters, body, headers. Secret header values are in it: it is never
    -- shown as is.
    definition      JSONB NOT NULL,
    trigger         TEXT NOT NULL,
    -- The Standard Webhooks signing secret (`whsec_…`), and the one it replaced, which
    -- still signs until `previous_until` so receivers can switch over.
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TIMESTAMPTZ,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    disabled_reason TEXT,
    -- Set at the first failed attempt after a success; a profile failing for longer
    -- than CIDGATE_WEBHOOK_DISABLE_AFTER is disabled.
    failing_since   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- The outbox. `seq` orders the deliveries of one call to one profile: a delivery waits
-- while an earlier one of the same pair is pending or being sent.
CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,
    -- The `webhook-id` the receiver sees: a replay keeps the original's, so a receiver
    -- that already has it knows it is the same message.
    message_id      UUID NOT NULL,
    seq             BIGSERIAL NOT NULL,
    tenant_id       BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    profile_id      BIGINT NOT NULL REFERENCES webhook_profiles (id) ON DELETE CASCADE,
    call_id         UUID NOT NULL,
    trigger         TEXT NOT NULL,
    -- The call record when the delivery was queued (calls row, contact name, CRM link).
    call            JSONB NOT NULL,
    -- `event`: written with the call's events; `replay`, `manual` (`profile run`).
    origin          TEXT NOT NULL DEFAULT 'event' CHECK (origin IN ('event', 'replay', 'manual')),
    replay_of       UUID,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- While `sending`: when the claim lapses (an instance killed mid-request).
    lease_until     TIMESTAMPTZ,
    last_status     INT,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ
);

-- A trigger sends a call to a profile once, however often its events repeat.
CREATE UNIQUE INDEX webhook_deliveries_once_idx
    ON webhook_deliveries (profile_id, call_id, trigger) WHERE origin = 'event';
-- What workers claim: due deliveries, oldest first.
CREATE INDEX webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at) WHERE state IN ('pending', 'sending');
-- The order of one call's deliveries to one profile.
CREATE INDEX webhook_deliveries_pair_idx
    ON webhook_deliveries (profile_id, call_id, seq) WHERE state IN ('pending', 'sending');
-- The delivery log, newest first; retention by age.
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (tenant_id, created_at DESC);

-- Every attempt: when, the answer's status, how long, why it failed, the answer's first KiB.
CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    delivery_id  UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TIMESTAMPTZ NOT NULL,
    status       INT,
    latency_ms   INT NOT NULL,
    error        TEXT,
    response     TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
