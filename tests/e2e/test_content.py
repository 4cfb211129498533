"""Message content beyond text, both ways: replies (XEP-0461 <-> m.in_reply_to), edits (XEP-0308 <->
m.replace), reactions (XEP-0444 <-> m.reaction), retractions (XEP-0424 <-> redactions) and files
(Matrix media <-> XEP-0066 URLs, XMPP uploads through Prosody's XEP-0363 service). In a 1:1 chat and
in a room the bridge hosts."""
from __future__ import annotations

import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import aiohttp

from test_rooms import MAM_NS, create_room, invited_xmpp_joins, iq, muc_of
from ucb import Peers, run, settings, token, wait_for, xml_escape

REPLY_NS = "urn:xmpp:reply:0"
FALLBACK_NS = "urn:xmpp:fallback:0"
CORRECT_NS = "urn:xmpp:message-correct:0"
REACTIONS_NS = "urn:xmpp:reactions:0"
RETRACT_NS = "urn:xmpp:message-retract:1"
OOB_NS = "jabber:x:oob"
SID_NS = "urn:xmpp:sid:0"
UPLOAD_NS = "urn:xmpp:http:upload:0"

# A 1x1 PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _el(st):
    return ET.fromstring(st.xml)


def reactions_in(st) -> tuple[str, list[str]] | None:
    r = _el(st).find(f"{{{REACTIONS_NS}}}reactions")
    if r is None:
        return None
    return r.get("id"), [x.text or "" for x in r.findall(f"{{{REACTIONS_NS}}}reaction")]


def oob_url(st) -> str | None:
    u = _el(st).find(f"{{{OOB_NS}}}x/{{{OOB_NS}}}url")
    return u.text if u is not None else None


def stanza_id(st) -> str | None:
    s = _el(st).find(f"{{{SID_NS}}}stanza-id")
    return s.get("id") if s is not None else None


def fetch(url: str) -> tuple[bytes, str, str]:
    """The body, Content-Type and Content-Disposition of a file the bridge serves."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read(), r.headers.get("Content-Type", ""), r.headers.get("Content-Disposition", "")


def reply_xml(to: str, kind: str, sid: str, body: str, reply_id: str, reply_to: str, quote: str) -> str:
    fallback = f"> {quote}\n"
    return (f"<message to='{xml_escape(to)}' type='{kind}' id='{sid}'>"
            f"<body>{xml_escape(fallback + body)}</body>"
            f"<reply xmlns='{REPLY_NS}' to='{xml_escape(reply_to)}' id='{xml_escape(reply_id)}'/>"
            f"<fallback xmlns='{FALLBACK_NS}' for='{REPLY_NS}'><body start='0' end='{len(fallback)}'/></fallback>"
            f"</message>")


def correction_xml(to: str, kind: str, sid: str, body: str, replaces: str) -> str:
    return (f"<message to='{xml_escape(to)}' type='{kind}' id='{sid}'><body>{xml_escape(body)}</body>"
            f"<replace xmlns='{CORRECT_NS}' id='{xml_escape(replaces)}'/></message>")


def reactions_xml(to: str, kind: str, sid: str, target: str, keys: list[str]) -> str:
    inner = "".join(f"<reaction>{xml_escape(k)}</reaction>" for k in keys)
    return (f"<message to='{xml_escape(to)}' type='{kind}' id='{sid}'>"
            f"<reactions xmlns='{REACTIONS_NS}' id='{xml_escape(target)}'>{inner}</reactions></message>")


def retract_xml(to: str, sid: str, target: str, kind: str = "chat") -> str:
    return (f"<message to='{xml_escape(to)}' type='{kind}' id='{sid}'><body>/me retracted a message</body>"
            f"<retract xmlns='{RETRACT_NS}' id='{xml_escape(target)}'/>"
            f"<fallback xmlns='{FALLBACK_NS}' for='{RETRACT_NS}'/></message>")


async def send(m, room: str, content: dict, event_type: str = "m.room.message") -> str:
    status, j = await m.send_raw(room, event_type, content)
    assert status == 200, f"{m.user_id} sends {event_type} {content}: {status} {j}"
    return j["event_id"]


async def redact(m, room: str, event_id: str) -> None:
    q = urllib.parse.quote
    status, j = await m.request("PUT", f"/rooms/{q(room)}/redact/{q(event_id)}/e2e{token(6)}", {"reason": "e2e"})
    assert status == 200, f"{m.user_id} redacts {event_id}: {status} {j}"


async def upload_matrix(m, data: bytes, name: str, mimetype: str) -> str:
    url = settings().hs_url + "/_matrix/media/v3/upload?filename=" + urllib.parse.quote(name)
    async with m.http.post(url, data=data, headers={**m.auth, "Content-Type": mimetype}) as r:
        j = await r.json(content_type=None)
        assert r.status == 200, f"upload: {r.status} {j}"
        return j["content_uri"]


async def download_matrix(m, mxc: str) -> bytes:
    server, _, media_id = mxc[len("mxc://"):].partition("/")
    url = f"{settings().hs_url}/_matrix/client/v1/media/download/{server}/{media_id}"
    async with m.http.get(url, headers=m.auth) as r:
        assert r.status == 200, f"download {mxc}: {r.status}"
        return await r.read()


async def upload_xmpp(x, data: bytes, name: str, mimetype: str) -> str:
    """XEP-0363: a slot from Prosody's upload service, then an HTTP PUT. Returns the GET URL."""
    service = settings().env.get("PEER_UPLOAD_DOMAIN", "upload." + settings().xmpp_domain)
    kind, res = await iq(x, service, "get",
                         f"<request xmlns='{UPLOAD_NS}' filename='{xml_escape(name)}' size='{len(data)}' "
                         f"content-type='{mimetype}'/>")
    assert kind == "result", f"no upload slot: {res}"
    slot = res.find(f"{{{UPLOAD_NS}}}slot")
    put_el = slot.find(f"{{{UPLOAD_NS}}}put")
    put = put_el.get("url")
    get = slot.find(f"{{{UPLOAD_NS}}}get").get("url")
    headers = {h.get("name"): h.text or "" for h in put_el.findall(f"{{{UPLOAD_NS}}}header")}
    async with aiohttp.ClientSession() as http:
        async with http.put(put, data=data, headers={**headers, "Content-Type": mimetype}) as r:
            assert r.status in (200, 201), f"PUT {put}: {r.status} {await r.text()}"
    return get


