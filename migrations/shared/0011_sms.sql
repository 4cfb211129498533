-- 0011: SMS: who chats with which phone number (and in which Matrix room), the SMS the gateway
-- accepted (for delivery reports and the retry guard), incoming SMS already taken, and the parts
-- each person sent (daily cap).
CREATE TABLE sms_conversation (
    party       TEXT NOT NULL,
    phone       TEXT NOT NULL,
    room_id     TEXT,
    last_out_at BIGINT NOT NULL,
    PRIMARY KEY (party, phone)
);
CREATE INDEX sms_conversation_phone ON sms_conversation (phone, last_out_at);
CREATE INDEX sms_conversation_room ON sms_conversation (room_id);

CREATE TABLE sms_message (
    reference       TEXT PRIMARY KEY,
    provider_id     TEXT,
    phone           TEXT NOT NULL,
    parts           BIGINT NOT NULL,
    origin          TEXT,
    state           TEXT NOT NULL,
    delivered_parts BIGINT NOT NULL DEFAULT 0,
    sent_at         BIGINT NOT NULL
);
CREATE INDEX sms_message_provider_id ON sms_message (provider_id);

CREATE TABLE sms_inbound (
    provider TEXT NOT NULL,
    id       TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (provider, id)
);

CREATE TABLE sms_usage (
    party TEXT NOT NULL,
    at    BIGINT NOT NULL,
    parts BIGINT NOT NULL
);
CREATE INDEX sms_usage_party_at ON sms_usage (party, at);
