-- Running mystery-call campaigns (campaigns/runner.py): what the scheduler did, exactly once.

-- One row per thing the scheduler must do at most once, whichever instance does it: a call
-- sheet (sheet:<call>), a day's summary (summary:<date>:<e-mail>), a placed call
-- (call:<call>). The row is inserted, and committed, before the act: a second instance, or
-- the same one after a restart, finds it and does nothing.
CREATE TABLE run_claims (
    key          text        PRIMARY KEY,
    claimed_by   text        NOT NULL,               -- instance id (host:pid:random)
    claimed_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text,                               -- 'sent', 'placed', 'failed: …'
    detail       jsonb       NOT NULL DEFAULT '{}'
);

-- A slot the service could not honour (down at the time): moved inside its stratum, or missed.
ALTER TABLE mystery_calls
    ADD COLUMN moved_from   timestamptz,             -- the slot as first planned
    ADD COLUMN moved_reason text;

-- What Twilio did for an assisted call or a closed-hours probe.
CREATE TABLE mystery_runs (
    mystery_call_id      bigint      PRIMARY KEY REFERENCES mystery_calls ON DELETE CASCADE,
    kind                 text        NOT NULL CHECK (kind IN ('assisted', 'probe')),
    state                text        NOT NULL DEFAULT 'placing'
                         CHECK (state IN ('placing', 'placed', 'bridged', 'ended')),
    outcome              text,       -- answered | evaluator-no-answer | target-busy |
                                     -- target-no-answer | failed
    detail               text,       -- what Twilio said, for people
    dial_seconds         integer,    -- DialCallDuration: the bridged call's length
    placed_at            timestamptz NOT NULL,
    call_sid             text UNIQUE,                -- the leg Décroché created
    target_sid           text,                       -- the leg to the target (assisted)
    evaluator_answered_at timestamptz,
    target_initiated_at  timestamptz,
    target_ringing_at    timestamptz,
    target_answered_at   timestamptz,
    ended_at             timestamptz,
    ring_seconds         double precision,           -- ringing → pick-up of the target
    recording_sid        text,
    recording_url        text,
    recording_seconds    integer,
    recording_erased_at  timestamptz,
    prefill              jsonb       NOT NULL DEFAULT '{}', -- item id → answer measured
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mystery_runs_recordings ON mystery_runs (placed_at)
    WHERE recording_sid IS NOT NULL AND recording_erased_at IS NULL;
