-- When a digest delivery was claimed: a claim older than a few minutes belongs to a process
-- that died while sending; the digest job turns it to 'unknown' (it may have gone) and says
-- so, instead of leaving it 'sending' for ever.
ALTER TABLE digest_deliveries ADD COLUMN claimed_at timestamptz;
