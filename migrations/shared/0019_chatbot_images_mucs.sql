-- 0019: the chatbot's images and the MUCs it is in.
-- Its images, kept with the outbox action that asked for one, so that a retried
-- delivery sends the same image instead of asking the provider for (and paying for) a new one.
-- `data` is the image in base64; rows older than a day are forgotten when a new one is kept.
CREATE TABLE chatbot_image (
    action   BIGINT PRIMARY KEY,
    mimetype TEXT NOT NULL,
    data     TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX chatbot_image_at ON chatbot_image (at);
-- A MUC on an XMPP server the assistant was invited into (and joined as `nick`): rejoined after
-- a reconnect, forgotten (with the MUC's context) when it is removed. `party` is who invited it:
-- questions there count as theirs (a MUC need not show occupants' real addresses).
CREATE TABLE chatbot_muc (
    muc   TEXT PRIMARY KEY,
    party TEXT NOT NULL,
    nick  TEXT NOT NULL,
    at    BIGINT NOT NULL
);