def events(m, room: str, sender: str, event_type: str = "m.room.message") -> list[dict]:
    return [e for e in m.timeline.get(room, []) if e.get("type") == event_type and e.get("sender") == sender]


def edit_of(e: dict) -> str | None:
    rel = e.get("content", {}).get("m.relates_to", {})
    return rel.get("event_id") if rel.get("rel_type") == "m.replace" else None


def reply_of(e: dict) -> str | None:
    return e.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")


async def dm(p):
    m = await p.matrix_user()
    x = await p.xmpp_user()
    room = await p.dm_from_xmpp(m, x)
    return m, x, room


async def reply_from_xmpp_and_edits_both_ways(m, x, room: str, muc: str, on_xmpp, plan: dict, plan_id: str):
    """In a room (hosted or linked): Matrix says "teh cat" and XMPP replies to it by the room's stanza
    id; XMPP corrects its message `plan_id` (Matrix's `plan`) and Matrix edits "teh cat", each an edit
    of the right message. `on_xmpp(pred)` finds a groupchat message from the room. Returns the
    cat's event id and its stanza on XMPP."""
    cat = await m.send_text(room, "teh cat")
    got = await wait_for(lambda: on_xmpp(lambda s: s.body == "teh cat"), 30, what="Matrix text on XMPP")
    assert stanza_id(got), got.xml
    x.send_xml(reply_xml(muc, "groupchat", "ox2", "cute", stanza_id(got), f"{muc}/{m.localpart}", "teh cat"))
    ev = await m.wait_message(room, x.ghost, "cute")
    assert reply_of(ev) == cat, ev

    # Edits both ways: XMPP corrects by its own id, Matrix's edit names the id its message was sent with.
    x.send_xml(correction_xml(muc, "groupchat", "ox3", "the new plan", plan_id))
    edit = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost) if edit_of(e)], 30, "the edit"))[0]
    assert edit_of(edit) == plan["event_id"] and edit["content"]["m.new_content"]["body"] == "the new plan"
    await send(m, room, {"msgtype": "m.text", "body": "* the cat",
                         "m.new_content": {"msgtype": "m.text", "body": "the cat"},
                         "m.relates_to": {"rel_type": "m.replace", "event_id": cat}})
    fixed = await wait_for(lambda: on_xmpp(lambda s: s.body == "the cat"), 30, what="the edit on XMPP")
    assert (fixed.child(CORRECT_NS, "replace") or {}).get("id") == got.id, fixed.xml
    return cat, got


