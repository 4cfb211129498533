"""Presence from the phone and pickup alerts (issue 16, items 1 and 2), with signed webhook events.

The config (scripts/lib.sh) maps extension 211 to pia, who has the Matrix account @calls-pia and the
XMPP account calls-pia; 212 to quinn (@calls-quinn), in one pickup group with 211; 213 to rosa
(calls-rosa), in none. `presence_from_calls` is on, its English note "On the phone".

The bridge speaks for the other network only: pia's Matrix account shows busy to her XMPP contacts
(`dnd`, "📞 On the phone"), her XMPP account on its ghost on Matrix (`online`, "📞 On the phone").
Synapse lets a presence set by PUT lapse ~30 s after the user's last sync, so each check is well
within that.
"""
from __future__ import annotations

import time

from test_commands import fixed_matrix_user, fixed_xmpp_user
from test_missed_calls import ERIKA, post_events, rnd_number
from test_presence import _fmt, _wait_xmpp_presence, dm_from_xmpp_known
from test_rooms import bot_dm, bot_says
from ucb import Peers, config_variant, run, settings, token, wait_for

NOTE = "📞 On the phone"


def ringing(call_id: str, ext: str, number: str, ago_s: int = 0) -> list[dict]:
    t0 = int(time.time() * 1000) - ago_s * 1000
    return [
        {"type": "call_created", "call_id": call_id, "caller": {"number": number}, "called": "+49305550" + ext,
         "direction": "inbound", "at": t0},
        {"type": "leg_ringing", "call_id": call_id, "leg_id": call_id + "-l1", "extension": ext, "at": t0 + 100},
    ]


def answered(call_id: str, ext: str, ago_s: int = 0) -> list[dict]:
    t = int(time.time() * 1000) - ago_s * 1000
    return [{"type": "call_answered", "call_id": call_id, "by": ext, "at": t},
            {"type": "leg_ended", "call_id": call_id, "leg_id": call_id + "-l1", "outcome": {"kind": "answered"},
             "at": t}]


def ended(call_id: str) -> list[dict]:
    return [{"type": "call_ended", "call_id": call_id, "cause": "normal_clearing", "at": int(time.time() * 1000)}]


def post(events: list[dict]) -> None:
    status, body = post_events(events)
    assert status == 200, (status, body)


async def pia_matrix(p):
    """Pia's Matrix account on a new device (each login is one). Synapse shows a user the most
    available of their devices, so `pia_done` sets this device offline at the end: an earlier
    test's device still "online" would hide her going away in the next one."""
    pia_m = await fixed_matrix_user("calls-pia")
    p.matrix.append(pia_m)
    return pia_m


async def pia_done(pia_m) -> None:
    await pia_m.set_presence("offline")


async def pia_watched(p):
    """Pia on both networks, each watched from the other one: an XMPP contact subscribed to her
    Matrix account, a Matrix contact who sees the ghost of her XMPP account."""
    pia_m = await pia_matrix(p)
    pia_x = await fixed_xmpp_user("calls-pia")
    p.xmpp.append(pia_x)
    x = await p.xmpp_user("pw")
    await p.dm_from_matrix(pia_m, x)
    await x.subscribe(pia_m.jid, mutual=False)
    m = await p.matrix_user("pm")
    await dm_from_xmpp_known(p, m, pia_x)
    await pia_x.subscribe(m.jid, mutual=True)
    return pia_m, pia_x, x, m


def with_pia_watched(story) -> None:
    """Run story(pia_m, pia_x, x, m) with Pia watched from both networks (pia_watched)."""
    async def go():
        async with Peers() as p:
            pia_m, pia_x, x, m = await pia_watched(p)
            try:
                await story(pia_m, pia_x, x, m)
            finally:
                await pia_done(pia_m)
    run(go(), timeout=200)


def test_a_connected_call_shows_busy_on_both_networks_until_it_ends(bridge):
    with_pia_watched(busy_story)


async def at_desk(pia_m, pia_x, x, m) -> tuple[str, str]:
    """Pia available on both networks, each with its own note, seen by both watchers."""
    desk = "at my desk " + token(3)
    before = len(x.presences)
    await pia_m.set_presence("online", desk)
    await _wait_xmpp_presence(x, pia_m.jid, None, None, desk, before)
    xdesk = "xmpp desk " + token(3)
    pia_x.send_presence_state(None, xdesk)
    await m.wait_presence(pia_x.ghost, "online", xdesk)
    return desk, xdesk


async def busy_story(pia_m, pia_x, x, m):
    desk, xdesk = await at_desk(pia_m, pia_x, x, m)

    call = "pp-" + token(6)
    before = len(x.presences)
    post(ringing(call, "211", rnd_number()))   # ringing is not a state
    post(answered(call, "211"))
    busy = await _wait_xmpp_presence(x, pia_m.jid, None, "dnd", NOTE, before)
    first = x.presences_from(pia_m.jid, before)[0]
    assert first is busy, f"something came before the busy state (ringing?):{_fmt(x.presences_from(pia_m.jid, before))}"
    await m.wait_presence(pia_x.ghost, "online", NOTE)

    before = len(x.presences)
    post(ended(call))
    await _wait_xmpp_presence(x, pia_m.jid, None, None, desk, before)
    await m.wait_presence(pia_x.ghost, "online", xdesk)


def test_her_own_change_during_the_call_wins(bridge):
    with_pia_watched(own_change_story)


