"""Issue 19: nothing is accepted that the peer will refuse for its size, and every action the
real peer refuses permanently is reported to its sender, on the sender's own network, once.

Each give-up test makes the real peer refuse (Synapse invite blocking and power levels, Prosody
refusing a message to a user that does not exist and a visitor's message in a MUC, Kannel
refusing the gateway login), polls for the sender's notice, then sends something that goes
through (the positive control) and checks the notice is still there exactly once.
"""
from __future__ import annotations

import urllib.parse

import ucb
from test_content import OOB_NS, reactions_xml, retract_xml
from test_portal import join_remote_muc, muc_domain, said
from test_rooms import _bot, create_room, invited_xmpp_joins, iq, muc_of
from test_sms import address, grant, rnd_mobile
from ucb import Peers, matrix_escape_localpart, run, settings, token, wait_for, xml_escape

MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
SYNAPSE_EVENT_BYTES = 65536


def chats_with(x, frm: str, text: str) -> list:
    return [c for c in x.chats_from(frm) if text in (c.body or "")]


def notices_in(m, room: str, sender: str, text: str) -> list[dict]:
    return [e for e in m.messages_in(room, sender) if text in e["content"].get("body", "")
            and e["content"].get("msgtype") == "m.notice"]


async def set_invites(m, action: str) -> None:
    """MSC4380 invite blocking (`m.invite_permission_config`), which Synapse applies: `block`
    refuses every invitation to m with 403 M_INVITE_BLOCKED."""
    path = f"/user/{urllib.parse.quote(m.user_id)}/account_data/m.invite_permission_config"
    status, j = await m.request("PUT", path, {"default_action": action})
    assert status == 200, f"{m.user_id} sets invite rules: {status} {j}"


async def restrict(m, room: str, events: dict[str, int]) -> dict:
    """m raises the power level needed for these event types; returns the old power levels."""
    status, pl = await m.get_state(room, "m.room.power_levels")
    assert status == 200, pl
    changed = {**pl, "events": {**pl.get("events", {}), **events}}
    status, j = await m.put_state(room, "m.room.power_levels", changed)
    assert status == 200, f"{m.user_id} restricts {events}: {status} {j}"
    return pl


# ------------------------------------------------------------------ at intake --


def test_a_message_too_large_for_the_homeserver_is_refused_at_intake_naming_the_limit(bridge):
    """Within the body limit but not within Synapse's 65,536 bytes of event JSON once escaped
    (every `"` is two bytes there): refused while the sender is connected, never accepted."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rbig")
            x = await p.xmpp_user("rbig")
            room = await p.dm_from_xmpp(m, x)
            tag = token(3)
            big = f"big {tag} " + '"' * 33_000
            assert len(big.encode()) < settings().max_message_bytes
            sid = x.send_chat(m.jid, big)
            err = await x.wait_error(sid)
            assert err.error_condition == "not-acceptable", err.describe()
            assert str(SYNAPSE_EVENT_BYTES) in (err.error_text or ""), err.describe()
            after = f"after the big one {tag}"
            x.send_chat(m.jid, after)
            await m.wait_message(room, x.ghost, after)
            assert not [e for e in await m.room_messages(room, x.ghost)
                        if e["content"].get("body", "").startswith(f"big {tag}")], "the refused one arrived"
            assert not chats_with(x, m.jid, tag), "a late refusal came as well"
    run(go())


def test_a_message_that_fits_only_without_its_html_arrives_plain(bridge):
    """256 links (the most the recogniser makes) and a long tail: with its formatted_body the
    event is over Synapse's limit, without it within: it arrives, as plain text."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rhtml")
            x = await p.xmpp_user("rhtml")
            room = await p.dm_from_xmpp(m, x)
            # Control: a short message with a link gets its HTML.
            short = f"see www.example.org {token(3)}"
            x.send_chat(m.jid, short)
            got = await m.wait_message(room, x.ghost, short)
            assert "formatted_body" in got["content"], got
            body = f"links {token(3)} " + "www.a.de " * 256 + "x" * 40_000
            x.send_chat(m.jid, body)
            got = await m.wait_message(room, x.ghost, body, timeout=60)
            assert "formatted_body" not in got["content"], "the HTML was sent although it does not fit"
    run(go())


