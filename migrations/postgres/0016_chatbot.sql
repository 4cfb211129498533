-- 0016: the chatbot — its one-to-one rooms on Matrix, and each conversation's context.
-- A Matrix room a person invited the chatbot into: their chat with it.
CREATE TABLE chatbot_room (
    room_id TEXT PRIMARY KEY,
    party   TEXT NOT NULL
);
-- The turns of a conversation, oldest first (id order); `context` is whose: a person's key
-- (`matrix:@a:hs`, `xmpp:a@x`) for a one-to-one chat. `action` is the outbox action that asked
-- the question an answer belongs to: a retried action finds its answer instead of asking again.
CREATE TABLE chatbot_turn (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    context TEXT NOT NULL,
    role    TEXT NOT NULL,
    content TEXT NOT NULL,
    action  BIGINT,
    at      BIGINT NOT NULL
);
CREATE INDEX chatbot_turn_context ON chatbot_turn (context, id);
CREATE INDEX chatbot_turn_action ON chatbot_turn (action);