# ---------------------------------------------------------------------------------------- 1:1 --
def test_dm_replies_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            # XMPP -> Matrix: a reply (with fallback quote) to the Matrix user's message.
            e_m = await m.send_text(room, "which day " + token(2))
            got = await wait_for(lambda: next((s for s in x.chats_from(m.jid) if s.body.startswith("which day")), None),
                                 30, what="the Matrix message on XMPP")
            x.send_xml(reply_xml(m.jid, "chat", "rx" + token(3), "tuesday", got.id, m.jid, got.body))
            ev = await m.wait_message(room, x.ghost, "tuesday")
            assert reply_of(ev) == e_m, f"not a reply to {e_m}: {ev}"

            # Matrix -> XMPP: a reply to the XMPP user's message, by its stanza id, with a marked quote.
            sid = x.send_chat(m.jid, "lunch? " + token(2))
            e_x = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                               if e["content"].get("body", "").startswith("lunch?")], 30, "x's question"))[0]
            body = "yes " + token(2)
            await send(m, room, {"msgtype": "m.text", "body": body,
                                 "m.relates_to": {"m.in_reply_to": {"event_id": e_x["event_id"]}}})
            r = await wait_for(lambda: next((s for s in x.chats_from(m.jid) if s.body.endswith(body)), None), 30,
                               what="the reply on XMPP")
            assert (r.child(REPLY_NS, "reply") or {}).get("id") == sid, r.xml
            assert r.body.startswith("> lunch?"), f"no fallback quote: {r.body!r}"
            fb = _el(r).find(f"{{{FALLBACK_NS}}}fallback/{{{FALLBACK_NS}}}body")
            assert fb is not None and r.body[int(fb.get("end")):] == body, r.xml

            # An unknown target: the reply arrives as a plain message.
            x.send_xml(reply_xml(m.jid, "chat", "ru" + token(3), "orphan", "never-sent", m.jid, "?"))
            ev = await m.wait_message(room, x.ghost, "orphan")
            assert reply_of(ev) is None, ev
    run(go())


def test_dm_edits_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            sid = x.send_chat(m.jid, "helo wrld")
            original = await m.wait_message(room, x.ghost, "helo wrld")
            x.send_xml(correction_xml(m.jid, "chat", "c" + token(3), "hello world", sid))
            edit = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost) if edit_of(e)], 30, "the edit"))[0]
            assert edit_of(edit) == original["event_id"], edit
            assert edit["content"]["m.new_content"]["body"] == "hello world", edit

            e = await m.send_text(room, "teh plan")
            got = await x.wait_chat(m.jid, "teh plan")
            await send(m, room, {"msgtype": "m.text", "body": "* the plan",
                                 "m.new_content": {"msgtype": "m.text", "body": "the plan"},
                                 "m.relates_to": {"rel_type": "m.replace", "event_id": e}})
            fixed = await x.wait_chat(m.jid, "the plan")
            assert (fixed.child(CORRECT_NS, "replace") or {}).get("id") == got.id, fixed.xml

            # Someone else's message: the Matrix user cannot edit the XMPP user's text on XMPP.
            await send(m, room, {"msgtype": "m.text", "body": "* forged",
                                 "m.new_content": {"msgtype": "m.text", "body": "forged"},
                                 "m.relates_to": {"rel_type": "m.replace", "event_id": original["event_id"]}})
            await m.sync_until(lambda: [n for n in events(m, room, x.ghost) if n["content"].get("msgtype") == "m.notice"
                                        and "only your own" in n["content"].get("body", "")], 30, "a refusal notice")
            assert not [s for s in x.chats_from(m.jid) if s.body == "forged"], "the forged edit reached XMPP"
            # An XMPP user correcting the Matrix user's message gets an error.
            bad = "cb" + token(3)
            x.send_xml(correction_xml(m.jid, "chat", bad, "not yours", got.id))
            err = await x.wait_error(bad)
            assert "own" in (err.error_text or ""), err.xml
    run(go())


