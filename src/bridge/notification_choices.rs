//! People's notification choices: the `notifications` user command (and its XEP-0050 form),
//! `missed-calls on|off` as the same switch, and [`Bridge::choice`], which every notifier asks
//! before it sends (missed calls through the missed-call module's directory, status changes in
//! `fire_watches`; pickup alerts and missed-chat summaries ask it too).

use crate::bridge::Bridge;
use crate::commands::user::{NoticeKind, Switch, Via};
use crate::core::notify_choice::{self, AddressError, Channel, Choice, Kind, Stored};
use crate::core::watch::Party;
use crate::store::StoreTx;

const ALL_CHANNELS: [Channel; 3] = [Channel::Chat, Channel::Email, Channel::Sms];

impl Bridge {
    /// What applies to `who` for notices of `kind`: on or off, the channel and the address.
    /// Their stored choice (`notifications KIND …`) if they made one, else the kind's default:
    /// on (missed calls: the config's `opt_in` for their line, else the rules'
    /// `default_opt_in`), by the kind's usual channels, to the address the bridge knows.
    /// A notifier sends nothing when `enabled` is false, and uses `channel` (`None`: its usual
    /// channel, the chat for all but missed calls) and `address` (`None`: the known one).
    pub async fn choice(&self, who: &Party, kind: Kind) -> crate::store::Result<Choice> {
        let stored = self.store.notification_choice(who, kind).await?;
        Ok(notify_choice::choice(stored.as_ref(), self.default_on(who, kind)))
    }

    fn default_on(&self, who: &Party, kind: Kind) -> bool {
        match (kind, self.calls.get()) {
            (Kind::MissedCalls, Some(calls)) => calls.default_opt_in(who),
            _ => true,
        }
    }

    /// Why `who` may not get `kind` by `channel` now (`None`: they may): the admins' list
    /// (`notifications.allowed_channels`), then what is set up (e-mail, SMS with the person's
    /// permission; for missed calls the rules' channels).
    async fn channel_refusal(&self, who: &Party, kind: Kind, channel: Channel) -> crate::store::Result<Option<String>> {
        let config = self.current_config();
        if !config.notifications.allowed_channels.of(kind).contains(&channel) || !kind.deliverable().contains(&channel)
        {
            return Ok(Some(format!("{kind} notices do not come by {channel} on this bridge")));
        }
        let refusal = match channel {
            Channel::Chat => None,
            Channel::Email if self.mailer.get().is_none() => Some("e-mail is not set up on this bridge".to_owned()),
            Channel::Email => None,
            Channel::Sms if self.sms().is_none() => Some("SMS is not set up on this bridge".to_owned()),
            Channel::Sms if !self.store.has_permission(who, crate::sms::PERMISSION).await? => Some(format!(
                "SMS notices need the sms permission (an admin can grant it: permissions grant {who} sms)"
            )),
            Channel::Sms => None,
        };
        if refusal.is_some() {
            return Ok(refusal);
        }
        if kind == Kind::MissedCalls
            && let Some(calls) = self.calls.get()
            && !calls.rule_channels().contains(&channel.into())
        {
            return Ok(Some(format!("missed-call notices do not go by {channel} on this bridge")));
        }
        Ok(None)
    }

    /// The channels `who` may choose for `kind` now.
    async fn allowed_channels(&self, who: &Party, kind: Kind) -> crate::store::Result<Vec<Channel>> {
        let mut allowed = Vec::new();
        for channel in ALL_CHANNELS {
            if self.channel_refusal(who, kind, channel).await?.is_none() {
                allowed.push(channel);
            }
        }
        Ok(allowed)
    }

    /// The address for `channel`: the one given (checked: e-mail syntax, a valid mobile number
    /// in E.164), else the one the bridge knows; `Err` is the answer to give.
    fn chosen_address(&self, who: &Party, channel: Channel, given: Option<&str>) -> Result<Option<String>, String> {
        let known = || {
            let (email, mobile) = self.calls.get().map(|c| c.addresses_of(who)).unwrap_or_default();
            if channel == Channel::Email { email } else { mobile }
        };
        match (channel, given) {
            (Channel::Chat, None) => Ok(None),
            (Channel::Chat, Some(_)) => Err(AddressError::NotNeeded.to_string()),
            (Channel::Email, Some(text)) => notify_choice::check_email(text).map(Some).map_err(|e| e.to_string()),
            (Channel::Sms, Some(text)) if text.chars().count() > notify_choice::MAX_ADDRESS => {
                Err(AddressError::TooLong.to_string())
            }
            (Channel::Sms, Some(text)) => match self.sms() {
                Some(sms) => sms.destination(text).map(|n| Some(n.as_str().to_owned())).map_err(|e| e.to_string()),
                None => Err("SMS is not set up on this bridge".into()),
            },
            (_, None) => match known() {
                // Kept unset: the known address follows the config if it changes.
                Some(_) => Ok(None),
                None => Err(format!("The bridge knows no {channel} address of yours: add --to ADDRESS.")),
            },
        }
    }

