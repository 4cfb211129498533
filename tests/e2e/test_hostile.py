"""A hostile-input corpus (issue 12, section 3), sent through the real peers as an ordinary account on
either network, or, for the appservice API, as the homeserver itself (with the real hs_token: Synapse
forwards event content it did not validate). For every attack: 0 crashes (the bridge is alive and a
positive-control message sent after the attack arrives), 0 injections (what the recipient really
receives carries no markup, stanza or header the attacker wrote), memory bounded (the bridge's VmRSS
grows by less than RSS_BOUND; a guard, not a benchmark)."""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse

from ucb import Peers, as_put, run, settings, token, wait_for, xml_escape

RSS_BOUND_KIB = 200 * 1024   # the bridge may grow by this much during one attack
# Characters XML 1.0 cannot carry (Char production): C0 controls but tab/LF/CR, the surrogates, FFFE/FFFF.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ------------------------------------------------------------------------------ helpers --
def rss_kib(bridge) -> int:
    """The bridge's resident set (VmRSS) in KiB."""
    with open(f"/proc/{bridge.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/<bridge>/status")


class Memory:
    """`with Memory(bridge):` fails if the bridge's RSS grew by RSS_BOUND_KIB or more meanwhile."""

    def __init__(self, bridge):
        self.bridge = bridge

    def __enter__(self):
        self.before = rss_kib(self.bridge)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            grown = rss_kib(self.bridge) - self.before
            assert grown < RSS_BOUND_KIB, f"the bridge's RSS grew by {grown} KiB (from {self.before} KiB)"


def alive(bridge) -> None:
    assert bridge.running(), f"the bridge died: {bridge.died()}; log tail:\n{bridge.log_tail()}"
    h = bridge.health()
    assert h and h.get("xmpp") == "connected", f"/health: {h}"


async def x_to_m(m, x, room: str, what: str = "control") -> None:
    """Positive control, XMPP -> Matrix: a fresh message arrives."""
    body = f"{what} {token(3)}"
    x.send_chat(m.jid, body)
    await m.wait_message(room, x.ghost, body)


async def m_to_x(m, x, room: str, what: str = "control") -> None:
    """Positive control, Matrix -> XMPP: a fresh message arrives."""
    body = f"{what} {token(3)}"
    await m.send_text(room, body)
    await x.wait_chat(m.jid, body)


# --------------------------------------------------- text XML cannot carry, from Matrix --
def test_matrix_text_xml_cannot_carry_reaches_xmpp_without_breaking_the_stream(bridge):
    """Matrix JSON may carry NUL, C0 controls, U+FFFE/U+FFFF (and a homeserver may forward a lone
    surrogate): none of them can be written in XML. Each message arrives on XMPP without them, the
    component stream is not broken (no reconnect), and later messages follow in order."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            await m_to_x(m, x, room, "before")
            offset = bridge.log_size()
            bodies = [f"nul a\x00b {token(2)}", f"controls \x01\x07\x08\x0b\x0c\x1b\x1f end {token(2)}",
                      f"nonchars \ufffe\uffff end {token(2)}"]
            for b in bodies:
                status, j = await m.send_raw(room, "m.room.message", {"msgtype": "m.text", "body": b})
                assert status == 200, (b, status, j)
            await m_to_x(m, x, room, "after")
            got = [c.body for c in x.chats_from(m.jid)]
            for b in bodies:
                clean = NOT_XML.sub("", b)
                assert any(g is not None and NOT_XML.sub("", g).replace("\ufffd", "") == clean for g in got), \
                    (b, got)
            assert not bridge.log_lines(offset, "reconnect"), bridge.log_lines(offset, "reconnect")
            alive(bridge)
    with Memory(bridge):
        run(go())


# ------------------------------------------------------------ oversized and deep stanzas --
def _cut_off(x) -> bool:
    """Has the server closed this client's stream?"""
    return x.transport is None or x.transport.is_closing()


