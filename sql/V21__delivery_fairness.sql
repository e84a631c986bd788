-- Fair deliveries (issue 28 item 4, issue 27 item 8): each profile has at most
-- `max_in_flight` requests out at once (the rest wait their turn), and a profile whose
-- receiver keeps timing out gets a smaller share: `timeout_streak` counts its attempts
-- that timed out or found no server since its last answer.
ALTER TABLE webhook_profiles
    ADD COLUMN max_in_flight INT NOT NULL DEFAULT 8 CHECK (max_in_flight BETWEEN 1 AND 256),
    ADD COLUMN timeout_streak INT NOT NULL DEFAULT 0;

-- What the claim reads per profile: its due deliveries, oldest first.
CREATE INDEX webhook_deliveries_profile_due_idx
    ON webhook_deliveries (profile_id, next_attempt_at, seq) WHERE state IN ('pending', 'sending');
