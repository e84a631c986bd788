-- A call's bounded summary (issue 29): for each value of its record, the event that gave
-- it (domain::CallFold). A new event is folded into it, so writing an event no longer
-- re-reads every event of its call. NULL for calls written before this migration: their
-- events are read once, the next time one of them gains an event, rather than rewriting
-- every call here.
ALTER TABLE calls ADD COLUMN summary JSONB;
