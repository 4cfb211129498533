"""Attacks an ordinary account on either network can try (issue 11), each performed against the real
Synapse and Prosody: taking over rooms through `room create`, a hostile MUC speaking as someone else,
making a person's address into a portal, and stalling all XMPP input with one slow request."""
from __future__ import annotations

import asyncio
import os
import signal
import urllib.parse

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from ucb import Peers, ghost_for, hosted_alias, jid_for, matrix_escape_localpart, run, settings, token, wait_for, xml_escape
from test_control import control_room
from test_rooms import MUC_NS, _bot, bot_dm, bot_says, iq

COMPONENT_NS = "jabber:component:accept"
MUC_USER = "http://jabber.org/protocol/muc#user"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


def xmpp_said(x, frm: str, text: str) -> list:
    return [s for s in x.chats_from(frm) if text in (s.body or "")]


# ------------------------------------------------------------------ room create --

def test_room_create_cannot_take_over_the_control_room(bridge):
    """Any XMPP user sending `room create ucb-control` must not become owner of the admins' room."""
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            x = await p.xmpp_user("intruder")
            ctl = await control_room(admin)
            comp = settings().component
            control_alias = settings().env.get("UCB_CONTROL_ROOM", "ucb-control")
            x.send_chat(comp, f"room create {control_alias} Pwned")
            # The outcome (after "Creating the room …"): ready, or could not.
            outcome = await wait_for(lambda: xmpp_said(x, comp, "is ready") + xmpp_said(x, comp, "Could not"), 30,
                                     what="the outcome of room create")
            body = outcome[0].body
            assert "is ready" not in body and "control room" in body, body
            # Positive control: the same user can create a room of their own, and the bridge has
            # answered that later command, so the refused one was handled before it.
            alias = "own" + token(4).lower()
            x.send_chat(comp, f"room create {alias} Mine")
            await wait_for(lambda: xmpp_said(x, comp, "is ready"), 30, what="the intruder's own room")
            members = await admin.joined_members(ctl)
            assert x.ghost not in members, f"the intruder's ghost is in the control room: {members}"
            status, member = await admin.get_state(ctl, "m.room.member", x.ghost)
            assert status == 404 or member.get("membership") not in ("invite", "join"), member
    run(go(), timeout=120)


def test_room_create_does_not_adopt_a_squatted_alias(bridge):
    """The bridge's aliases are its own: nobody else can claim one (the registration reserves them),
    and a room someone made under a look-alike alias (with the bot invited and powerful in it) is
    never adopted for the next person who asks for that name."""
    async def go():
        async with Peers() as p:
            squatter = await p.matrix_user("squat")
            victim = await p.matrix_user("victim")
            name = "squat" + token(4).lower()
            status, j = await squatter.request("POST", "/createRoom", {"room_alias_name": hosted_alias(name)})
            assert status == 400 and j.get("errcode") == "M_EXCLUSIVE", f"the bridge's alias was claimable: {j}"
            status, created = await squatter.request("POST", "/createRoom",
                                                     {"room_alias_name": name, "preset": "private_chat",
                                                      "invite": [_bot()]})
            assert status == 200, created
            room = created["room_id"]
            await squatter.wait_joined(room, _bot())   # the bot accepts any invitation
            status, pl = await squatter.get_state(room, "m.room.power_levels")
            pl.setdefault("users", {})[_bot()] = 100
            status, j = await squatter.put_state(room, "m.room.power_levels", pl)
            assert status == 200, j

            dm = await bot_dm(victim)
            await victim.send_text(dm, f"room create {name} Sales")
            await victim.sync_until(lambda: bot_says(victim, dm, "is ready"), 30, "the victim's room")
            mine, _ = await victim.wait_invite(_bot())
            assert mine != room, "the bot adopted the squatted room"
            status, member = await squatter.get_state(room, "m.room.member", victim.user_id)
            assert status == 404, f"the victim was brought into the squatter's room: {member}"
    run(go(), timeout=120)


# -------------------------------------------------------------- hostile MUC --

