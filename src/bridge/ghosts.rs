//! Ghosts (the Matrix users that stand for XMPP addresses): registered once, their display
//! names kept current; and Matrix users' display names, for XMPP nicks.

use crate::bridge::Bridge;
use crate::core::ids::MatrixUserId;
use crate::core::outbox::DeliveryError;
use crate::matrix::client::MatrixError;

impl Bridge {
    /// A Matrix user's display name: as seen in membership events, else from their profile
    /// (once; a failure only costs the nick).
    pub(in crate::bridge) async fn matrix_displayname(&self, user: &MatrixUserId) -> Option<String> {
        if let Some(known) = self.known_displayname(user) {
            return known;
        }
        match self.matrix.displayname(user).await {
            Ok(name) => {
                self.remember_displayname(user, Some(name.as_deref().unwrap_or_default()));
                name
            }
            Err(e) => {
                tracing::debug!(%user, error = %e, "no display name");
                None
            }
        }
    }

    /// Register an XMPP user's ghost (under its current name) before it acts.
    pub(in crate::bridge) async fn ensure_xmpp_ghost(&self, ghost: &MatrixUserId) -> Result<(), DeliveryError> {
        let name = match (self.cached_ghost(ghost), self.map.jid_for_ghost(ghost)) {
            (Some(Some(known)), _) => known,
            (_, Some(Ok(jid))) => jid.to_string(),
            _ => ghost.to_string(),
        };
        self.ensure_ghost(ghost, &name).await
    }

    /// Register a ghost once and keep its display name current.
    pub async fn ensure_ghost(&self, ghost: &MatrixUserId, displayname: &str) -> Result<(), DeliveryError> {
        let known = match self.cached_ghost(ghost) {
            Some(cached) => Some(cached),
            None => self.store.ghost(ghost).await?,
        };
        if known.is_none() {
            self.matrix.register_ghost(ghost).await.map_err(MatrixError::into_delivery)?;
        }
        if known.flatten().as_deref() != Some(displayname) {
            if let Err(e) = self.matrix.set_displayname(ghost, displayname).await {
                // A missing display name is cosmetic; the message matters more.
                tracing::warn!(%ghost, error = %e, "could not set the ghost's display name");
                self.store.save_ghost(ghost, None).await?;
                self.cache_ghost(ghost, None);
                return Ok(());
            }
            self.store.save_ghost(ghost, Some(displayname)).await?;
            self.cache_ghost(ghost, Some(displayname.to_owned()));
        } else if self.cached_ghost(ghost).is_none() {
            self.cache_ghost(ghost, Some(displayname.to_owned()));
        }
        Ok(())
    }
}
