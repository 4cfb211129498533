"""Group conversations the bridge hosts: a Matrix room created by the bridge bot, offered on XMPP as a
MUC at #alias\\40server@component. Driven with matrix-nio (plus raw client-server calls) and slixmpp
(raw MUC stanzas, read back from the XML the client received)."""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from nio import AsyncClient, RoomInviteResponse, RoomKickResponse

from ucb import Peers, hosted_alias, run, settings, token, wait_for, xep0106_escape, xml_escape

MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
MAM_NS = "urn:xmpp:mam:2"
RSM_NS = "http://jabber.org/protocol/rsm"
DELAY_NS = "urn:xmpp:delay"


def _bot() -> str:
    s = settings()
    return f"@{s.registration['sender_localpart']}:{s.matrix_domain}"


def muc_of(alias: str) -> str:
    s = settings()
    return f"{xep0106_escape(f'#{hosted_alias(alias)}@{s.matrix_domain}')}@{s.component}"


def occupant(st) -> dict:
    """What a MUC presence says: statuses, affiliation, role, real jid, new nick, reason."""
    root = ET.fromstring(st.xml)
    x = root.find(f"{{{MUC_USER}}}x")
    info = {"statuses": set(), "affiliation": None, "role": None, "jid": None, "nick": None, "reason": None,
            "nick_from": st.frm.partition("/")[2], "type": st.type}
    if x is None:
        return info
    info["statuses"] = {int(s.get("code")) for s in x.findall(f"{{{MUC_USER}}}status")}
    item = x.find(f"{{{MUC_USER}}}item")
    if item is not None:
        info.update(affiliation=item.get("affiliation"), role=item.get("role"), jid=item.get("jid"),
                    nick=item.get("nick"))
        reason = item.find(f"{{{MUC_USER}}}reason")
        info["reason"] = reason.text if reason is not None else None
    return info


def room_presences(x, muc: str, after: int = 0) -> list:
    return [p for p in x.presences[after:] if p.frm.partition("/")[0] == muc]


def groupchat(x, muc: str) -> list[tuple[str, str]]:
    """(nick, body) of every live groupchat message from the room (no history, no errors)."""
    out = []
    for m in x.messages:
        if m.type == "groupchat" and m.frm.partition("/")[0] == muc and m.body is not None \
                and f"{{{DELAY_NS}}}delay" not in (m.xml or "") and "urn:xmpp:delay" not in (m.xml or ""):
            out.append((m.frm.partition("/")[2], m.body))
    return out


async def bot_dm(m) -> str:
    room = await m.create_dm(_bot())
    await m.wait_joined(room, _bot())
    return room


def bot_says(m, room: str, text: str) -> list[dict]:
    return [e for e in m.messages_in(room, _bot()) if text in e["content"].get("body", "")]


async def create_room(m, alias: str, public: bool = False) -> str:
    """m asks the bot for a room; returns its ID once m joined it."""
    dm = await bot_dm(m)
    await m.send_text(dm, f"room create {alias} Room {alias}" + (" --public" if public else ""))
    await m.sync_until(lambda: bot_says(m, dm, "is ready"), 30, "the bot's 'room is ready'")
    room, _ = await m.wait_invite(_bot())
    await m.join(room)
    return room


async def join_muc(x, muc: str, nick: str, history: int | None = None) -> dict:
    """Join as nick; returns the self-presence (status 110), or raises with the error."""
    before = len(x.presences)
    hist = f"<history maxstanzas='{history}'/>" if history is not None else ""
    x.send_xml(f"<presence to='{xml_escape(muc)}/{xml_escape(nick)}'><x xmlns='{MUC_NS}'>{hist}</x></presence>")

    def done():
        for p in room_presences(x, muc, before):
            if p.type == "error":
                return p
            if 110 in occupant(p)["statuses"]:
                return p
        return None
    p = await wait_for(done, 20, what=f"{x.bare}: self-presence from {muc}")
    if p.type == "error":
        raise JoinRefused(p)
    return occupant(p)


class JoinRefused(Exception):
    def __init__(self, p):
        super().__init__(f"{p.error_condition}: {p.error_text}")
        self.condition = p.error_condition
        self.text = p.error_text or ""


async def iq(x, to: str, kind: str, payload: str, timeout: float = 15):
    """Send an iq with a raw payload; returns (type, result element or error (condition, text))."""
    stanza = x.make_iq(ito=to, itype=kind)
    stanza.append(ET.fromstring(payload))
    try:
        res = await stanza.send(timeout=timeout)
        return "result", res.xml
    except Exception as e:  # noqa: BLE001 - slixmpp raises IqError with the error stanza
        err = getattr(e, "iq", None)
        if err is None:
            raise
        return "error", (err["error"]["condition"], err["error"]["text"])


