-- 0018: the chatbot in rooms of several people, and its limits.
-- A room the chatbot was invited into that is not a direct chat: its context is the room's, and
-- it answers only messages addressed to it (`shared` = 1). `party` is who invited it.
ALTER TABLE chatbot_room ADD COLUMN shared BIGINT NOT NULL DEFAULT 0;
-- Each person's use of the chatbot per UTC day (`day`: the day's first millisecond), for the
-- daily token budgets and the admins' usage command.
CREATE TABLE chatbot_usage (
    party    TEXT NOT NULL,
    day      BIGINT NOT NULL,
    messages BIGINT NOT NULL DEFAULT 0,
    tokens   BIGINT NOT NULL DEFAULT 0,
    images   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (party, day)
);
