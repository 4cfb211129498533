"""Message content in a linked room (a MUC on Prosody's conference service, reached from Matrix as
#_xmpp_<muc>): replies, edits, reactions, retractions and files both ways, named by the MUC's own
XEP-0359 stanza ids; mentions both ways (m.mentions <-> the nick in the text and a XEP-0372
reference). Prosody's MUC advertises stable stanza ids and occupant ids, so every element is carried
as itself here; the plain-text fallbacks for a MUC without them are unit tests (core/muc_features.rs)."""
from __future__ import annotations

import urllib.parse

from nio import JoinResponse

from test_content import (OOB_NS, PNG, REPLY_NS, RETRACT_NS, FALLBACK_NS, events, fetch, oob_url, reactions_in,
                          reactions_xml, redact, reply_from_xmpp_and_edits_both_ways, send, stanza_id, upload_matrix,
                          upload_xmpp, download_matrix)
from test_mentions import REFERENCE_NS, xmpp_mentions_reach_matrix
from test_portal import join_remote_muc, muc_domain
from ucb import Peers, matrix_escape_localpart, run, settings, token, wait_for, xml_escape

async def linked(p, name: str):
    """An XMPP user in a new MUC (its owner) and a Matrix user in the MUC's linked room."""
    x = await p.xmpp_user(name + "x")
    m = await p.matrix_user(name + "m")
    muc = f"{name}{token(4).lower()}@{muc_domain()}"
    await join_remote_muc(x, muc, "xena")
    r = await m.c.join(f"#_xmpp_{matrix_escape_localpart(muc)}:{settings().matrix_domain}")
    assert isinstance(r, JoinResponse), r
    await wait_for(lambda: [s for s in x.presences if s.frm == f"{muc}/{m.localpart}" and s.type != "unavailable"],
                   20, what="the Matrix user in the MUC")
    await m.wait_joined(r.room_id, x.ghost)
    return x, m, muc, r.room_id


def from_muc(x, muc: str, nick: str, pred):
    return next((s for s in x.messages if s.type == "groupchat" and s.frm == f"{muc}/{nick}" and pred(s)), None)


async def said_by_xena(x, m, muc: str, room: str, sid: str, body: str):
    """xena says `body`; returns the room's stanza id of it (from her echo) and its Matrix event."""
    x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='{sid}'><body>{xml_escape(body)}</body></message>")
    echo = await wait_for(lambda: from_muc(x, muc, "xena", lambda s: s.id == sid), 30, what=f"the echo of {body}")
    return stanza_id(echo), await m.wait_message(room, x.ghost, body)


def test_linked_room_replies_and_edits_both_ways(bridge):
    async def go():
        async with Peers() as p:
            x, m, muc, room = await linked(p, "lre")
            plan_sid, plan = await said_by_xena(x, m, muc, room, "ox1", "the plan")
            assert plan_sid, "Prosody's MUC gives stanza ids"

            # Matrix replies: on XMPP a reply naming the room's stanza id, quoting the plan.
            await send(m, room, {"msgtype": "m.text", "body": "sounds good",
                                 "m.relates_to": {"m.in_reply_to": {"event_id": plan["event_id"]}}})
            r = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: (s.body or "").endswith("sounds good")),
                               30, what="the reply on XMPP")
            assert (r.child(REPLY_NS, "reply") or {}).get("id") == plan_sid, r.xml
            assert r.body.startswith("> the plan"), r.body

            # Matrix says something, XMPP replies by the stanza id the MUC gave it; edits both ways.
            await reply_from_xmpp_and_edits_both_ways(m, x, room, muc, lambda pred: from_muc(x, muc, m.localpart, pred),
                                                      plan, "ox1")
    run(go(), timeout=240)


