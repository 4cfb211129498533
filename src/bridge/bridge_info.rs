//! MSC2346 bridge info for rooms bridged before the bridge wrote it (or whose events were
//! removed since): checked at start-up, in the background, a few rooms at a time. New rooms get
//! it when they are created (`Bridge::announce_bridge`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

use crate::bridge::Bridge;
use crate::core::bridge_info::BridgeInfo;
use crate::core::ids::RoomId;

/// Rooms checked at once (each check is two state reads; a write when they differ).
const CONCURRENCY: usize = 4;

impl Bridge {
    /// Give every hosted and linked room that lacks it (or holds another content) its bridge
    /// info. Runs once per start; a room that cannot be read or written is logged and skipped.
    pub async fn backfill_bridge_info(self: Arc<Self>) {
        let rooms = match self.bridged_rooms().await {
            Ok(rooms) => rooms,
            Err(e) => return tracing::warn!(error = %e, "cannot list the bridged rooms for their bridge info"),
        };
        let total = rooms.len();
        let written = AtomicUsize::new(0);
        let bridge_id = self.config.appservice.id.as_str();
        futures::stream::iter(rooms)
            .for_each_concurrent(CONCURRENCY, |(room, info)| {
                let (bridge, written) = (&self, &written);
                async move {
                    let result = match bridge.matrix.has_bridge_info(&room, bridge_id, &info).await {
                        Ok(true) => Ok(false),
                        Ok(false) => bridge.matrix.set_bridge_info(&room, bridge_id, &info).await.map(|()| true),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(true) => {
                            written.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(%room, channel = %info.channel, "bridge info (m.bridge) added");
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(%room, error = %e, "cannot check or add the room's bridge info"),
                    }
                }
            })
            .await;
        tracing::info!(rooms = total, added = written.into_inner(), "bridge info of the bridged rooms checked");
    }

    /// Every hosted and linked room with the bridge info it should carry (what
    /// `announce_bridge` writes when the room is made).
    async fn bridged_rooms(&self) -> crate::store::Result<Vec<(RoomId, BridgeInfo)>> {
        let bot = self.map.bot();
        let mut rooms = vec![];
        for hosted in self.store.rooms().await? {
            let name = hosted.alias.clone();
            let channel = self.map.muc_for_room(name.as_deref().unwrap_or(hosted.room.as_str()));
            let creator = self.matrix_id_of(&hosted.owner);
            let info = BridgeInfo { bridgebot: bot.clone(), creator, channel, channel_name: name };
            rooms.push((hosted.room, info));
        }
        for (room, muc) in self.store.linked_mucs().await? {
            let name = Some(self.map.linked_alias(&muc));
            rooms.push((
                room,
                BridgeInfo { bridgebot: bot.clone(), creator: bot.clone(), channel: muc, channel_name: name },
            ));
        }
        Ok(rooms)
    }
}
