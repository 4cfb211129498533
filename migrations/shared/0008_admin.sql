-- 0008: what admins allowed people to use, and the audit log of admin commands.
CREATE TABLE permission (
    party      TEXT NOT NULL,
    permission TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (party, permission)
);

CREATE TABLE admin_audit (
    at      BIGINT NOT NULL,
    admin   TEXT NOT NULL,
    command TEXT NOT NULL,
    ok      BIGINT NOT NULL,
    result  TEXT NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit (at);
