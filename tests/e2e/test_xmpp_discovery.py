"""XMPP users find Matrix people and learn what the bridge handles: XEP-0100 gateway addresses,
disco#info features with XEP-0115 capabilities in presence, and MAM filters on hosted rooms."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from test_rooms import MAM_NS, RSM_NS, create_room, groupchat, invited_xmpp_joins, iq, muc_of
from ucb import Peers, bare, jid_for, run, settings, token, wait_for, xml_escape

GATEWAY_NS = "jabber:iq:gateway"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
CAPS_NS = "http://jabber.org/protocol/caps"
FORMS_NS = "jabber:x:data"


def test_the_gateway_gives_the_address_of_a_matrix_id(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            comp = settings().component
            kind, res = await iq(x, comp, "get", f"<query xmlns='{GATEWAY_NS}'/>")
            assert kind == "result", res
            assert res.find(f".//{{{GATEWAY_NS}}}prompt") is not None, ET.tostring(res)
            assert "Matrix ID" in (res.find(f".//{{{GATEWAY_NS}}}desc").text or ""), ET.tostring(res)
            kind, res = await iq(x, comp, "set",
                                 f"<query xmlns='{GATEWAY_NS}'><prompt>{xml_escape(m.user_id)}</prompt></query>")
            assert kind == "result", res
            address = res.find(f".//{{{GATEWAY_NS}}}jid").text
            assert address == jid_for(m.user_id), address
            # The address works: a message to it reaches the Matrix user.
            x.send_chat(address, "found you")
            room, _ = await m.wait_invite(x.ghost)
            await m.join(room)
            await m.wait_message(room, x.ghost, "found you")
            kind, err = await iq(x, comp, "set", f"<query xmlns='{GATEWAY_NS}'><prompt>not an id</prompt></query>")
            assert kind == "error" and err[0] == "bad-request" and "not a Matrix ID" in (err[1] or ""), err
    run(go())


def _verstring(info) -> str:
    """XEP-0115 §5.1 over a disco#info result (no extensions)."""
    identities = sorted((i.get("category", ""), i.get("type", ""), i.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
                         i.get("name", "")) for i in info.findall(f"{{{DISCO_INFO}}}identity"))
    features = sorted(f.get("var") for f in info.findall(f"{{{DISCO_INFO}}}feature"))
    s = "".join("/".join(i) + "<" for i in identities) + "".join(f + "<" for f in features)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def test_a_matrix_contact_says_what_it_handles_and_its_presence_carries_the_caps_hash(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            kind, info = await iq(x, m.jid, "get", f"<query xmlns='{DISCO_INFO}'/>")
            assert kind == "result", info
            features = {f.get("var") for f in info.iter(f"{{{DISCO_INFO}}}feature")}
            for f in ["urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "urn:xmpp:message-correct:0",
                      "urn:xmpp:reactions:0", "urn:xmpp:message-retract:1", "urn:xmpp:reply:0",
                      "http://jabber.org/protocol/chatstates", "jabber:x:oob", "vcard-temp"]:
                assert f in features, (f, features)
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)
            before = len(x.presences)
            await m.set_presence("online", "caps " + token(3))
            pr = await wait_for(lambda: next((pr for pr in x.presences_from(m.jid, before)
                                              if pr.type == "available"), None), 30, what="an available presence")
            caps = next((a for ns, name, a in pr.payload if ns == CAPS_NS and name == "c"), None)
            assert caps is not None and caps.get("hash") == "sha-1", pr.describe()
            # The hash is that of what the address answers for the node#ver (what clients check).
            node = f"{caps['node']}#{caps['ver']}"
            kind, info = await iq(x, m.jid, "get", f"<query xmlns='{DISCO_INFO}' node='{xml_escape(node)}'/>")
            assert kind == "result", info
            q = info.find(f"{{{DISCO_INFO}}}query")
            assert q.get("node") == node and _verstring(q) == caps["ver"], ET.tostring(info)
    run(go())


