-- 0026: phone numbers in hosted rooms (issue 18 item 6). The number is a room member (its SMS
-- ghost, `party`, in room_member); this row says who added it (the SMS are billed to them) and
-- when the room last sent to it (an incoming SMS goes to the conversation that wrote last).
CREATE TABLE room_phone (
    room_id     TEXT NOT NULL,
    party       TEXT NOT NULL,
    phone       TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    last_out_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, party)
);
CREATE INDEX room_phone_phone ON room_phone (phone, last_out_at);
