//! A conversation's context: the turns sent with each question, bounded by a token budget.
//! Plain code: the bridge loads the stored turns, asks [`fit`] which to keep, and builds the
//! request's `messages` with [`messages`].

pub use crate::core::chat_turn::{Message, Role};

/// What a person wrote to the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// `/clear`: forget the conversation.
    Clear,
    /// A question (or any text) to answer.
    Ask(&'a str),
    /// An image keyword and the prompt after it: an image to make, without the context.
    Image(&'a str),
}

impl<'a> Input<'a> {
    /// What `text` asks; `image_keywords` start a request for an image (case ignored).
    pub fn parse(text: &'a str, image_keywords: &[String]) -> Self {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("/clear") {
            return Input::Clear;
        }
        let (first, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let first = first.trim_end_matches([':', ',']);
        if image_keywords.iter().any(|k| k.to_lowercase() == first.to_lowercase()) && !rest.trim().is_empty() {
            return Input::Image(rest.trim());
        }
        Input::Ask(trimmed)
    }
}

/// Tokens a message costs, estimated without the model's tokenizer: about four characters per
/// token for English text (OpenAI's rule of thumb; other languages and code take more, so it
/// leans high by counting characters, not bytes, and rounding up), plus the few tokens each
/// message's framing takes.
pub fn estimate_tokens(text: &str) -> u32 {
    const PER_MESSAGE: u32 = 4;
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.div_ceil(4).saturating_add(PER_MESSAGE)
}

/// How many of `history`'s oldest turns to drop so that the system prompt, the kept turns and
/// the question fit `budget` tokens. The kept part starts with a person's turn (an answer
/// without its question confuses models). The system prompt and the question are always sent,
/// even when they alone exceed the budget (the provider then says so).
pub fn fit(system: &str, history: &[Message], question: &str, budget: u32) -> usize {
    let fixed = estimate_tokens(system).saturating_add(estimate_tokens(question));
    let mut room = budget.saturating_sub(fixed);
    // Newest first: keep turns while they fit.
    let mut keep = 0;
    for turn in history.iter().rev() {
        let cost = estimate_tokens(&turn.content);
        if cost > room {
            break;
        }
        room -= cost;
        keep += 1;
    }
    let mut drop = history.len() - keep;
    while drop < history.len() && history[drop].role != Role::User {
        drop += 1;
    }
    drop
}

/// The request's `messages`: the system prompt, the kept history, the question.
pub fn messages(system: &str, kept: &[Message], question: &str) -> Vec<Message> {
    let mut all = Vec::with_capacity(kept.len() + 2);
    if !system.trim().is_empty() {
        all.push(Message::new(Role::System, system));
    }
    all.extend(kept.iter().cloned());
    all.push(Message::new(Role::User, question));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, words: usize) -> Message {
        Message::new(role, "word ".repeat(words))
    }

    #[test]
    fn clear_is_a_command_only_alone() {
        assert_eq!(Input::parse(" /clear \n", &[]), Input::Clear);
        assert_eq!(Input::parse("/CLEAR", &[]), Input::Clear);
        assert_eq!(Input::parse("/clear the table please", &[]), Input::Ask("/clear the table please"));
        assert_eq!(Input::parse("  hi  ", &[]), Input::Ask("hi"));
    }

    #[test]
    fn an_image_keyword_first_asks_for_an_image_of_the_rest() {
        let kw = ["paint".to_owned(), "Zeichne".to_owned()];
        assert_eq!(Input::parse("Paint a red fox in snow", &kw), Input::Image("a red fox in snow"));
        assert_eq!(Input::parse("zeichne: einen Hund", &kw), Input::Image("einen Hund"));
        // Not first, or nothing to paint: a question.
        assert_eq!(Input::parse("how do I paint a wall", &kw), Input::Ask("how do I paint a wall"));
        assert_eq!(Input::parse("paint", &kw), Input::Ask("paint"));
        assert_eq!(Input::parse("painting tips", &kw), Input::Ask("painting tips"));
        assert_eq!(Input::parse("paint a fox", &[]), Input::Ask("paint a fox"));
    }

    #[test]
    fn estimates_round_up_and_count_characters() {
        assert_eq!(estimate_tokens(""), 4);
        assert_eq!(estimate_tokens("abcd"), 5);
        assert_eq!(estimate_tokens("abcde"), 6);
        // Umlauts are one character each, not two bytes.
        assert_eq!(estimate_tokens("äöüß"), 5);
    }

    #[test]
    fn everything_is_kept_while_it_fits() {
        let history = vec![turn(Role::User, 10), turn(Role::Assistant, 10)];
        assert_eq!(fit("be brief", &history, "next?", 1000), 0);
    }

    #[test]
    fn the_oldest_turns_go_first() {
        // Each turn of 40 words is 200 characters: 50 + 4 = 54 tokens.
        let history: Vec<_> = (0..6).map(|i| turn(if i % 2 == 0 { Role::User } else { Role::Assistant }, 40)).collect();
        let fixed = estimate_tokens("sys") + estimate_tokens("q");
        // Room for exactly two turns: the newest question and answer stay.
        assert_eq!(fit("sys", &history, "q", fixed + 2 * 54), 4);
        // Room for three: the oldest kept would be an answer, so it goes too.
        assert_eq!(fit("sys", &history, "q", fixed + 3 * 54), 4);
        // Room for four.
        assert_eq!(fit("sys", &history, "q", fixed + 4 * 54), 2);
    }

    #[test]
    fn a_budget_smaller_than_the_question_drops_all_history_but_sends_the_question() {
        let history = vec![turn(Role::User, 5), turn(Role::Assistant, 5)];
        let question = "x".repeat(10_000);
        assert_eq!(fit("sys", &history, &question, 300), 2);
        let sent = messages("sys", &history[2..], &question);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1], Message::new(Role::User, question));
    }

    #[test]
    fn messages_start_with_the_system_prompt_and_end_with_the_question() {
        let history = vec![Message::new(Role::User, "hi"), Message::new(Role::Assistant, "hello")];
        let sent = messages("be brief", &history, "and now?");
        let roles: Vec<_> = sent.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User]);
        assert_eq!(sent[3].content, "and now?");
        assert_eq!(messages("  ", &[], "q").len(), 1, "an empty system prompt is not sent");
        let json = serde_json::to_value(&sent[0]).unwrap();
        assert_eq!(json, serde_json::json!({"role": "system", "content": "be brief"}));
    }
}
