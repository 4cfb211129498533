"""Consent to presence (issue #11, items 9 and 10).

An XMPP user sees a Matrix user's presence and absence note, and may watch it with `notify add`,
only if the two have a conversation (a DM the Matrix user joined, or a hosted room both joined)
or the Matrix user approved the request the bot asked in their chat with it. A Matrix user may
watch an XMPP contact only once that contact shares presence with the Matrix user's address.
Presence from JIDs unrelated to the Matrix user they send it to is not taken at all (no ghost),
and prompts are bounded.
"""
from __future__ import annotations

import asyncio
import urllib.parse

from ucb import Peers, bare, run, settings, token, wait_for, xep0106_escape, xml_escape

# The bridge's bounds (src/bridge/presence.rs): open prompts per Matrix user.
PROMPTS_PER_USER = 10


def _bot() -> str:
    s = settings()
    return f"@{s.registration['sender_localpart']}:{s.matrix_domain}"


async def _bot_dm(m) -> str:
    room = await m.create_dm(_bot())
    await m.wait_joined(room, _bot())
    return room


def _bot_says(m, room: str, text: str) -> list[dict]:
    return [e for e in m.messages_in(room, _bot()) if text in e["content"].get("body", "")]


def _prompts(m, room: str, jid: str) -> list[dict]:
    return _bot_says(m, room, f"{jid} wants to see when you are available")


async def _ask_bot(m, room: str, command: str, expect: str) -> dict:
    before = len(_bot_says(m, room, expect))
    await m.send_text(room, command)
    found = await m.sync_until(lambda: _bot_says(m, room, expect)[before:], 20,
                               f"the bot's answer containing {expect!r} to {command!r}")
    return found[0]


def _from_component(x, text: str) -> list:
    return [s for s in x.chats_from(settings().component) if text in (s.body or "")]


async def _ask_component(x, command: str, expect: str) -> str:
    before = len(_from_component(x, expect))
    x.send_chat(settings().component, command)
    found = await wait_for(lambda: _from_component(x, expect)[before:], 20,
                           what=f"{x.bare}: an answer containing {expect!r} to {command!r}")
    return found[0].body


def _sub_stanzas(x, frm: str, kind: str, after: int = 0) -> list:
    return [p for p in x.presences[after:] if bare(p.frm) == frm and p.type == kind]


def _fmt(prs) -> str:
    return "\n  " + "\n  ".join(f"type={p.type} show={p.show!r} status={p.status!r}" for p in prs) if prs else "(none)"


