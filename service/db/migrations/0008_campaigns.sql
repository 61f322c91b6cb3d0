-- Mystery-call campaigns (campaigns/): grid versions, campaigns, their planned calls, and
-- the evaluations of those calls with every correction kept.

-- A grid version as used: once an evaluation refers to it, its definition never changes
-- (campaigns/grid_store.py refuses a different content under the same slug and version).
CREATE TABLE grids (
    id          bigserial PRIMARY KEY,
    slug        text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    definition  jsonb       NOT NULL,               -- the validated grid (Grid.as_dict)
    digest      text        NOT NULL,               -- SHA-256 of the canonical definition
    source      text        NOT NULL,               -- the file or body as given
    origin      text        NOT NULL,               -- the file's path, or "api"
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (slug, version)
);

CREATE TABLE campaigns (
    id            bigserial PRIMARY KEY,
    name          text        NOT NULL,
    grid_id       bigint      NOT NULL REFERENCES grids,
    spec          jsonb       NOT NULL,             -- the campaign structure (CampaignSpec.as_dict)
    source        text,                             -- the file as given, when there was one
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    plan_revision integer     NOT NULL DEFAULT 1,   -- incremented by each re-plan
    notes         jsonb       NOT NULL DEFAULT '[]',-- what the planner said (several calls a day…)
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    replanned_at  timestamptz,
    cancelled_by  text,
    cancelled_at  timestamptz
);

-- One planned mystery call. A re-plan marks the calls it replaces 'replanned' (kept for the
-- record) and inserts the new ones with the next plan_revision.
CREATE TABLE mystery_calls (
    id            bigserial PRIMARY KEY,
    campaign_id   bigint      NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    plan_revision integer     NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    service       text        NOT NULL,
    number        text        NOT NULL,
    scenario      text,
    evaluator     text        NOT NULL,             -- the evaluator's e-mail
    mode          text        NOT NULL,
    half_day      text        NOT NULL,
    moment        text        NOT NULL,
    status        text        NOT NULL DEFAULT 'planned'
                  CHECK (status IN ('planned', 'missed', 'cancelled', 'replanned')),
    status_reason text,
    status_by     text,
    status_at     timestamptz
);
CREATE INDEX mystery_calls_campaign ON mystery_calls (campaign_id, scheduled_at);
CREATE INDEX mystery_calls_evaluator ON mystery_calls (evaluator, scheduled_at);

CREATE TABLE evaluations (
    id              bigserial PRIMARY KEY,
    mystery_call_id bigint      NOT NULL UNIQUE REFERENCES mystery_calls ON DELETE CASCADE,
    grid_id         bigint      NOT NULL REFERENCES grids,
    answers         jsonb       NOT NULL,           -- item id → answer ("na": not applicable)
    comments        jsonb       NOT NULL DEFAULT '{}', -- item id → the evaluator's remark
    comment         text        NOT NULL DEFAULT '',
    score           double precision NOT NULL,
    raw_score       double precision NOT NULL,
    passed          boolean     NOT NULL,
    excellent       boolean     NOT NULL,
    critical_failed text[]      NOT NULL DEFAULT '{}',
    sections        jsonb       NOT NULL,           -- section id → score (null: all N/A)
    item_values     jsonb       NOT NULL,           -- item id → value in 0..1 (null: N/A)
    revision        integer     NOT NULL DEFAULT 1,
    author          text        NOT NULL,           -- who saved the current revision
    author_user_id  bigint,
    first_author    text        NOT NULL,
    first_user_id   bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluations_grid ON evaluations (grid_id);

-- Every revision an evaluation had before a correction replaced it.
CREATE TABLE evaluation_history (
    evaluation_id bigint      NOT NULL REFERENCES evaluations ON DELETE CASCADE,
    revision      integer     NOT NULL,
    answers       jsonb       NOT NULL,
    comments      jsonb       NOT NULL,
    comment       text        NOT NULL,
    score         double precision NOT NULL,
    passed        boolean     NOT NULL,
    author        text        NOT NULL,
    saved_at      timestamptz NOT NULL,
    replaced_by   text        NOT NULL,            -- who corrected it
    replaced_at   timestamptz NOT NULL DEFAULT now(),
    reason        text        NOT NULL DEFAULT '',
    PRIMARY KEY (evaluation_id, revision)
);
