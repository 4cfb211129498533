-- 0015: delivery reports per SMS part. A concatenated SMS goes to the network as several parts and
-- Kannel calls the DLR URL once per part (each with the SMSC's id of that part, %F); the tick
-- waits until every part was delivered, and a repeated report of one part counts once.
CREATE TABLE sms_dlr_part (
    reference TEXT NOT NULL,
    part      TEXT NOT NULL,
    status    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (reference, part)
);
