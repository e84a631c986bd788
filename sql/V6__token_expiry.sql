-- A rotated token stays valid for a grace period, then expires on its own.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
