-- A `leg-event` profile sends one request for every pickup, missed and hangup of every
-- leg (issue 27, the FocalScope URL adapter's callbacks). Those deliveries are origin
-- `leg`, queued once per profile, call, leg and event (`leg_event` = '<leg id>/<event>');
-- the other triggers keep their one delivery per call (webhook_deliveries_once_idx).
ALTER TABLE webhook_deliveries ADD COLUMN leg_event TEXT;

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_origin_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_origin_check
    CHECK (origin IN ('event', 'replay', 'manual', 'leg'));

CREATE UNIQUE INDEX webhook_deliveries_leg_once_idx
    ON webhook_deliveries (profile_id, call_id, leg_event) WHERE origin = 'leg';
