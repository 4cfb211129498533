-- 0003: status-change notifications people asked for, and each Matrix user's direct chat with the bridge bot.
CREATE TABLE presence_watch (
    watcher      TEXT NOT NULL,
    target       TEXT NOT NULL,
    on_available BIGINT NOT NULL,
    on_offline   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (watcher, target)
);
CREATE INDEX presence_watch_target ON presence_watch (target);

CREATE TABLE bot_dm (
    matrix_user TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
