-- Phone numbers and CRM ids are identifiers: compare them byte for byte.
-- * Under any collation but "C", every index comparison is a locale-aware strcoll; the
--   lookup log's number index, written once per lookup, spent much of its time there.
-- * The database's order becomes the gateway's: bulk writes take their row locks in byte
--   order, which then matches PostgreSQL's whatever the database's locale.
-- No table is rewritten; the indexes on these columns are rebuilt.
ALTER TABLE contacts ALTER COLUMN crm_id TYPE TEXT COLLATE "C";
ALTER TABLE contact_phones
    ALTER COLUMN crm_id TYPE TEXT COLLATE "C",
    ALTER COLUMN number TYPE TEXT COLLATE "C";
ALTER TABLE contact_tombstones ALTER COLUMN crm_id TYPE TEXT COLLATE "C";
ALTER TABLE lookup_log
    ALTER COLUMN number TYPE TEXT COLLATE "C",
    ALTER COLUMN crm_id TYPE TEXT COLLATE "C";