def test_a_room_message_too_large_for_the_homeserver_is_refused_at_intake(bridge):
    """The same in a hosted room: the occupant gets `not-acceptable` naming the limit; nothing
    reaches Matrix or the other occupants."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rbgr")
            x = await p.xmpp_user("rbgr")
            alias = "big" + token(4).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "xbig")
            await m.wait_joined(room, x.ghost)
            tag = token(3)
            body = f"big {tag} " + '"' * 33_000
            x.send_xml(f"<message to='{muc}' type='groupchat' id='b{tag}'><body>{xml_escape(body)}</body></message>")
            err = await x.wait_error(f"b{tag}")
            assert err.error_condition == "not-acceptable", err.describe()
            assert str(SYNAPSE_EVENT_BYTES) in (err.error_text or ""), err.describe()
            x.send_xml(f"<message to='{muc}' type='groupchat' id='a{tag}'><body>after {tag}</body></message>")
            await m.wait_message(room, x.ghost, f"after {tag}")
            assert not [e for e in m.messages_in(room, x.ghost) if e["content"].get("body", "").startswith("big ")]
            assert not [g for g in x.messages if g.type == "groupchat" and (g.body or "").startswith(f"big {tag}")]
    run(go(), timeout=200)


def test_a_matrix_message_over_the_xmpp_servers_stanza_limit_is_refused_at_intake(bridge):
    """limits.xmpp_stanza_bytes (Prosody's component_stanza_size_limit) bounds Matrix -> XMPP:
    a message that would make a larger stanza is refused with a notice naming the limit."""
    def small(cfg: dict) -> None:
        cfg.setdefault("limits", {})["xmpp_stanza_bytes"] = 16384
    with ucb.config_variant(bridge, "small-stanzas", small):
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("rstz")
                x = await p.xmpp_user("rstz")
                room = await p.dm_from_matrix(m, x)
                tag = token(3)
                await m.send_text(room, f"long {tag} " + "y" * 10_000)
                await m.sync_until(lambda: notices_in(m, room, x.ghost, "16384"), 30, "the refusal notice")
                after = f"short {tag}"
                await m.send_text(room, after)
                await x.wait_chat(m.jid, after)
                assert not chats_with(x, m.jid, f"long {tag}"), "the refused message reached XMPP"
                await m.sync_once()
                assert len(notices_in(m, room, x.ghost, "16384")) == 1
        run(go())


# ------------------------------------------------------------------ give-ups --


def test_a_refused_1to1_message_and_file_are_reported_to_the_xmpp_sender_once(bridge):
    """The Matrix user refuses all invitations (Synapse answers 403 M_INVITE_BLOCKED when the
    ghost opens the direct chat): the XMPP sender gets, for the text and for the file, a chat
    from the address she wrote to quoting it, once each."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rinv")
            x = await p.xmpp_user("rinv")
            await set_invites(m, "block")
            tag = token(3)
            x.send_chat(m.jid, f"text {tag}")
            url = f"https://files.example.org/{tag}/photo.png"
            x.send_xml(f"<message to='{xml_escape(m.jid)}' type='chat' id='f{tag}'><body>{url}</body>"
                       f"<x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")
            await wait_for(lambda: chats_with(x, m.jid, f"text {tag}"), 60, what="the text's refusal")
            await wait_for(lambda: chats_with(x, m.jid, url), 60, what="the file's refusal")
            for what in (f"text {tag}", url):
                (notice,) = chats_with(x, m.jid, what)
                assert "could not be delivered" in notice.body and "not permitted" in notice.body, notice.body
            await set_invites(m, "allow")
            after = f"after {tag}"
            x.send_chat(m.jid, after)
            room, _ = await m.wait_invite(x.ghost)
            await m.join(room)
            await m.wait_message(room, x.ghost, after)
            assert len(chats_with(x, m.jid, f"text {tag}")) == 1
            assert len(chats_with(x, m.jid, url)) == 1
    run(go(), timeout=200)


def test_a_refused_reaction_and_retraction_are_reported_to_the_xmpp_sender_once(bridge):
    """In a direct chat the Matrix user made, she raises the power level for reactions and
    redactions over the ghost's: Synapse refuses both; the XMPP sender is told, once each."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rrct")
            x = await p.xmpp_user("rrct")
            room = await p.dm_from_matrix(m, x)
            tag = token(3)
            sid = x.send_chat(m.jid, f"target {tag}")
            await m.wait_message(room, x.ghost, f"target {tag}")
            await restrict(m, room, {"m.reaction": 100, "m.room.redaction": 100})
            x.send_xml(reactions_xml(m.jid, "chat", f"r{tag}", sid, ["👍"]))
            await wait_for(lambda: len(chats_with(x, m.jid, "did not reach")) >= 1, 60, what="the reaction's refusal")
            x.send_xml(retract_xml(m.jid, f"d{tag}", sid))
            await wait_for(lambda: len(chats_with(x, m.jid, "did not reach")) >= 2, 60, what="the retraction's refusal")
            after = f"after {tag}"
            x.send_chat(m.jid, after)
            await m.wait_message(room, x.ghost, after)
            assert len(chats_with(x, m.jid, "did not reach")) == 2
            await m.sync_once()
            assert not [e for e in m.timeline.get(room, []) if e.get("type") == "m.reaction"], "the reaction arrived"
    run(go())


def test_a_matrix_message_to_an_xmpp_user_who_does_not_exist_is_reported_once(bridge):
    """Prosody bounces a message to a local user that does not exist: the Matrix sender gets a
    notice in the direct chat, one per message."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rnon")
            nobody = f"nobody{token(4).lower()}@{settings().xmpp_domain}"
            ghost = ucb.ghost_for(nobody)
            room = await m.create_dm(ghost)
            await m.wait_joined(room, ghost)
            await m.send_text(room, f"hello nobody {token(3)}")
            await m.sync_until(lambda: notices_in(m, room, ghost, "was not delivered"), 30, "the bounce notice")
            # Positive control: a second message gets its own notice, and only that one.
            await m.send_text(room, f"again {token(3)}")
            await m.sync_until(lambda: len(notices_in(m, room, ghost, "was not delivered")) >= 2, 30,
                               "the second bounce notice")
            x = await p.xmpp_user("rnonc")
            room2 = await p.dm_from_matrix(m, x)
            ok = f"to someone real {token(3)}"
            await m.send_text(room2, ok)
            await x.wait_chat(m.jid, ok)
            await m.sync_once()
            assert len(notices_in(m, room, ghost, "was not delivered")) == 2
    run(go())


