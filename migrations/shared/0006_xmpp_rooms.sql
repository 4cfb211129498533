-- 0006: portal rooms for MUCs on XMPP servers (#_xmpp_room=40conference.example:hs), and the Matrix
-- users who are occupants of them through the bridge.
CREATE TABLE xmpp_room (
    room_id    TEXT PRIMARY KEY,
    muc_jid    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX xmpp_room_muc ON xmpp_room (muc_jid);

CREATE TABLE xmpp_room_occupant (
    room_id     TEXT NOT NULL,
    matrix_user TEXT NOT NULL,
    nick        TEXT NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (room_id, matrix_user)
);
