-- 0009: a random id of this database, part of every Matrix txnId and stanza id the bridge makes:
-- outbox ids start again in a new database (e.g. after moving from SQLite to PostgreSQL), and the
-- homeserver (which remembers txnIds for a day) and XMPP clients (which drop repeated ids) must not
-- take new messages for old ones.
CREATE TABLE bridge_instance (
    id TEXT PRIMARY KEY
);
