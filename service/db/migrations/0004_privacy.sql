-- Retention: find what has outlived privacy.keep_numbers_days / keep_recordings_days
-- without reading every call, and remember which quarantined bodies were masked.

CREATE INDEX calls_number_kept ON calls (started_at) WHERE caller_number IS NOT NULL;
CREATE INDEX calls_recording_kept ON calls (started_at, id) WHERE recording_url IS NOT NULL;

ALTER TABLE quarantine ADD COLUMN masked_at timestamptz;
CREATE INDEX quarantine_unmasked ON quarantine (received_at) WHERE masked_at IS NULL;
