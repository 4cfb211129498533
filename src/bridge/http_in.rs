//! The bridge behind the HTTP server: the ports the appservice API, `/health`, `/media/…` and
//! the SMS gateways' callbacks declare (`matrix::appservice::Appservice`, `http::Health`,
//! `http::media::MediaLinks`, `http::sms::SmsGateway`), each a thin call into the bridge.

use std::sync::Arc;
use std::time::Instant;

use crate::core::ids::{BareJid, MappingError, MatrixUserId};
use crate::core::inbound::MatrixIn;
use crate::core::txn_gaps::Verdict;
use crate::core::watch::Party;
use crate::http::Health;
use crate::http::media::MediaLinks;
use crate::http::sms::SmsGateway;
use crate::matrix::appservice::{Appservice, QueryError};
use crate::matrix::client::MatrixError;
use crate::sms::SmsService;
use crate::sms::inbound::IncomingSms;
use crate::sms::provider::DlrStatus;
use crate::store::MediaLink;

use super::Bridge;

/// The bridge as the HTTP handlers see it. A handle of its own because some of the bridge's
/// entry points take `&Arc<Bridge>` (they spawn work that outlives the request).
pub struct HttpIn(pub Arc<Bridge>);

#[async_trait::async_trait]
impl Appservice for HttpIn {
    fn hs_token(&self) -> &str {
        &self.0.hs_token
    }

    fn max_transaction_bytes(&self) -> usize {
        self.0.config.limits.max_transaction_bytes
    }

    fn on_transaction(&self, txn_id: &str, now: Instant) -> Option<Verdict> {
        self.0.strands.lock().ok().map(|mut g| g.on_transaction(txn_id, now))
    }

    fn note_failed_transaction(&self) {
        self.0.note_failed_transaction();
    }

    async fn accept_transaction(&self, claim: &str, events: Vec<MatrixIn>) -> crate::store::Result<()> {
        self.0.accept_matrix_transaction(claim, events).await
    }

    async fn ping_homeserver(&self, transaction_id: &str) -> Result<(), MatrixError> {
        self.0.matrix.ping_homeserver(transaction_id).await
    }

    fn jid_for_ghost(&self, user: &MatrixUserId) -> Option<Result<BareJid, MappingError>> {
        self.0.map.jid_for_ghost(user)
    }

    async fn may_use_jid(&self, jid: &BareJid) -> bool {
        self.0.may_use(&Party::Xmpp(jid.clone())).await
    }

    async fn ensure_ghost(&self, ghost: &MatrixUserId, displayname: &str) -> Result<(), QueryError> {
        Ok(self.0.ensure_ghost(ghost, displayname).await?)
    }

    async fn open_linked_muc(&self, alias: &str) -> Result<bool, QueryError> {
        Ok(self.0.open_linked_muc(alias).await?)
    }
}

#[async_trait::async_trait]
impl Health for HttpIn {
    async fn database_ok(&self) -> bool {
        self.0.store.ping().await.is_ok()
    }

    async fn outbox_len(&self) -> Option<i64> {
        self.0.store.outbox_len().await.ok()
    }

    fn xmpp_connected(&self) -> bool {
        self.0.xmpp.is_connected()
    }

    fn dependencies(&self) -> Vec<(&'static str, crate::http::DependencyState)> {
        self.0.dependencies()
    }
}

#[async_trait::async_trait]
impl MediaLinks for HttpIn {
    async fn media_by_token(&self, token: &str) -> crate::store::Result<Option<MediaLink>> {
        self.0.store.media_by_token(token).await
    }

    fn max_bytes(&self) -> u64 {
        self.0.current_config().media.max_bytes
    }

    fn link_lifetime_ms(&self) -> Option<i64> {
        self.0.current_config().media.link_lifetime_ms()
    }
}

#[async_trait::async_trait]
impl SmsGateway for HttpIn {
    fn sms(&self) -> Option<&Arc<SmsService>> {
        self.0.sms()
    }

    async fn accept_incoming_sms(&self, provider: &str, sms: IncomingSms) -> crate::store::Result<bool> {
        self.0.accept_incoming_sms(provider, sms).await
    }

    async fn sms_delivery_report(
        &self,
        id: &str,
        part: Option<&str>,
        status: DlrStatus,
        detail: &str,
    ) -> crate::store::Result<bool> {
        self.0.sms_delivery_report(id, part, status, detail).await
    }
}
