-- Call-backs marked done by hand (« rappel effectué »). The others close by themselves when
-- the caller reaches an agent or answers a call placed to them (see service/callbacks).

CREATE TABLE callback_marks (
    id          bigserial PRIMARY KEY,
    caller_hash text        NOT NULL,
    call_id     bigint      NOT NULL,               -- the lost call the mark was made from
    actor       text        NOT NULL,
    done_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX callback_marks_caller ON callback_marks (caller_hash, done_at);

-- Unanswered inbound calls are what the call-back list starts from.
CREATE INDEX calls_unanswered ON calls (started_at) WHERE NOT answered AND direction = 'inbound';
