-- Where each imported file was left: `decroche import asterisk FILE` resumes from here after
-- an interruption. The position is written in the transaction that stores the lines before
-- it, so it never runs ahead of what was stored. `fingerprint` (a hash of the file's first
-- bytes) tells whether the file at that path is still the one that was being read.
CREATE TABLE import_files (
    source      text        NOT NULL,
    path        text        NOT NULL,
    fingerprint text        NOT NULL,
    byte_offset bigint      NOT NULL,
    line_no     bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, path)
);