def test_a_refused_sms_from_xmpp_is_reported_once(bridge):
    """Kannel refuses the gateway login (403): the XMPP writer gets a chat from the number's
    address with the reason, once per SMS."""
    def wrong_password(cfg: dict) -> None:
        cfg["sms"]["kannel"]["password"] = "not-the-password"
    with ucb.config_variant(bridge, "sms-refused-x", wrong_password):
        async def go():
            async with Peers() as p:
                x = await p.xmpp_user("rsms")
                await grant(p, x.bare)
                number = rnd_mobile()
                x.send_chat(address(number), f"sms {token(3)}")
                await wait_for(lambda: chats_with(x, address(number), "was not delivered"), 30,
                               what="the SMS refusal")
                assert "Authorization failed" in chats_with(x, address(number), "was not delivered")[0].body
                x.send_chat(address(number), f"sms again {token(3)}")
                await wait_for(lambda: len(chats_with(x, address(number), "was not delivered")) >= 2, 30,
                               what="the second SMS refusal")
                await m_control(p)
                assert len(chats_with(x, address(number), "was not delivered")) == 2
        run(go(), timeout=200)


async def m_control(p: Peers) -> None:
    """Something unrelated goes through (the positive control before a last count)."""
    m = await p.matrix_user("rctl")
    x = await p.xmpp_user("rctl")
    await p.dm_from_xmpp(m, x)


def test_a_refused_hosted_room_message_is_reported_to_the_xmpp_occupant_once(bridge):
    """A Matrix moderator raises the power level for messages over the XMPP participant's ghost:
    Synapse refuses its message; the XMPP occupant is told by the bridge, once."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rroom")
            x = await p.xmpp_user("rroom")
            alias = "refuse" + token(4).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "xoc")
            await m.wait_joined(room, x.ghost)
            old = await restrict(m, room, {"m.room.message": 50})
            tag = token(3)
            x.send_xml(f"<message to='{muc}' type='groupchat' id='g{tag}'><body>held {tag}</body></message>")
            component = settings().component
            await wait_for(lambda: chats_with(x, component, f"held {tag}"), 60, what="the refusal from the bridge")
            (notice,) = chats_with(x, component, f"held {tag}")
            assert "did not reach Matrix" in notice.body and muc in notice.body, notice.body
            status, j = await m.put_state(room, "m.room.power_levels", old)
            assert status == 200, j
            x.send_xml(f"<message to='{muc}' type='groupchat' id='h{tag}'><body>after {tag}</body></message>")
            await m.wait_message(room, x.ghost, f"after {tag}")
            assert len(chats_with(x, component, f"held {tag}")) == 1
            assert not [e for e in m.messages_in(room, x.ghost) if e["content"].get("body") == f"held {tag}"]
    run(go(), timeout=200)


def test_a_message_a_remote_muc_refuses_is_reported_in_the_linked_room_once(bridge):
    """The MUC's owner makes the Matrix user a visitor: Prosody's MUC answers their message with
    an error; the Matrix user sees it in the linked room, once."""
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("rmuc")
            m = await p.matrix_user("rmuc")
            muc = f"refuse{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x, muc, "owner")
            alias = f"#_xmpp_{matrix_escape_localpart(muc)}:{settings().matrix_domain}"
            r = await m.c.join(alias)
            room = r.room_id
            await wait_for(lambda: [s for s in x.presences if s.frm == f"{muc}/{m.localpart}"
                                    and s.type != "unavailable"], 20, what="the Matrix user in the MUC")
            kind, res = await iq(x, muc, "set", f"<query xmlns='{MUC_ADMIN_NS}'>"
                                                f"<item nick='{xml_escape(m.localpart)}' role='visitor'/></query>")
            assert kind == "result", res
            tag = token(3)
            await m.send_text(room, f"silenced {tag}")
            bot = _bot()
            await m.sync_until(lambda: notices_in(m, room, bot, "did not reach"), 30, "the MUC's refusal")
            kind, res = await iq(x, muc, "set", f"<query xmlns='{MUC_ADMIN_NS}'>"
                                                f"<item nick='{xml_escape(m.localpart)}' role='participant'/></query>")
            assert kind == "result", res
            await m.send_text(room, f"voiced {tag}")
            await wait_for(lambda: said(x, muc, m.localpart, f"voiced {tag}"), 20, what="the message after")
            await m.sync_once()
            assert len(notices_in(m, room, bot, "did not reach")) == 1
            assert not said(x, muc, m.localpart, f"silenced {tag}")
    run(go(), timeout=200)
