"""Links in messages from XMPP: Matrix clients get them as links in a sanitised formatted body."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from ucb import Peers, run, token

HREF = re.compile(r'<a href="([^"]*)">([^<]*)</a>')


def tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every element start tag in html, with its attributes, as a browser would parse it."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    P().feed(html)
    return found


def test_links_from_xmpp_are_links_on_matrix(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            body = (f"{token(2)} call +49 30 1234567 or 0176 12345678, mail info@example.org, "
                    r"see www.example.org and <\\fileserver\team share\plan.pdf> "
                    "but not 12:30 on 12.05.2026")
            x.send_chat(m.jid, body)
            ev = await m.wait_message(room_id, x.ghost, body)
            content = ev["content"]
            # The plain body is what was written; the links are in the HTML.
            assert content["body"] == body
            assert content.get("format") == "org.matrix.custom.html", content
            links = HREF.findall(content["formatted_body"])
            assert links == [
                ("tel:+49301234567", "+49 30 1234567"),
                ("tel:+4917612345678", "0176 12345678"),
                ("mailto:info@example.org", "info@example.org"),
                ("http://www.example.org", "www.example.org"),
                ("file://fileserver/team%20share/plan.pdf", r"\\fileserver\team share\plan.pdf"),
            ], content["formatted_body"]

            # Markup written by the sender stays text, and a plain message stays plain.
            hostile = (f"{token(2)} <img src=x onerror=alert(1)> <a href=\"javascript:alert(1)\">x</a> "
                       "https://example.org/?q=<script>")
            x.send_chat(m.jid, hostile)
            ev = await m.wait_message(room_id, x.ghost, hostile)
            html = ev["content"]["formatted_body"]
            assert tags(html) == [("a", [("href", "https://example.org/?q=")])], html
            assert HREF.findall(html) == [("https://example.org/?q=", "https://example.org/?q=")], html
            plain = f"{token(2)} nothing to link here"
            x.send_chat(m.jid, plain)
            ev = await m.wait_message(room_id, x.ghost, plain)
            assert "formatted_body" not in ev["content"], ev["content"]
    run(go())


def test_the_suites_phone_examples_become_tel_links(bridge):
    """The seed's own examples link by their shape (an international number of E.164 length, or an
    explicit prefix), although the area code 123 is not assigned; a national number without prefix
    keeps the stricter rule and stays text."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            body = f"{token(2)} ruf phone:+4912345612 oder +49 123 456 - 12 an, nicht 0123 45612"
            x.send_chat(m.jid, body)
            ev = await m.wait_message(room_id, x.ghost, body)
            links = HREF.findall(ev["content"]["formatted_body"])
            assert links == [("tel:+4912345612", "phone:+4912345612"), ("tel:+4912345612", "+49 123 456 - 12")], \
                ev["content"]["formatted_body"]
    run(go())
