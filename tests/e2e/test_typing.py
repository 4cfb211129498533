"""Typing notifications in a 1:1 chat: Matrix m.typing <-> XEP-0085 chat states."""
from __future__ import annotations

from ucb import CHATSTATES_NS, Peers, run, token, wait_for

STATES = ("active", "composing", "paused", "inactive", "gone")


def _chat_states(x, frm: str, after: int) -> list:
    """(state, stanza) of every chat-state message from frm after index `after`."""
    out = []
    for st in x.messages[after:]:
        if st.frm.split("/", 1)[0] != frm:
            continue
        for name in STATES:
            if st.child(CHATSTATES_NS, name) is not None:
                out.append((name, st))
    return out


def _fmt(states) -> str:
    return "\n  " + "\n  ".join(f"{n}: {st.xml}" for n, st in states) if states else " (none)"


async def _wait_chat_state(x, frm: str, wanted: tuple[str, ...], after: int, timeout: float = 15):
    def found():
        return next(((n, st) for n, st in _chat_states(x, frm, after) if n in wanted), None)
    try:
        return await wait_for(found, timeout)
    except AssertionError:
        raise AssertionError(
            f"{x.bare} got no chat state {' or '.join(wanted)} from {frm} within {timeout:.0f}s; "
            f"chat states from it since:{_fmt(_chat_states(x, frm, after))}\n"
            f"all messages since: {[st.xml for st in x.messages[after:]]}") from None


def _typing_now(m, room_id: str) -> list[str] | None:
    evs = m.typing_events(room_id)
    return evs[-1] if evs else None


# ------------------------------------------------------------------ Matrix -> XMPP --
def test_matrix_typing_to_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            before = len(x.messages)
            await m.set_typing(room_id, True)
            name, st = await _wait_chat_state(x, m.jid, ("composing",), before)
            assert st.type == "chat", f"chat state message of type {st.type!r}, expected chat: {st.xml}"
            assert st.body is None, f"the composing notification carries a body: {st.xml}"
            assert st.frm.split("/", 1)[0] == m.jid, st.xml

            before = len(x.messages)
            await m.set_typing(room_id, False)
            name, st = await _wait_chat_state(x, m.jid, ("paused", "active"), before)
            assert st.type == "chat" and st.body is None, f"stop-typing notification: {st.xml}"
            assert not x.chats_from(m.jid), f"typing produced chat text: {[c.xml for c in x.chats_from(m.jid)]}"
    run(go())


def test_matrix_typing_timeout_ends_composing(bridge):
    """Typing that times out on Matrix (the client never said it stopped) ends on XMPP too."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            before = len(x.messages)
            await m.set_typing(room_id, True, timeout_ms=3000)
            await _wait_chat_state(x, m.jid, ("composing",), before)
            after = len(x.messages)
            # Synapse drops the typing state after 3 s; no request from the client.
            await _wait_chat_state(x, m.jid, ("paused", "active"), after, timeout=20)
    run(go())


def test_matrix_typing_then_message(bridge):
    """Typing, then the message itself: the text arrives normally after the composing state."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            before = len(x.messages)
            await m.set_typing(room_id, True)
            await _wait_chat_state(x, m.jid, ("composing",), before)
            body = "typed it " + token(3)
            await m.send_text(room_id, body)
            await x.wait_chat(m.jid, body)
    run(go())


# ------------------------------------------------------------------ XMPP -> Matrix --
def test_xmpp_composing_to_matrix_typing(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            messages_before = len(await m.room_messages(room_id, x.ghost))

            x.send_chat_state(m.jid, "composing")
            await m.sync_until(lambda: x.ghost in (_typing_now(m, room_id) or []), 20,
                               f"an m.typing event in {room_id} listing {x.ghost} after 'composing' "
                               f"(typing events seen: {m.typing_events(room_id)})")

            x.send_chat_state(m.jid, "paused")
            await m.sync_until(lambda: (t := _typing_now(m, room_id)) is not None and x.ghost not in t, 20,
                               f"an m.typing event in {room_id} without {x.ghost} after 'paused' "
                               f"(typing events seen: {m.typing_events(room_id)})")

            # Chat states carry no text: nothing may show up in the timeline.
            after = await m.room_messages(room_id, x.ghost)
            assert len(after) == messages_before, (
                f"chat states became room messages: {after[messages_before:]}")
    run(go())


def test_xmpp_active_ends_matrix_typing(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            x.send_chat_state(m.jid, "composing")
            await m.sync_until(lambda: x.ghost in (_typing_now(m, room_id) or []), 20,
                               f"{x.ghost} typing in {room_id} after 'composing' "
                               f"(typing events seen: {m.typing_events(room_id)})")
            x.send_chat_state(m.jid, "active")
            await m.sync_until(lambda: (t := _typing_now(m, room_id)) is not None and x.ghost not in t, 20,
                               f"{x.ghost} no longer typing in {room_id} after 'active' "
                               f"(typing events seen: {m.typing_events(room_id)})")
    run(go())


def test_xmpp_message_after_composing_arrives(bridge):
    """composing, then the message: the text arrives and the ghost does not stay typing forever."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            x.send_chat_state(m.jid, "composing")
            await m.sync_until(lambda: x.ghost in (_typing_now(m, room_id) or []), 20,
                               f"{x.ghost} typing in {room_id} after 'composing' "
                               f"(typing events seen: {m.typing_events(room_id)})")
            body = "done typing " + token(3)
            # Real clients send the body together with <active/>.
            sid = "e2e-" + token(6)
            x.send_xml(f'<message to="{m.jid}" type="chat" id="{sid}"><body>{body}</body>'
                       f'<active xmlns="{CHATSTATES_NS}"/></message>')
            await m.wait_message(room_id, x.ghost, body)
            await m.sync_until(lambda: (t := _typing_now(m, room_id)) is not None and x.ghost not in t, 20,
                               f"{x.ghost} no longer typing in {room_id} after a message with <active/> "
                               f"(typing events seen: {m.typing_events(room_id)})")
    run(go())