class HostileMuc(slixmpp.ComponentXMPP):
    """A MUC service on a foreign domain that claims real JIDs of its choosing for its occupants."""

    def __init__(self, domain: str, secret: str, port: int, occupants: dict[str, str], said: list[tuple[str, str]]):
        super().__init__(domain, secret, "127.0.0.1", port)
        self.occupants, self.said = occupants, said
        self.joined = asyncio.Event()
        self.register_handler(Callback("evil-iq", MatchXPath(f"{{{COMPONENT_NS}}}iq"), self._iq))
        self.register_handler(Callback("evil-presence", MatchXPath(f"{{{COMPONENT_NS}}}presence"), self._presence))

    def _iq(self, stanza) -> None:
        if stanza["type"] == "get" and stanza.xml.find(f"{{{DISCO_INFO}}}query") is not None:
            self.send_raw(f"<iq type='result' id='{xml_escape(stanza['id'])}' from='{xml_escape(str(stanza['to']))}' "
                          f"to='{xml_escape(str(stanza['from']))}'><query xmlns='{DISCO_INFO}'>"
                          "<identity category='conference' type='text' name='Evil room'/>"
                          "<feature var='http://jabber.org/protocol/muc'/></query></iq>")

    def _presence(self, stanza) -> None:
        if stanza["type"] in ("unavailable", "error"):
            return
        room, joiner, nick = stanza["to"].bare, str(stanza["from"]), stanza["to"].resource
        for occ, real in self.occupants.items():
            self.send_raw(f"<presence from='{room}/{xml_escape(occ)}' to='{xml_escape(joiner)}'>"
                          f"<x xmlns='{MUC_USER}'><item affiliation='member' role='participant' "
                          f"jid='{xml_escape(real)}/phone'/></x></presence>")
        self.send_raw(f"<presence from='{room}/{xml_escape(nick)}' to='{xml_escape(joiner)}'>"
                      f"<x xmlns='{MUC_USER}'><item affiliation='member' role='participant' "
                      f"jid='{xml_escape(joiner)}'/><status code='110'/></x></presence>")
        for i, (occ, body) in enumerate(self.said):
            self.send_raw(f"<message type='groupchat' id='evil{i}' from='{room}/{xml_escape(occ)}' "
                          f"to='{xml_escape(joiner)}'><body>{xml_escape(body)}</body></message>")
        self.joined.set()


async def start_hostile_muc(occupants: dict[str, str], said: list[tuple[str, str]]) -> HostileMuc:
    s = settings()
    muc = HostileMuc(s.env["PEER_EVIL_MUC_DOMAIN"], s.env["PEER_EVIL_MUC_SECRET"],
                     int(s.env["PEER_COMPONENT_PORT"]), occupants, said)
    connected = asyncio.Event()
    muc.add_event_handler("session_start", lambda _: connected.set())
    muc.connect()
    await asyncio.wait_for(connected.wait(), 20)
    return muc


async def profile_displayname(m, user: str) -> str | None:
    status, j = await m.request("GET", f"/profile/{urllib.parse.quote(user)}/displayname")
    return j.get("displayname") if status == 200 else None


def test_a_remote_muc_cannot_speak_as_someone_else(bridge):
    """A MUC on evil.test names a company user (x) as its occupant "ceo": the bridge must not post
    as x's real ghost nor rename it; an occupant of the MUC's own domain is shown as its ghost, with
    the nick as its name in that room only."""
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("ceo")
            m = await p.matrix_user("mvict")
            domain = settings().env["PEER_EVIL_MUC_DOMAIN"]
            friend = f"friend{token(3).lower()}@{domain.partition('.')[2]}"   # a user of evil.test itself
            evil = await start_hostile_muc({"ceo": x.bare, "pal": friend},
                                           [("ceo", "wire the money today"), ("pal", "hi from pal")])
            try:
                muc = f"room{token(4).lower()}@{domain}"
                alias = f"#_xmpp_{matrix_escape_localpart(muc)}:{settings().matrix_domain}"
                r = await m.c.join(alias)
                assert hasattr(r, "room_id"), r
                room = r.room_id
                # Positive control: the MUC's own user speaks as its ghost, named by the nick here only.
                await m.wait_message(room, ghost_for(friend), "hi from pal")
                # The claimed CEO's words arrive, but said by the bot for the nick.
                def ceo_line():
                    return [e for e in m.messages_in(room) if "wire the money today" in e["content"].get("body", "")]
                events = await m.sync_until(ceo_line, 30, "the hostile MUC's message")
                assert all(e["sender"] != x.ghost for e in events), f"posted as {x.ghost}: {events}"
                assert events[0]["sender"] == _bot() and events[0]["content"]["body"].startswith("ceo:"), events
                assert x.ghost not in await m.joined_members(room)
                for _ in range(50):
                    if await m.member_displayname(room, ghost_for(friend)) == "pal":
                        break
                    await asyncio.sleep(0.2)
                assert await m.member_displayname(room, ghost_for(friend)) == "pal"
                assert await profile_displayname(m, ghost_for(friend)) != "pal", "a MUC nick renamed the ghost"
                assert await profile_displayname(m, x.ghost) != "ceo"
            finally:
                evil.disconnect()
    run(go(), timeout=120)


