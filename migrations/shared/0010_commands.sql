-- 0010: what admin and user commands store: contact groups, the missed-call block list and setting
-- overrides, people's own choices (missed-call notices on/off, language), and imported contact files.
CREATE TABLE contact_group (
    name       TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE contact_group_member (
    group_name TEXT NOT NULL,
    party      TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (group_name, party)
);

-- kind: 'number' (a caller never reported) or 'extension' (a phone never told).
CREATE TABLE call_block (
    kind     TEXT NOT NULL,
    entry    TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (kind, entry)
);

-- Missed-call policy and options set by admins; they win over the config file.
CREATE TABLE call_setting (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);

-- A person's own settings (party in Party::key form), e.g. missed_calls = on/off, language = de.
CREATE TABLE user_setting (
    party  TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (party, name)
);

-- Contact files admins imported (vCard or CSV), kept as text and parsed at start; a new file
-- with the same name replaces the old one.
CREATE TABLE contact_import (
    name        TEXT PRIMARY KEY,
    format      TEXT NOT NULL,
    content     TEXT NOT NULL,
    contacts    BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
