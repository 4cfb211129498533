"""1:1 chats across the bridge, as the users see them in their own clients."""
from __future__ import annotations

import asyncio
import urllib.parse

from nio import ErrorResponse

from ucb import Peers, run, token, wait_for

UNICODE_TEXT = ("Grüße aus Köln 👋🏽 — naïve café ✓ 中文 עברית\n"
                "second line with <b>markup</b> & \"quotes\" 'n' \\backslash\n"
                "\n"
                "   indented fourth line, then a flag 🇩🇪 and a ZWJ family 👨‍👩‍👧 end")


def test_xmpp_to_matrix_dm(bridge):
    """XMPP writes first: the ghost invites the Matrix user to a DM (once), messages arrive there."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            nick = f"Xavier {token(2)}"
            first = "hello matrix " + token(3)
            x.send_chat(m.jid, first, nick=nick)

            room_id, invite = await m.wait_invite(x.ghost)
            assert invite["content"].get("is_direct") is True, f"invite is not marked is_direct: {invite}"
            await m.join(room_id)
            ev = await m.wait_message(room_id, x.ghost, first)
            assert ev["content"]["msgtype"] == "m.text", ev

            second = "second message " + token(3)
            x.send_chat(m.jid, second, nick=nick)
            await m.wait_message(room_id, x.ghost, second)
            bodies = [e["content"]["body"] for e in await m.room_messages(room_id, x.ghost)]
            assert bodies == [first, second], bodies
            assert len(m.invites_from(x.ghost)) == 1, f"more than one invite: {m.invites_from(x.ghost)}"
            rooms_with_ghost = [r for r in m.timeline if x.ghost in await m.joined_members(r)]
            assert rooms_with_ghost == [room_id], rooms_with_ghost

            # The ghost is shown with the XEP-0172 nick the messages carried.
            names = []
            for _ in range(50):
                name = await m.member_displayname(room_id, x.ghost)
                names.append(name)
                if name == nick:
                    break
                await asyncio.sleep(0.2)
            assert names[-1] == nick, f"ghost display name {names[-1]!r}, expected the nick {nick!r}"
    run(go())


def test_ghost_display_name_defaults_to_bare_jid(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            name = None
            for _ in range(50):
                name = await m.member_displayname(room_id, x.ghost)
                if name == x.bare:
                    break
                await asyncio.sleep(0.2)
            assert name == x.bare, f"ghost display name {name!r}, expected the bare JID {x.bare!r}"
    run(go())


def test_matrix_to_xmpp_dm(bridge):
    """The Matrix user invites the ghost: it joins by itself, messages arrive as chat from the bare JID."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await m.create_dm(x.ghost)
            await m.wait_joined(room_id, x.ghost)
            body = "hello xmpp " + token(3)
            await m.send_text(room_id, body)
            got = await x.wait_chat(m.jid, body)
            assert got.type == "chat"
            assert got.frm == m.jid, f"from {got.frm!r}, expected the bare JID {m.jid!r}"
            assert got.id, "the bridge's stanza has no id"
    run(go())


