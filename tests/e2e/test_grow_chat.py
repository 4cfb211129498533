"""Adding a party to a chat (issue 18, item 4): a third person invited into a Matrix 1:1 with a ghost
gets a new hosted room with all three (the 1:1 stays a 1:1); `room create … --with` invites people on
creation (within the participant cap); an XMPP user's XEP-0249 direct invitation of a Matrix user
into a hosted room invites them, and is refused with a reason elsewhere."""
from __future__ import annotations

import asyncio
import re

from test_rooms import _bot, bot_dm, bot_says, join_muc, muc_of, occupant, power_level, room_presences
from ucb import Peers, bare, run, settings, token, wait_for, xep0106_escape, xml_escape

CONFERENCE = "jabber:x:conference"
CHAT_ALIAS = re.compile(r"#(ucb-chat-[0-9a-f]{8}):")


def muc_of_local(local: str) -> str:
    """The MUC address of a hosted room by its full alias localpart (`ucb-chat-…`)."""
    s = settings()
    return f"{xep0106_escape(f'#{local}@{s.matrix_domain}')}@{s.component}"


def muc_invites(x, muc: str) -> list:
    return [s for s in x.messages if s.frm == muc and "invite" in (s.xml or "")]


async def component_says(x, text: str) -> list:
    """The component's answers to x that contain text (waits for one)."""
    comp = settings().component
    return await wait_for(lambda: [s for s in x.chats_from(comp) if text in (s.body or "")], 30,
                          what=f"the component says {text!r}")


async def grown_room_alias(m, dm: str, ghost: str) -> str:
    """The ghost's notice in the 1:1 naming the new room; returns its alias localpart."""
    def found():
        for e in m.messages_in(dm, ghost):
            c = e.get("content", {})
            hit = CHAT_ALIAS.search(c.get("body", ""))
            if c.get("msgtype") == "m.notice" and hit:
                return hit.group(1)
        return None
    return await m.sync_until(found, 30, "the ghost's notice naming the group conversation")


async def membership(m, room: str, user: str) -> str | None:
    status, ev = await m.get_state(room, "m.room.member", user)
    return (ev or {}).get("membership") if status == 200 else None