def test_deeply_nested_xml_from_an_xmpp_client(bridge):
    """A client sends a message, an iq and a presence each carrying 1,000 and then 10,000 nested
    elements (Prosody forwards them when they are not archived: its MAM store refuses to serialize
    such a message, hence the no-store hint). The bridge cuts out what is deeper than it reads
    (xmpp/depth.rs: before, the parser's recursion overflowed its stack and the bridge died) and
    bridges the message's body."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            offset = bridge.log_size()
            for depth in (1000, 10_000):
                body = f"nested {depth} {token(3)}"
                deep = "<a xmlns='urn:e2e:deep'>" + "<a>" * (depth - 1) + "</a>" * depth
                x.send_xml(f"<iq type='get' to='{m.jid}' id='deepiq{depth}'>{deep}</iq>")
                x.send_xml(f"<presence to='{m.jid}'><status>deep {depth}</status>{deep}</presence>")
                x.send_xml(f"<message type='chat' to='{m.jid}' id='deep{depth}'><body>{body}</body>"
                           f"<no-store xmlns='urn:xmpp:hints'/>{deep}</message>")
                await m.wait_message(room, x.ghost, body)
                await x_to_m(m, x, room, f"after {depth}")
            # The deep stanzas did reach the bridge (so this test can fail): it says it cut them.
            assert len(bridge.log_lines(offset, "cut too deeply nested XML")) >= 6, bridge.log_tail(20)
            assert not _cut_off(x)
            alive(bridge)
    with Memory(bridge):
        run(go())


def test_oversized_stanzas_from_an_xmpp_client(bridge):
    """A 200 KiB body (under Prosody's 256 KiB c2s limit, over the bridge's max_message_bytes) is
    refused by the bridge with an error that says why; a 1 MiB one never reaches it: Prosody cuts
    the sending client off. Neither arrives on Matrix; the sender's other client still gets through."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            mid = f"mid {token(3)} " + "m" * (200 * 1024)
            sid = x.send_chat(m.jid, mid)
            err = await x.wait_error(sid)
            assert err.error_condition == "not-acceptable" and "long" in (err.error_text or ""), err.describe()
            big_client = await p.another_resource(x, "big")
            big_client.send_chat(m.jid, f"huge {token(3)} " + "h" * (1024 * 1024))
            await wait_for(lambda: _cut_off(big_client), 30, what="Prosody to cut off the 1 MiB sender")
            await x_to_m(m, x, room, "after the big ones")
            lengths = [len(e["content"].get("body", "")) for e in await m.room_messages(room, x.ghost)]
            assert max(lengths) <= settings().max_message_bytes, lengths
            alive(bridge)
    with Memory(bridge):
        run(go())


