-- Raw events (append-only) and the calls folded from them.

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL,              -- 'twilio', 'asterisk', 'cdr'
    call_key    text        NOT NULL,              -- the call's id within its source
    dedup_key   text        NOT NULL,              -- one delivery; a duplicate is refused
    kind        text        NOT NULL,
    occurred_at timestamptz,                       -- the instant the source gives, if any
    received_at timestamptz NOT NULL,
    -- json, not jsonb: stored as written (cheaper to ingest); cast to jsonb to query inside.
    norm        json        NOT NULL,              -- the normalised event the fold reads
    payload     json        NOT NULL,              -- what the source sent, as received
    UNIQUE (source, dedup_key)
);
CREATE INDEX events_call ON events (source, call_key);

CREATE TABLE calls (
    id            bigserial PRIMARY KEY,
    source        text        NOT NULL,
    external_id   text        NOT NULL,
    direction     text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    line          text,
    queue         text,
    caller_hash   text,                            -- HMAC of the number: recognises a caller
    caller_last2  text,                            -- for display
    caller_number text,                            -- erased after privacy.keep_numbers_days
    agent         text,
    started_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    ended_at      timestamptz,
    wait_s        double precision,
    answered      boolean     NOT NULL,
    disposition   text,                            -- NULL while the call is in progress
    time_from_events boolean  NOT NULL,
    recording_url text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id)
);
CREATE INDEX calls_started ON calls (started_at DESC, id DESC);
CREATE INDEX calls_line_started ON calls (line, started_at);
CREATE INDEX calls_caller ON calls (caller_hash, started_at);

-- Calls whose events changed and whose row must be refolded. The webhook path only appends
-- events and marks the call here, in one statement; folders (any instance) take marked calls
-- with SKIP LOCKED, refold them from all their events and delete the mark, in one transaction.
CREATE TABLE fold_queue (
    source      text        NOT NULL,
    call_key    text        NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, call_key)
);

-- Refused payloads, kept with the reason so nothing is lost.
CREATE TABLE quarantine (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    source       text        NOT NULL,
    reason       text        NOT NULL,
    content_type text,
    line_no      integer,
    body         text        NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received_at DESC);
