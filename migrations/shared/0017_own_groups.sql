-- 0017: people's own contact groups (`groups mine`): each belongs to its owner (a party in
-- Party::key form), who alone sees and uses it; names are per owner.
CREATE TABLE own_group (
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);

CREATE TABLE own_group_member (
    owner      TEXT NOT NULL,
    group_name TEXT NOT NULL,
    party      TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (owner, group_name, party)
);
