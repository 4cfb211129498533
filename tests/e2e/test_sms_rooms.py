"""Phone numbers in the rooms the bridge hosts (issue 18 item 6), through the real Kannel: a
moderator with the sms permission adds a number (Matrix: inviting its ghost; XMPP: muc#admin
affiliation member for +number@component); what Matrix and XMPP participants say reaches the fake
SMSC prefixed with their nick; an SMS injected from the number appears in the room from its ghost
(Matrix) and its nick (MUC). A non-moderator and someone without the permission cannot add a
number; the participant cap counts it; a kick stops its SMS; an adder who loses the permission
stops them with a notice in the room."""
from __future__ import annotations

from nio import RoomInviteResponse, RoomKickResponse

from test_control import ask, control_room
from test_rooms import MUC_ADMIN, bot_says, create_room, groupchat, iq, invited_xmpp_joins, muc_of, occupant, \
    room_presences
from test_sms import SENDER, address, ghost, grant, inject, notices, rnd_mobile, sms_to, wait_sms
from ucb import Peers, config_variant, run, token, wait_for, xml_escape


async def revoke(p: Peers, who: str) -> None:
    admin = await p.matrix_user("admin")
    room = await control_room(admin)
    await ask(admin, room, f"permissions revoke {who} sms", "OK")


async def room_with_xmpp(p: Peers, prefix: str):
    """m (owner) and x (participant, joined to the MUC as 'xen')."""
    m = await p.matrix_user(prefix)
    x = await p.xmpp_user(prefix + "x")
    alias = prefix + token(4).lower()
    room = await create_room(m, alias)
    muc = muc_of(alias)
    await invited_xmpp_joins(m, room, x, muc, "xen")
    await m.wait_joined(room, x.ghost)
    return m, x, room, muc


async def add_number(m, room: str, number: str) -> None:
    r = await m.c.room_invite(room, ghost(number))
    assert isinstance(r, RoomInviteResponse), r
    await m.wait_joined(room, ghost(number))


