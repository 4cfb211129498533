-- 0004: group conversations the bridge hosts (Matrix rooms it created, offered as MUCs on XMPP).
CREATE TABLE bridged_room (
    room_id    TEXT PRIMARY KEY,
    alias      TEXT,
    name       TEXT,
    topic      TEXT,
    owner      TEXT NOT NULL,
    is_open    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX bridged_room_alias ON bridged_room (alias);

-- The participants (on either network) with their role; `state` is 'invite' or 'join'.
CREATE TABLE room_member (
    room_id    TEXT NOT NULL,
    party      TEXT NOT NULL,
    role       TEXT NOT NULL,
    state      TEXT NOT NULL,
    nick       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, party)
);
CREATE INDEX room_member_party ON room_member (party);

-- XMPP clients currently joined to a room's MUC (one row per full JID).
CREATE TABLE muc_occupant (
    room_id   TEXT NOT NULL,
    full_jid  TEXT NOT NULL,
    party     TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, full_jid)
);

-- What was said in each room, for MAM (XEP-0313) and history on join.
CREATE TABLE room_archive (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id   TEXT NOT NULL,
    sender    TEXT NOT NULL,
    nick      TEXT NOT NULL,
    body      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    origin_id TEXT,
    event_id  TEXT,
    ts        BIGINT NOT NULL
);
CREATE INDEX room_archive_room ON room_archive (room_id, id);
