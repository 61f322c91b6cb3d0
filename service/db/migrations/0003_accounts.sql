-- Accounts, sessions, tokens, login throttling and the audit log.

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    email          text        NOT NULL UNIQUE,          -- stored lower-cased
    role           text        NOT NULL CHECK (role IN ('admin', 'quality', 'viewer')),
    password_hash  text,                                 -- argon2id; NULL until set up
    setup_hash     text,                                 -- sha256 of a one-time set-up token
    setup_expires  timestamptz,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Login sessions: the cookie carries the session id, signed; only its hash is stored, so a
-- copy of the database opens no session. Logout deletes the row.
CREATE TABLE sessions (
    id_hash     text        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Bearer tokens: 'api' tokens act as their user; 'wall' tokens open the wall and nothing else.
CREATE TABLE tokens (
    id           bigserial PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('api', 'wall')),
    user_id      bigint      REFERENCES users ON DELETE CASCADE,   -- who created it
    name         text        NOT NULL,
    token_hash   text        NOT NULL UNIQUE,                      -- sha256 of the token
    prefix       text        NOT NULL,                             -- shown to tell tokens apart
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Failed logins, per account and per address, for throttling (kept one day).
CREATE TABLE login_failures (
    id      bigserial PRIMARY KEY,
    email   text        NOT NULL,
    address text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_address ON login_failures (address, at);

-- Who viewed, exported, erased or changed what. Append-only.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,          -- 'user:3 dgs@ville.fr', 'token:7', 'env-admin', 'cli', 'job'
    action  text        NOT NULL,          -- 'calls.view', 'caller.erase', 'user.add', …
    target  text,
    detail  json,
    address text
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
