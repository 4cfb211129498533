-- 0002: last known presence of Matrix users (answers XMPP probes), and the Matrix event ↔ stanza id of each bridged 1:1 message (read markers).
CREATE TABLE matrix_presence (
    user_id    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    note       TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE message_map (
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    xmpp_jid    TEXT NOT NULL,
    matrix_user TEXT NOT NULL,
    stanza_id   TEXT NOT NULL,
    from_xmpp   BIGINT NOT NULL,
    markable    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX message_map_stanza ON message_map (xmpp_jid, stanza_id);
CREATE INDEX message_map_room_time ON message_map (room_id, from_xmpp, created_at);