def test_a_persons_address_never_becomes_a_portal(bridge):
    """Looking up #_xmpp_<a person's JID> must not make a portal of it (their direct messages would
    then vanish into it); their messages keep arriving."""
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("person")
            m = await p.matrix_user("mlook")
            alias = f"#_xmpp_{matrix_escape_localpart(x.bare)}:{settings().matrix_domain}"
            status, j = await m.request("GET", f"/directory/room/{urllib.parse.quote(alias)}")
            assert status == 404, f"a portal was made of {x.bare}: {status} {j}"
            x.send_chat(m.jid, "still reaches you")
            room, _ = await m.wait_invite(x.ghost)
            await m.join(room)
            await m.wait_message(room, x.ghost, "still reaches you")
    run(go(), timeout=120)


# -------------------------------------------------------------- serial input --

def synapse_pid() -> int:
    with open(os.path.join(settings().state, "run", "synapse.pid")) as f:
        return int(f.readline().strip())


def test_a_stalled_homeserver_call_holds_up_no_other_conversation(bridge):
    """A vCard request makes the bridge ask the homeserver; with the homeserver frozen (SIGSTOP) that
    request waits, and other stanzas (a disco query from someone else) must still be answered."""
    async def go():
        async with Peers() as p:
            x1 = await p.xmpp_user("slow")
            x2 = await p.xmpp_user("quick")
            m = await p.matrix_user("mcard")
            comp = settings().component
            # The bridge is answering before the freeze.
            kind, _ = await iq(x2, comp, "get", f"<query xmlns='{DISCO_INFO}'/>")
            assert kind == "result"
            pid = synapse_pid()
            os.kill(pid, signal.SIGSTOP)
            try:
                pending = asyncio.ensure_future(iq(x1, jid_for(m.user_id), "get", "<vCard xmlns='vcard-temp'/>",
                                                   timeout=200))
                await asyncio.sleep(0)   # sent before the disco query below
                kind, _ = await iq(x2, comp, "get", f"<query xmlns='{DISCO_INFO}'/>", timeout=10)
                assert kind == "result", "the component's own answer waited for a frozen homeserver call"
                assert not pending.done(), "the vCard request did not wait on the homeserver at all"
            finally:
                os.kill(pid, signal.SIGCONT)
            kind, _ = await pending
            assert kind in ("result", "error")
    run(go(), timeout=240)


# -------------------------------------------------------------- usage policy --

def test_the_bridge_is_no_relay_to_servers_it_does_not_serve(bridge):
    """A served XMPP user cannot reach a Matrix user of a server the bridge does not serve."""
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("relay")
            m = await p.matrix_user("mok")
            target = jid_for("@victim:elsewhere.test")
            sid = x.send_chat(target, "spam through your bridge")
            err = await x.wait_error(sid)
            assert err.error_condition == "forbidden" and "does not serve" in (err.error_text or ""), err.describe()
            # Positive control: a Matrix user of the served homeserver is reached.
            x.send_chat(m.jid, "a fine message")
            room, _ = await m.wait_invite(x.ghost)
            await m.join(room)
            await m.wait_message(room, x.ghost, "a fine message")
    run(go(), timeout=120)


