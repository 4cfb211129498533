-- 0023: the messages of linked MUCs: the Matrix event each one is, the room's XEP-0359 stanza id
-- (replies, reactions and retractions in the MUC name it) and the sender's own id (corrections name it).
CREATE TABLE linked_message (
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    muc         TEXT NOT NULL,
    nick        TEXT NOT NULL,
    matrix_user TEXT NOT NULL,
    message_id  TEXT,
    stanza_id   TEXT,
    from_xmpp   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX linked_message_stanza ON linked_message (muc, stanza_id);
CREATE INDEX linked_message_own_id ON linked_message (muc, message_id);
