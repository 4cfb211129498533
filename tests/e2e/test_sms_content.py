"""SMS is text only: an edit, a reaction, a retraction or a file sent into an SMS chat does not go
out, and the sender is told why (Matrix: a notice from the number's ghost; XMPP: an error reply
with the reason) — never silence. With `sms.files_as_links` on (a bridge of its own, a config
variant), a file goes out as a link the bridge serves, and the link gives the file.

Everything goes through the real Kannel and its fake SMSC (see test_sms.py); each "nothing else
was sent" check comes after a later SMS of the same conversation arrived (one lane, in order).
"""
from __future__ import annotations

import urllib.parse

import ucb
from test_content import (OOB_NS, PNG, correction_xml, fetch, reactions_xml, redact, retract_xml, send,
                          upload_matrix)
import test_sms
from test_sms import address, grant, rnd_mobile, sms_room, sms_to, wait_sms
from ucb import Peers, run, token, xml_escape


async def wait_notice(m, room: str, number: str, text: str, what: str) -> dict:
    ev = await test_sms.wait_notice(m, room, number, text, what)
    assert ev["content"]["body"].startswith(f"Not sent to {number}: "), ev
    return ev


def oob_xml(to: str, sid: str, url: str) -> str:
    return (f"<message to='{xml_escape(to)}' type='chat' id='{sid}'><body>{xml_escape(url)}</body>"
            f"<x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")


def test_matrix_edit_reaction_redaction_and_file_get_a_notice_and_no_sms(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sce")
            await grant(p, m.user_id)
            number = rnd_mobile()
            room = await sms_room(m, number)
            first = f"erste {token(3)}"
            e1 = await m.send_text(room, first)
            await wait_sms(number, first)
            await send(m, room, {"msgtype": "m.text", "body": "* corrected",
                                 "m.new_content": {"msgtype": "m.text", "body": "corrected"},
                                 "m.relates_to": {"rel_type": "m.replace", "event_id": e1}})
            await wait_notice(m, room, number, "cannot be changed", "the notice about the edit")
            await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": e1, "key": "👍"}},
                       "m.reaction")
            await wait_notice(m, room, number, "a reaction cannot be sent", "the notice about the reaction")
            await redact(m, room, e1)
            await wait_notice(m, room, number, "cannot be taken back", "the notice about the redaction")
            mxc = await upload_matrix(m, PNG, "dot.png", "image/png")
            await send(m, room, {"msgtype": "m.image", "body": "dot.png", "url": mxc,
                                 "info": {"mimetype": "image/png", "size": len(PNG)}})
            ev = await wait_notice(m, room, number, "files are not sent", "the notice about the file")
            assert "sms.files_as_links" in ev["content"]["body"], ev
            # Positive control: a later text of the same conversation goes out; nothing before it did.
            last = f"zweite {token(3)}"
            await m.send_text(room, last)
            await wait_sms(number, last)
            assert [t for _, _, t in sms_to(number)] == [first, last], sms_to(number)
    run(go(), timeout=150)


def test_xmpp_correction_reaction_retraction_and_file_are_refused_with_the_reason(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("scx")
            await grant(p, x.bare)
            number = rnd_mobile()
            to = address(number)
            first = f"first {token(3)}"
            sid = x.send_chat(to, first)
            await wait_sms(number, first)
            for xml, why in (
                (correction_xml(to, "chat", "c" + token(4), "fixed", sid), "cannot be changed"),
                (reactions_xml(to, "chat", "r" + token(4), sid, ["👍"]), "a reaction cannot be sent"),
                (retract_xml(to, "t" + token(4), sid), "cannot be taken back"),
                (oob_xml(to, "f" + token(4), "https://upload.example.org/dot.png"), "files are not sent"),
            ):
                own = xml.split(" id='", 1)[1].split("'", 1)[0]
                x.send_xml(xml)
                err = await x.wait_error(own)
                text = err.error_text or ""
                assert text.startswith(f"Not sent to {number}: ") and why in text, err.describe()
            last = f"second {token(3)}"
            x.send_chat(to, last)
            await wait_sms(number, last)
            assert [t for _, _, t in sms_to(number)] == [first, last], sms_to(number)
    run(go(), timeout=150)


def test_files_go_as_links_when_configured(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("scl")
            x = await p.xmpp_user("scxl")
            await grant(p, m.user_id)
            await grant(p, x.bare)
            # Matrix: the SMS is the bridge's link to the file, and the link gives the file.
            number = rnd_mobile()
            room = await sms_room(m, number)
            mxc = await upload_matrix(m, PNG, "dot.png", "image/png")
            await send(m, room, {"msgtype": "m.image", "body": "dot.png", "url": mxc,
                                 "info": {"mimetype": "image/png", "size": len(PNG)}})
            _, _, link = await ucb.wait_for(lambda: next((s for s in sms_to(number) if "/media/" in s[2]), None), 30,
                                            what=f"the file's link by SMS (got {sms_to(number)})")
            assert urllib.parse.urlsplit(link).path.endswith("/dot.png"), link
            data, ctype, _ = fetch(link)
            assert data == PNG and ctype.startswith("image/png"), ctype
            # XMPP: a file announced by URL goes as its URL.
            number_x = rnd_mobile()
            url = f"https://upload.example.org/{token(4)}/photo.jpg"
            x.send_xml(oob_xml(address(number_x), "f" + token(4), url))
            await wait_sms(number_x, url)
    with ucb.config_variant(bridge, "sms-links", lambda cfg: cfg["sms"].__setitem__("files_as_links", True)):
        run(go(), timeout=150)