def test_matrix_display_name_as_xep0172_nick(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            name = f"Mona {token(2)}"
            r = await m.c.set_displayname(name)
            assert not isinstance(r, ErrorResponse), f"set_displayname: {r}"
            room_id = await p.dm_from_matrix(m, x)
            body = "with a name " + token(3)
            await m.send_text(room_id, body)
            got = await x.wait_chat(m.jid, body)
            assert got.nick == name, f"nick {got.nick!r}, expected the Matrix display name {name!r}: {got.xml}"
    run(go())


def test_reply_from_xmpp_goes_to_the_matrix_created_dm(bridge):
    """A reply to a DM the Matrix user opened lands in that room: no second room, no new invite."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            ask = "are you there? " + token(3)
            await m.send_text(room_id, ask)
            await x.wait_chat(m.jid, ask)
            reply = "yes, here " + token(3)
            x.send_chat(m.jid, reply)
            await m.wait_message(room_id, x.ghost, reply)
            assert m.invites_from(x.ghost) == [], f"unexpected invites: {m.invites_from(x.ghost)}"
    run(go())


def test_leave_and_reinvite(bridge):
    """After the Matrix user left the DM, the next XMPP message re-invites him to the same room."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            offset = bridge.log_size()
            await m.leave(room_id)
            # The bridge learns of the leave from a homeserver transaction, a moment later: wait
            # until its transaction with the leave event was answered (logged, then handled).
            status, leave = await m.request("GET", f"/rooms/{urllib.parse.quote(room_id)}/state/m.room.member/"
                                                   f"{urllib.parse.quote(m.user_id)}", format="event")
            assert status == 200 and leave.get("event_id"), (status, leave)
            await asyncio.to_thread(bridge.wait_log, offset, "transaction", leave["event_id"])
            again = "come back " + token(3)
            x.send_chat(m.jid, again)
            room2, _ = await m.wait_invite(x.ghost, after=1)
            assert room2 == room_id, f"re-invited to another room {room2}, not {room_id}"
            await m.join(room_id)
            await m.wait_message(room_id, x.ghost, again)
    run(go())


def test_unicode_multiline_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            to_matrix = UNICODE_TEXT + " " + token(2)
            x.send_chat(m.jid, to_matrix)
            ev = await m.wait_message(room_id, x.ghost, to_matrix)
            assert ev["content"]["msgtype"] == "m.text"

            to_xmpp = UNICODE_TEXT + " " + token(2)
            await m.send_text(room_id, to_xmpp)
            got = await x.wait_chat(m.jid, to_xmpp)
            assert got.body == to_xmpp
    run(go())


def test_xmpp_username_with_underscore(bridge):
    """x_abc@localhost is the ghost @_xmpp_x__abc=40localhost:localhost, both ways."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user(prefix="x_")
            assert "__" in x.ghost and x.ghost.startswith("@_xmpp_x__"), x.ghost
            body = "underscores " + token(3)
            x.send_chat(m.jid, body)
            room_id, _ = await m.wait_invite(x.ghost)
            await m.join(room_id)
            await m.wait_message(room_id, x.ghost, body)
            back = "back to x_ " + token(3)
            await m.send_text(room_id, back)
            await x.wait_chat(m.jid, back)
    run(go())


def test_matrix_username_with_underscore(bridge):
    """@m_abc:localhost is m_abc\\40localhost@bridge.localhost, both ways."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user(prefix="m_")
            x = await p.xmpp_user()
            assert m.jid.startswith(m.localpart + "\\40"), m.jid
            room_id = await p.dm_from_matrix(m, x)
            body = "from m_ " + token(3)
            await m.send_text(room_id, body)
            got = await x.wait_chat(m.jid, body)
            assert got.frm == m.jid
            reply = "to m_ " + token(3)
            x.send_chat(m.jid, reply)
            await m.wait_message(room_id, x.ghost, reply)
    run(go())


def test_bridge_created_room_is_unencrypted(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            status, body = await m.get_state(room_id, "m.room.encryption")
            assert status == 404, f"bridge-created room has m.room.encryption: {status} {body}"
    run(go())


ENCRYPTED_CONTENT = {
    "algorithm": "m.megolm.v1.aes-sha2",
    "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg37afzg8f3r9IsN9r4RNFg7MaZencUJe4qvELiDiopUjy5wYVDAtqdBzer5bWRD9ldxp1FLgbQvBcjkkywYjCsmsq6+hArLd9oAQZnGKn/qLsK+5uNX3PaWzDRC9wZPQvWYYPCTov3jCwXKTPsLKIiTrcCXDqMvnn8m+T3zF/I2zqxg158tnUwWWIw51UO",
    "device_id": "E2EFAKEDEV",
    "sender_key": "IlRMeOPX2e0MurIyfWEucYBRVOEEUMrOHqn/8mLqMjA",
    "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
}


def test_encryption_in_matrix_created_dm(bridge):
    """Encryption enabled: a notice on Matrix; an encrypted event becomes a notice to the XMPP user."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            warm = "plain first " + token(3)
            await m.send_text(room_id, warm)
            await x.wait_chat(m.jid, warm)
            await _encryption_roundtrip(m, x, room_id)
    run(go())


def test_encryption_in_bridge_created_dm(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            await _encryption_roundtrip(m, x, room_id)
    run(go())


async def _encryption_roundtrip(m, x, room_id: str) -> None:
    status, body = await m.put_state(room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
    assert status == 200, f"enabling encryption: {status} {body}"

    def notice():
        return next((e for e in m.timeline.get(room_id, [])
                     if e.get("type") == "m.room.message" and e.get("sender") != m.user_id
                     and e.get("content", {}).get("msgtype") == "m.notice"
                     and "encrypt" in e.get("content", {}).get("body", "").lower()), None)
    await m.sync_until(notice, 30, "an m.notice about encryption from the bridge")

    before = len(x.chats_from(m.jid))
    status, body = await m.send_raw(room_id, "m.room.encrypted", ENCRYPTED_CONTENT)
    assert status == 200, f"sending m.room.encrypted: {status} {body}"

    def told():
        return next((c for c in x.chats_from(m.jid)[before:] if "encrypted" in (c.body or "").lower()), None)
    await wait_for(told, 30, what=f"{x.bare}: a chat from {m.jid} saying a message was encrypted")
