-- Caller trust on the lookup log (issue 36): the STIR/SHAKEN verification result and
-- attestation the PBX passed, and why the answer was screened (spam_list,
-- failed_verstat) when it was. Nullable: a rolling upgrade's older instances write
-- rows without them.
ALTER TABLE lookup_log
    ADD COLUMN verstat TEXT,
    ADD COLUMN attest TEXT,
    ADD COLUMN screened TEXT;
