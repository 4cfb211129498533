//! XEP-0055 searches from XMPP users: the homeserver's user directory, searched as the bot
//! (so it finds whom the homeserver shows the bot: users in public rooms or sharing a room with
//! it, everyone if the homeserver searches all users), answered with the addresses to write to.

use crate::bridge::Bridge;
use crate::core::ids::BareJid;
use crate::core::refusal::Refusal;
use crate::xmpp::reply::Answer;
use crate::xmpp::search::Found;

/// Results per search: a directory is for finding someone, not for listing everyone.
pub const SEARCH_LIMIT: u32 = 20;

impl Bridge {
    pub(super) async fn search_matrix_users(&self, sender: &BareJid, term: &str) -> Answer {
        let users = match self.matrix.search_users(term, SEARCH_LIMIT).await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(%sender, error = %e, "user directory search failed");
                let text = "The Matrix user directory could not be searched; try again later.";
                return Answer::Refused(Refusal::internal(text));
            }
        };
        let bot = self.map.bot();
        // The assistant is found at its own address, first.
        let assistant = self.chatbot_found(term);
        let me = self.map.chatbot();
        let found = assistant
            .into_iter()
            .chain(
                users
                    .into_iter()
                    .filter(|(user, _)| *user != bot && Some(user) != me.as_ref())
                    // An XMPP user's ghost is found as that user; an unreachable ID is left out.
                    .filter_map(|(user, name)| {
                        let jid = crate::xmpp::gateway::address(&self.map, &user.to_string()).ok()?;
                        Some(Found { jid, matrix_id: user.to_string(), name })
                    }),
            )
            .take(SEARCH_LIMIT as usize)
            .collect();
        Answer::Users(found)
    }
}