def test_dm_reactions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            sid = x.send_chat(m.jid, "react to me " + token(2))
            target = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                                  if e["content"].get("body", "").startswith("react to me")], 30, "x"))[0]
            # Matrix -> XMPP: every change sends the full set.
            def sets():
                return [reactions_in(s) for s in x.messages if s.frm.split("/")[0] == m.jid and reactions_in(s)]
            thumbs = await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": target["event_id"],
                                                           "key": "👍"}}, "m.reaction")
            await wait_for(lambda: (sid, ["👍"]) in sets(), 30, what="{👍} on XMPP")
            await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": target["event_id"],
                                                  "key": "🎉"}}, "m.reaction")
            await wait_for(lambda: (sid, ["👍", "🎉"]) in sets(), 30, what="{👍, 🎉} on XMPP")
            await redact(m, room, thumbs)
            await wait_for(lambda: sets() and sets()[-1] == (sid, ["🎉"]), 30, what=f"{{🎉}} after the redaction: {sets()}")

            # XMPP -> Matrix: the full set becomes reaction events, a smaller set redactions.
            e = await m.send_text(room, "and to me " + token(2))
            got = await wait_for(lambda: next((s for s in x.chats_from(m.jid) if s.body.startswith("and to me")), None), 30)
            x.send_xml(reactions_xml(m.jid, "chat", "re" + token(3), got.id, ["👍", "😂"]))

            def ghost_reactions():
                return {ev["content"]["m.relates_to"]["key"]: ev["event_id"] for ev in events(m, room, x.ghost, "m.reaction")
                        if ev["content"].get("m.relates_to", {}).get("event_id") == e}
            await m.sync_until(lambda: set(ghost_reactions()) == {"👍", "😂"}, 30, "the ghost's two reactions")
            thumbs_ev = ghost_reactions()["👍"]
            x.send_xml(reactions_xml(m.jid, "chat", "re" + token(3), got.id, ["😂"]))
            await m.sync_until(lambda: [r for r in events(m, room, x.ghost, "m.room.redaction")
                                        if r.get("redacts") == thumbs_ev or r["content"].get("redacts") == thumbs_ev],
                               30, "the redaction of the ghost's 👍")
            # Reactions to an unknown message get an error back.
            bad = "ru" + token(3)
            x.send_xml(reactions_xml(m.jid, "chat", bad, "never-sent", ["👍"]))
            await x.wait_error(bad)
    run(go())


def test_dm_retractions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            sid = x.send_chat(m.jid, "oops " + token(2))
            target = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                                  if e["content"].get("body", "").startswith("oops")], 30, "x"))[0]
            x.send_xml(retract_xml(m.jid, "rt" + token(3), sid))
            await m.sync_until(lambda: [r for r in events(m, room, x.ghost, "m.room.redaction")
                                        if target["event_id"] in (r.get("redacts"), r["content"].get("redacts"))],
                               30, "the ghost's redaction of the retracted message")

            e = await m.send_text(room, "take back " + token(2))
            got = await wait_for(lambda: next((s for s in x.chats_from(m.jid) if s.body.startswith("take back")), None), 30)
            await redact(m, room, e)
            r = await wait_for(lambda: next((s for s in x.messages if s.frm.split("/")[0] == m.jid
                                             and s.child(RETRACT_NS, "retract")), None), 30, what="a retraction")
            assert r.child(RETRACT_NS, "retract")["id"] == got.id, r.xml
    run(go())


