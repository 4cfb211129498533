-- 0001: foundation — inbound de-duplication, the outbox, 1:1 portals, ghosts, XMPP subscriptions.
CREATE TABLE appservice_txn (
    txn_id      TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

CREATE TABLE inbound_stanza (
    sender      TEXT NOT NULL,
    stanza_id   TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (sender, stanza_id)
);

-- IDENTITY: ids are never reused, so Matrix txnIds and stanza ids derived from them stay unique.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lane            TEXT NOT NULL,
    action          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX outbox_lane ON outbox (lane, id);

CREATE TABLE dm_portal (
    room_id         TEXT PRIMARY KEY,
    xmpp_jid        TEXT NOT NULL,
    matrix_user     TEXT NOT NULL,
    peer_membership TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX dm_portal_pair ON dm_portal (xmpp_jid, matrix_user, updated_at);

CREATE TABLE ghost (
    user_id       TEXT PRIMARY KEY,
    displayname   TEXT,
    registered_at BIGINT NOT NULL
);

CREATE TABLE xmpp_subscription (
    contact    TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (contact, subscriber)
);
