-- 0005: missed calls — telephony events of calls in progress, finished calls, the call journal, last logon per person.
-- Events of a call not yet finished; replayed into the call tracker at start; deleted with the call's notices.
CREATE TABLE call_event (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     TEXT NOT NULL,
    event       TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX call_event_call ON call_event (call_id, id);
-- Calls already handled (a replayed webhook of a finished call is ignored).
CREATE TABLE call_done (
    call_id TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
-- Every call per person: missed, answered, outgoing; with the notice decision.
CREATE TABLE call_journal (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    call_id      TEXT NOT NULL,
    direction    TEXT NOT NULL,
    number       TEXT,
    number_key   TEXT NOT NULL,
    name         TEXT,
    contact_id   TEXT,
    extension    TEXT,
    started_at   BIGINT NOT NULL,
    ended_at     BIGINT NOT NULL,
    ring_ms      BIGINT NOT NULL,
    answered_by  TEXT,
    notified     BIGINT NOT NULL DEFAULT 0,
    channels     TEXT NOT NULL DEFAULT '',
    skip_reason  TEXT,
    processed    BIGINT NOT NULL DEFAULT 0,
    processed_by TEXT,
    processed_at BIGINT
);
CREATE UNIQUE INDEX call_journal_call_user ON call_journal (call_id, user_id, kind);
CREATE INDEX call_journal_user_time ON call_journal (user_id, started_at);
CREATE INDEX call_journal_user_number ON call_journal (user_id, number_key, started_at);
-- When a person was last seen available (any presence but offline), keyed `matrix:@u:hs` / `xmpp:a@b`.
CREATE TABLE user_logon (
    party        TEXT PRIMARY KEY,
    last_seen_at BIGINT NOT NULL
);