def test_a_moderator_adds_a_number_and_the_room_talks_with_it_by_sms(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc = await room_with_xmpp(p, "smr")
            await grant(p, m.user_id)
            number = rnd_mobile()
            await add_number(m, room, number)
            # The XMPP participant sees the number join the MUC, under its number, with its address.
            seen = await wait_for(lambda: [occupant(s) for s in room_presences(x, muc)
                                           if occupant(s)["nick_from"] == number and s.type != "unavailable"],
                                  20, what="the number's occupant presence")
            assert seen[0]["jid"] and seen[0]["jid"].startswith(address(number)), seen

            text = f"Treffen um 3 {token(3)}"
            eid = await m.send_text(room, text)
            frm, _, _ = await wait_sms(number, f"{m.localpart}: {text}")
            assert frm == SENDER
            # An edit cannot go by SMS: the number's ghost says so in the room, nothing is sent.
            status, _ = await m.send_raw(room, "m.room.message", {
                "msgtype": "m.text", "body": "* Treffen um 4",
                "m.new_content": {"msgtype": "m.text", "body": "Treffen um 4"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": eid}})
            assert status == 200, status
            await m.sync_until(lambda: notices(m, room, ghost(number), "cannot be changed"), 30, "the edit's notice")
            xtext = f"bin dabei {token(3)}"
            x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='s{token(3)}'><body>{xtext}</body></message>")
            await wait_sms(number, f"xen: {xtext}")

            # The phone answers: in the room, from its ghost on Matrix and its nick in the MUC.
            reply = f"Komme gleich {token(3)}"
            inject(number, SENDER, reply)
            ev = await m.wait_message(room, ghost(number), reply)
            assert ev["content"]["msgtype"] == "m.text"
            await wait_for(lambda: (number, reply) in groupchat(x, muc), 20, what="the answer in the MUC")
            # Its own answer does not come back to it as SMS, nor did the edit go (both checked
            # after later SMS arrived).
            assert not [s for s in sms_to(number) if reply in s[2] or "Treffen um 4" in s[2]], sms_to(number)

            # The adder loses the permission: the next message is not sent, with a notice why.
            await revoke(p, m.user_id)
            late = f"noch da? {token(3)}"
            await m.send_text(room, late)
            await m.sync_until(lambda: notices(m, room, ghost(number), "may no longer send SMS"), 30,
                               "the notice that the SMS was not sent")
            assert not [s for s in sms_to(number) if late in s[2]], sms_to(number)
    run(go(), timeout=200)


def test_only_moderators_who_may_send_sms_add_numbers(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc = await room_with_xmpp(p, "smn")
            number = rnd_mobile()
            # The owner without the sms permission: the bot undoes the invitation and says why.
            r = await m.c.room_invite(room, ghost(number))
            assert isinstance(r, RoomInviteResponse), r
            await m.sync_until(lambda: bot_says(m, room, "was not added"), 30, "the refusal")
            assert "sms" in bot_says(m, room, "was not added")[0]["content"]["body"]
            # From XMPP too (the owner is not the one asking here: x is only a participant).
            await grant(p, x.bare)
            kind, err = await iq(x, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item jid='{address(number)}' affiliation='member'/></query>")
            assert kind == "error" and err[0] == "forbidden" and "only moderators" in err[1].lower(), err
            # Positive control: once allowed, the owner adds it, and it gets the room's messages.
            await grant(p, m.user_id)
            await add_number(m, room, number)
            text = f"jetzt {token(3)}"
            await m.send_text(room, text)
            await wait_sms(number, f"{m.localpart}: {text}")
            assert not [s for s in sms_to(number) if "was not added" in s[2]]
    run(go(), timeout=200)


def test_an_xmpp_moderator_adds_a_number_the_cap_counts_it_and_a_kick_stops_its_sms(bridge):
    def small(cfg: dict) -> None:
        cfg.setdefault("rooms", {})["max_participants"] = 3

    with config_variant(bridge, "rooms-cap3", small):
        async def go():
            async with Peers() as p:
                m, x, room, muc = await room_with_xmpp(p, "smc")
                # x becomes a moderator and adds the number from XMPP: 3 of 3.
                await m.send_text(room, f"!promote {x.ghost}")
                await wait_for(lambda: [s for s in room_presences(x, muc) if occupant(s)["nick_from"] == "xen"
                                        and occupant(s)["role"] == "moderator"], 20, what="x made a moderator")
                await grant(p, x.bare)
                number = rnd_mobile()
                kind, err = await iq(x, muc, "set",
                                     f"<query xmlns='{MUC_ADMIN}'><item jid='{address(number)}' affiliation='member'/></query>")
                assert kind == "result", err
                await m.wait_joined(room, ghost(number))
                # The room is full: the number counted.
                other = await p.matrix_user("smcz")
                r = await m.c.room_invite(room, other.user_id)
                assert isinstance(r, RoomInviteResponse), r
                await m.sync_until(lambda: bot_says(m, room, "full"), 30, "the cap's refusal")
                text = f"hallo {token(3)}"
                await m.send_text(room, text)
                await wait_sms(number, f"{m.localpart}: {text}")
                # Kicked: it gets no more SMS (a second number, added in its place, does).
                k = await m.c.room_kick(room, ghost(number), "enough")
                assert isinstance(k, RoomKickResponse), k
                await wait_for(lambda: [s for s in room_presences(x, muc) if occupant(s)["nick_from"] == number
                                        and s.type == "unavailable"], 20, what="the number gone from the MUC")
                second = rnd_mobile()
                await grant(p, m.user_id)
                await add_number(m, room, second)
                after = f"nach dem Kick {token(3)}"
                await m.send_text(room, after)
                await wait_sms(second, f"{m.localpart}: {after}")
                assert not [s for s in sms_to(number) if after in s[2]], sms_to(number)
        run(go(), timeout=200)
