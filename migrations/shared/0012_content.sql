-- 0012: message content beyond text: which event an edit corrects (1:1 chats and room archive),
-- each person's reactions per message (with the Matrix event of each), and the bridge's links to
-- Matrix files it serves to XMPP clients.
ALTER TABLE message_map ADD COLUMN edit_of TEXT;
ALTER TABLE room_archive ADD COLUMN replaces BIGINT;
ALTER TABLE room_archive ADD COLUMN replaces_ref TEXT;
CREATE INDEX room_archive_origin ON room_archive (room_id, origin_id);
CREATE INDEX room_archive_event ON room_archive (room_id, event_id);

CREATE TABLE reaction (
    room_id      TEXT NOT NULL,
    target_event TEXT NOT NULL,
    reactor      TEXT NOT NULL,
    reaction_key TEXT NOT NULL,
    event_id     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (room_id, target_event, reactor, reaction_key)
);
CREATE INDEX reaction_event ON reaction (room_id, event_id);

CREATE TABLE media_link (
    token      TEXT PRIMARY KEY,
    mxc        TEXT NOT NULL,
    name       TEXT NOT NULL,
    mimetype   TEXT,
    size       BIGINT,
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_link_event ON media_link (room_id, event_id);
