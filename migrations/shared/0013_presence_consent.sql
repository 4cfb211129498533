-- 0013: consent to presence.
-- presence_consent: a Matrix user's answer to an XMPP user who asked to see their presence
-- without sharing a conversation with them ('pending' until answered, then 'approved' or 'denied').
CREATE TABLE presence_consent (
    matrix_user TEXT NOT NULL,
    xmpp_jid    TEXT NOT NULL,
    xmpp_domain TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (matrix_user, xmpp_jid)
);
CREATE INDEX presence_consent_domain ON presence_consent (xmpp_domain, state);
CREATE INDEX presence_consent_user ON presence_consent (matrix_user, state);

-- XMPP users who share their presence with a Matrix user's address (they sent 'subscribed' to it,
-- usually answering the subscription the bridge made on the Matrix user's behalf).
CREATE TABLE xmpp_presence_share (
    matrix_user TEXT NOT NULL,
    xmpp_jid    TEXT NOT NULL,
    xmpp_domain TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (matrix_user, xmpp_jid)
);
CREATE INDEX xmpp_presence_share_domain ON xmpp_presence_share (xmpp_domain);
CREATE INDEX xmpp_presence_share_jid ON xmpp_presence_share (xmpp_jid);
