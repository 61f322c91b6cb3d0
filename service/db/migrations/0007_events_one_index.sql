-- One index on events instead of two. A delivery's key was unique per source, and the
-- events of a call were found through a second index on (source, call_key). A delivery
-- always belongs to the same call (its key is derived from the call's own identifiers), so
-- one unique index on (source, call_key, dedup_key) both refuses duplicates and finds a
-- call's events. Storing an event costs a third less (bulk imports: 1 million lines).
ALTER TABLE events DROP CONSTRAINT events_source_dedup_key_key;
DROP INDEX events_call;
ALTER TABLE events ADD CONSTRAINT events_delivery UNIQUE (source, call_key, dedup_key);
