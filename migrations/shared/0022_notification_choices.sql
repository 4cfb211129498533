-- 0022: people's notification choices per kind (missed-calls, missed-chats, pickup, status-changes):
-- on/off, the channel (NULL: the kind's usual ones) and the address (NULL: the one the bridge knows).
-- The missed-call on/off that user_setting held (`missed-calls on|off`) moves here: one switch.
CREATE TABLE notification_choice (
    party   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    channel TEXT,
    address TEXT,
    set_at  BIGINT NOT NULL,
    PRIMARY KEY (party, kind)
);

INSERT INTO notification_choice (party, kind, enabled, channel, address, set_at)
    SELECT party, 'missed-calls', CASE WHEN value = 'off' THEN 0 ELSE 1 END, NULL, NULL, set_at
    FROM user_setting WHERE name = 'missed_calls';
DELETE FROM user_setting WHERE name = 'missed_calls';