def test_dm_files_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            # Matrix -> XMPP: an image and a text file arrive as fetchable URLs (XEP-0066). The
            # URL's last segment is the file's name (a space is %20: `+` would be a plus sign).
            text = ("notes " + token(4) + " ünïcode\n").encode()
            for data, name, mimetype, msgtype in ((PNG, "dot.png", "image/png", "m.image"),
                                                  (text, "my notes+1.txt", "text/plain", "m.file")):
                mxc = await upload_matrix(m, data, name, mimetype)
                await send(m, room, {"msgtype": msgtype, "body": name, "url": mxc,
                                     "info": {"mimetype": mimetype, "size": len(data)}})
                got = await wait_for(lambda n=name: next((s for s in x.chats_from(m.jid) if s.body
                                                          and urllib.parse.quote(n) in s.body
                                                          and oob_url(s)), None), 30, what=f"{name} on XMPP")
                assert got.body == oob_url(got), got.xml
                assert urllib.parse.unquote(urllib.parse.urlsplit(oob_url(got)).path.rsplit("/", 1)[1]) == name
                fetched, ctype, disposition = fetch(oob_url(got))
                assert fetched == data, f"{name}: the served bytes differ"
                assert ctype.startswith(mimetype), ctype
                star = disposition.split("filename*=UTF-8''", 1)[-1].split(";")[0]
                assert urllib.parse.unquote(star) == name, disposition
            try:
                fetch(oob_url(got).rsplit("/", 2)[0] + "/" + "0" * 32 + "/x")
                raise AssertionError("a guessed media token was served")
            except urllib.error.HTTPError as e:
                assert e.code == 404

            # XMPP -> Matrix: an upload to Prosody's XEP-0363 service, announced with XEP-0066.
            for data, name, mimetype, msgtype in ((PNG, "pic.png", "image/png", "m.image"),
                                                  (text, "memo.txt", "text/plain", "m.file")):
                url = await upload_xmpp(x, data, name, mimetype)
                x.send_xml(f"<message to='{xml_escape(m.jid)}' type='chat' id='f{token(3)}'><body>{xml_escape(url)}</body>"
                           f"<x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")
                ev = (await m.sync_until(lambda n=name: [e for e in events(m, room, x.ghost)
                                                         if e["content"].get("body") == n], 30, f"{name} on Matrix"))[0]
                c = ev["content"]
                assert c["msgtype"] == msgtype, c
                assert c["info"]["mimetype"] == mimetype and c["info"]["size"] == len(data), c
                assert await download_matrix(m, c["url"]) == data
            # A URL the bridge may not fetch (a private address not allowed) arrives as text.
            bad = "http://10.255.255.1/nothing.png"
            x.send_xml(f"<message to='{xml_escape(m.jid)}' type='chat' id='f{token(3)}'><body>{bad}</body>"
                       f"<x xmlns='{OOB_NS}'><url>{bad}</url></x></message>")
            ev = await m.wait_message(room, x.ghost, bad)
            assert ev["content"]["msgtype"] == "m.text", ev
    run(go())


