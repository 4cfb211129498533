-- 0021: the personal journal — chats beside calls, notes on entries, per-user read tokens.
-- One row per person, conversation and UTC day (`day`: the day's first millisecond): the
-- conversation's first and last message that day, and how many. `party` is whose journal it is
-- (`matrix:@a:hs` / `xmpp:a@x`); `conversation` the other side (`xmpp:b@y`, `matrix:@c:hs`).
-- `unread_since`: the first message to `party` not yet read (NULL: nothing waiting);
-- `missed`: a missed-chat summary went out for it and it is still unread.
CREATE TABLE chat_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    party        TEXT NOT NULL,
    conversation TEXT NOT NULL,
    kind         TEXT NOT NULL,
    day          BIGINT NOT NULL,
    first_at     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    messages     BIGINT NOT NULL DEFAULT 0,
    unread_since BIGINT,
    missed       BIGINT NOT NULL DEFAULT 0,
    notified     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_journal_day ON chat_journal (party, conversation, day);
CREATE INDEX chat_journal_party_time ON chat_journal (party, last_at);
CREATE INDEX chat_journal_unread ON chat_journal (unread_since);
-- A person's note on one of their entries: `entry` is `c<id>` (a call_journal row) or
-- `m<id>` (a chat_journal row).
CREATE TABLE journal_note (
    party   TEXT NOT NULL,
    entry   TEXT NOT NULL,
    note    TEXT NOT NULL,
    set_at  BIGINT NOT NULL,
    PRIMARY KEY (party, entry)
);
-- A token that reads one person's journal over HTTP, stored as its SHA-256 (hex).
CREATE TABLE journal_token (
    token_hash TEXT PRIMARY KEY,
    party      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX journal_token_party ON journal_token (party);
