//! The bridge's services: it takes what the adapters report, applies the rules, writes the
//! resulting actions to the outbox (together with the inbound de-duplication record, in one
//! transaction), and runs the outbox lanes that carry the actions out.

mod deliver;
mod lanes;
mod matrix_in;
mod xmpp_in;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::core::ids::MatrixUserId;
use crate::core::mapping::IdentityMap;
use crate::matrix::client::MatrixClient;
use crate::store::Store;
use crate::xmpp::connection::XmppSender;

pub use lanes::Lanes;

pub struct Bridge {
    pub config: Arc<Config>,
    pub map: IdentityMap,
    pub store: Store,
    pub matrix: MatrixClient,
    pub xmpp: XmppSender,
    pub hs_token: String,
    lanes: Lanes,
    /// Matrix users' display names as last seen in membership events (for XMPP nicks).
    displaynames: Mutex<HashMap<MatrixUserId, String>>,
}

impl Bridge {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        matrix: MatrixClient,
        xmpp: XmppSender,
        hs_token: String,
    ) -> Arc<Self> {
        let map = IdentityMap {
            homeserver: config.homeserver.domain.clone(),
            component: config.xmpp.component_jid.clone(),
            ghost_prefix: config.appservice.ghost_prefix.clone(),
            bot_localpart: config.appservice.bot_localpart.clone(),
        };
        Arc::new(Self {
            config,
            map,
            store,
            matrix,
            xmpp,
            hs_token,
            lanes: Lanes::default(),
            displaynames: Mutex::new(HashMap::new()),
        })
    }

    fn remember_displayname(&self, user: &MatrixUserId, name: Option<&str>) {
        if let (Some(name), Ok(mut names)) = (name, self.displaynames.lock()) {
            names.insert(user.clone(), name.to_owned());
        }
    }

    fn displayname(&self, user: &MatrixUserId) -> Option<String> {
        self.displaynames
            .lock()
            .ok()
            .and_then(|n| n.get(user).cloned())
    }
}
