"""A message that waited shows its original time on the other side.

XMPP -> Matrix: the XEP-0203 `<delay stamp>` a message carries becomes the Matrix event's
`origin_server_ts` (the appservice `ts` parameter), if it is believable (not in the future, not
older than 7 days); otherwise, and without a stamp, the time the bridge received it.
Matrix -> XMPP: a message that reaches XMPP more than a few seconds after it was sent on Matrix
(here: the bridge was down, and the homeserver's backlog delivered it later) carries
`<delay xmlns='urn:xmpp:delay' stamp=... from=component>`; one on time carries none.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from ucb import Peers, run, settings, token, wait_for, xml_escape

DELAY_NS = "urn:xmpp:delay"


def stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def delayed_xml(to: str, body: str, when: str) -> str:
    return (f"<message to='{xml_escape(to)}' type='chat' id='d{token(4)}'><body>{xml_escape(body)}</body>"
            f"<delay xmlns='{DELAY_NS}' from='{settings().xmpp_domain}' stamp='{when}'/></message>")


def test_xmpp_delay_stamp_becomes_the_matrix_events_time(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            # Written two hours ago (e.g. queued by her client while offline): shown at that time.
            written = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
            body = "from two hours ago " + token(3)
            x.send_xml(delayed_xml(m.jid, body, stamp(written)))
            ev = await m.wait_message(room, x.ghost, body)
            assert ev["origin_server_ts"] == ms(written), (ev["origin_server_ts"], ms(written))
            # Not believable: a stamp in the future and one older than a week are the receive time.
            for when in (datetime.now(timezone.utc) + timedelta(days=1), datetime.now(timezone.utc) - timedelta(days=30)):
                before = time.time() * 1000
                body = "odd stamp " + token(3)
                x.send_xml(delayed_xml(m.jid, body, stamp(when)))
                ev = await m.wait_message(room, x.ghost, body)
                assert before - 2000 <= ev["origin_server_ts"] <= time.time() * 1000 + 2000, (when, ev)
    run(go())


def test_matrix_message_delivered_late_carries_a_delay_on_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            # On time: no <delay>.
            on_time = "on time " + token(3)
            await m.send_text(room, on_time)
            got = await x.wait_chat(m.jid, on_time)
            assert got.child(DELAY_NS, "delay") is None, got.xml
            # The bridge is down while he writes: the homeserver keeps the event and pushes it when
            # the bridge is back, more than the few seconds after which a message counts as late.
            bridge.stop()
            try:
                late = "written while the bridge was down " + token(3)
                event_id = await m.send_text(room, late)
                status, ev = await m.request("GET", f"/rooms/{quote(room, safe='')}/event/{quote(event_id, safe='')}")
                assert status == 200, ev
                sent = ev["origin_server_ts"]
                await wait_for(lambda: time.time() * 1000 - sent > 7000, 15, what="the event to be 7 s old")
            finally:
                bridge.start()
            got = await x.wait_chat(m.jid, late, timeout=60)
            delay = got.child(DELAY_NS, "delay")
            assert delay is not None, got.xml
            assert delay.get("from") == settings().component, got.xml
            shown = datetime.fromisoformat(delay["stamp"].replace("Z", "+00:00"))
            assert abs(ms(shown) - sent) < 1000, (delay["stamp"], sent)
    run(go(), timeout=150)
