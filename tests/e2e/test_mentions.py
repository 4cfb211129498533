"""Mentions in a room the bridge hosts, both ways: a Matrix mention (m.mentions) names the
participant's nick in the text with a XEP-0372 reference; an XMPP message that starts with a
member's nick ("ann: hi"), or a XEP-0372 reference to them, mentions them on Matrix (m.mentions
and a pill). Linked rooms: test_linked_content.py."""
from __future__ import annotations

import urllib.parse

from test_content import send
from test_rooms import create_room, invited_xmpp_joins, muc_of
from ucb import Peers, run, token, wait_for, xml_escape

REFERENCE_NS = "urn:xmpp:reference:0"


async def xmpp_mentions_reach_matrix(m, x, room: str, muc: str, nick: str) -> None:
    """In a room (hosted or linked) where `m` has the nick `nick`: the nick at the start of an XMPP
    message, and a XEP-0372 reference to m's occupant address after an emoji (offsets in code
    points), each set m.mentions (and a pill); a message that names nobody mentions nobody."""
    def mentioned(ev):
        return ev["content"].get("m.mentions", {}).get("user_ids")

    x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='mh1'>"
               f"<body>{xml_escape(nick)}: seen it</body></message>")
    ev = await m.wait_message(room, x.ghost, f"{nick}: seen it")
    assert mentioned(ev) == [m.user_id], ev
    assert f"https://matrix.to/#/{m.user_id}" in ev["content"].get("formatted_body", ""), ev
    body = f"thanks 👋 {nick}!"
    x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='mh2'><body>{xml_escape(body)}</body>"
               f"<reference xmlns='{REFERENCE_NS}' type='mention' uri='xmpp:{xml_escape(muc)}/"
               f"{urllib.parse.quote(nick)}' begin='9' end='{9 + len(nick)}'/></message>")
    ev = await m.wait_message(room, x.ghost, body)
    assert mentioned(ev) == [m.user_id], ev
    x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='mh3'><body>nobody: here</body></message>")
    ev = await m.wait_message(room, x.ghost, "nobody: here")
    assert not mentioned(ev), ev


def test_hosted_room_mentions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("men")
            x = await p.xmpp_user("mex")
            alias = "mention" + token(3).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "cid")
            await m.wait_joined(room, x.ghost)

            await send(m, room, {"msgtype": "m.text", "body": "look here", "m.mentions": {"user_ids": [x.ghost]}})
            got = await wait_for(lambda: next((s for s in x.messages if s.type == "groupchat"
                                               and s.frm.split("/")[0] == muc
                                               and (s.body or "").endswith("look here")), None),
                                 30, what="the mention on XMPP")
            assert got.body == "cid: look here", got.body
            ref = got.child(REFERENCE_NS, "reference")
            uri_muc = urllib.parse.quote(muc, safe="@!$&'()*+,;=:")
            assert ref and ref["type"] == "mention" and ref["uri"] == f"xmpp:{uri_muc}/cid", got.xml
            assert (ref["begin"], ref["end"]) == ("0", "3"), got.xml

            await xmpp_mentions_reach_matrix(m, x, room, muc, got.frm.split("/", 1)[1])
    run(go(), timeout=200)