# ------------------------------------------------------- invalid text from an XMPP client --
def test_invalid_utf8_and_xml_characters_from_an_xmpp_client(bridge):
    """Invalid UTF-8 and character references to characters XML forbids (&#0;, &#x1;) are not XML:
    Prosody ends such a client's stream and forwards nothing. What XML does allow (C1 controls,
    bidi overrides, zero-width and BOM characters, U+FFFD, astral characters, tab) arrives on
    Matrix exactly as sent."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            bad = {"utf8": "<message type='chat' to='{to}' id='u8'><body>bad {t} \xff\xfe\xc3(</body></message>",
                   "nul": "<message type='chat' to='{to}' id='n0'><body>bad {t} &#0;</body></message>",
                   "ctl": "<message type='chat' to='{to}' id='c1'><body>bad {t} &#x1;&#xFFFE;</body></message>"}
            marks = {}
            for name, raw in bad.items():
                c = await p.another_resource(x, "raw" + name)
                marks[name] = f"{name}-{token(3)}"
                xml = raw.format(to=m.jid, t=marks[name]).encode("utf-8", "surrogateescape") \
                    if name != "utf8" else raw.format(to=m.jid, t=marks[name]).encode("latin-1")
                c.transport.write(xml)
                await wait_for(lambda c=c: _cut_off(c), 20, what=f"Prosody to end the stream sending {name}")
            odd = f"odd {token(3)} \x85 \u202eevil\u202c \u200b\ufeff \ufffd \U0001f600 \t tab \u2028 end"
            x.send_chat(m.jid, odd)
            await m.wait_message(room, x.ghost, odd)
            await x_to_m(m, x, room)
            bodies = [e["content"].get("body", "") for e in await m.room_messages(room, x.ghost)]
            assert not [b for b in bodies if any(mark in b for mark in marks.values())], bodies
            alive(bridge)
    with Memory(bridge):
        run(go())


def _event(room: str, sender: str, body) -> dict:
    return {"type": "m.room.message", "room_id": room, "sender": sender, "event_id": f"$e2e-hostile-{token(8)}",
            "origin_server_ts": int(time.time() * 1000), "content": {"msgtype": "m.text", "body": body},
            "unsigned": {"age": 1}}


def test_lone_surrogates_and_nul_in_matrix_json(bridge):
    """JSON may escape a lone surrogate ("\\ud800"), which no UTF-8 string holds. Through Synapse, and
    pushed straight to the bridge as the homeserver (in a transaction with a good event after it):
    the transaction is answered 200 (a refusal would make the homeserver resend it forever), the
    good event is bridged, and nothing breaks the XMPP side."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            mark = token(3)
            # The rig's Synapse answers 500 and stores nothing; should a homeserver take it, whatever
            # arrives is checked below like the rest.
            await m.send_raw(room, "m.room.message", {"msgtype": "m.text", "body": f"lone {mark} \ud800"})
            good = f"good after {token(3)}"
            events = [_event(room, m.user_id, f"pushed {mark} \ud800\udc00\udbff"),
                      _event(room, m.user_id, f"nul {mark} \x00 pushed"),
                      {"type": "m.room.message", "room_id": room, "sender": m.user_id},   # no event_id, no content
                      _event(room, m.user_id, {"not": "a string"}),
                      _event(room, m.user_id, good)]
            raw = json.dumps({"events": events}).encode()   # ensure_ascii: the lone surrogates as \\uXXXX
            assert b"\\ud800" in raw
            status, text = await asyncio.to_thread(as_put, f"/_matrix/app/v1/transactions/e2e-lone-{token(4)}", raw)
            assert status == 200, (status, text)
            await x.wait_chat(m.jid, good)
            await m_to_x(m, x, room)
            got = [c.body for c in x.chats_from(m.jid) if mark in (c.body or "")]
            for b in got:
                assert not NOT_XML.search(b), repr(b)
            assert f"nul {mark}  pushed" in got, got   # the NUL dropped, the rest as sent
            alive(bridge)
    with Memory(bridge):
        run(go())