async def power_level(m, room: str, user: str) -> int:
    status, pl = await m.get_state(room, "m.room.power_levels")
    assert status == 200, pl
    return int(pl.get("users", {}).get(user, pl.get("users_default", 0)))


async def set_power_level(m, room: str, user: str, level: int) -> None:
    status, pl = await m.get_state(room, "m.room.power_levels")
    assert status == 200, pl
    pl.setdefault("users", {})[user] = level
    status, j = await m.put_state(room, "m.room.power_levels", pl)
    assert status == 200, f"{m.user_id} sets {user} to PL {level}: {status} {j}"


async def wait_power_level(m, room: str, user: str, level: int, timeout: float = 20) -> None:
    """Poll the room's power levels until `user` has `level`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, pl = await m.get_state(room, "m.room.power_levels")
        assert status == 200, pl
        now = pl.get("users", {}).get(user, pl.get("users_default", 0))
        if now == level:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{user} has PL {now}, not {level}"
        await asyncio.sleep(0.2)


async def wait_gone(m, room: str, user: str, timeout: float = 20) -> None:
    """Poll the room's joined members until `user` is no longer one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while user in await m.joined_members(room):
        assert asyncio.get_running_loop().time() < deadline, f"{user} is still in {room}"
        await asyncio.sleep(0.2)


async def invited_xmpp_joins(m, room: str, x, muc: str, nick: str) -> dict:
    """m invites x's ghost; x gets the MUC invitation and joins."""
    r = await m.c.room_invite(room, x.ghost)
    assert isinstance(r, RoomInviteResponse), r
    await wait_for(lambda: [s for s in x.messages if s.frm == muc and "invite" in (s.xml or "")], 20,
                   what=f"{x.bare}: a MUC invitation from {muc}")
    return await join_muc(x, muc, nick)


async def four_party_room(p: Peers):
    """A room started by m1 with m2 (Matrix) and x1, x2 (XMPP), everyone joined."""
    m1 = await p.matrix_user("ann")
    m2 = await p.matrix_user("ben")
    x1 = await p.xmpp_user("cid")
    x2 = await p.xmpp_user("dan")
    alias = "team" + token(4).lower()
    room = await create_room(m1, alias)
    muc = muc_of(alias)
    await m1.c.room_invite(room, m2.user_id)
    await m2.wait_invite(m1.user_id)
    await m2.join(room)
    await invited_xmpp_joins(m1, room, x1, muc, "cid")
    await invited_xmpp_joins(m1, room, x2, muc, "dan")
    await m1.wait_joined(room, x1.ghost)
    await m1.wait_joined(room, x2.ghost)
    return m1, m2, x1, x2, room, muc


