-- 0029: reactions and retractions in a hosted room's archive (served over MAM). A row with `act`
-- is an occupant's reactions ('reactions': body = the keys, one a line) or retraction ('retract')
-- of the archived message `target`; a retracted message stays as a tombstone (XEP-0424): its
-- content is erased and `retracted_by` / `retracted_at` name the retraction.
ALTER TABLE room_archive ADD COLUMN act TEXT;
ALTER TABLE room_archive ADD COLUMN target BIGINT;
ALTER TABLE room_archive ADD COLUMN retracted_by BIGINT;
ALTER TABLE room_archive ADD COLUMN retracted_at BIGINT;
