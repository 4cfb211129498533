"""Status-change notifications ("tell me when X is available again / logs off"), asked for by an
XMPP user from the component and by a Matrix user in their chat with the bridge bot."""
from __future__ import annotations

import asyncio

from ucb import ANY, Peers, run, settings, token, wait_for


async def dm_from_xmpp_known(p, m, x) -> str:
    """p.dm_from_xmpp, and then until the bridge has seen him join: a DM counts as a conversation
    (which lets her see his presence without asking him) only once the Matrix user joined it.
    His reply reaching her means the bridge handled his join, which came before it."""
    room_id = await p.dm_from_xmpp(m, x)
    body = "joined " + token(3)
    await m.send_text(room_id, body)
    await x.wait_chat(m.jid, body)
    return room_id


async def _seen_on_xmpp(x, m, after: int, show: str | None, ptype: str = "available") -> None:
    """x (subscribed to m) got m's presence of this type and <show/> after index `after`: the bridge
    has processed that presence change."""
    shows = (None, "", "chat") if show is None else (show,)
    await wait_for(lambda: [pr for pr in x.presences_from(m.jid, after) if pr.type == ptype and pr.show in shows],
                   20, what=f"{x.bare}: presence type={ptype} show={show} from {m.jid} "
                            f"(got {[(pr.type, pr.show, pr.status) for pr in x.presences_from(m.jid, after)]})")


def _bot() -> str:
    s = settings()
    return f"@{s.registration['sender_localpart']}:{s.matrix_domain}"


def _from_bridge(x, text: str) -> list:
    component = settings().component
    return [m for m in x.chats_from(component) if text in (m.body or "")]


async def _ask_component(x, command: str, expect: str) -> None:
    before = len(_from_bridge(x, expect))
    x.send_chat(settings().component, command)
    await wait_for(lambda: len(_from_bridge(x, expect)) > before, 20,
                   what=f"{x.bare}: an answer containing {expect!r} to {command!r}")


def test_xmpp_user_is_told_when_a_matrix_contact_comes_back_and_logs_off(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)   # a shared room: the bridge hears m's presence
            # Subscribed, x sees each of m's presence changes once the bridge processed it: the
            # waits below are on that, not on time.
            await x.subscribe(m.jid, mutual=False)
            mark = len(x.presences)
            await m.set_presence("unavailable", "first " + token(2))
            await _seen_on_xmpp(x, m, mark, "away")
            mark = len(x.presences)
            await m.set_presence("online")
            await _seen_on_xmpp(x, m, mark, None)   # the bridge knows the state before the watch starts

            await _ask_component(x, "help", "notify")
            await _ask_component(x, f"notify add {m.user_id}", "OK")
            await _ask_component(x, "notify list", m.user_id)

            mark = len(x.presences)
            await m.set_presence("unavailable", "lunch")
            await _seen_on_xmpp(x, m, mark, "away")
            await m.set_presence("online")
            await wait_for(lambda: _from_bridge(x, f"{m.user_id} is available again"), 20,
                           what="the 'available again' notice")
            await m.set_presence("offline")
            await wait_for(lambda: _from_bridge(x, f"{m.user_id} has logged off"), 20,
                           what="the 'logged off' notice")
            assert len(_from_bridge(x, "is available again")) == 1, [s.body for s in x.chats_from(settings().component)]

            await _ask_component(x, f"notify cancel {m.jid}", "no more notifications")
            mark = len(x.presences)
            await m.set_presence("online")
            # Positive control: the bridge processed this change (x got the presence), and a command
            # answered after it went through the same component connection.
            await _seen_on_xmpp(x, m, mark, None)
            await _ask_component(x, "notify list", "You have no notifications")
            assert len(_from_bridge(x, "is available again")) == 1, "a cancelled watch still fired"

            await _ask_component(x, "notify frobnicate", "help")
    run(go(), timeout=180)


def test_matrix_user_is_told_in_the_bot_chat_when_an_xmpp_contact_comes_back(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)   # she shares her presence with the bridge

            bot_room = await m.create_dm(_bot())
            await m.wait_joined(bot_room, _bot())
            await m.send_text(bot_room, f"notify add {x.bare} --when available")

            def bot_says(text):
                return [e for e in m.messages_in(bot_room, _bot()) if text in e["content"].get("body", "")]
            await m.sync_until(lambda: bot_says("OK"), 20, "the bot's OK")

            note = "back at my desk " + token(2)
            x.send_presence_state("away", "out")
            await m.wait_presence(x.ghost, "unavailable", ANY)   # the bridge saw "away" first
            x.send_presence_state(None, note)
            ev = await m.sync_until(lambda: bot_says(f"{x.bare} is available again"), 20, "the bot's notice")
            assert note in ev[0]["content"]["body"], ev[0]
            assert ev[0]["content"]["msgtype"] == "m.notice", ev[0]

            await m.send_text(bot_room, "notify list")
            await m.sync_until(lambda: bot_says("Your notifications"), 20, "the bot's list")
            await m.send_text(bot_room, "notify add nobody")
            await m.sync_until(lambda: bot_says("Cannot watch nobody"), 20, "the bot's refusal")
    run(go(), timeout=180)