def test_four_people_talk_in_order_and_the_initiator_is_moderator_on_both_sides(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            # On XMPP: the initiator is owner + moderator, the others members + participants.
            await wait_for(lambda: [s for s in room_presences(x2, muc) if occupant(s)["nick_from"] == m1.localpart
                                    and occupant(s)["affiliation"] == "owner"], 10, what="m1 shown as owner")
            shown = {occupant(s)["nick_from"]: occupant(s) for s in room_presences(x2, muc) if s.type != "unavailable"}
            assert shown[m1.localpart]["role"] == "moderator", shown
            assert shown[m2.localpart]["affiliation"] == "member" and shown[m2.localpart]["role"] == "participant"
            assert shown["cid"]["affiliation"] == "member", shown
            assert shown[m1.localpart]["jid"].startswith(m1.jid), shown
            # On Matrix: the initiator has PL 50, the bot created the room.
            assert await power_level(m2, room, m1.user_id) == 50
            assert await power_level(m2, room, x1.ghost) == 0

            n = 4
            for i in range(n):
                await m1.send_text(room, f"m1-{i}")
                x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='x1-{i}'><body>x1-{i}</body></message>")
                await m2.send_text(room, f"m2-{i}")
                x2.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='x2-{i}'><body>x2-{i}</body></message>")
            senders = {"m1": m1.localpart, "m2": m2.localpart, "x1": "cid", "x2": "dan"}
            want = {nick: [f"{k}-{i}" for i in range(n)] for k, nick in senders.items()}
            for x in (x1, x2):
                await wait_for(lambda x=x: len(groupchat(x, muc)) >= 4 * n, 30,
                               what=f"{x.bare}: all {4 * n} messages")
                got = groupchat(x, muc)
                for nick, bodies in want.items():
                    assert [b for k, b in got if k == nick] == bodies, (x.bare, nick, got)
            ghosts = {"x1": x1.ghost, "x2": x2.ghost}
            for m in (m1, m2):
                for k, ghost in ghosts.items():
                    await m.sync_until(lambda m=m, g=ghost, k=k: len(m.messages_in(room, g)) >= n, 30,
                                       f"{k}'s messages on Matrix")
                    assert [e["content"]["body"] for e in m.messages_in(room, ghost)] == [f"{k}-{i}" for i in range(n)]
                other = m2 if m is m1 else m1
                key = "m2" if m is m1 else "m1"
                await m.sync_until(lambda m=m, o=other: len(m.messages_in(room, o.user_id)) >= n, 30, "Matrix peer")
                assert [e["content"]["body"] for e in m.messages_in(room, other.user_id)] == [f"{key}-{i}" for i in range(n)]
            # XEP-0045: the sender's own message comes back with its id.
            echo = [s for s in x1.messages if s.type == "groupchat" and s.id == "x1-0"]
            assert echo and echo[0].body == "x1-0", [s.describe() for s in x1.messages[-5:]]
    run(go(), timeout=240)


def test_moderators_add_remove_appoint_and_revoke_from_both_sides(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            # A participant is refused, with a reason, on each side.
            kind, err = await iq(x2, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item nick='{m2.localpart}' role='none'/></query>")
            assert kind == "error" and err[0] == "forbidden" and "only moderators" in err[1].lower(), err
            sid = "inv" + token(3)
            x2.send_xml(f"<message to='{xml_escape(muc)}' id='{sid}'><x xmlns='{MUC_USER}'>"
                        f"<invite to='someone@{settings().xmpp_domain}'/></x></message>")
            e = await x2.wait_error(sid)
            assert e.error_condition == "forbidden" and "only moderators" in e.error_text.lower(), e.describe()
            await m2.send_text(room, f"!kick {x1.ghost}")
            await m2.sync_until(lambda: bot_says(m2, room, "refused: only moderators can remove participants"), 20,
                                "the bot's refusal")

            # Appointment on Matrix (PL 50) shows on XMPP as admin + moderator.
            mark = len(x2.presences)
            await set_power_level(m1, room, x1.ghost, 50)
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == "cid"
                                    and occupant(s)["affiliation"] == "admin" and occupant(s)["role"] == "moderator"],
                           20, what="x1 shown as moderator on XMPP")
            # Appointment on XMPP (affiliation admin) shows on Matrix as PL 50.
            kind, res = await iq(x1, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item jid='{m2.jid}' affiliation='admin'/></query>")
            assert kind == "result", res
            for _ in range(100):
                if await power_level(m1, room, m2.user_id) == 50:
                    break
                await asyncio.sleep(0.2)
            assert await power_level(m1, room, m2.user_id) == 50
            # Revocation: Matrix forbids demoting an equal, so the moderator asks the bot.
            mark = len(x2.presences)
            await m1.send_text(room, f"!demote {m2.user_id}")
            for _ in range(100):
                if await power_level(m1, room, m2.user_id) == 0:
                    break
                await asyncio.sleep(0.2)
            assert await power_level(m1, room, m2.user_id) == 0
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == m2.localpart
                                    and occupant(s)["role"] == "participant"], 20,
                           what="m2 shown as participant again")
            # An XMPP moderator asks the bridge to demote a moderator (x1 demotes m2, whom m1 appointed again).
            mark = len(x2.presences)
            await set_power_level(m1, room, m2.user_id, 50)
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == m2.localpart
                                    and occupant(s)["role"] == "moderator"], 20, what="m2 shown as moderator")
            kind, res = await iq(x1, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item nick='{m2.localpart}' affiliation='member'/></query>")
            assert kind == "result", res
            for _ in range(100):
                if await power_level(m1, room, m2.user_id) == 0:
                    break
                await asyncio.sleep(0.2)
            assert await power_level(m1, room, m2.user_id) == 0
            # A Matrix moderator demotes an XMPP moderator through the bot; the XMPP user sees it.
            mark = len(x1.presences)
            await m1.send_text(room, f"!demote {x1.ghost}")
            await wait_for(lambda: [s for s in room_presences(x1, muc, mark) if 110 in occupant(s)["statuses"]
                                    and occupant(s)["role"] == "participant"
                                    and occupant(s)["affiliation"] == "member"], 20,
                           what="x1 sees its own demotion")
            # The bridge lowers x1's power level on Matrix on its own lane: wait for it before
            # raising it again, or the bridge's later write would undo the raise.
            await wait_power_level(m1, room, x1.ghost, 0)
            mark = len(x1.presences)
            await set_power_level(m1, room, x1.ghost, 50)   # x1 moderates again for what follows
            await wait_for(lambda: [s for s in room_presences(x1, muc, mark) if 110 in occupant(s)["statuses"]
                                    and occupant(s)["role"] == "moderator"], 20, what="x1 moderator again")

            # A moderator removes a Matrix participant from XMPP, with a reason that both sides see…
            mark = len(x2.presences)
            kind, res = await iq(x1, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item nick='{m2.localpart}' role='none'>"
                                 f"<reason>off-topic</reason></item></query>")
            assert kind == "result", res
            await m2.sync_until(lambda: room in m2.left, 20, "m2 removed from the Matrix room")
            kicked = await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if s.type == "unavailable"
                                             and occupant(s)["nick_from"] == m2.localpart
                                             and 307 in occupant(s)["statuses"]],
                                    20, what="m2 shown as kicked on XMPP")
            assert "off-topic" in (occupant(kicked[0])["reason"] or ""), occupant(kicked[0])
            # …and an XMPP participant from Matrix.
            mark = len(x2.presences)
            r = await m1.c.room_kick(room, x2.ghost, "bye")
            assert isinstance(r, RoomKickResponse), r
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if s.type == "unavailable"
                                    and {110, 307} <= occupant(s)["statuses"]], 20, what="x2 told it was kicked")
            # The removed participant cannot talk in the room any more.
            sid = "gone" + token(3)
            x2.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='{sid}'><body>still here?</body></message>")
            e = await x2.wait_error(sid)
            assert e.error_condition == "not-acceptable", e.describe()
            # A moderator adds participants from each side.
            m3 = await p.matrix_user("eva")
            kind, res = await iq(x1, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item jid='{m3.jid}' affiliation='member'/></query>")
            assert kind == "result", res
            await m3.wait_invite(_bot())
            x3 = await p.xmpp_user("fay")
            x1.send_xml(f"<message to='{xml_escape(muc)}'><x xmlns='{MUC_USER}'><invite to='{x3.bare}'/></x></message>")
            await wait_for(lambda: [s for s in x3.messages if s.frm == muc], 20, what="x3 invited")
            assert (await join_muc(x3, muc, "fay"))["affiliation"] == "member"
    run(go(), timeout=240)


async def _register_many(n: int) -> list[AsyncClient]:
    s = settings()
    out = []
    for _ in range(n):
        c = AsyncClient(s.hs_url, "")
        r = await c.register(f"fill{token(5).lower()}", "pw-" + token(6))
        assert getattr(r, "access_token", None), r
        out.append(c)
    return out


def test_the_31st_participant_is_refused_on_each_side(bridge):
    async def go():
        async with Peers() as p:
            cap = settings().config.get("rooms", {}).get("max_participants", 30)
            m1 = await p.matrix_user("own")
            alias = "big" + token(4).lower()
            room = await create_room(m1, alias, public=True)
            muc = muc_of(alias)
            fillers = await _register_many(cap - 2)
            try:
                for c in fillers:
                    r = await c.join(room)
                    assert getattr(r, "room_id", None), r
                # The cap counts the joins the bridge has seen; the homeserver may push them late
                # (a gap in its transactions). Wait until the bot lists all 29 before XMPP joins.
                async def bridged_participants() -> int:
                    seen = len(bot_says(m1, room, "Participants:"))
                    await m1.send_text(room, "!who")
                    await m1.sync_until(lambda: len(bot_says(m1, room, "Participants:")) > seen, 20, "the bot's list")
                    return bot_says(m1, room, "Participants:")[-1]["content"]["body"].count("\n- ")
                for _ in range(30):
                    if await bridged_participants() >= cap - 1:   # m1 and the fillers, one line each
                        break
                    await asyncio.sleep(1)
                else:
                    raise AssertionError("the bridge never saw all Matrix participants join")
                x1 = await p.xmpp_user("thirty")
                assert (await join_muc(x1, muc, "thirty"))["role"] == "participant"   # the 30th
                # 31st on XMPP: refused with service-unavailable and a text.
                x2 = await p.xmpp_user("late")
                try:
                    await join_muc(x2, muc, "late")
                    raise AssertionError("the 31st XMPP participant was let in")
                except JoinRefused as e:
                    assert e.condition == "service-unavailable" and "full" in e.text, e
                # 31st on Matrix: the join is undone by the bot with a reason.
                m31 = await p.matrix_user("late")
                await m31.join(room)
                await m31.sync_until(lambda: room in m31.left, 20, "the 31st Matrix user removed")
                status, ev = await m1.get_state(room, "m.room.member", m31.user_id)
                assert ev.get("membership") == "leave" and "full" in ev.get("reason", ""), ev
                await m1.sync_until(lambda: bot_says(m1, room, "could not join"), 20, "the bot explains")
                # An invitation past the cap: undone, and the inviter is told.
                x3 = await p.xmpp_user("inv")
                await m1.c.room_invite(room, x3.ghost)
                await m1.sync_until(lambda: bot_says(m1, room, "was not added: the conversation is full"), 20,
                                    "the inviter is told")
                # From XMPP too (x1 made moderator first).
                await set_power_level(m1, room, x1.ghost, 50)
                await wait_for(lambda: [s for s in room_presences(x1, muc) if 110 in occupant(s)["statuses"]
                                        and occupant(s)["role"] == "moderator"], 20, what="x1 moderator")
                sid = "cap" + token(3)
                x1.send_xml(f"<message to='{xml_escape(muc)}' id='{sid}'><x xmlns='{MUC_USER}'>"
                            f"<invite to='{x2.bare}'/></x></message>")
                e = await x1.wait_error(sid)
                assert e.error_condition == "service-unavailable" and "full" in e.error_text, e.describe()
            finally:
                for c in fillers:
                    await c.close()
    run(go(), timeout=240)


def test_an_xmpp_participant_who_was_offline_reads_the_archive_with_paging(bridge):
    async def go():
        async with Peers() as p:
            m1 = await p.matrix_user("arc")
            x1 = await p.xmpp_user("off")
            alias = "arch" + token(4).lower()
            room = await create_room(m1, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m1, room, x1, muc, "off")
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='before'><body>before</body></message>")
            await wait_for(lambda: ("off", "before") in groupchat(x1, muc), 20, what="own message reflected")
            x1 = await p.relogin(x1)            # offline: its client left the room
            said = [f"while away {i} ✓" for i in range(7)]
            for body in said:
                await m1.send_text(room, body)
            await m1.sync_until(lambda: len(m1.messages_in(room, m1.user_id)) >= 7, 20, "sent")


            async def archived() -> int:
                kind, res = await iq(x1, muc, "set",
                                     f"<query xmlns='{MAM_NS}'><set xmlns='{RSM_NS}'><max>0</max></set></query>")
                count = res.find(f".//{{{RSM_NS}}}count") if kind == "result" else None
                return int(count.text) if count is not None and count.text else 0
            for _ in range(100):               # the bridge archived them all: RSM <count/> is 8
                if await archived() >= 8:
                    break
                await asyncio.sleep(0.2)

            pages, after, seen = 0, None, []
            while True:
                rsm = f"<set xmlns='{RSM_NS}'><max>3</max>" + (f"<after>{after}</after>" if after else "") + "</set>"
                qid = "q" + token(3)
                mark = len(x1.messages)
                kind, res = await iq(x1, muc, "set", f"<query xmlns='{MAM_NS}' queryid='{qid}'>{rsm}</query>")
                assert kind == "result", res
                pages += 1
                fin = res.find(f"{{{MAM_NS}}}fin")
                results = []
                for s in x1.messages[mark:]:
                    r = ET.fromstring(s.xml).find(f"{{{MAM_NS}}}result")
                    if r is not None and r.get("queryid") == qid:
                        body = r.find(".//{jabber:client}body")
                        assert body is not None, s.xml
                        results.append(body.text if body is not None else None)
                assert len(results) <= 3, results
                seen += results
                last = fin.find(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last")
                if fin.get("complete") in ("true", "1") or last is None:
                    break
                after = last.text
                assert pages < 10, seen
            assert pages >= 3, pages
            assert seen == ["before"] + said, seen
            # The newest page, and history on join.
            kind, res = await iq(x1, muc, "set",
                                 f"<query xmlns='{MAM_NS}'><set xmlns='{RSM_NS}'><max>2</max><before/></set></query>")
            assert kind == "result"
            count = res.find(f".//{{{RSM_NS}}}count")
            assert count is not None and int(count.text) == 8, ET.tostring(res)
            mark = len(x1.messages)
            await join_muc(x1, muc, "off", history=3)
            hist = [s.body for s in x1.messages[mark:] if s.type == "groupchat" and "urn:xmpp:delay" in s.xml]
            assert hist == said[-3:], hist
            # Someone who is not a participant gets nothing.
            stranger = await p.xmpp_user("str")
            kind, err = await iq(stranger, muc, "set", f"<query xmlns='{MAM_NS}'/>")
            assert kind == "error" and err[0] == "forbidden", err
            try:
                await join_muc(stranger, muc, "str")
                raise AssertionError("a stranger joined a members-only room")
            except JoinRefused as e:
                assert e.condition == "registration-required", e
    run(go(), timeout=240)


def test_nick_collisions_lose_no_messages(bridge):
    async def go():
        async with Peers() as p:
            m1 = await p.matrix_user("nk")
            status, j = await m1.request("PUT", f"/profile/{m1.user_id}/displayname", {"displayname": "Alex"})
            assert status == 200, j
            x1 = await p.xmpp_user("nx")
            x2 = await p.xmpp_user("ny")
            alias = "nick" + token(4).lower()
            room = await create_room(m1, alias)
            muc = muc_of(alias)
            first = await invited_xmpp_joins(m1, room, x1, muc, "Alex")
            assert 210 in first["statuses"] and first["nick_from"] == "Alex (2)", first
            second = await invited_xmpp_joins(m1, room, x2, muc, "Alex")
            assert second["nick_from"] == "Alex (3)", second
            await m1.send_text(room, "from matrix alex")
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>from xmpp alex</body></message>")
            x2.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>from the other alex</body></message>")
            await wait_for(lambda: len(groupchat(x2, muc)) >= 3, 20, what="all three on XMPP")
            assert sorted(groupchat(x2, muc)) == sorted([("Alex", "from matrix alex"), ("Alex (2)", "from xmpp alex"),
                                                        ("Alex (3)", "from the other alex")]), groupchat(x2, muc)
            await m1.wait_message(room, x1.ghost, "from xmpp alex")
            await m1.wait_message(room, x2.ghost, "from the other alex")
    run(go(), timeout=180)


def test_presence_and_nick_changes_show_in_the_room(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            # A Matrix participant's presence and absence note reach the XMPP occupants.
            mark = len(x2.presences)
            await m1.set_presence("unavailable", "in a meeting")
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == m1.localpart
                                    and s.show in ("away", "xa") and "in a meeting" in (s.status or "")], 20,
                           what="m1's absence shown in the MUC")
            # An XMPP occupant's status reaches the others.
            mark = len(x2.presences)
            x1.send_xml(f"<presence to='{xml_escape(muc)}/cid'><show>dnd</show><status>on a call</status></presence>")
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == "cid"
                                    and s.show == "dnd" and s.status == "on a call"], 20, what="x1's status")
            # A nick change (XEP-0045 §7.6): 303 from the old nick, then presence from the new one.
            mark = len(x2.presences)
            x1.send_xml(f"<presence to='{xml_escape(muc)}/cidney'/>")
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == "cid"
                                    and 303 in occupant(s)["statuses"] and occupant(s)["nick"] == "cidney"], 20,
                           what="the 303 nick change")
            await wait_for(lambda: [s for s in room_presences(x2, muc, mark) if occupant(s)["nick_from"] == "cidney"
                                    and s.type != "unavailable"], 20, what="presence from the new nick")
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>renamed</body></message>")
            await wait_for(lambda: ("cidney", "renamed") in groupchat(x2, muc), 20, what="message under the new nick")
            # A nick someone else has is refused.
            mark = len(x1.presences)
            x1.send_xml(f"<presence to='{xml_escape(muc)}/dan'/>")
            await wait_for(lambda: [s for s in room_presences(x1, muc, mark) if s.type == "error"
                                    and s.error_condition == "conflict"], 20, what="conflict for a taken nick")
    run(go(), timeout=180)