async def own_change_story(pia_m, pia_x, x, m):
    desk, _ = await at_desk(pia_m, pia_x, x, m)

    call = "pw-" + token(6)
    before = len(x.presences)
    post(ringing(call, "211", rnd_number()) + answered(call, "211"))
    busy = await _wait_xmpp_presence(x, pia_m.jid, None, "dnd", NOTE, before)
    await m.wait_presence(pia_x.ghost, "online", NOTE)

    # During the call she changes her presence on both networks; the call still shows: the
    # bridge answers her Matrix change with the busy state again, which tells us it has it.
    lunch = "lunch " + token(3)
    meeting = "meeting " + token(3)
    pia_x.send_presence_state("dnd", meeting)
    after_busy = len(x.presences)
    await pia_m.set_presence("unavailable", lunch)
    again = await _wait_xmpp_presence(x, pia_m.jid, None, "dnd", NOTE, after_busy)
    assert again is not busy
    assert not [pr for pr in x.presences_from(pia_m.jid, after_busy) if pr.status == lunch], (
        f"her own change showed during the call:{_fmt(x.presences_from(pia_m.jid, after_busy))}")
    await m.wait_presence(pia_x.ghost, "online", NOTE)
    before = len(x.presences)
    post(ended(call))
    got = await _wait_xmpp_presence(x, pia_m.jid, None, "away", lunch, before)
    since = x.presences_from(pia_m.jid, before)
    earlier = since[:since.index(got)]
    assert not [pr for pr in earlier if pr.status == desk], (
        f"the presence from before the call came back although she changed it:{_fmt(since)}")
    await m.wait_presence(pia_x.ghost, "unavailable", "⛔ " + meeting)


def test_a_restart_mid_call_leaves_nobody_busy_once_the_call_expired(bridge):
    """The call's end is lost while the bridge is down: after the restart the expiry closes the call
    (here at once: its last event is older than idle_expiry_secs), and with it the busy state, on
    both networks. Her XMPP presence is not re-sent after the restart: what the bridge stored with
    the call is shown."""
    with_pia_watched(lambda *pia: restart_story(*pia, bridge))


async def restart_story(pia_m, pia_x, x, m, bridge):
    desk, xdesk = await at_desk(pia_m, pia_x, x, m)
    call = "pr-" + token(6)
    before = len(x.presences)
    post(ringing(call, "211", rnd_number(), ago_s=150) + answered(call, "211", ago_s=140))
    await _wait_xmpp_presence(x, pia_m.jid, None, "dnd", NOTE, before)
    await m.wait_presence(pia_x.ghost, "online", NOTE)
    await pia_m.sync_once(0)   # Synapse keeps her device online through the restart

    def expiring(cfg):
        cfg["missed_calls"]["idle_expiry_secs"] = 60
    before = len(x.presences)
    with config_variant(bridge, "phone-expiry", expiring):
        await _wait_xmpp_presence(x, pia_m.jid, None, None, desk, before, timeout=30)
        await m.wait_presence(pia_x.ghost, "online", xdesk, timeout=30)


def test_pickup_alerts_go_to_a_colleague_in_the_pickup_group_while_she_is_away(bridge):
    async def go():
        async with Peers() as p:
            s = settings()
            pia_m = await pia_matrix(p)
            try:
                await pickup_story(p, s, pia_m)
            finally:
                await pia_done(pia_m)
    run(go(), timeout=200)


async def pickup_story(p, s, pia_m):
    await bot_dm(pia_m)
    quinn = await fixed_matrix_user("calls-quinn")
    p.matrix.append(quinn)
    dm = await bot_dm(quinn)
    rosa = await fixed_xmpp_user("calls-rosa")
    p.xmpp.append(rosa)
    x = await p.xmpp_user("pw")          # sees pia's presence: tells us the bridge has it
    await p.dm_from_matrix(pia_m, x)
    await x.subscribe(pia_m.jid, mutual=False)

    await quinn.send_text(dm, f"notify add {pia_m.user_id} --when pickup")
    await quinn.sync_until(lambda: bot_says(quinn, dm, "so you can pick it up"), 30, "the pickup watch")
    await quinn.send_text(dm, "notify list")
    await quinn.sync_until(lambda: bot_says(quinn, dm, "have a call to pick up"), 30, "the list")
    comp = s.component
    rosa.send_message(mto=comp, mbody=f"notify add {pia_m.user_id} --when pickup", mtype="chat")
    await wait_for(lambda: [c for c in rosa.chats_from(comp) if "You may not pick up" in c.body], 30,
                   what="rosa (outside the pickup group) refused")

    # Present: a call ringing at her phone is hers to take; no alert.
    here = "here " + token(3)
    before = len(x.presences)
    await pia_m.set_presence("online", here)
    await _wait_xmpp_presence(x, pia_m.jid, None, None, here, before)
    present_caller = rnd_number()
    first = "pk-" + token(6)
    post(ringing(first, "211", present_caller))

    # Away: the next call's alert reaches quinn at once, naming caller and contact.
    away = "away " + token(3)
    before = len(x.presences)
    await pia_m.set_presence("unavailable", away)
    await _wait_xmpp_presence(x, pia_m.jid, None, "away", away, before)
    second = "pk-" + token(6)
    sent = time.monotonic()
    post(ringing(second, "211", ERIKA))

    def alert():
        return [e for e in quinn.messages_in(dm) if "Call to pick up" in e["content"].get("body", "")
                and ERIKA in e["content"]["body"]]
    [ev] = await quinn.sync_until(alert, 30, "the pickup alert")
    took = time.monotonic() - sent
    body = ev["content"]["body"]
    assert "Erika Mustermann" in body and pia_m.user_id in body and "211" in body and "away" in body, body
    assert took < 5, f"the alert took {took:.1f} s"
    early = [e for e in quinn.messages_in(dm) if present_caller in e["content"].get("body", "")]
    assert not early, f"an alert came while she was present: {early}"
    assert not [c for c in rosa.chats_from(comp) if "Call to pick up" in c.body], "rosa got an alert"
    post(ended(first) + ended(second))