def db_exec(bridge, sql: str) -> None:
    """Change the bridge's database behind its back (SQLite or PostgreSQL, as the run uses)."""
    url = bridge.database_url
    if url.startswith("sqlite://"):
        con = sqlite3.connect(url[len("sqlite://"):], timeout=10)
        with con:
            con.execute(sql)
        con.close()
    else:
        subprocess.run(["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       check=True, capture_output=True, timeout=30)


def test_a_media_link_expires_after_its_lifetime(bridge):
    """`media.link_lifetime_days` (30 here): a link made 31 days ago answers 410 Gone, a fresh one 200."""
    async def go():
        async with Peers() as p:
            m, x, room = await dm(p)
            urls = []
            for name in ("old.png", "fresh.png"):
                mxc = await upload_matrix(m, PNG, name, "image/png")
                await send(m, room, {"msgtype": "m.image", "body": name, "url": mxc,
                                     "info": {"mimetype": "image/png", "size": len(PNG)}})
                got = await wait_for(lambda n=name: next((s for s in x.chats_from(m.jid)
                                                          if n in (s.body or "") and oob_url(s)), None), 30, what=name)
                urls.append(oob_url(got))
                assert fetch(oob_url(got))[0] == PNG
            old, fresh = urls
            old_token = urllib.parse.urlsplit(old).path.rsplit("/", 2)[1]
            assert old_token.isalnum(), old
            db_exec(bridge, f"UPDATE media_link SET created_at = created_at - {31 * 24 * 3600 * 1000} "
                            f"WHERE token = '{old_token}'")
            try:
                fetch(old)
                raise AssertionError("an expired link was served")
            except urllib.error.HTTPError as e:
                assert e.code == 410, e.code
            assert fetch(fresh)[0] == PNG
    run(go())


# ------------------------------------------------------------------------------ hosted rooms --
async def hosted(p, name: str):
    """ann (Matrix) starts a room and cid (XMPP) joins it. Returns m, x, room, muc and a finder of
    the room's groupchat messages on XMPP."""
    m = await p.matrix_user("ann")
    x = await p.xmpp_user("cid")
    alias = name + token(3).lower()
    room = await create_room(m, alias)
    muc = muc_of(alias)
    await invited_xmpp_joins(m, room, x, muc, "cid")
    await m.wait_joined(room, x.ghost)

    def from_room(pred):
        return next((s for s in x.messages if s.type == "groupchat" and s.frm.split("/")[0] == muc
                     and pred(s)), None)
    return m, x, room, muc, from_room


async def said_by_cid(x, m, room: str, muc: str, from_room, sid: str, body: str):
    """cid says `body` in the room; returns the room's stanza id (from his echo) and its Matrix event."""
    x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='{sid}'><body>{xml_escape(body)}</body></message>")
    echo = await wait_for(lambda: from_room(lambda s: s.id == sid), 30, what=f"the echo of {body}")
    return stanza_id(echo), await m.wait_message(room, x.ghost, body)


def ann(m, muc: str) -> str:
    """m's occupant address in the room (their nick is their localpart)."""
    return f"{muc}/{m.localpart}"


async def mam_all(x, muc: str) -> list[ET.Element]:
    """Every message of the room's archive (one MAM query), as the forwarded <message> elements."""
    qid = "q" + token(4)
    mark = len(x.messages)
    kind, res = await iq(x, muc, "set", f"<query xmlns='{MAM_NS}' queryid='{qid}'/>")
    assert kind == "result", res
    out = []
    for s in x.messages[mark:]:
        r = ET.fromstring(s.xml).find(f"{{{MAM_NS}}}result")
        if r is not None and r.get("queryid") == qid:
            out.append(r.find(".//{jabber:client}message"))
    return out


def test_room_replies_edits_and_reactions_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc, from_room = await hosted(p, "content")
            # XMPP says something; its echo carries the room's stanza id.
            plan_sid, plan = await said_by_cid(x, m, room, muc, from_room, "ox1", "the plan")

            # Matrix replies to it: on XMPP a reply to the room's stanza id.
            await send(m, room, {"msgtype": "m.text", "body": "sounds good",
                                 "m.relates_to": {"m.in_reply_to": {"event_id": plan["event_id"]}}})
            r = await wait_for(lambda: from_room(lambda s: (s.body or "").endswith("sounds good")), 30, what="reply")
            assert (r.child(REPLY_NS, "reply") or {}).get("id") == plan_sid, r.xml

            cat, got = await reply_from_xmpp_and_edits_both_ways(m, x, room, muc, from_room, plan, "ox1")

            # Reactions both ways.
            await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": plan["event_id"],
                                                  "key": "👍"}}, "m.reaction")
            await wait_for(lambda: from_room(lambda s: reactions_in(s) == (plan_sid, ["👍"])), 30, what="👍 on XMPP")
            x.send_xml(reactions_xml(muc, "groupchat", "ox4", stanza_id(got), ["❤️"]))
            await m.sync_until(lambda: [e for e in events(m, room, x.ghost, "m.reaction")
                                        if e["content"]["m.relates_to"] == {"rel_type": "m.annotation",
                                                                            "event_id": cat, "key": "❤️"}],
                               30, "the ghost's ❤️ on Matrix")
            # The XMPP occupant's reactions are reflected to the room too.
            await wait_for(lambda: from_room(lambda s: reactions_in(s) == (stanza_id(got), ["❤️"])), 30,
                           what="the reflected reactions")
    run(go(), timeout=240)


