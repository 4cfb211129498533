-- 0007: when the XMPP recipient's client confirmed a message from Matrix (XEP-0184 <received/>).
ALTER TABLE message_map ADD COLUMN delivered_at BIGINT;
