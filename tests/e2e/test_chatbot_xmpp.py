"""The chatbot's XMPP side (issue 15): assistant@<component> as a contact (disco#info as a bot, a
vCard with its picture, presence for subscribers that follows the provider's health, found by the
component's search and named by `help`), its answers and images reaching the XMPP occupants of a
hosted room, invitations into MUCs on the XMPP server (XEP-0249 and XEP-0045) where it answers when
addressed and forgets the MUC when kicked, images to an XMPP user as a link the bridge serves, and a
retried image delivery that sends the stored image instead of asking the provider again."""
from __future__ import annotations

import base64
import asyncio
import os
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from openai_standin import ANSWER_PREFIX, PNG
from test_chatbot import SYSTEM, assistant, assistant_jid, ask_xmpp, grant, provider, xmpp_said  # noqa: F401
from test_avatars import VCARD as VCARD_NS, download
from test_content import fetch, oob_url
from test_faults import _service
from test_notify import _ask_component
from test_portal import join_remote_muc, muc_domain, said as said_in_muc
from test_rooms import MUC_ADMIN, MUC_USER, create_room, groupchat, invited_xmpp_joins, iq, muc_of
from test_xmpp_discovery import DISCO_INFO, FORMS_NS, SEARCH_NS
from ucb import CHATSTATES_NS, Peers, run, settings, token, wait_for, xml_escape

AWAY = "The AI service is not reachable"


def composing_from(x, occupant: str, after: int) -> list:
    """Bodiless XEP-0085 `composing` messages from the MUC occupant `occupant` after index `after`."""
    return [s for s in x.messages[after:]
            if s.frm == occupant and s.child(CHATSTATES_NS, "composing") is not None and s.body is None]


def avatar() -> bytes:
    s = settings()
    with open(os.path.join(os.path.dirname(s.config_path), s.config["chatbot"]["avatar_file"]), "rb") as f:
        return f.read()


def assistant_presence(x, show: str | None, status: str | None):
    """The assistant's latest presence broadcast to x, if it has this show and status."""
    got = x.presences_from(assistant_jid())
    return got and got[-1].type == "available" and got[-1].show == show and got[-1].status == status


async def found_by_search(x, term: str) -> list[dict]:
    """The component's XEP-0055 search for `term`: one dict (jid, name, matrix) per result."""
    form = (f"<x xmlns='{FORMS_NS}' type='submit'><field var='FORM_TYPE' type='hidden'><value>{SEARCH_NS}"
            f"</value></field><field var='search'><value>{xml_escape(term)}</value></field></x>")
    kind, res = await iq(x, settings().component, "set", f"<query xmlns='{SEARCH_NS}'>{form}</query>")
    assert kind == "result", res
    return [{f.get("var"): f.findtext(f"{{{FORMS_NS}}}value") for f in item.findall(f"{{{FORMS_NS}}}field")}
            for item in res.iter(f"{{{FORMS_NS}}}item")]


