"""Messages from XMPP to a Matrix user in "do not disturb" (Matrix presence `unavailable` with the
"⛔" marker, see test_presence.py): by `presence.dnd_delivery` they go as they are (`now`), as an
`m.notice` that clients do not push (`quiet`, the default), or are held in the outbox until DND
ends (`later`; a bridge of its own, a config variant) — never lost. A held message keeps its
original time on Matrix.

The bridge knows the Matrix user is in DND once it announced his `dnd` presence to his subscribed
XMPP contact (its debug log names the state it took from the homeserver's presence event).
"""
from __future__ import annotations

import asyncio
import time

import ucb
from test_presence import _wait_xmpp_presence
from ucb import Peers, run, token


async def into_dnd(b, m, x, note: str) -> None:
    await presence(b, m, x, "unavailable", "⛔ " + note, "DoNotDisturb", "dnd", note)


async def out_of_dnd(b, m, x) -> None:
    await presence(b, m, x, "online", None, "Available", None, None)


async def presence(b, m, x, mx: str, status: str | None, state: str, show: str | None, note: str | None) -> None:
    """He sets his presence; done when the bridge took it from the homeserver's presence event (its
    log says so) and his subscribed contact saw it. An answer to a probe can reach her earlier (the
    bridge asks the homeserver for it and keeps nothing), so her view alone is not enough."""
    offset, before = b.log_size(), len(x.presences)
    await m.set_presence(mx, status)
    await asyncio.to_thread(b.wait_log, offset, "Matrix presence to XMPP subscribers", f"user={m.user_id}",
                            f"state: {state}", timeout=15)
    await _wait_xmpp_presence(x, m.jid, None, show, note, before)


async def pair(p):
    m = await p.matrix_user()
    x = await p.xmpp_user()
    room = await p.dm_from_matrix(m, x)
    await x.subscribe(m.jid, mutual=False)
    return m, x, room


def test_in_dnd_messages_from_xmpp_arrive_as_notices(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await pair(p)
            await into_dnd(bridge, m, x, "focus " + token(3))
            quiet = "while you focus " + token(3)
            x.send_chat(m.jid, quiet)
            ev = await m.wait_message(room, x.ghost, quiet)
            assert ev["content"]["msgtype"] == "m.notice", ev
            # Out of DND: an ordinary message again.
            await out_of_dnd(bridge, m, x)
            loud = "back again " + token(3)
            x.send_chat(m.jid, loud)
            ev = await m.wait_message(room, x.ghost, loud)
            assert ev["content"]["msgtype"] == "m.text", ev
    run(go())


def test_with_later_messages_wait_until_dnd_ends_and_keep_their_time(bridge):
    async def go(b):
        async with Peers() as p:
            m, x, room = await pair(p)
            await into_dnd(b, m, x, "meeting " + token(3))
            offset = b.log_size()
            held = "for after the meeting " + token(3)
            sent = time.time() * 1000
            x.send_chat(m.jid, held)
            # Positive control for the absence: the bridge tried it and holds it in the outbox.
            await asyncio.to_thread(b.wait_log, offset, "held while", "do-not-disturb", timeout=30)
            assert (b.health() or {}).get("outbox", 0) >= 1, b.health()
            await m.sync_once()
            assert not [e for e in m.messages_in(room, x.ghost) if e["content"].get("body") == held]
            await out_of_dnd(b, m, x)
            ev = await m.wait_message(room, x.ghost, held, timeout=60)
            assert ev["content"]["msgtype"] == "m.text", ev
            # Shown at the time it was written, not when it was released.
            assert abs(ev["origin_server_ts"] - sent) < 3000, (ev["origin_server_ts"], sent)
    def later(cfg: dict) -> None:
        cfg.setdefault("presence", {})["dnd_delivery"] = "later"
    with ucb.config_variant(bridge, "dnd-later", later) as b:
        run(go(b), timeout=150)
