-- 0024: when each participant of a hosted room joined (set on their first join, kept through role
-- changes): the owner hand-over ("longest-standing") and `!who` follow it. Rows from before this
-- have only their last change's time, the best that is known.
ALTER TABLE room_member ADD COLUMN joined_at BIGINT NOT NULL DEFAULT 0;
UPDATE room_member SET joined_at = updated_at;