def test_the_gateway_is_a_contact_whose_presence_carries_its_caps(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user()
            comp = settings().component

            async def gateway_presence(mark: int):
                return await wait_for(lambda: next((pr for pr in x.presences_from(comp, mark)
                                                    if pr.type == "available"), None),
                                      20, what=f"{x.bare}: an available presence of the gateway {comp}")

            # Added to the roster: granted, and its presence follows.
            mark = len(x.presences)
            x.send_presence(pto=comp, ptype="subscribe")
            await wait_for(lambda: any(bare(pr.frm) == comp and pr.type == "subscribed" for pr in x.presences[mark:]),
                           20, what="'subscribed' from the gateway")
            pr = await gateway_presence(mark)
            caps = pr.child(CAPS_NS, "c")
            assert caps is not None and caps.get("hash") == "sha-1", pr.describe()
            # The ver is the hash of what the gateway's disco#info says for node#ver.
            node = f"{caps['node']}#{caps['ver']}"
            kind, info = await iq(x, comp, "get", f"<query xmlns='{DISCO_INFO}' node='{xml_escape(node)}'/>")
            assert kind == "result", info
            q = info.find(f"{{{DISCO_INFO}}}query")
            assert q.get("node") == node and _verstring(q) == caps["ver"], ET.tostring(info)
            assert q.find(f"{{{DISCO_INFO}}}identity").get("category") == "gateway", ET.tostring(info)
            # The next login probes the contact: the gateway answers with its presence again.
            x = await p.relogin(x)
            again = await gateway_presence(0)
            assert again.child(CAPS_NS, "c") == caps, again.describe()
    run(go())


def _form(fields: dict[str, str]) -> str:
    return (f"<x xmlns='{FORMS_NS}' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM_NS}</value></field>"
            + "".join(f"<field var='{k}'><value>{xml_escape(v)}</value></field>" for k, v in fields.items())
            + "</x>")


async def _mam(x, muc: str, fields: dict[str, str], rsm: str = "", flip: bool = False):
    """One MAM query; returns (kind, [(archive id, body)], fin or error)."""
    qid = "q" + token(4)
    mark = len(x.messages)
    flip_el = "<flip-page/>" if flip else ""
    kind, res = await iq(x, muc, "set", f"<query xmlns='{MAM_NS}' queryid='{qid}'>{_form(fields)}{rsm}{flip_el}</query>")
    if kind != "result":
        return kind, [], res
    out = []
    for s in x.messages[mark:]:
        r = ET.fromstring(s.xml).find(f"{{{MAM_NS}}}result")
        if r is not None and r.get("queryid") == qid:
            out.append((r.get("id"), r.find(".//{jabber:client}body").text))
    return kind, out, res.find(f"{{{MAM_NS}}}fin")


def test_mam_filters_on_a_hosted_room(bridge):
    async def go():
        async with Peers() as p:
            m1 = await p.matrix_user("flt")
            x1 = await p.xmpp_user("flx")
            alias = "filt" + token(4).lower()
            room = await create_room(m1, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m1, room, x1, muc, "fx")
            x1.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}' id='early'><body>early</body></message>")
            await wait_for(lambda: ("fx", "early") in groupchat(x1, muc), 20, what="own message reflected")
            middle = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            said = [f"later {i}" for i in range(6)]
            for body in said:
                await m1.send_text(room, body)
            await wait_for(lambda: [b for _, b in groupchat(x1, muc) if b.startswith("later")] == said, 30,
                           what="Matrix messages in the MUC")
            kind, everything, fin = await _mam(x1, muc, {})
            assert kind == "result" and [b for _, b in everything] == ["early"] + said, everything
            ids = {b: i for i, b in everything}

            kind, got, fin = await _mam(x1, muc, {"with": f"{muc}/fx"})
            assert [b for _, b in got] == ["early"], got
            kind, got, fin = await _mam(x1, muc, {"with": x1.bare})
            assert [b for _, b in got] == ["early"], got
            kind, got, fin = await _mam(x1, muc, {"with": m1.jid})
            assert [b for _, b in got] == said, got
            kind, got, fin = await _mam(x1, muc, {"start": middle})
            assert [b for _, b in got] == said, got
            assert fin.find(f".//{{{RSM_NS}}}count").text == "6", ET.tostring(fin)
            kind, got, fin = await _mam(x1, muc, {"end": middle})
            assert [b for _, b in got] == ["early"], got
            kind, got, fin = await _mam(x1, muc, {"after-id": ids["later 1"], "before-id": ids["later 5"]})
            assert [b for _, b in got] == ["later 2", "later 3", "later 4"], got
            # RSM within a filter: the newest two of what start keeps, newest first with flip-page.
            rsm = f"<set xmlns='{RSM_NS}'><max>2</max><before/></set>"
            kind, got, fin = await _mam(x1, muc, {"start": middle}, rsm, flip=True)
            assert [b for _, b in got] == ["later 5", "later 4"], got

            # What the archive does not apply is refused, not ignored.
            kind, _, err = await _mam(x1, muc, {"{urn:xmpp:fulltext:0}fulltext": "later"})
            assert kind == "error" and err[0] == "feature-not-implemented", err
            kind, _, err = await _mam(x1, muc, {"start": "yesterday"})
            assert kind == "error" and err[0] == "bad-request", err
            kind, _, err = await _mam(x1, muc, {"with": "someone@else.example/x"})
            assert kind == "error" and err[0] == "bad-request", err
            # A get lists the filters it applies.
            kind, res = await iq(x1, muc, "get", f"<query xmlns='{MAM_NS}'/>")
            assert kind == "result", res
            offered = {f.get("var") for f in res.iter(f"{{{FORMS_NS}}}field")}
            assert {"with", "start", "end", "before-id", "after-id"} <= offered, offered
    run(go(), timeout=240)


