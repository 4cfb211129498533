"""Issue #11, the HTTP side: the XEP-0066 fetcher reaches only allowed addresses (H3), files
from Matrix are served so that no browser runs them (M3), and the public listener refuses
unauthenticated work before reading it and cuts off slow clients (M4)."""
from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.error
import urllib.request

from test_content import OOB_NS, PNG, download_matrix, events, oob_url, send, upload_matrix
from ucb import Peers, run, settings, token, wait_for, xml_escape


# ------------------------------------------------------------------------------ helpers --
class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `files` (path -> bytes) and records every path asked for."""
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _DualStackServer(http.server.ThreadingHTTPServer):
    """Listens on every loopback form (127.0.0.1, 127.0.0.2, ::ffff:127.0.0.1, ::1), so that a
    fetch the bridge should refuse would really be answered: the test can fail."""
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _file_server(files: dict[str, bytes]):
    handler = type("Files", (_Files,), {"files": files, "hits": []})
    server = _DualStackServer(("::", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler.hits


def _oob(x, to: str, url: str) -> None:
    x.send_xml(f"<message to='{xml_escape(to)}' type='chat' id='f{token(3)}'><body>{xml_escape(url)}</body>"
               f"<x xmlns='{OOB_NS}'><url>{xml_escape(url)}</url></x></message>")


def _head(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _appservice_conf(key: str, default: int) -> int:
    return int(settings().config.get("appservice", {}).get(key, default))


def _connect() -> socket.socket:
    s = settings()
    return socket.create_connection(("127.0.0.1", s.listen_port), timeout=5)


def _status_of(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the answer on `sock`, or None if none came within `timeout`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, socket.timeout):
        return None
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def _closed(sock: socket.socket) -> bool:
    """Has the bridge closed (or reset) this connection? Never blocks; reads what is there."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _health_ok() -> float:
    started = time.monotonic()
    with urllib.request.urlopen(settings().bridge_url + "/health", timeout=5) as r:
        assert r.status == 200, r.status
    return time.monotonic() - started