def _room_stanza_id(st, muc: str) -> str | None:
    for el in ET.fromstring(st.xml):
        if el.tag == "{urn:xmpp:sid:0}stanza-id" and el.get("by") == muc:
            return el.get("id")
    return None


def test_typing_and_read_markers_in_a_room(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            chatstates = "http://jabber.org/protocol/chatstates"
            markers = "urn:xmpp:chat-markers:0"
            # Matrix typing → chat state from the occupant's nick.
            mark = len(x1.messages)
            await m1.set_typing(room, True)
            await wait_for(lambda: [s for s in x1.messages[mark:] if s.frm == f"{muc}/{m1.localpart}"
                                    and s.child(chatstates, "composing") is not None], 20, what="composing in the MUC")
            await m1.set_typing(room, False)
            # XMPP chat state → the ghost types on Matrix.
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><composing xmlns='{chatstates}'/></message>")
            await m2.sync_until(lambda: any(x1.ghost in users for users in m2.typing_events(room)), 20,
                                "x1's ghost typing")
            # An XMPP message read on Matrix → displayed marker for the room's stanza id.
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='rd1'><body>read me</body></message>")
            echo = await wait_for(lambda: next((s for s in x1.messages if s.type == "groupchat" and s.id == "rd1"), None),
                                  20, what="reflection")
            sid = _room_stanza_id(echo, muc)
            assert sid, echo.xml
            ev = await m2.wait_message(room, x1.ghost, "read me")
            mark = len(x1.messages)
            await m2.send_read_receipt(room, ev["event_id"])
            await wait_for(lambda: [s for s in x1.messages[mark:] if s.frm == f"{muc}/{m2.localpart}"
                                    and (s.child(markers, "displayed") or {}).get("id") == sid], 20,
                           what="displayed marker from m2's nick")
            # A Matrix message displayed on XMPP → the ghost's read receipt on the event.
            eid = await m1.send_text(room, "for the XMPP side")
            got = await wait_for(lambda: next((s for s in x2.messages if s.body == "for the XMPP side"), None), 20,
                                 what="message at x2")
            x2.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'>"
                        f"<displayed xmlns='{markers}' id='{_room_stanza_id(got, muc)}'/></message>")
            await m1.sync_until(lambda: x2.ghost in m1.read_receipts(room, eid), 20, "x2's read receipt")
    run(go(), timeout=180)