def test_linked_room_reactions_and_retractions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            x, m, muc, room = await linked(p, "lrr")
            plan_sid, plan = await said_by_xena(x, m, muc, room, "oy1", "the plan")
            cat = await m.send_text(room, "the cat")
            got = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: s.body == "the cat"), 30,
                                 what="Matrix text on XMPP")
            cat_sid = stanza_id(got)

            # Reactions both ways, by the room's stanza ids.
            await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": plan["event_id"],
                                                  "key": "👍"}}, "m.reaction")
            await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: reactions_in(s) == (plan_sid, ["👍"])),
                           30, what="👍 on XMPP")
            x.send_xml(reactions_xml(muc, "groupchat", "oy2", cat_sid, ["❤️"]))
            await m.sync_until(lambda: [e for e in events(m, room, x.ghost, "m.reaction")
                                        if e["content"]["m.relates_to"] == {"rel_type": "m.annotation",
                                                                            "event_id": cat, "key": "❤️"}],
                               30, "the ghost's ❤️ on Matrix")

            # Retractions both ways: Matrix's redaction names the room's stanza id.
            await redact(m, room, cat)
            r = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: s.child(RETRACT_NS, "retract")), 30,
                               what="the retraction on XMPP")
            assert r.child(RETRACT_NS, "retract")["id"] == cat_sid, r.xml
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='oy3'><body>/me retracted</body>"
                       f"<retract xmlns='{RETRACT_NS}' id='{plan_sid}'/><fallback xmlns='{FALLBACK_NS}' "
                       f"for='{RETRACT_NS}'/></message>")
            await m.sync_until(lambda: [e for e in events(m, room, x.ghost, "m.room.redaction")
                                        if plan["event_id"] in (e.get("redacts"), e["content"].get("redacts"))],
                               30, "the ghost's redaction of the retracted message")
            # A retraction of someone else's message is not carried; the next message is.
            mine = await m.send_text(room, "mine")
            got = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: s.body == "mine"), 30, what="mine")
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='oy5'><body>/me retracted</body>"
                       f"<retract xmlns='{RETRACT_NS}' id='{stanza_id(got)}'/></message>")
            await said_by_xena(x, m, muc, room, "oy6", "after the attempt")
            await m.sync_once()
            assert not [e for e in events(m, room, x.ghost, "m.room.redaction")
                        if mine in (e.get("redacts"), e["content"].get("redacts"))]
    run(go(), timeout=240)


def test_linked_room_files_both_ways(bridge):
    async def go():
        async with Peers() as p:
            x, m, muc, room = await linked(p, "lrf")
            # Matrix -> XMPP: the file as a URL the bridge serves, with XEP-0066 data.
            mxc = await upload_matrix(m, PNG, "dot.png", "image/png")
            await send(m, room, {"msgtype": "m.image", "body": "dot.png", "url": mxc,
                                 "info": {"mimetype": "image/png", "size": len(PNG)}})
            got = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: oob_url(s) and "dot.png" in s.body),
                                 30, what="the file on XMPP")
            assert got.body == oob_url(got), got.xml
            data, ctype, _ = fetch(oob_url(got))
            assert data == PNG and ctype.startswith("image/png"), ctype

            # XMPP -> Matrix: an upload to Prosody's XEP-0363 service becomes Matrix media.
            url = await upload_xmpp(x, PNG, "pic.png", "image/png")
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='f{token(3)}'>"
                       f"<body>{xml_escape(url)}</body><x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")
            ev = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                              if e["content"].get("body") == "pic.png"], 30, "the file on Matrix"))[0]
            assert ev["content"]["msgtype"] == "m.image", ev
            assert await download_matrix(m, ev["content"]["url"]) == PNG
            assert urllib.parse.urlsplit(url).scheme.startswith("http")
    run(go(), timeout=240)


def test_linked_room_mentions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            x, m, muc, room = await linked(p, "lrm")
            # Matrix -> XMPP: a mention of xena's ghost names her nick in the text, with a reference.
            await send(m, room, {"msgtype": "m.text", "body": "look at this",
                                 "m.mentions": {"user_ids": [x.ghost]}})
            got = await wait_for(lambda: from_muc(x, muc, m.localpart, lambda s: (s.body or "").endswith("look at this")),
                                 30, what="the mention on XMPP")
            assert got.body == "xena: look at this", got.body
            ref = got.child(REFERENCE_NS, "reference")
            assert ref and ref["type"] == "mention" and ref["uri"] == f"xmpp:{muc}/xena", got.xml
            assert (ref["begin"], ref["end"]) == ("0", "4"), got.xml

            # XMPP -> Matrix: the nick at the start, and a reference, each set m.mentions and a pill.
            await xmpp_mentions_reach_matrix(m, x, room, muc, m.localpart)
    run(go(), timeout=240)
