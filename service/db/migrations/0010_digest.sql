-- The weekly digest (service/digest/): one row per (week, recipient), inserted when the
-- week's digest falls due. A row is claimed ('sending', committed) before its message goes
-- to the SMTP server, so no instance, restart or second run sends it twice.
CREATE TABLE digest_deliveries (
    week            text        NOT NULL,            -- ISO week, 'YYYY-Www'
    recipient       text        NOT NULL,            -- lower-cased e-mail address
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    claimed_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (week, recipient)
);

CREATE INDEX digest_deliveries_due ON digest_deliveries (next_attempt_at)
    WHERE state = 'pending';