# ------------------------------------------------------------------------------ bad JIDs --
def test_bad_addresses_on_both_sides(bridge):
    """XMPP: a resource full of markup is an ordinary sender; addresses under the
    component that decode to no valid Matrix ID (a space, a localpart past 255 bytes, an escape
    that is none) get an error reply; an account whose ghost ID would exceed Matrix's 255 bytes is
    told so instead of being silently dropped. Matrix: inviting ghost IDs that decode to no JID is
    declined or refused. After all of it both directions still work."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            s = settings()
            room = await p.dm_from_xmpp(m, x)
            odd = await p.another_resource(x, "r<b>&'\" /y\u00e9</b>")
            body = f"from an odd resource {token(3)}"
            odd.send_chat(m.jid, body)
            await m.wait_message(room, x.ghost, body)
            local = "bad" + token(2)
            for to in (f"{local}\\20b\\40{s.matrix_domain}@{s.component}",
                       f"{'l' * 300}\\40{s.matrix_domain}@{s.component}",
                       # (`a\\40\\40hs` is no longer one: it decodes to `@a@:hs`, a legal historical
                       # Matrix ID since the address split moved to the last `@`, issue12-fuzz)
                       f"{local}\\40@{s.component}",
                       f"\\40{s.matrix_domain}@{s.component}"):
                sid = x.send_chat(to, "to a bad address")
                err = await x.wait_error(sid)
                assert err.type == "error" and err.error_condition, err.describe()
            # A localpart so long that its ghost cannot exist on Matrix.
            long_user, pw = "long" + "g" * 240 + token(2), "pw-" + token(6)
            from ucb import xmpp_login, xmpp_register
            await xmpp_register(long_user, pw)
            lx = await xmpp_login(long_user, pw)
            p.xmpp.append(lx)
            sid = lx.send_chat(m.jid, "from a long name")
            err = await lx.wait_error(sid)
            assert "longer than Matrix allows" in (err.error_text or ""), err.describe()
            # Matrix: ghosts whose IDs decode to no JID.
            for ghost in (f"@_xmpp_=zz:{s.matrix_domain}", f"@_xmpp_a=40=40b:{s.matrix_domain}",
                          f"@_xmpp_:{s.matrix_domain}"):
                status, j = await m.request("POST", "/createRoom", {"invite": [ghost], "is_direct": True})
                if status == 200:
                    await m.sync_once()
                    assert ghost not in await m.joined_members(j["room_id"]), ghost
            await x_to_m(m, x, room)
            await m_to_x(m, x, room)
            alive(bridge)
    with Memory(bridge):
        run(go())


# ----------------------------------------------------------- CRLF and NUL in names --
INJECT = "\r\n</nick><body>injected</body>\x00Bcc: victim@evil.test\r\n\r\n"


def _same_text(got: str | None, sent: str) -> bool:
    """`got` is `sent` less what XML cannot carry (CR may come back as LF; ends may be trimmed)."""
    def norm(t: str) -> str:
        return NOT_XML.sub("", t).replace("\r\n", "\n").replace("\r", "\n").strip()
    return got is not None and norm(got) == norm(sent)


def test_crlf_nul_and_markup_in_names_subjects_and_file_names(bridge):
    """A Matrix display name, a room topic and a file name carrying CR/LF, NUL and closing tags:
    the XMPP side receives them as text inside the one element they belong to (no extra <body>, no
    broken stanza), and the file is served with a single, encoded Content-Disposition header (no
    header a name wrote)."""
    from test_content import oob_url, upload_matrix
    from test_rooms import create_room, invited_xmpp_joins, muc_of
    from test_security_http import _head

    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            name = "Eve" + INJECT
            status, j = await m.request("PUT", f"/profile/{urllib.parse.quote(m.user_id)}/displayname",
                                        {"displayname": name})
            assert status == 200, j
            room = await p.dm_from_matrix(m, x)
            body = f"named {token(3)}"
            await m.send_text(room, body)
            got = await x.wait_chat(m.jid, body)
            assert _same_text(got.nick, name), (got.nick, got.xml)
            assert got.body == body and not [c for c in got.payload if c[1] == "body"], got.xml
            # A file whose name would add headers.
            fname = "evil" + INJECT + "<script>.html"
            mxc = await upload_matrix(m, b"<script>alert(1)</script>", "evil.html", "text/html")
            status, j = await m.send_raw(room, "m.room.message", {"msgtype": "m.file", "body": fname, "url": mxc,
                                                                  "info": {"mimetype": "text/html", "size": 25}})
            assert status == 200, j
            f = await wait_for(lambda: next((c for c in x.chats_from(m.jid) if oob_url(c)), None), 30,
                               what="the file on XMPP")
            status, headers, _ = await asyncio.to_thread(_head, oob_url(f))
            assert status == 200, status
            assert "bcc" not in headers and "set-cookie" not in headers, headers
            disposition = headers.get("content-disposition", "")
            assert disposition.startswith("attachment") and not re.search(r"[\r\n\x00]", disposition), disposition
            # A hosted room's topic becomes the MUC subject, as text.
            alias = "hostile" + token(3).lower()
            rroom = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, rroom, x, muc, "xnick")
            topic = f"topic {token(2)}" + INJECT
            status, j = await m.put_state(rroom, "m.room.topic", {"topic": topic})
            assert status == 200, j
            subj = await wait_for(lambda: next((s for s in x.messages if s.frm.startswith(muc) and
                                                "topic" in (s.xml or "") and "Bcc" in (s.xml or "")), None),
                                  20, what="the new subject on XMPP")
            assert subj.body is None and not [c for c in subj.payload if c[1] == "body"], subj.xml
            import xml.etree.ElementTree as ET
            el = ET.fromstring(subj.xml)
            text = el.find("{jabber:client}subject").text
            assert _same_text(text, topic), (text, subj.xml)
            await m_to_x(m, x, room)
            alive(bridge)
    with Memory(bridge):
        run(go())


# --------------------------------------------------------------------- HTML and script --
SCRIPTY = ("<script>alert(1)</script><img src=x onerror=alert(2)><a href='javascript:alert(3)'>click</a>"
           "<iframe src='data:text/html,<script>alert(4)</script>'></iframe><svg onload=alert(5)>")


def _markup(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag in `html` with its attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser
    found: list = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))
    P().feed(html)
    return found


def test_html_and_script_never_arrive_as_markup(bridge):
    """Matrix -> XMPP: a formatted_body full of script, event handlers and javascript: links is not
    carried (no XHTML-IM); the XMPP user gets the plain body exactly. XMPP -> Matrix: the same in
    the body and in an XHTML-IM payload; the Matrix user gets the text as the body, and the only
    markup in formatted_body is what the bridge makes of links (<a href> with a web scheme, <br>)."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            plain = f"plain {token(3)} " + SCRIPTY
            status, j = await m.send_raw(room, "m.room.message", {
                "msgtype": "m.text", "body": plain, "format": "org.matrix.custom.html",
                "formatted_body": SCRIPTY + "<b onmouseover=alert(6)>bold</b>"})
            assert status == 200, j
            got = await x.wait_chat(m.jid, plain)
            names = {name for _, name, _ in got.payload}
            assert not names & {"html", "script", "img", "a", "iframe", "svg", "b"}, got.xml
            assert "http://jabber.org/protocol/xhtml-im" not in got.xml, got.xml

            body = f"from xmpp {token(3)} " + SCRIPTY + " see http://example.org/x?q=<b>javascript:alert(7)</b>\nnext"
            x.send_xml(f"<message type='chat' to='{m.jid}' id='h{token(3)}'><body>{xml_escape(body)}</body>"
                       f"<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>"
                       f"<script>alert(8)</script><a href='javascript:alert(9)'>x</a><img src='x' onerror='alert(10)'/>"
                       f"</body></html></message>")
            ev = await m.wait_message(room, x.ghost, body)
            html = ev["content"].get("formatted_body")
            assert html, f"the link should have made a formatted_body: {ev}"   # so the check below can fail
            tags = _markup(html)
            assert {t for t, _ in tags} <= {"a", "br"}, html
            for tag, attrs in tags:
                assert all(k == "href" for k, _ in attrs), html
                for _, v in attrs:
                    assert urllib.parse.urlsplit(v or "").scheme in ("http", "https"), html
            assert "alert(8)" not in json.dumps(ev["content"]), ev   # the XHTML-IM part is not carried
            await m_to_x(m, x, room)
            alive(bridge)
    with Memory(bridge):
        run(go())