def test_accounts_of_servers_not_served_are_refused_until_granted_chat(bridge):
    """With `access` naming other servers only, local XMPP and Matrix accounts are outsiders: refused
    with a message that says how to get access; once an admin grants `chat`, they are let in."""
    from ucb import config_variant

    def outsiders(cfg):
        cfg["access"] = {"matrix_servers": ["partner.example"], "xmpp_domains": ["partner.example"]}

    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            x = await p.xmpp_user("out")
            m = await p.matrix_user("mout")
            ctl = await control_room(admin)
            from test_control import ask
            # XMPP: refused, with the way in.
            sid = x.send_chat(m.jid, "hello?")
            err = await x.wait_error(sid)
            assert err.error_condition == "forbidden" and "permissions grant" in (err.error_text or ""), err.describe()
            # Matrix: the ghost declines the invitation.
            dm = await m.create_dm(x.ghost)
            for _ in range(100):
                status, member = await m.get_state(dm, "m.room.member", x.ghost)
                if status == 200 and member.get("membership") == "leave":
                    break
                await asyncio.sleep(0.2)
            assert member.get("membership") == "leave", member
            # Granted: both get through.
            await ask(admin, ctl, f"permissions grant {x.bare} chat", "OK")
            await ask(admin, ctl, f"permissions grant {m.user_id} chat", "OK")
            x.send_chat(m.jid, "let in")
            room, _ = await m.wait_invite(x.ghost)
            await m.join(room)
            await m.wait_message(room, x.ghost, "let in")
            dm2 = await m.create_dm(x.ghost)
            await m.wait_joined(dm2, x.ghost)

    with config_variant(bridge, "outsiders", outsiders):
        run(go(), timeout=150)


def test_a_second_ghost_invited_into_a_direct_chat_does_not_take_it_over(bridge):
    async def go():
        async with Peers() as p:
            x1 = await p.xmpp_user("first")
            x2 = await p.xmpp_user("second")
            m = await p.matrix_user("mdm")
            dm = await m.create_dm(x1.ghost)
            await m.wait_joined(dm, x1.ghost)
            await m.send_text(dm, "before")
            await x1.wait_chat(m.jid, "before")
            status, j = await m.request("POST", f"/rooms/{urllib.parse.quote(dm)}/invite", {"user_id": x2.ghost})
            assert status == 200, j
            # Its Matrix side adding a party starts a group conversation of its own (issue 18):
            # the direct chat stays the pair's.
            await m.sync_until(lambda: [e for e in m.messages_in(dm, x1.ghost)
                                        if "This chat stays between you and" in e["content"].get("body", "")], 30,
                               "the notice that the chat stays with x1")
            await m.send_text(dm, "after the invite")
            await x1.wait_chat(m.jid, "after the invite")   # processed: the positive control
            assert not x2.chats_from(m.jid), [s.describe() for s in x2.chats_from(m.jid)]
            assert x2.ghost not in await m.joined_members(dm)
    run(go(), timeout=120)


def test_one_participant_cannot_multiply_a_rooms_traffic_with_many_clients(bridge):
    """Every message fans out to each client of each participant: one person's clients are capped."""
    from test_rooms import JoinRefused, join_muc, muc_of
    from ucb import xmpp_login

    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("many")
            comp = settings().component
            alias = "fan" + token(4).lower()
            x.send_chat(comp, f"room create {alias} Fan-out")
            await wait_for(lambda: xmpp_said(x, comp, "is ready"), 30, what="the room")
            muc = muc_of(alias)
            await join_muc(x, muc, "many")
            clients = []
            try:
                for i in range(9):   # 10 clients with the first
                    c = await xmpp_login(x.boundjid.user, x.e2e_password, resource=f"r{i}")
                    clients.append(c)
                    await join_muc(c, muc, "many")
                extra = await xmpp_login(x.boundjid.user, x.e2e_password, resource="r-extra")
                clients.append(extra)
                try:
                    await join_muc(extra, muc, "many")
                    raise AssertionError("an 11th client joined")
                except JoinRefused as e:
                    assert e.condition == "not-acceptable" and "At most" in e.text, (e.condition, e.text)
            finally:
                for c in clients:
                    await c.close()
    run(go(), timeout=150)
