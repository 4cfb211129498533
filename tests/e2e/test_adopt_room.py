"""A room made in a Matrix client (not by the bridge bot) becomes a hosted room when one of its admins
invites the bot and confirms; a moderator's invitation is refused, and an XMPP user's ghost invited
into a room that is not bridged explains instead of joining."""
from __future__ import annotations

import re
import urllib.parse

from test_rooms import MUC_NS, _bot, bot_says, occupant, set_power_level, wait_gone
from ucb import Peers, run, token, wait_for, xml_escape


def from_room(st, muc: str) -> bool:
    """Whether a stanza comes from the MUC (or an occupant): the address of a room without an alias
    holds its ID, which has capitals, and XMPP addresses compare without letter case."""
    return st.frm.partition("/")[0].lower() == muc.lower()


def present(x, muc: str) -> dict[str, dict]:
    """The occupants x was shown last, by nick."""
    shown = {}
    for st in x.presences:
        if from_room(st, muc):
            shown[st.frm.partition("/")[2]] = occupant(st)
    return {nick: o for nick, o in shown.items() if o["type"] != "unavailable"}


def said_in(x, muc: str) -> list[tuple[str, str]]:
    return [(st.frm.partition("/")[2], st.body) for st in x.messages
            if st.type == "groupchat" and from_room(st, muc) and st.body is not None]


async def room_with(admin, *others) -> str:
    """`admin` makes a room as Element does (no alias, not a direct chat) with `others` joined."""
    r = await admin.c.room_create(name="made in a client " + token(4), invite=[o.user_id for o in others])
    room = r.room_id
    for o in others:
        await o.wait_invite(admin.user_id)
        await o.join(room)
    return room


async def bridge_info(m, room: str) -> list[dict]:
    """The room's m.bridge state events."""
    status, state = await m.request("GET", f"/rooms/{urllib.parse.quote(room)}/state")
    assert status == 200, state
    return [e for e in state if e.get("type") == "m.bridge"]


def test_an_admins_room_is_adopted_on_confirmation_and_xmpp_users_talk_in_it_with_mapped_roles(bridge):
    async def go():
        async with Peers() as p:
            ann = await p.matrix_user("ada")   # the room's creator: power level 100
            ben = await p.matrix_user("adb")
            x = await p.xmpp_user("adx")
            room = await room_with(ann, ben)
            await set_power_level(ann, room, ben.user_id, 50)
            await ann.c.room_invite(room, _bot())
            await ann.wait_joined(room, _bot())
            offer = await ann.sync_until(lambda: bot_says(ann, room, "types confirm"), 30, "the bot's offer")
            # The bot has power level 0 so far: the offer says what it needs.
            assert "power level 100" in offer[0]["content"]["body"], offer[0]["content"]
            # Confirmed before the bot has that power: refused, with the level it needs.
            await ann.send_text(room, "confirm")
            await ann.sync_until(lambda: bot_says(ann, room, "I need power level 100"), 30, "the refusal")
            assert not await bridge_info(ann, room)
            await set_power_level(ann, room, _bot(), 100)
            # Only the one who asked may confirm.
            await ben.send_text(room, "confirm")
            await ann.sync_until(lambda: bot_says(ann, room, f"only {ann.user_id}"), 30, "ben cannot confirm")
            await ann.send_text(room, "!bridge confirm")
            done = await ann.sync_until(lambda: bot_says(ann, room, "bridged to XMPP now"), 30, "the adoption")
            body = done[0]["content"]["body"]
            muc = re.search(r"as (\S+)\. ", body).group(1)
            assert muc.startswith("!") and "\\40" in muc, body
            info = await bridge_info(ann, room)
            assert info and info[0]["content"]["channel"]["id"] == muc, info

            # An XMPP user is invited like in any hosted room, joins, and sees the roles.
            await ann.c.room_invite(room, x.ghost)
            await wait_for(lambda: [st for st in x.messages if from_room(st, muc) and "invite" in (st.xml or "")], 20,
                           what="x's invitation to the MUC")
            x.send_xml(f"<presence to='{xml_escape(muc)}/xena'><x xmlns='{MUC_NS}'/></presence>")
            await wait_for(lambda: 110 in present(x, muc).get("xena", {}).get("statuses", set()), 20,
                           what="x joined the MUC")
            await ann.wait_joined(room, x.ghost)
            shown = await wait_for(lambda: (lambda s: s if ann.localpart in s and ben.localpart in s else None)(
                present(x, muc)), 20, what="the Matrix members in the MUC")
            assert shown[ann.localpart]["affiliation"] == "owner", shown
            assert shown[ben.localpart]["affiliation"] == "admin", shown
            assert shown[ben.localpart]["role"] == "moderator", shown
            assert shown["xena"]["affiliation"] == "member", shown
            # Messages both ways.
            await ben.send_text(room, "hello from matrix")
            await wait_for(lambda: (ben.localpart, "hello from matrix") in said_in(x, muc), 30,
                           what="the Matrix message in the MUC")
            x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='ad1'><body>hello from xmpp</body></message>")
            await ann.wait_message(room, x.ghost, "hello from xmpp")
    run(go(), timeout=180)


def test_a_moderators_invitation_is_refused_and_an_admins_is_offered(bridge):
    async def go():
        async with Peers() as p:
            ann = await p.matrix_user("adm")
            ben = await p.matrix_user("adn")
            room = await room_with(ann, ben)
            await set_power_level(ann, room, ben.user_id, 50)
            await ben.c.room_invite(room, _bot())
            await ben.sync_until(lambda: bot_says(ben, room, "only the room's admins"), 30, "the refusal")
            await wait_gone(ann, room, _bot())
            # Still not bridged, even when ben confirms.
            await ben.send_text(room, "confirm")
            # Positive control: the admin's invitation of the bot (after ben's confirmation) is an offer.
            await ann.c.room_invite(room, _bot())
            await ann.sync_until(lambda: bot_says(ann, room, f"{ann.user_id}: I can bridge this room"), 30,
                                 "the admin's offer")
            assert not bot_says(ann, room, "bridged to XMPP now")
            assert not await bridge_info(ann, room)
    run(go(), timeout=120)


def test_a_ghost_invited_into_a_room_that_is_not_bridged_explains_and_leaves(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("adg")
            x = await p.xmpp_user("adg")
            room = await room_with(m)
            await m.c.room_invite(room, x.ghost)
            said = await m.sync_until(lambda: [e for e in m.messages_in(room, x.ghost)
                                               if "only once it is bridged" in e["content"].get("body", "")],
                                      30, "the ghost's explanation")
            assert _bot() in said[0]["content"]["body"], said[0]["content"]
            await wait_gone(m, room, x.ghost)
            await m.send_text(room, "not for xmpp")
            # Positive control: a direct chat with the same ghost carries messages.
            dm = await m.create_dm(x.ghost)
            await m.wait_joined(dm, x.ghost)
            await m.send_text(dm, "in the direct chat")
            await x.wait_chat(m.jid, "in the direct chat")
            assert [s.body for s in x.chats_from(m.jid)] == ["in the direct chat"], \
                [s.describe() for s in x.chats_from(m.jid)]
            assert not [s for s in x.messages if "invite" in (s.xml or "")], "x got an invitation"
    run(go(), timeout=120)
