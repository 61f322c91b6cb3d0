-- Events and calls partitioned by month (declarative partitioning), so that each month's
-- rows and indexes stay the size of a month, and old months can be detached and archived.
--
-- The partition key is the call's month, and it must never change: a delivery's key and a
-- call's key are only unique within a partition, so a call stored under two months would be
-- two calls. A call's month is therefore fixed once, when its first event is stored — the
-- month (UTC) of the earliest instant among its first events (the source's own time, else
-- the time of receipt) — and kept in call_keys, which every later event and every fold
-- reads. Calls without events (none are written that way by the service) take the month of
-- their start.
--
-- Existing rows are copied into the new tables: on a large database this migration takes a
-- while (about a minute per 2 million calls with their events on a small machine).

CREATE TABLE call_keys (
    source   text NOT NULL,
    call_key text NOT NULL,
    month    date NOT NULL,                   -- the first day of the call's month (UTC)
    PRIMARY KEY (source, call_key)
);

INSERT INTO call_keys (source, call_key, month)
SELECT source, call_key,
       date_trunc('month', min(coalesce(occurred_at, received_at)) AT TIME ZONE 'UTC')::date
FROM events GROUP BY source, call_key;
INSERT INTO call_keys (source, call_key, month)
SELECT source, external_id, date_trunc('month', started_at AT TIME ZONE 'UTC')::date FROM calls
ON CONFLICT DO NOTHING;

-- Creates the partitions of the months given (first days), those missing only. Called by
-- the migration, by the scheduler's leader for the months ahead, and by any writer before
-- it stores rows of a month it has not seen (an import of old records, say).
CREATE FUNCTION ensure_month_partitions(months date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date;
    made integer := 0;
BEGIN
    FOREACH m IN ARRAY months LOOP
        m := date_trunc('month', m)::date;
        CONTINUE WHEN to_regclass(format('events_%s', to_char(m, 'YYYY_MM'))) IS NOT NULL
                  AND to_regclass(format('calls_%s', to_char(m, 'YYYY_MM'))) IS NOT NULL;
        -- Two writers making the same month: one waits for the other, then finds it
        -- made. (The catalog this function read may predate the other's commit, so the
        -- name taken meanwhile is recognised by its error.)
        PERFORM pg_advisory_xact_lock(7436891245);
        BEGIN
            EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
            made := made + 1;
        EXCEPTION WHEN duplicate_table THEN NULL;
        END;
        BEGIN
            EXECUTE format('CREATE TABLE calls_%s PARTITION OF calls FOR VALUES FROM (%L) TO (%L)',
                           to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
            made := made + 1;
        EXCEPTION WHEN duplicate_table THEN NULL;
        END;
    END LOOP;
    RETURN made;
END $$;

-- The old tables step aside (their indexes and triggers go with them when dropped).
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE calls RENAME TO calls_unpartitioned;
ALTER SEQUENCE events_id_seq OWNED BY NONE;
ALTER SEQUENCE calls_id_seq OWNED BY NONE;

CREATE TABLE events (
    id          bigint      NOT NULL DEFAULT nextval('events_id_seq'),
    month       date        NOT NULL,          -- the call's month (call_keys)
    source      text        NOT NULL,
    call_key    text        NOT NULL,
    dedup_key   text        NOT NULL,
    kind        text        NOT NULL,
    occurred_at timestamptz,
    received_at timestamptz NOT NULL,
    norm        json        NOT NULL,
    payload     json        NOT NULL
) PARTITION BY RANGE (month);

CREATE TABLE calls (
    id            bigint      NOT NULL DEFAULT nextval('calls_id_seq'),
    month         date        NOT NULL,        -- the call's month (call_keys)
    source        text        NOT NULL,
    external_id   text        NOT NULL,
    direction     text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    line          text,
    queue         text,
    caller_hash   text,
    caller_last2  text,
    caller_number text,
    agent         text,
    started_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    ended_at      timestamptz,
    wait_s        double precision,
    answered      boolean     NOT NULL,
    disposition   text,
    time_from_events boolean  NOT NULL,
    recording_url text,
    updated_at    timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (month);

ALTER SEQUENCE events_id_seq OWNED BY events.id;
ALTER SEQUENCE calls_id_seq OWNED BY calls.id;

-- Every month that has rows, and the three ahead (the scheduler keeps three ahead after).
SELECT ensure_month_partitions(ARRAY(
    SELECT DISTINCT month FROM call_keys
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month')::date
    FROM generate_series(0, 3) AS n
));

INSERT INTO events (id, month, source, call_key, dedup_key, kind, occurred_at, received_at,
                    norm, payload)
SELECT e.id, k.month, e.source, e.call_key, e.dedup_key, e.kind, e.occurred_at,
       e.received_at, e.norm, e.payload
FROM events_unpartitioned e JOIN call_keys k USING (source, call_key);

INSERT INTO calls (id, month, source, external_id, direction, line, queue, caller_hash,
                   caller_last2, caller_number, agent, started_at, answered_at, ended_at, wait_s,
                   answered, disposition, time_from_events, recording_url, updated_at)
SELECT c.id, k.month, c.source, c.external_id, c.direction, c.line, c.queue, c.caller_hash,
       c.caller_last2, c.caller_number, c.agent, c.started_at, c.answered_at, c.ended_at,
       c.wait_s, c.answered, c.disposition, c.time_from_events, c.recording_url, c.updated_at
FROM calls_unpartitioned c JOIN call_keys k ON k.source = c.source AND k.call_key = c.external_id;

DROP TABLE events_unpartitioned;
DROP TABLE calls_unpartitioned;

-- The same indexes as before, each with the partition key where it must be unique. A
-- delivery is unique within its call's month, which is the call's for ever: as unique as
-- before.
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, month);
ALTER TABLE events ADD CONSTRAINT events_delivery UNIQUE (source, call_key, dedup_key, month);
ALTER TABLE calls ADD CONSTRAINT calls_pkey PRIMARY KEY (id, month);
ALTER TABLE calls ADD CONSTRAINT calls_source_external_id_key UNIQUE (source, external_id, month);
CREATE INDEX calls_started ON calls (started_at DESC, id DESC);
CREATE INDEX calls_line_started ON calls (line, started_at);
CREATE INDEX calls_caller ON calls (caller_hash, started_at);
CREATE INDEX calls_number_kept ON calls (started_at) WHERE caller_number IS NOT NULL;
CREATE INDEX calls_recording_kept ON calls (started_at, id) WHERE recording_url IS NOT NULL;
CREATE INDEX calls_unanswered ON calls (started_at) WHERE NOT answered AND direction = 'inbound';

-- The rollup's marks, on the partitioned table (their transition tables see every
-- partition). Created after the copy: the copied rows change no figure.
CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
CREATE TRIGGER calls_rollup_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
