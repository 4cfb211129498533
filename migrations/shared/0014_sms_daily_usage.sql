-- The daily SMS cap (sms.rate_limits.daily_cap_per_user) as one counter row per person and UTC
-- day, taken with one conditional upsert: the old read-the-sum-then-insert in two statements let
-- concurrent sends of one person exceed the cap (security review L11).
CREATE TABLE sms_daily_usage (
    party TEXT NOT NULL,
    day   BIGINT NOT NULL,
    parts BIGINT NOT NULL,
    PRIMARY KEY (party, day)
);
INSERT INTO sms_daily_usage (party, day, parts)
    SELECT party, (at / 86400000) * 86400000, SUM(parts) FROM sms_usage GROUP BY party, (at / 86400000) * 86400000;
