-- 0020: presence from the phone and pickup alerts.
-- A watch may ask for "a call to pick up" alerts besides "available again" / "logs off".
ALTER TABLE presence_watch ADD COLUMN on_pickup BIGINT NOT NULL DEFAULT 0;
-- A chat account shown busy because a phone call of theirs is connected (one row per call), with
-- their own presence as last known (NULL: unknown), shown again when the last call ends: also
-- after a restart, when the bridge has not heard from them yet.
CREATE TABLE phone_busy (
    party     TEXT NOT NULL,
    call_id   TEXT NOT NULL,
    note      TEXT NOT NULL,
    own_state TEXT,
    own_note  TEXT,
    since     BIGINT NOT NULL,
    PRIMARY KEY (party, call_id)
);
