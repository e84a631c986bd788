-- Keep attributes as the exact JSON text the API received. jsonb re-renders numbers as
-- exact decimals (1.7976931348623157e308 becomes 309 digits), which JSON parsers may
-- then refuse; attributes are only stored and shown, never queried, so json suffices.
ALTER TABLE contacts DROP CONSTRAINT contacts_attributes_check;
ALTER TABLE contacts ALTER COLUMN attributes DROP DEFAULT;
ALTER TABLE contacts ALTER COLUMN attributes TYPE json USING attributes::json;
ALTER TABLE contacts ALTER COLUMN attributes SET DEFAULT '{}'::json;
ALTER TABLE contacts ADD CONSTRAINT contacts_attributes_check CHECK (json_typeof(attributes) = 'object');