# ------------------------------------------------------------------- H3: the fetcher --
def test_xmpp_file_urls_to_private_addresses_are_not_fetched(bridge):
    """An XMPP user announces files on loopback addresses that are not in
    media.allow_private_hosts (which holds 127.0.0.1 in the tests): the bridge does not fetch
    them, posts the URL as text, and the secret never reaches Matrix. Positive control: the
    same server under 127.0.0.1 is fetched and the file arrives."""
    secret = ("secret " + token(8)).encode()
    public = ("allowed " + token(8)).encode()
    server, hits = _file_server({"/secret.txt": secret, "/allowed.txt": public})
    port = server.server_address[1]
    try:
        async def go():
            async with Peers() as p:
                m = await p.matrix_user()
                x = await p.xmpp_user()
                room = await p.dm_from_xmpp(m, x)
                # Positive control: 127.0.0.1 is allowed and is fetched.
                ok = f"http://127.0.0.1:{port}/allowed.txt"
                _oob(x, m.jid, ok)
                ev = (await m.sync_until(lambda: [e for e in events(m, room, x.ghost)
                                                  if e["content"].get("body") == "allowed.txt"],
                                         30, "the allowed file on Matrix"))[0]
                assert ev["content"]["msgtype"] == "m.file", ev
                assert await download_matrix(m, ev["content"]["url"]) == public
                assert "/allowed.txt" in hits

                refused = [f"http://127.0.0.2:{port}/secret.txt",
                           f"http://[::ffff:127.0.0.1]:{port}/secret.txt",
                           f"http://[::1]:{port}/secret.txt",
                           f"http://0.0.0.0:{port}/secret.txt"]
                for url in refused:
                    _oob(x, m.jid, url)
                    # Visible: the URL arrives as text (a file is never silently dropped).
                    ev = await m.wait_message(room, x.ghost, url)
                    assert ev["content"]["msgtype"] == "m.text", (url, ev)
                # Everything sent has arrived (in order), so nothing later can still be a fetch.
                assert "/secret.txt" not in hits, f"the bridge fetched from a refused address: {hits}"
                files = [e for e in events(m, room, x.ghost) if e["content"].get("msgtype") == "m.file"]
                assert [e["content"]["body"] for e in files] == ["allowed.txt"], files
                for e in files:
                    assert secret not in await download_matrix(m, e["content"]["url"])
        run(go())
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------ M3: the files it serves --
ACTIVE = [
    ("page.html", "text/html", b"<html><script>document.title='pwned'</script></html>"),
    ("pic.svg", "image/svg+xml",
     b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(document.domain)</script></svg>"),
]


def test_matrix_html_and_svg_files_are_served_as_inert_attachments(bridge):
    """A Matrix user posts HTML and SVG files declared as text/html and image/svg+xml; the XMPP
    user's link serves them as attachments of a type no browser renders, with nosniff and a
    sandboxing CSP. Positive control: a PNG stays inline as image/png."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            for name, mimetype, data in [*ACTIVE, ("dot.png", "image/png", PNG)]:
                mxc = await upload_matrix(m, data, name, mimetype)
                await send(m, room, {"msgtype": "m.file", "body": name, "url": mxc,
                                     "info": {"mimetype": mimetype, "size": len(data)}})
                got = await wait_for(lambda n=name: next((s for s in x.chats_from(m.jid)
                                                          if s.body and n in s.body and oob_url(s)), None),
                                     30, what=f"{name} on XMPP")
                status, headers, body = _head(oob_url(got))
                assert status == 200 and body == data, (name, status)
                assert headers.get("x-content-type-options") == "nosniff", (name, headers)
                csp = headers.get("content-security-policy", "")
                assert "default-src 'none'" in csp and "sandbox" in csp, (name, headers)
                ctype = headers.get("content-type", "")
                disposition = headers.get("content-disposition", "")
                if mimetype == "image/png":
                    assert ctype == "image/png" and disposition.startswith("inline"), (name, headers)
                else:
                    assert disposition.startswith("attachment"), (name, headers)
                    assert ctype.split(";")[0] in ("application/octet-stream", "text/plain"), (name, headers)
    run(go())


def test_media_errors_tell_nothing_internal(bridge):
    """A guessed token is a plain 404 that names neither the homeserver nor the database."""
    s = settings()
    status, headers, body = _head(f"{s.bridge_url}/media/{'0' * 32}/x.html")
    assert status == 404, status
    text = body.decode("utf-8", "replace")
    for internal in (s.hs_url, "127.0.0.1", "sqlite", "postgres", "database"):
        assert internal not in text, (internal, text)


# ------------------------------------------------------------- M4: the public listener --
def test_unauthenticated_transaction_is_refused_before_its_body(bridge):
    """A PUT that announces a 16 MB body and sends one byte gets its 401 (no token) or 403 (a
    wrong one) at once: the bridge does not wait for, or buffer, a body it would refuse."""
    path = f"/_matrix/app/v1/transactions/e2e-{token(4)}"
    for auth, expected in (("", 401), (f"Authorization: Bearer wrong-{token(4)}\r\n", 403)):
        sock = _connect()
        try:
            sock.sendall((f"PUT {path} HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"
                          f"{auth}Content-Length: 16000000\r\n\r\n{{").encode())
            assert _status_of(sock, timeout=5) == expected, f"no prompt {expected} for {auth!r}"
        finally:
            sock.close()
    # The homeserver's own requests still work.
    req = urllib.request.Request(settings().bridge_url + path, data=b'{"events": []}', method="PUT",
                                 headers={"Authorization": f"Bearer {settings().hs_token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_slow_clients_are_cut_off_and_health_stays_responsive(bridge):
    """Slow-loris: one client trickles its headers, another (with the right token, so the body
    is read) trickles a body. Both connections are closed by the bridge within its timeouts,
    and /health answers at once all along."""
    header_timeout = _appservice_conf("header_timeout_secs", 10)
    request_timeout = _appservice_conf("request_timeout_secs", 20)
    s = settings()
    slow_head = _connect()
    slow_head.sendall(b"GET /health HTTP/1.1\r\nHost: bridge\r\n")
    slow_body = _connect()
    slow_body.sendall((f"PUT /_matrix/app/v1/transactions/e2e-{token(4)} HTTP/1.1\r\nHost: bridge\r\n"
                       f"Authorization: Bearer {s.hs_token}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: 1000\r\n\r\n{{").encode())
    started = time.monotonic()
    deadline = started + request_timeout + 15
    closed: dict[str, float] = {}
    slowest_health = 0.0
    try:
        while len(closed) < 2 and time.monotonic() < deadline:
            for name, sock in (("headers", slow_head), ("body", slow_body)):
                if name in closed:
                    continue
                if _closed(sock):
                    closed[name] = time.monotonic() - started
                else:
                    try:  # Keep trickling: activity must not extend the deadline.
                        sock.sendall(b"X-Slow: 1\r\n" if name == "headers" else b" ")
                    except OSError:
                        closed[name] = time.monotonic() - started
            slowest_health = max(slowest_health, _health_ok())
            time.sleep(0.5)
        assert "headers" in closed, f"a client sending its headers slowly was not cut off ({closed})"
        assert "body" in closed, f"a client sending its body slowly was not cut off ({closed})"
        assert closed["headers"] < header_timeout + 5, closed
        assert closed["body"] < request_timeout + 5, closed
        assert slowest_health < 2, f"/health took {slowest_health:.1f}s while slow clients were connected"
    finally:
        slow_head.close()
        slow_body.close()