    /// `notifications [KIND on|off [--via CHANNEL] [--to ADDRESS]]`.
    pub(super) async fn notifications_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        kind: Option<NoticeKind>,
        switch: Option<Switch>,
        via: Option<Via>,
        to: Option<String>,
    ) -> crate::store::Result<String> {
        let (Some(kind), Some(switch)) = (kind.map(NoticeKind::core), switch) else {
            return self.show_notifications(caller).await;
        };
        let enabled = switch == Switch::On;
        let Some(channel) = via.map(Via::core) else {
            tx.set_notification_enabled(caller, kind, enabled).await?;
            self.after_choice(kind);
            return Ok(format!("OK: {kind} notices are {} for you.", if enabled { "on" } else { "off" }));
        };
        if let Some(why) = self.channel_refusal(caller, kind, channel).await? {
            let allowed = names(&self.allowed_channels(caller, kind).await?);
            return Ok(format!("Not changed: {why}. For {kind} you may choose: {allowed}."));
        }
        let address = match self.chosen_address(caller, channel, to.as_deref()) {
            Ok(a) => a,
            Err(why) => return Ok(format!("Not changed: {why}")),
        };
        let to_text = address.as_deref().map(|a| format!(" to {a}")).unwrap_or_default();
        tx.set_notification_choice(caller, kind, &Stored { enabled, channel: Some(channel), address }).await?;
        self.after_choice(kind);
        Ok(format!("OK: {kind} notices are {} for you, by {channel}{to_text}.", if enabled { "on" } else { "off" }))
    }

    /// `missed-calls on|off`: the missed-call switch of the notification choices.
    pub(super) async fn missed_calls_switch(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        on: bool,
    ) -> crate::store::Result<String> {
        tx.set_notification_enabled(caller, Kind::MissedCalls, on).await?;
        self.after_choice(Kind::MissedCalls);
        Ok(match self.calls.get() {
            None => "OK, noted; missed-call notifications are not in use on this bridge, though.".into(),
            Some(c) if c.user_of(caller).is_none() => format!(
                "OK, noted. The bridge's phone directory has no line of {caller}, so there are no missed calls to tell you about yet."
            ),
            Some(_) if on => "OK: you get missed-call notices.".into(),
            Some(_) => "OK: you get no more missed-call notices; `missed-calls on` brings them back.".into(),
        })
    }

    /// A changed missed-call choice reaches the module's directory once the command committed.
    fn after_choice(&self, kind: Kind) {
        if kind == Kind::MissedCalls {
            self.calls_dirty.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// `notifications`: each kind with what applies and what may be chosen.
    async fn show_notifications(&self, caller: &Party) -> crate::store::Result<String> {
        let mut lines = vec!["Your notifications:".to_owned()];
        for kind in Kind::ALL {
            let c = self.choice(caller, kind).await?;
            let how = match (c.channel, kind) {
                (Some(channel), _) => format!("by {channel}"),
                (None, Kind::MissedCalls) => "by the bridge's usual channels".to_owned(),
                (None, _) => "by chat".to_owned(),
            };
            let to = c.address.as_deref().map(|a| format!(" to {a}")).unwrap_or_default();
            let whose = if c.chosen { "your choice" } else { "default" };
            let allowed = names(&self.allowed_channels(caller, kind).await?);
            let on = if c.enabled { "on" } else { "off" };
            lines.push(format!("- {kind}: {on} {how}{to} ({whose}; may choose: {allowed})"));
        }
        if let Some(calls) = self.calls.get()
            && calls.user_of(caller).is_none()
        {
            lines.push(format!("The phone directory has no line of {caller}, so no missed calls are reported to you."));
        }
        lines.push("Change one with: notifications KIND on|off [--via chat|email|sms] [--to ADDRESS]".into());
        Ok(lines.join("\n"))
    }
}

/// Channels as people type them, e.g. `chat, email` (`nothing` for none).
fn names(channels: &[Channel]) -> String {
    if channels.is_empty() {
        return "nothing".into();
    }
    channels.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}