# ------------------------------------------------------------ appservice transactions --
TXN_LIMIT = 8 * 1024 * 1024   # limits.max_transaction_bytes for this test (the default is 16 MiB)


def _raw_put_status(path: str, size: int, chunked: bool = False) -> int | None:
    """PUT `size` bytes of JSON-looking body with the real hs_token over a raw socket and return the
    status the bridge answers, read even if it answers (and closes) before the body is all sent."""
    import socket
    s = settings()
    sock = socket.create_connection(("127.0.0.1", s.listen_port), timeout=30)
    try:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        sock.sendall((f"PUT {path} HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {s.hs_token}\r\n"
                      f"Content-Type: application/json\r\n{length}\r\n\r\n").encode())
        chunk = b'{"events": [' + b" " * (64 * 1024 - 12)
        sent = 0
        try:
            while sent < size:
                part = chunk[:min(len(chunk), size - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass   # the bridge answered and closed before the end: read what it said
        data = b""
        try:
            while b"\r\n" not in data:
                more = sock.recv(4096)
                if not more:
                    break
                data += more
        except OSError:
            pass
        line = data.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None
    finally:
        sock.close()


def test_transactions_over_the_limit_are_413_and_just_under_it_are_handled(bridge):
    """As the homeserver (the real hs_token): a 10 MiB transaction, with and without a
    Content-Length, is refused with 413 and the bridge stays up; one just under the limit with
    thousands of events is answered 200 and its one real message is bridged."""
    from ucb import config_variant

    def smaller(cfg):
        cfg.setdefault("limits", {})["max_transaction_bytes"] = TXN_LIMIT

    with config_variant(bridge, "txn-limit", smaller) as b:
        async def go():
            async with Peers() as p:
                m = await p.matrix_user()
                x = await p.xmpp_user()
                room = await p.dm_from_matrix(m, x)
                for chunked in (False, True):
                    status = await asyncio.to_thread(
                        _raw_put_status, f"/_matrix/app/v1/transactions/e2e-big-{token(4)}", 10 * 1024 * 1024, chunked)
                    assert status == 413, f"10 MiB ({'chunked' if chunked else 'Content-Length'}): {status}"
                    alive(b)
                # Just under the limit: many events in a room the bridge does not know, then a real one.
                real = f"after {token(3)} thousands of events"
                filler = "f" * 2000
                events, size = [], 200
                while size < TXN_LIMIT - 64 * 1024:
                    e = _event(f"!nowhere{token(2)}:{settings().matrix_domain}", m.user_id, filler)
                    events.append(e)
                    size += len(json.dumps(e)) + 2
                events.append(_event(room, m.user_id, real))
                raw = json.dumps({"events": events}).encode()
                assert TXN_LIMIT - 128 * 1024 < len(raw) < TXN_LIMIT, len(raw)
                status, text = await asyncio.to_thread(as_put, f"/_matrix/app/v1/transactions/e2e-many-{token(4)}", raw)
                assert status == 200, (status, text[:200])
                await x.wait_chat(m.jid, real, timeout=60)
                await m_to_x(m, x, room)
                print(f"{len(events)} events in {len(raw)} bytes handled")
                alive(b)
        with Memory(b):
            run(go(), timeout=180)


# -------------------------------------------------------------------- presence bursts --
def test_a_burst_of_ten_thousand_presence_stanzas(bridge):
    """One XMPP client sends 10,000 presence stanzas to a Matrix contact as fast as it can: the bridge
    stays up with bounded memory; what exceeds a conversation's queue (256 waiting) is refused
    (presence silently: it is state, the next one corrects it); the ghost's Matrix presence is set at most about once per 300 ms window, not 10,000 times; once
    the burst is worked off, a chat message and a new presence get through."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=True)
            offset = bridge.log_size()
            started = time.monotonic()
            shows = ["away", "dnd", "xa", "chat"]
            for i in range(10_000):
                x.send_xml(f"<presence to='{m.jid}'><show>{shows[i % 4]}</show><status>flood {i}</status></presence>")

            seen: list = []

            def settled():
                # The bridge's log quiet for a second: the burst is worked off.
                size = bridge.log_size()
                seen.append((time.monotonic(), size))
                return size > offset and any(size == old and time.monotonic() - t >= 1 for t, old in seen)
            await wait_for(settled, 120, step=0.5, what="the bridge to work the burst off")
            elapsed = time.monotonic() - started
            # A client told resource-constraint sends again: the control message gets through.
            body = f"after the presence burst {token(3)}"
            for _ in range(30):
                sid = x.send_chat(m.jid, body)
                await m.sync_until(lambda: x.error_for(sid) or [e for e in m.messages_in(room, x.ghost)
                                                                if e["content"].get("body") == body], 30,
                                   "the control message or its refusal")
                if not x.error_for(sid):
                    break
            await m.wait_message(room, x.ghost, body)
            final = f"final {token(3)}"
            x.send_presence_state("away", final, to=m.jid)
            await m.wait_presence(x.ghost, "unavailable", final, timeout=30)
            sets = bridge.log_lines(offset, "setting ghost presence", x.ghost)
            refused = len(bridge.log_lines(offset, "too many stanzas waiting"))
            print(f"10,000 presences worked off in {elapsed:.1f}s: {len(sets)} Matrix presence updates, "
                  f"{refused} refused")
            assert 0 < len(sets) <= (time.monotonic() - started) / 0.3 + 10, \
                f"{len(sets)} presence updates for the ghost in {elapsed:.1f}s"
            alive(bridge)
    with Memory(bridge):
        run(go(), timeout=280)
