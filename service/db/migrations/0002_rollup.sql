-- A daily (and monthly) rollup of the classified calls, so that reports over long periods read a few
-- histogram rows per service and day instead of every call. It is a cache, never a source
-- of truth: it is built by service/metrics/rollup.py under the configuration fingerprint
-- stored in rollup_state, and readers use a day only when that fingerprint is theirs and the
-- day is clean. Thresholds are not in it (they apply at query time), so a changed threshold
-- needs no rebuild; a changed calendar or line mapping changes the fingerprint and the
-- rollup is rebuilt.

CREATE TABLE rollup_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),   -- a single row
    fingerprint text        NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now()
);

-- Local days whose rollup rows are built (a built day without rows had no finished call).
CREATE TABLE rollup_days (
    day date PRIMARY KEY
);

-- Finished inbound calls per local day, service ('~unknown' for unclaimed lines), in_hours,
-- answered and wait (NULL out of hours, where no figure reads it).
-- (Byte-order collation: these keys are grouped, never shown sorted; it is much faster.)
CREATE TABLE call_rollup (
    day      date             NOT NULL,
    service  text COLLATE "C" NOT NULL,
    in_hours boolean          NOT NULL,
    answered boolean          NOT NULL,
    wait_s   double precision,
    n        integer          NOT NULL
);
CREATE INDEX call_rollup_day ON call_rollup (day);

-- The same rows summed over a calendar month, for months whose every day is built; a month
-- is rebuilt in the transaction that rebuilds any of its days. Readers use a month only when
-- all its days are clean.
CREATE TABLE rollup_months (
    month date PRIMARY KEY                          -- its first day
);
CREATE TABLE call_rollup_month (
    month    date             NOT NULL,
    service  text COLLATE "C" NOT NULL,
    in_hours boolean          NOT NULL,
    answered boolean          NOT NULL,
    wait_s   double precision,
    n        bigint           NOT NULL
);
CREATE INDEX call_rollup_month_month ON call_rollup_month (month);

-- UTC days of calls that changed since the rollup last read them. Every statement writing
-- calls adds its days here (a trigger, so nothing that writes calls can forget); a UTC day
-- taints the local days around it. The refresher deletes exactly the marks it read, in the
-- snapshot it rebuilt from, so a change committed meanwhile keeps its mark.
CREATE TABLE rollup_dirty (
    id      bigserial PRIMARY KEY,
    utc_day date NOT NULL
);
CREATE INDEX rollup_dirty_day ON rollup_dirty (utc_day);

CREATE FUNCTION mark_rollup_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rollup_dirty (utc_day)
        SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO rollup_dirty (utc_day)
        SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM old_rows;
    ELSE
        -- Only changes the figures can see; erasing a number, say, marks nothing.
        INSERT INTO rollup_dirty (utc_day)
        SELECT DISTINCT (d AT TIME ZONE 'UTC')::date
        FROM old_rows o JOIN new_rows n ON n.id = o.id,
             LATERAL (VALUES (o.started_at), (n.started_at)) AS v(d)
        WHERE (o.started_at, o.direction, o.line, o.queue, o.answered, o.wait_s,
               o.disposition IS NULL)
              IS DISTINCT FROM
              (n.started_at, n.direction, n.line, n.queue, n.answered, n.wait_s,
               n.disposition IS NULL);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
CREATE TRIGGER calls_rollup_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_rollup_dirty();