def test_room_retractions_both_ways_and_the_archive_keeps_them(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc, from_room = await hosted(p, "retract")
            # XMPP -> Matrix: cid retracts by the room's stanza id; his ghost redacts the event.
            oops_sid, oops = await said_by_cid(x, m, room, muc, from_room, "ox1", "oops")
            x.send_xml(retract_xml(muc, "ox2", oops_sid, "groupchat"))
            await m.sync_until(lambda: [r for r in events(m, room, x.ghost, "m.room.redaction")
                                        if oops["event_id"] in (r.get("redacts"), r["content"].get("redacts"))],
                               30, "the ghost's redaction of the retracted message")
            # Matrix -> XMPP: ann redacts; the room retracts it by its stanza id, from her nick.
            e = await m.send_text(room, "take back")
            got = await wait_for(lambda: from_room(lambda s: s.body == "take back"), 30, what="Matrix text on XMPP")
            await redact(m, room, e)
            r = await wait_for(lambda: from_room(lambda s: s.frm == ann(m, muc) and s.child(RETRACT_NS, "retract")),
                               30, what="ann's retraction")
            assert r.child(RETRACT_NS, "retract")["id"] == stanza_id(got), r.xml
            # Reactions both ways (the positive control: these are still messages of the room).
            keep_sid, keep = await said_by_cid(x, m, room, muc, from_room, "ox3", "keep")
            await send(m, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": keep["event_id"],
                                                  "key": "👍"}}, "m.reaction")
            await wait_for(lambda: from_room(lambda s: reactions_in(s) == (keep_sid, ["👍"])), 30, what="👍 on XMPP")
            await m.send_text(room, "stay")
            stay = await wait_for(lambda: from_room(lambda s: s.body == "stay"), 30, what="stay on XMPP")
            x.send_xml(reactions_xml(muc, "groupchat", "ox4", stanza_id(stay), ["❤️"]))
            await m.sync_until(lambda: [e for e in events(m, room, x.ghost, "m.reaction")
                                        if e["content"]["m.relates_to"].get("key") == "❤️"], 30, "❤️ on Matrix")

            # Whoever was away reads it all in the archive (XEP-0313): the retracted messages as
            # XEP-0424 tombstones without their text, then the retractions and the reactions.
            def summary(msg):
                sid = msg.find(f"{{{SID_NS}}}stanza-id")
                body = msg.find("{jabber:client}body")
                react = msg.find(f"{{{REACTIONS_NS}}}reactions")
                retract = msg.find(f"{{{RETRACT_NS}}}retract")
                return {"from": msg.get("from"), "sid": sid.get("id") if sid is not None else None,
                        "body": body.text if body is not None else None,
                        "tombstone": msg.find(f"{{{RETRACT_NS}}}retracted") is not None,
                        "reactions": (react.get("id"), [k.text for k in react]) if react is not None else None,
                        "retracts": retract.get("id") if retract is not None else None}
            archive = [summary(msg) for msg in await mam_all(x, muc)]
            by_sid = {a["sid"]: a for a in archive}
            for gone in (oops_sid, stanza_id(got)):
                assert by_sid[gone]["tombstone"] and by_sid[gone]["body"] is None, archive
            assert "oops" not in str(archive) and "take back" not in str(archive), archive
            retractions = [a for a in archive if a["retracts"]]
            assert [(a["from"], a["retracts"]) for a in retractions] == \
                [(f"{muc}/cid", oops_sid), (ann(m, muc), stanza_id(got))], archive
            reactions = [(a["from"], a["reactions"]) for a in archive if a["reactions"]]
            assert reactions == [(ann(m, muc), (keep_sid, ["👍"])), (f"{muc}/cid", (stanza_id(stay), ["❤️"]))], archive
            assert [a["body"] for a in archive if a["body"] in ("keep", "stay")] == ["keep", "stay"], archive
            # Each comes after what it refers to.
            order = [a["sid"] for a in archive]
            for a in retractions:
                assert order.index(a["retracts"]) < order.index(a["sid"]), archive
    run(go(), timeout=240)


def test_room_files_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc, from_room = await hosted(p, "files")
            # Matrix -> XMPP: a fetchable URL (XEP-0066) from ann's nick.
            mxc = await upload_matrix(m, PNG, "dot.png", "image/png")
            await send(m, room, {"msgtype": "m.image", "body": "dot.png", "url": mxc,
                                 "info": {"mimetype": "image/png", "size": len(PNG)}})
            got = await wait_for(lambda: from_room(lambda s: oob_url(s) and "dot.png" in (s.body or "")), 30,
                                 what="the image on XMPP")
            assert got.frm == ann(m, muc) and got.body == oob_url(got), got.xml
            fetched, ctype, _ = fetch(oob_url(got))
            assert fetched == PNG and ctype.startswith("image/png"), ctype
            # XMPP -> Matrix: an upload to Prosody's service, posted by cid's ghost as the file.
            text = ("minutes " + token(4) + "\n").encode()
            url = await upload_xmpp(x, text, "minutes.txt", "text/plain")
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat' id='f{token(3)}'><body>{xml_escape(url)}</body>"
                       f"<x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")
            ev = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                              if e["content"].get("body") == "minutes.txt"], 30, "the file on Matrix"))[0]
            c = ev["content"]
            assert c["msgtype"] == "m.file" and c["info"]["mimetype"] == "text/plain", c
            assert await download_matrix(m, c["url"]) == text
    run(go(), timeout=240)