def test_the_assistants_matrix_account_shows_the_configured_picture(bridge):
    """`chatbot.avatar_file` is the assistant's Matrix avatar too (set at start, not uploaded
    again when it is the same picture)."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbav")
            quoted = urllib.parse.quote(assistant())
            mxc = None
            for _ in range(300):
                status, profile = await m.request("GET", f"/profile/{quoted}/avatar_url")
                mxc = (profile or {}).get("avatar_url") if status == 200 else None
                if mxc:
                    break
                await asyncio.sleep(0.2)
            assert mxc, "the assistant has no Matrix avatar"
            assert await download(m, mxc) == avatar()
    run(go(), timeout=120)


def test_the_assistant_is_an_xmpp_contact_with_a_card_and_a_presence_that_follows_the_provider(bridge, provider):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbc")
            await grant(p, x.bare)
            name = settings().config["chatbot"]["display_name"]
            # What it is: a bot, with a name, that takes vCards and chat states.
            kind, res = await iq(x, assistant_jid(), "get", f"<query xmlns='{DISCO_INFO}'/>")
            assert kind == "result", res
            ids = [(i.get("category"), i.get("type"), i.get("name")) for i in res.iter(f"{{{DISCO_INFO}}}identity")]
            assert ids == [("client", "bot", name)], ET.tostring(res)
            features = {f.get("var") for f in res.iter(f"{{{DISCO_INFO}}}feature")}
            assert {VCARD_NS, "http://jabber.org/protocol/chatstates", "jabber:x:oob"} <= features, features
            # Its card: the name and the picture from the config.
            kind, res = await iq(x, assistant_jid(), "get", f"<vCard xmlns='{VCARD_NS}'/>")
            assert kind == "result", res
            card = res.find(f"{{{VCARD_NS}}}vCard")
            assert card is not None and card.findtext(f"{{{VCARD_NS}}}FN") == name, ET.tostring(res)
            binval = card.findtext(f"{{{VCARD_NS}}}PHOTO/{{{VCARD_NS}}}BINVAL") or ""
            assert base64.b64decode("".join(binval.split())) == avatar()
            assert card.findtext(f"{{{VCARD_NS}}}PHOTO/{{{VCARD_NS}}}TYPE") == "image/png"
            # Found by the component's search under its own address, and named by `help`.
            rows = await found_by_search(x, name.lower())
            assert rows and rows[0]["jid"] == assistant_jid() and rows[0]["matrix"] == assistant(), rows
            await _ask_component(x, "help", assistant_jid())
            # 1:1 chat works; subscribed, x sees it available.
            await ask_xmpp(x, f"Hello there {token()}")
            await x.subscribe(assistant_jid(), mutual=False)
            await wait_for(lambda: assistant_presence(x, None, None), 30, what="the assistant available")
            # The provider fails: the friendly error, and its presence turns away with the note ...
            for _ in range(3):   # chatbot.max_attempts
                provider.fail_next(503, "server_error", "The server is overloaded")
            q = f"Are you there {token()}"
            x.send_chat(assistant_jid(), q)
            await wait_for(lambda: xmpp_said(x, "AI service has a problem right now"), 60, what="the friendly error")
            await wait_for(lambda: assistant_presence(x, "away", AWAY), 30, what="the assistant away")
            # ... and back to available once it answers again.
            await ask_xmpp(x, f"Now? {token()}")
            await wait_for(lambda: assistant_presence(x, None, None), 30, what="the assistant available again")
    run(go(), timeout=180)


def test_in_a_hosted_room_the_xmpp_occupants_see_the_assistants_answers_and_images(bridge, provider):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbh")
            x = await p.xmpp_user("cbh")
            await grant(p, m.user_id, x.bare)
            alias = "ai" + token(4).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "xena")
            await m.c.room_invite(room, assistant())
            await m.wait_joined(room, assistant())
            nick = settings().config["chatbot"]["display_name"]

            def heard(text: str) -> list[tuple[str, str]]:
                """What the assistant said in the MUC: `text`, alone or after the quote of a reply."""
                return [(n, b) for n, b in groupchat(x, muc) if n == nick and (b == text or b.endswith("\n" + text))]

            # A Matrix participant asks: the XMPP occupant sees it compose (the model takes a
            # moment), then the answer.
            q1 = f"what is XMPP {token()}"
            provider.think_next(3)
            before = len(x.messages)
            await m.send_text(room, f"Assistant: {q1}")
            await wait_for(lambda: composing_from(x, f"{muc}/{nick}", before), 30, what="the assistant composing")
            [(_, a1)] = await wait_for(lambda: heard(ANSWER_PREFIX + q1), 30, what="the answer in the MUC")
            assert a1.startswith(f"> Assistant: {q1}\n"), a1   # a reply, quoting the question
            # The XMPP occupant asks in the room: answered there, with the room's one context.
            q2 = f"and Matrix {token()}"
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat'><body>Assistant, {xml_escape(q2)}"
                       "</body></message>")
            await wait_for(lambda: heard(ANSWER_PREFIX + q2), 30, what="the answer to the XMPP occupant")
            [r2] = provider.asked(q2)
            assert r2.contents() == [SYSTEM["content"], q1, ANSWER_PREFIX + q1, q2], r2.contents()
            # An image: a link the bridge serves, then the prompt as its caption.
            prompt = f"a lighthouse at dusk {token()}"
            await m.send_text(room, f"Assistant: draw {prompt}")
            image = await wait_for(lambda: next((s for s in x.messages if s.type == "groupchat"
                                                 and s.frm.partition("/")[0] == muc and oob_url(s)), None),
                                   60, what="the image in the MUC")
            # (a reply to the question: the link after the quote, as XEP-0428 marks it)
            assert image.body.rsplit("\n", 1)[-1] == oob_url(image), image.xml
            assert fetch(oob_url(image))[0] == PNG
            await wait_for(lambda: heard(prompt), 30, what="the caption in the MUC")
            assert len(provider.images(prompt)) == 1
    run(go(), timeout=240)


@pytest.mark.timeout(600)
def test_an_image_reaches_an_xmpp_user_and_a_retried_delivery_sends_the_same_image(bridge, provider):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbim")
            await grant(p, x.bare)
            await ask_xmpp(x, f"Warm up {token()}")   # the assistant's Matrix user exists
            prompt = f"a red fox in the snow {token()}"
            offset = bridge.log_size()
            # The image is made while the homeserver (where it is stored) is away: the delivery
            # fails after the provider answered, and is retried.
            _service("synapse", "down")
            try:
                x.send_chat(assistant_jid(), f"paint {prompt}")
                await wait_for(lambda: provider.images(prompt), 60, what="the image request")
                await wait_for(lambda: bridge.log_lines(offset, "delivery failed; will retry", x.bare), 60,
                               what="the failed delivery")
            finally:
                _service("synapse", "up")
            got = await wait_for(lambda: next((c for c in x.chats_from(assistant_jid()) if oob_url(c)), None), 120,
                                 what="the image on XMPP")
            assert got.body == oob_url(got), got.xml
            assert fetch(oob_url(got))[0] == PNG
            await x.wait_chat(assistant_jid(), prompt)   # the caption
            # The retry sent the stored image: the provider was asked once.
            assert len(provider.images(prompt)) == 1, [r.path for r in provider.images(prompt)]
            assert bridge.log_lines(offset, "chatbot: sending the image made before again")
    run(go(), timeout=400)


def test_invited_into_an_xmpp_muc_it_answers_when_addressed_and_forgets_the_muc_when_kicked(bridge, provider):
    async def go():
        async with Peers() as p:
            owner = await p.xmpp_user("cbmo")
            yann = await p.xmpp_user("cbmy")
            await grant(p, owner.bare)
            nick = settings().config["chatbot"]["display_name"]
            muc = f"ai{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(owner, muc, "owner")
            await join_remote_muc(yann, muc, "yann")

            def in_muc(after: int = 0):
                got = [s for s in owner.presences[after:] if s.frm == f"{muc}/{nick}"]
                return got and got[-1].type == "available"

            # A direct invitation (XEP-0249): it joins.
            owner.send_xml(f"<message to='{assistant_jid()}'><x xmlns='jabber:x:conference' jid='{muc}'/></message>")
            await wait_for(in_muc, 30, what="the assistant in the MUC")
            # Talk not addressed to it stays in the MUC; the addressed question after it is the control.
            chat = f"Lunch at noon {token()}"
            yann.send_xml(f"<message type='groupchat' to='{muc}'><body>{chat}</body></message>")
            q1 = f"what is XMPP {token()}"
            provider.think_next(3)
            before = len(owner.messages)
            owner.send_xml(f"<message type='groupchat' to='{muc}'><body>{nick}: {q1}</body></message>")
            # It composes while the model thinks, then answers.
            await wait_for(lambda: composing_from(owner, f"{muc}/{nick}", before), 30, what="the assistant composing")
            await wait_for(lambda: said_in_muc(owner, muc, nick, ANSWER_PREFIX + q1), 30, what="the answer")
            assert not any(chat in c for r in provider.all_requests() for c in r.contents())
            # Someone else in the MUC asks: one context for the MUC.
            q2 = f"and Matrix {token()}"
            yann.send_xml(f"<message type='groupchat' to='{muc}'><body>{nick.lower()}, {q2}</body></message>")
            await wait_for(lambda: said_in_muc(yann, muc, nick, ANSWER_PREFIX + q2), 30, what="the answer to yann")
            assert provider.asked(q2)[0].contents() == [SYSTEM["content"], q1, ANSWER_PREFIX + q1, q2]
            # The owner kicks it: it is gone, and the MUC's context is forgotten.
            kind, res = await iq(owner, muc, "set", f"<query xmlns='{MUC_ADMIN}'><item nick='{nick}' role='none'/>"
                                                    "</query>")
            assert kind == "result", res
            await wait_for(lambda: bridge.log_lines(0, "chatbot: removed from a MUC", muc), 30, what="the removal")
            # A mediated invitation (XEP-0045) brings it back, starting afresh.
            mark = len(owner.presences)
            owner.send_xml(f"<message to='{muc}'><x xmlns='{MUC_USER}'><invite to='{assistant_jid()}'/></x></message>")
            await wait_for(lambda: in_muc(mark), 30, what="the assistant back in the MUC")
            q3 = f"fresh start {token()}"
            yann.send_xml(f"<message type='groupchat' to='{muc}'><body>{nick}: {q3}</body></message>")
            await wait_for(lambda: said_in_muc(yann, muc, nick, ANSWER_PREFIX + q3), 30, what="the answer after")
            assert provider.asked(q3)[0].contents() == [SYSTEM["content"], q3]
    run(go(), timeout=180)