def test_private_messages_within_the_room(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            # To an XMPP occupant: delivered from the sender's nick in the room.
            x1.send_xml(f"<message type='chat' to='{xml_escape(muc)}/dan' id='pm1'><body>psst, dan</body></message>")
            pm = await wait_for(lambda: next((s for s in x2.messages if s.body == "psst, dan"), None), 20,
                                what="the private message at x2")
            assert pm.frm == f"{muc}/cid" and pm.type == "chat", pm.describe()
            # Not in the Matrix room. Positive control: a groupchat message x1 sent after it reaches
            # m1 (same sender, same room, in order); then the room's whole history is read.
            after = "after the private one " + token(3)
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>{after}</body></message>")
            await m1.wait_message(room, x1.ghost, after)
            leaked = [e for e in await m1.room_messages(room) if "psst, dan" in e["content"].get("body", "")]
            assert not leaked, f"the private message to dan reached the Matrix room: {leaked}"
            # To a Matrix participant: their direct chat with the sender's ghost.
            x1.send_xml(f"<message type='chat' to='{xml_escape(muc)}/{m2.localpart}' id='pm2'>"
                        f"<body>psst, matrix</body></message>")
            dm, _ = await m2.wait_invite(x1.ghost)
            await m2.join(dm)
            await m2.wait_message(dm, x1.ghost, "psst, matrix")
            # Nobody by that nick: an error that says so.
            x1.send_xml(f"<message type='chat' to='{xml_escape(muc)}/nobody' id='pm3'><body>hello?</body></message>")
            e = await x1.wait_error("pm3")
            assert e.error_condition == "item-not-found" and "nobody" in e.error_text, e.describe()
    run(go(), timeout=180)


def test_an_xmpp_user_starts_a_room_and_invites_a_matrix_user(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("own")
            m = await p.matrix_user("gst")
            comp = settings().component
            alias = "fromx" + token(4).lower()
            x.send_chat(comp, f"room create {alias} From XMPP")
            await wait_for(lambda: [s for s in x.chats_from(comp) if "is ready" in (s.body or "")], 30,
                           what="the room is ready")
            muc = muc_of(alias)
            me = await join_muc(x, muc, "owner")
            assert me["affiliation"] == "owner" and me["role"] == "moderator", me
            x.send_xml(f"<message to='{xml_escape(muc)}'><x xmlns='{MUC_USER}'><invite to='{m.jid}'/></x></message>")
            room, _ = await m.wait_invite(_bot())
            await m.join(room)
            x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>welcome</body></message>")
            await m.wait_message(room, x.ghost, "welcome")
            assert await power_level(m, room, x.ghost) == 50
    run(go(), timeout=120)


async def room_with_xmpp_moderator(p: Peers):
    """four_party_room, with x1 made a moderator on Matrix (and seen as one on XMPP)."""
    m1, m2, x1, x2, room, muc = await four_party_room(p)
    await set_power_level(m1, room, x1.ghost, 50)
    await wait_for(lambda: [s for s in room_presences(x1, muc) if 110 in occupant(s)["statuses"]
                            and occupant(s)["role"] == "moderator"], 20, what="x1 moderator")
    return m1, m2, x1, x2, room, muc


def test_room_name_and_topic_follow_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await room_with_xmpp_moderator(p)
            owner = "http://jabber.org/protocol/muc#owner"
            # XMPP → Matrix: the room configuration's name and description.
            kind, res = await iq(x1, muc, "get", f"<query xmlns='{owner}'/>")
            assert kind == "result" and "muc#roomconfig_roomname" in ET.tostring(res, encoding="unicode"), res
            form = ("<x xmlns='jabber:x:data' type='submit'>"
                    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
                    "<field var='muc#roomconfig_roomname'><value>Quarterly numbers</value></field></x>")
            kind, res = await iq(x1, muc, "set", f"<query xmlns='{owner}'>{form}</query>")
            assert kind == "result", res
            for _ in range(100):
                status, j = await m1.get_state(room, "m.room.name")
                if status == 200 and j.get("name") == "Quarterly numbers":
                    break
                await asyncio.sleep(0.2)
            assert j.get("name") == "Quarterly numbers", j
            # A participant may not.
            kind, err = await iq(x2, muc, "set", f"<query xmlns='{owner}'>{form}</query>")
            assert kind == "error" and err[0] == "forbidden", err
            # XMPP subject → Matrix topic; Matrix topic → XMPP subject.
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><subject>Budget 2027</subject></message>")
            for _ in range(100):
                status, j = await m1.get_state(room, "m.room.topic")
                if status == 200 and j.get("topic") == "Budget 2027":
                    break
                await asyncio.sleep(0.2)
            assert j.get("topic") == "Budget 2027", j
            status, j = await m1.put_state(room, "m.room.topic", {"topic": "Budget 2028"})
            assert status == 200, j
            await wait_for(lambda: [s for s in x2.messages if s.frm == muc and "Budget 2028" in (s.xml or "")
                                    and "subject" in s.xml], 20, what="the new subject on XMPP")
            # The Matrix name shows in the room's disco#info.
            status, j = await m1.put_state(room, "m.room.name", {"name": "Renamed on Matrix"})
            assert status == 200, j
            for _ in range(50):
                info = await x2.plugin["xep_0030"].get_info(jid=muc, timeout=10)
                names = [i[3] for i in info["disco_info"]["identities"]]
                if "Renamed on Matrix" in names:
                    break
                await asyncio.sleep(0.2)
            assert "Renamed on Matrix" in names, names
    run(go(), timeout=180)


def test_a_ban_on_matrix_shows_as_301(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            mark = len(x1.presences)
            status, j = await m1.request("POST", f"/rooms/{room}/ban", {"user_id": x2.ghost, "reason": "spam"})
            assert status == 200, j
            got = await wait_for(lambda: [s for s in room_presences(x1, muc, mark) if s.type == "unavailable"
                                          and occupant(s)["nick_from"] == "dan"], 20, what="dan banned")
            assert 301 in occupant(got[0])["statuses"] and occupant(got[0])["reason"] == "spam", occupant(got[0])
    run(go(), timeout=120)


def test_an_xmpp_participant_leaves_for_good_but_going_offline_removes_nobody(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            comp = settings().component
            # x1 leaves by command: the ghost leaves the Matrix room.
            x1.send_chat(comp, f"room leave {muc}")
            answer = await wait_for(lambda: [s.body for s in x1.chats_from(comp) if s.body], 30,
                                    what="the bridge's answer")
            assert answer == [f"OK: you left {muc}."], answer
            await wait_gone(m1, room, x1.ghost)
            # x2 goes offline (leaves the MUC): still a participant, and the ghost stays.
            mark = len(x1.presences)
            x2.send_xml(f"<presence type='unavailable' to='{xml_escape(muc)}/dan'/>")
            await wait_for(lambda: [s for s in room_presences(x2, muc) if s.type == "unavailable"
                                    and 110 in occupant(s)["statuses"]], 20, what="x2's own unavailable presence")
            await m1.send_text(room, "!who")
            await m1.sync_until(lambda: bot_says(m1, room, "Participants:"), 20, "the bot's list")
            who = bot_says(m1, room, "Participants:")[-1]["content"]["body"]
            assert "dan" in who and x2.bare in who, who
            assert x1.bare not in who, who
            assert x2.ghost in await m1.joined_members(room)
            # x1 is out: a room message no longer reaches it; x2 comes back and reads it in history.
            await m1.send_text(room, "after-leave")
            await join_muc(x2, muc, "dan", history=5)
            await wait_for(lambda: [m for m in x2.messages if m.body == "after-leave"], 20, what="x2 reads history")
            assert not [m for m in x1.messages if m.body == "after-leave"]
            assert not [s for s in x1.presences[mark:] if s.frm.partition("/")[0] == muc and s.type != "unavailable"]
    run(go(), timeout=240)


def test_the_owner_leaves_and_a_moderator_owns_the_room(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await four_party_room(p)
            # x2 is a moderator: it inherits the room when m1 leaves.
            await set_power_level(m1, room, x2.ghost, 50)
            await wait_for(lambda: [s for s in room_presences(x1, muc) if occupant(s)["nick_from"] == "dan"
                                    and occupant(s)["affiliation"] == "admin"], 20, what="x2 shown as moderator")
            mark = len(x1.presences)
            await m1.leave(room)
            await m2.sync_until(lambda: bot_says(m2, room, "is the room's owner now"), 30, "the owner notice")
            notice = bot_says(m2, room, "is the room's owner now")[-1]["content"]["body"]
            assert notice == f"{m1.localpart} left; dan is the room's owner now.", notice
            await wait_for(lambda: [s for s in room_presences(x1, muc, mark) if occupant(s)["nick_from"] == "dan"
                                    and occupant(s)["affiliation"] == "owner"], 20, what="x2 shown as owner")
            # Then the new owner leaves by giving up its affiliation: the longest-standing remains.
            kind, res = await iq(x2, muc, "set",
                                 f"<query xmlns='{MUC_ADMIN}'><item jid='{x2.bare}' affiliation='none'/></query>")
            assert kind == "result", res
            await m2.sync_until(lambda: bot_says(m2, room, "dan left;"), 30, "the second owner notice")
            notice = bot_says(m2, room, "dan left;")[-1]["content"]["body"]
            # m2 joined before x1 did.
            assert notice == f"dan left; {m2.localpart} is the room's owner now.", notice
            await wait_gone(m2, room, x2.ghost)
    run(go(), timeout=240)
