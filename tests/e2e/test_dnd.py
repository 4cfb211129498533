"""Messages from XMPP to a Matrix user in "do not disturb" (Matrix presence `unavailable` with the
"⛔" marker, see test_presence.py): by `presence.dnd_delivery` they go as they are (`now`), as an
`m.notice` that clients do not push (`quiet`, the default), or are held in the outbox until DND
ends (`later`; a bridge of its own, a config variant) — never lost. A held message keeps its
original time on Matrix.

The bridge knows the Matrix user is in DND once his subscribed XMPP contact sees his `dnd`
presence: the bridge stores it before it announces it.
"""
from __future__ import annotations

import asyncio
import time

import ucb
from test_presence import _wait_xmpp_presence
from ucb import Peers, run, token


async def into_dnd(m, x, note: str) -> None:
    before = len(x.presences)
    await m.set_presence("unavailable", "⛔ " + note)
    await _wait_xmpp_presence(x, m.jid, None, "dnd", note, before)


async def out_of_dnd(m, x) -> None:
    before = len(x.presences)
    await m.set_presence("online", None)
    await _wait_xmpp_presence(x, m.jid, None, None, None, before)


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
            await into_dnd(m, x, "focus " + token(3))
            quiet = "while you focus " + token(3)
            x.send_chat(m.jid, quiet)
            ev = await m.wait_message(room, x.ghost, quiet)
            assert ev["content"]["msgtype"] == "m.notice", ev
            # Out of DND: an ordinary message again.
            await out_of_dnd(m, x)
            loud = "back again " + token(3)
            x.send_chat(m.jid, loud)
            ev = await m.wait_message(room, x.ghost, loud)
            assert ev["content"]["msgtype"] == "m.text", ev
    run(go())


def test_with_later_messages_wait_until_dnd_ends_and_keep_their_time(bridge):
    async def go(b):
        async with Peers() as p:
            m, x, room = await pair(p)
            await into_dnd(m, x, "meeting " + token(3))
            offset = b.log_size()
            held = "for after the meeting " + token(3)
            sent = time.time() * 1000
            x.send_chat(m.jid, held)
            # Positive control for the absence: the bridge tried it and holds it in the outbox.
            await asyncio.to_thread(b.wait_log, offset, "held while", "do-not-disturb", timeout=30)
            assert (b.health() or {}).get("outbox", 0) >= 1, b.health()
            await m.sync_once()
            assert not [e for e in m.messages_in(room, x.ghost) if e["content"].get("body") == held]
            await out_of_dnd(m, x)
            ev = await m.wait_message(room, x.ghost, held, timeout=60)
            assert ev["content"]["msgtype"] == "m.text", ev
            # Shown at the time it was written, not when it was released.
            assert abs(ev["origin_server_ts"] - sent) < 3000, (ev["origin_server_ts"], sent)
    def later(cfg: dict) -> None:
        cfg.setdefault("presence", {})["dnd_delivery"] = "later"
    with ucb.config_variant(bridge, "dnd-later", later) as b:
        run(go(b), timeout=150)