SEARCH_NS = "jabber:iq:search"


def test_an_xmpp_user_finds_a_matrix_colleague_by_name(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("dir")
            other = await p.matrix_user("dirx")
            x = await p.xmpp_user()
            comp = settings().component
            name = "Zelda" + token(4)
            status, j = await m.request("PUT", f"/profile/{urllib.parse.quote(m.user_id)}/displayname",
                                        {"displayname": name})
            assert status == 200, j
            # With the homeserver's defaults the directory shows everyone the users in public rooms.
            for u in (m, other):
                status, j = await u.request("POST", "/createRoom", {"preset": "public_chat"})
                assert status == 200, j
            kind, res = await iq(x, comp, "get", f"<query xmlns='{SEARCH_NS}'/>")
            assert kind == "result", res
            assert "search" in {f.get("var") for f in res.iter(f"{{{FORMS_NS}}}field")}, ET.tostring(res)

            async def search(term: str):
                form = (f"<x xmlns='{FORMS_NS}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                        f"<value>{SEARCH_NS}</value></field><field var='search'><value>{xml_escape(term)}</value>"
                        "</field></x>")
                kind, res = await iq(x, comp, "set", f"<query xmlns='{SEARCH_NS}'>{form}</query>")
                if kind != "result":
                    return kind, res
                rows = []
                for item in res.iter(f"{{{FORMS_NS}}}item"):
                    row = {f.get("var"): f.findtext(f"{{{FORMS_NS}}}value") for f in item.findall(f"{{{FORMS_NS}}}field")}
                    rows.append(row)
                return kind, rows

            # The homeserver indexes its directory in the background: poll.
            deadline = time.monotonic() + 30
            while True:
                kind, rows = await search(name)
                assert kind == "result", rows
                if rows or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert rows == [{"jid": jid_for(m.user_id), "name": name, "matrix": m.user_id}], rows
            # Found by Matrix ID too; the other user (a positive control for "only the match") by theirs.
            kind, rows = await search(other.user_id.partition(":")[0][1:])
            assert kind == "result" and [r["jid"] for r in rows] == [jid_for(other.user_id)], rows
            kind, err = await search("   ")
            assert kind == "error" and err[0] == "bad-request", err
            kind, err = await search("x" * 101)
            assert kind == "error" and err[0] == "bad-request", err
    run(go())


def test_one_to_one_history_is_the_xmpp_servers_archive(bridge):
    """The documented choice: the component keeps no 1:1 archive; the XMPP user's own server does."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            body = "for the archive " + token(4)
            await m.send_text(room, body)
            await x.wait_chat(m.jid, body)
            qid = "q" + token(4)
            mark = len(x.messages)
            kind, res = await iq(x, x.bare, "set",
                                 f"<query xmlns='{MAM_NS}' queryid='{qid}'>{_form({'with': m.jid})}</query>")
            assert kind == "result", res
            results = [ET.fromstring(s.xml).find(f"{{{MAM_NS}}}result") for s in x.messages[mark:]]
            archived = [r.findtext(".//{jabber:client}body") for r in results
                        if r is not None and r.get("queryid") == qid]
            assert body in archived, archived
    run(go())