async def wait_membership(m, room: str, user: str, wanted: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (now := await membership(m, room, user)) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"{user} in {room}: {now}, not {wanted}"
        await asyncio.sleep(0.2)


def test_a_matrix_user_invited_into_a_dm_gets_a_room_with_all_three(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("ann")
            newcomer = await p.matrix_user("ben")
            x = await p.xmpp_user("cid")
            dm = await p.dm_from_xmpp(m, x)
            await m.c.room_invite(dm, newcomer.user_id)
            local = await grown_room_alias(m, dm, x.ghost)
            muc = muc_of_local(local)
            # The initiator is invited by the bot into the new room, as its moderator.
            room, _ = await m.wait_invite(_bot())
            await m.join(room)
            status, alias = await m.get_state(room, "m.room.canonical_alias")
            assert status == 200 and alias.get("alias") == f"#{local}:{settings().matrix_domain}", alias
            assert await power_level(m, room, m.user_id) == 50
            # The XMPP side of the 1:1 gets the MUC invitation and joins as a member; the
            # initiator shows as the room's owner.
            await wait_for(lambda: muc_invites(x, muc), 20, what=f"{x.bare}: a MUC invitation from {muc}")
            me = await join_muc(x, muc, "cid")
            assert me["affiliation"] == "member", me
            await wait_for(lambda: [s for s in room_presences(x, muc) if bare(occupant(s)["jid"]) == m.jid
                                    and occupant(s)["affiliation"] == "owner"], 20, what="the initiator as owner")
            # The newcomer is invited into the new room and can join it.
            room2, _ = await newcomer.wait_invite(_bot())
            assert room2 == room
            await newcomer.join(room2)
            await m.wait_joined(room, newcomer.user_id)
            await m.wait_joined(room, x.ghost)
            # The 1:1 stays a 1:1: the invitation there is withdrawn, two members remain, and the
            # ghost says when the room is ready.
            await wait_membership(m, dm, newcomer.user_id, "leave")
            assert await m.joined_members(dm) == {m.user_id, x.ghost}
            await m.sync_until(lambda: [e for e in m.messages_in(dm, x.ghost)
                                        if "is ready" in e["content"].get("body", "")], 30, "the room is ready")
            # ...and still carries the 1:1 (a message after all this arrives).
            x.send_chat(m.jid, "still just us")
            await m.wait_message(dm, x.ghost, "still just us")
            # Talk in the new room reaches the XMPP participant.
            await newcomer.send_text(room, "hello all three")
            await wait_for(lambda: [s for s in x.messages if s.type == "groupchat" and s.frm.startswith(muc + "/")
                                    and s.body == "hello all three"], 20, what="the newcomer's message on XMPP")
    run(go(), timeout=180)


def test_a_ghost_invited_into_a_dm_turns_it_down_and_a_room_is_started(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("ann")
            x = await p.xmpp_user("cid")
            y = await p.xmpp_user("dan")
            dm = await p.dm_from_matrix(m, x)
            await m.c.room_invite(dm, y.ghost)
            local = await grown_room_alias(m, dm, x.ghost)
            muc = muc_of_local(local)
            for who in (x, y):
                await wait_for(lambda: muc_invites(who, muc), 20, what=f"{who.bare}: a MUC invitation")
            room, _ = await m.wait_invite(_bot())
            await m.join(room)
            assert (await join_muc(y, muc, "dan"))["affiliation"] == "member"
            await m.wait_joined(room, y.ghost)
            await wait_membership(m, dm, y.ghost, "leave")
            assert await m.joined_members(dm) == {m.user_id, x.ghost}
    run(go(), timeout=180)


def test_room_create_with_invites_the_listed_people(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("own")
            y = await p.xmpp_user("gst")
            m = await p.matrix_user("mat")
            # From XMPP: an XMPP user and a Matrix user (by their address).
            alias = "with" + token(4).lower()
            x.send_chat(settings().component, f"room create {alias} Planning --with {y.bare} {m.jid}")
            await component_says(x, "is ready")
            muc = muc_of(alias)
            await wait_for(lambda: muc_invites(y, muc), 20, what=f"{y.bare}: a MUC invitation")
            room, _ = await m.wait_invite(_bot())
            await m.join(room)
            me = await join_muc(x, muc, "owner")
            assert me["affiliation"] == "owner" and me["role"] == "moderator", me
            assert (await join_muc(y, muc, "gst"))["affiliation"] == "member"
            x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>agenda</body></message>")
            await m.wait_message(room, x.ghost, "agenda")
            # From Matrix (the bot DM): @mxid and a JID.
            n = await p.matrix_user("nat")
            dm = await bot_dm(m)
            alias2 = "withm" + token(4).lower()
            await m.send_text(dm, f"room create {alias2} --with {n.user_id} {y.bare}")
            await m.sync_until(lambda: bot_says(m, dm, "is ready"), 30, "the bot's 'room is ready'")
            room2, _ = await n.wait_invite(_bot())
            await n.join(room2)
            await wait_for(lambda: muc_invites(y, muc_of(alias2)), 20, what="the second MUC invitation")
            assert await power_level(n, room2, m.user_id) == 50
    run(go(), timeout=180)


def test_room_create_with_past_the_cap_is_refused_whole(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("big")
            y = await p.xmpp_user("one")
            comp = settings().component
            cap = settings().config.get("rooms", {}).get("max_participants", 30)
            alias = "cap" + token(4).lower()
            people = " ".join(f"p{i}{token(3).lower()}@{settings().xmpp_domain}" for i in range(cap))
            x.send_chat(comp, f"room create {alias} --with {people}")
            body = (await component_says(x, "at most"))[0].body
            assert f"at most {cap}" in body and f"would be {cap + 1}" in body and "Nothing was created" in body, body
            # A name that does not read refuses the whole command too.
            x.send_chat(comp, f"room create {alias} --with {y.bare} not-an-address")
            bad = (await component_says(x, "not-an-address"))[0].body
            assert "Nothing was created" in bad, bad
            # Nothing was created: the same alias is still free, and y hears only of this room.
            x.send_chat(comp, f"room create {alias} --with {y.bare}")
            await component_says(x, "is ready")
            await wait_for(lambda: muc_invites(y, muc_of(alias)), 20, what="y's MUC invitation")
            assert len([s for s in y.messages if "invite" in (s.xml or "")]) == 1
    run(go(), timeout=120)


def test_a_direct_invitation_from_xmpp_invites_the_matrix_user(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("own")
            y = await p.xmpp_user("out")
            m = await p.matrix_user("inv")
            m2 = await p.matrix_user("not")
            alias = "xep" + token(4).lower()
            x.send_chat(settings().component, f"room create {alias} Direct")
            await component_says(x, "is ready")
            muc = muc_of(alias)
            await join_muc(x, muc, "owner")

            def direct(sender, to: str, room: str) -> str:
                sid = "d" + token(4)
                sender.send_xml(f"<message to='{xml_escape(to)}' id='{sid}'>"
                                f"<x xmlns='{CONFERENCE}' jid='{xml_escape(room)}'/></message>")
                return sid
            # Not a room the bridge hosts: refused with the reason.
            e = await x.wait_error(direct(x, m.jid, f"team@conference.{settings().xmpp_domain}"))
            assert "not a room this bridge hosts" in (e.error_text or ""), e.describe()
            # No right to invite (not in the room): refused, and nobody is invited.
            e = await y.wait_error(direct(y, m2.jid, muc))
            assert "not in this conversation" in (e.error_text or ""), e.describe()
            # The owner's invitation brings the Matrix user in.
            direct(x, m.jid, muc)
            room, _ = await m.wait_invite(_bot())
            await m.join(room)
            x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>welcome</body></message>")
            await m.wait_message(room, x.ghost, "welcome")
            await m2.sync_once()
            assert not m2.invites_from(_bot()), m2.invites
    run(go(), timeout=120)