def test_a_strangers_subscription_reveals_nothing_until_approved(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cs")
            bot_room = await _bot_dm(m)
            stranger = await p.xmpp_user("st")
            secret = "dentist " + token(3)
            await m.set_presence("unavailable", secret)
            # A first message only invites him to a DM; that is no conversation yet.
            stranger.send_chat(m.jid, "hi, it's me " + token(2))
            await m.wait_invite(stranger.ghost)

            stranger.send_presence(pto=m.jid, ptype="subscribe")
            await m.sync_until(lambda: _prompts(m, bot_room, stranger.bare), 20, "the bot's prompt")
            prompt = _prompts(m, bot_room, stranger.bare)[0]["content"]["body"]
            assert f"presence approve {stranger.bare}" in prompt and f"presence deny {stranger.bare}" in prompt, prompt

            # A change while pending, and a probe: the probe is answered with a bare 'unavailable'.
            later = "still at the dentist " + token(3)
            await m.set_presence("unavailable", later)
            stranger.send_xml(f"<presence to='{xml_escape(m.jid)}' type='probe'/>")
            await wait_for(lambda: stranger.presences_from(m.jid), 20, what="an answer to the probe")
            await asyncio.sleep(1)   # let the Matrix change reach the bridge (it would be sent now)
            leaked = [pr for pr in stranger.presences_from(m.jid) if pr.type != "unavailable" or pr.status]
            assert not leaked, f"{stranger.bare} (not approved) saw his presence:{_fmt(leaked)}"
            assert not _sub_stanzas(stranger, m.jid, "subscribed"), "subscribed before he approved"

            # Positive control: once he approves, 'subscribed' and his current presence arrive.
            mark = len(stranger.presences)
            await _ask_bot(m, bot_room, f"presence approve {stranger.bare}", "can see your presence now")
            await wait_for(lambda: _sub_stanzas(stranger, m.jid, "subscribed", mark), 20, what="'subscribed'")
            await wait_for(lambda: [pr for pr in stranger.presences_from(m.jid, mark) if pr.status == later], 20,
                           what=f"his presence with the note {later!r} after approval")
            # Only one prompt per requester, however often they ask.
            stranger.send_presence(pto=m.jid, ptype="subscribe")
            await _ask_bot(m, bot_room, "presence list", f"{stranger.bare}: approved")
            assert len(_prompts(m, bot_room, stranger.bare)) == 1
    run(go(), timeout=180)


def test_a_denied_subscription_is_refused(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cd")
            bot_room = await _bot_dm(m)
            stranger = await p.xmpp_user("sd")
            await m.set_presence("online", "free " + token(2))
            stranger.send_presence(pto=m.jid, ptype="subscribe")
            await m.sync_until(lambda: _prompts(m, bot_room, stranger.bare), 20, "the bot's prompt")
            await _ask_bot(m, bot_room, f"presence deny {stranger.bare}", "cannot see your presence")
            await wait_for(lambda: _sub_stanzas(stranger, m.jid, "unsubscribed"), 20, what="'unsubscribed'")
            # Asking again: refused at once, and he is not asked a second time.
            mark = len(stranger.presences)
            stranger.send_presence(pto=m.jid, ptype="subscribe")
            await wait_for(lambda: _sub_stanzas(stranger, m.jid, "unsubscribed", mark), 20,
                           what="'unsubscribed' for the second request")
            assert not _sub_stanzas(stranger, m.jid, "subscribed"), "subscribed although denied"
            assert not [pr for pr in stranger.presences_from(m.jid) if pr.status], "his note reached a denied JID"
            await _ask_bot(m, bot_room, "presence list", f"{stranger.bare}: denied")
            assert len(_prompts(m, bot_room, stranger.bare)) == 1
    run(go(), timeout=120)


def test_a_conversation_partner_needs_no_approval(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cp")
            bot_room = await _bot_dm(m)
            x = await p.xmpp_user("cpx")
            await p.dm_from_matrix(m, x)
            note = "in the office " + token(2)
            await m.set_presence("unavailable", note)
            x.send_presence(pto=m.jid, ptype="subscribe")
            await wait_for(lambda: _sub_stanzas(x, m.jid, "subscribed"), 20, what="'subscribed'")
            await wait_for(lambda: [pr for pr in x.presences_from(m.jid) if pr.status == note], 20,
                           what="his presence")
            # He was not asked (the bot's answer to `presence list` comes after anything it sent before).
            await _ask_bot(m, bot_room, "presence list", "Nobody has asked")
            assert not _prompts(m, bot_room, x.bare)
            # And she may watch him.
            await _ask_component(x, f"notify add {m.user_id}", "OK: I will tell you")
    run(go(), timeout=120)


def test_notify_add_needs_consent_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cn")
            bot_room = await _bot_dm(m)
            stranger = await p.xmpp_user("sn")
            # XMPP → Matrix user: refused, saying how to get consent...
            refusal = await _ask_component(stranger, f"notify add {m.user_id}", "cannot watch")
            assert "not agreed" in refusal and m.jid in refusal, refusal
            await _ask_component(stranger, "notify list", "You have no notifications")
            # ...and allowed once he approved her request.
            stranger.send_presence(pto=m.jid, ptype="subscribe")
            await m.sync_until(lambda: _prompts(m, bot_room, stranger.bare), 20, "the bot's prompt")
            await _ask_bot(m, bot_room, f"presence approve {stranger.bare}", "can see your presence now")
            await _ask_component(stranger, f"notify add {m.user_id}", "OK: I will tell you")

            # Matrix user → XMPP contact: refused until she shares her presence; the refusal makes the
            # bridge ask her (her client approves: auto_authorize), then it is allowed.
            other = await p.xmpp_user("so")
            before = len(_bot_says(m, bot_room, "cannot watch"))
            answer = await _ask_bot(m, bot_room, f"notify add {other.bare}", "cannot watch")
            assert "do not share" in answer["content"]["body"], answer
            await wait_for(lambda: _sub_stanzas(other, m.jid, "subscribe"), 20,
                           what=f"a subscription request from {m.jid}")
            assert len(_bot_says(m, bot_room, "cannot watch")) == before + 1

            async def allowed():
                for _ in range(20):
                    a = await _ask_bot(m, bot_room, f"notify add {other.bare}", other.bare)
                    if "OK: I will tell you" in a["content"]["body"]:
                        return
                    await asyncio.sleep(0.5)
                raise AssertionError("notify add stayed refused after she shared her presence")
            await allowed()
    run(go(), timeout=180)


def test_presence_and_subscription_floods_are_bounded(bridge):
    """A stranger's presence from many resources registers no ghost, many strangers' requests give at
    most the capped number of prompts, and the bridge stays responsive (positive control)."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cf")
            bot_room = await _bot_dm(m)
            friend = await p.xmpp_user("cff")
            await p.dm_from_matrix(m, friend)
            await friend.subscribe(m.jid, mutual=True)

            # One stranger, many resources, each sending presence (with a fresh photo hash) to him.
            flooder = await p.xmpp_user("fl")
            resources = [flooder] + [await p.another_resource(flooder, f"r{i}") for i in range(8)]
            for i in range(5):
                for n, c in enumerate(resources):
                    c.send_xml(f"<presence to='{xml_escape(m.jid)}'><status>flood {n}.{i}</status>"
                               f"<x xmlns='vcard-temp:x:update'><photo>{token(20)}</photo></x></presence>")
            # Subscriptions to many addresses that are nobody's (no prompt can be asked there).
            for i in range(30):
                fake = xep0106_escape(f"nobody{token(3)}@{settings().matrix_domain}") + "@" + settings().component
                flooder.send_presence(pto=fake, ptype="subscribe")
            # Many strangers asking him: one prompt each, at most the cap.
            askers = [await p.xmpp_user(f"fa{i}") for i in range(PROMPTS_PER_USER + 2)]
            for a in askers:
                a.send_presence(pto=m.jid, ptype="subscribe")

            # Positive control: the friend's presence still reaches Matrix promptly.
            note = "after the flood " + token(2)
            friend.send_presence_state("away", note)
            await m.wait_presence(friend.ghost, "unavailable", note, timeout=20)
            await m.sync_until(lambda: len(_bot_says(m, bot_room, "wants to see when you are available"))
                               >= PROMPTS_PER_USER, 30, "the capped number of prompts")
            await _ask_bot(m, bot_room, "presence list", "Requests to see your presence")
            prompts = _bot_says(m, bot_room, "wants to see when you are available")
            assert len(prompts) == PROMPTS_PER_USER, [e["content"]["body"] for e in prompts]

            # No ghost was registered for the flooding stranger.
            q = urllib.parse.quote
            status, j = await m.request("GET", f"/profile/{q(flooder.ghost)}")
            assert status != 200, f"a ghost exists for {flooder.bare}, who only sent presence: {status} {j}"
            leaked = [pr for a in askers for pr in a.presences_from(m.jid) if pr.type != "unavailable" or pr.status]
            assert not leaked, f"unapproved askers saw his presence:{_fmt(leaked)}"
    run(go(), timeout=240)
