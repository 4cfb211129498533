"""Delivery and read receipts in a 1:1 chat: XEP-0184 / XEP-0333 <-> Matrix m.read receipts."""
from __future__ import annotations

from ucb import MARKERS_NS, RECEIPTS_NS, Peers, run, settings, token, wait_for


def _acks(x, frm: str, ns: str, name: str, of_id: str, after: int = 0) -> list:
    return [st for st in x.messages_with(frm, ns, name, after) if (st.child(ns, name) or {}).get("id") == of_id]


def _fmt(x, frm: str, after: int = 0) -> str:
    got = [st.xml for st in x.messages[after:] if st.frm.split("/", 1)[0] == frm]
    return "\n  " + "\n  ".join(got) if got else " (none)"


async def _wait_ack(x, frm: str, ns: str, name: str, of_id: str, timeout: float = 20, after: int = 0):
    try:
        return await wait_for(lambda: _acks(x, frm, ns, name, of_id, after), timeout)
    except AssertionError:
        raise AssertionError(
            f"{x.bare} got no <{name} xmlns='{ns}' id='{of_id}'/> from {frm} within {timeout:.0f}s; "
            f"messages from it:{_fmt(x, frm, after)}") from None


# ------------------------------------------------------------------ XMPP -> Matrix --
def test_xmpp_message_gets_delivery_receipt(bridge):
    """Once Synapse accepted the event, the sender gets an XEP-0184 <received/> for her id."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            body = "please confirm " + token(3)
            sid = x.send_chat_requesting_receipts(m.jid, body)
            await m.wait_message(room_id, x.ghost, body)
            [ack, *more] = await _wait_ack(x, m.jid, RECEIPTS_NS, "received", sid)
            assert ack.body is None, f"the receipt carries a body: {ack.xml}"
            assert ack.type != "error", ack.xml
            assert not more, f"more than one XEP-0184 receipt for {sid}: {[a.xml for a in [ack, *more]]}"
            # No <displayed/> before the Matrix user read it. Positive control: a reply of hers in the
            # same chat, sent after the message arrived, reaches x; a <displayed/> the bridge made on
            # delivery would have been sent before it.
            reply = "reply " + token(3)
            await m.send_text(room_id, reply)
            await x.wait_chat(m.jid, reply)
            shown = _acks(x, m.jid, MARKERS_NS, "displayed", sid)
            assert not shown, f"<displayed/> before any read receipt: {[s.xml for s in shown]}"
    run(go())


def test_matrix_read_receipt_becomes_displayed_marker(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            body = "read me " + token(3)
            sid = x.send_chat_requesting_receipts(m.jid, body)
            ev = await m.wait_message(room_id, x.ghost, body)
            await _wait_ack(x, m.jid, RECEIPTS_NS, "received", sid)

            await m.send_read_receipt(room_id, ev["event_id"])
            [shown, *_] = await _wait_ack(x, m.jid, MARKERS_NS, "displayed", sid)
            assert shown.type != "error" and shown.body is None, shown.xml
    run(go())


def test_read_receipt_on_a_later_message_marks_the_later_one(bridge):
    """Two messages, a read receipt on the second: <displayed/> names the second id."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            b1, b2 = "one " + token(3), "two " + token(3)
            s1 = x.send_chat_requesting_receipts(m.jid, b1)
            await m.wait_message(room_id, x.ghost, b1)
            s2 = x.send_chat_requesting_receipts(m.jid, b2)
            ev2 = await m.wait_message(room_id, x.ghost, b2)
            await _wait_ack(x, m.jid, RECEIPTS_NS, "received", s2)
            await m.send_read_receipt(room_id, ev2["event_id"])
            await _wait_ack(x, m.jid, MARKERS_NS, "displayed", s2)
            # The receipt named the second message only: no <displayed/> for the first (the one for
            # the second, just received, is the positive control: both would go out together).
            wrong = _acks(x, m.jid, MARKERS_NS, "displayed", s1)
            assert not wrong, f"<displayed/> for the first message {s1}, read was the second: {[w.xml for w in wrong]}"
    run(go())


# ------------------------------------------------------------------ Matrix -> XMPP --
def test_matrix_message_requests_receipts(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            body = "markable " + token(3)
            await m.send_text(room_id, body)
            got = await x.wait_chat(m.jid, body)
            assert got.id, f"the bridge's message has no id, nothing to mark: {got.xml}"
            assert got.child(RECEIPTS_NS, "request") is not None, \
                f"no <request xmlns='{RECEIPTS_NS}'/> (XEP-0184) in {got.xml}"
            assert got.child(MARKERS_NS, "markable") is not None, \
                f"no <markable xmlns='{MARKERS_NS}'/> (XEP-0333) in {got.xml}"
    run(go())


def test_xmpp_displayed_marker_becomes_matrix_read_receipt(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            body = "did you read this " + token(3)
            event_id = await m.send_text(room_id, body)
            got = await x.wait_chat(m.jid, body)
            assert got.id, f"the bridge's message has no id, nothing to mark: {got.xml}"
            # No read receipt before a <displayed/>: not on delivery, not for the delivery receipts
            # (XEP-0184 <received/>, XEP-0333 <received/>) her client sends. Positive control: a
            # later message of x in the same chat reaches m, and m's syncs up to it carry every
            # receipt the bridge set before it.
            x.send_xml(f'<message to="{m.jid}" type="chat" id="rc-{token(3)}">'
                       f'<received xmlns="{RECEIPTS_NS}" id="{got.id}"/></message>')
            x.send_marker(m.jid, "received", got.id)
            later = "not read yet " + token(3)
            x.send_chat(m.jid, later)
            await m.wait_message(room_id, x.ghost, later)
            await m.sync_once(0)
            early = m.read_receipts(room_id, event_id)
            assert x.ghost not in early, f"a read receipt by {x.ghost} on {event_id} before any <displayed/>"

            mark = x.send_marker(m.jid, "displayed", got.id)
            await m.sync_until(lambda: x.ghost in m.read_receipts(room_id, event_id), 20,
                               f"an m.read receipt by {x.ghost} on {event_id} after <displayed id='{got.id}'/> "
                               f"(receipts synced: {[e for e in m.ephemeral.get(room_id, []) if e.get('type') == 'm.receipt']})")
            assert x.error_for(mark) is None, f"the marker bounced: {x.error_for(mark).xml}"
    run(go())


def test_xmpp_displayed_marker_for_an_earlier_message(bridge):
    """Of two bridged messages, marking the first displayed puts the receipt on the first event."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            b1, b2 = "first " + token(3), "second " + token(3)
            e1 = await m.send_text(room_id, b1)
            g1 = await x.wait_chat(m.jid, b1)
            e2 = await m.send_text(room_id, b2)
            await x.wait_chat(m.jid, b2)
            mark = x.send_marker(m.jid, "displayed", g1.id)
            await m.sync_until(lambda: x.ghost in m.read_receipts(room_id, e1), 20,
                               f"an m.read receipt by {x.ghost} on the first event {e1}")
            assert x.error_for(mark) is None, f"the marker bounced: {x.error_for(mark).xml}"
            assert x.ghost not in m.read_receipts(room_id, e2), \
                f"the ghost's receipt is on the second event {e2}, the marker named the first"
    run(go())


def test_unknown_marker_id_is_harmless(bridge):
    """A marker naming an id the bridge never sent changes nothing and the chat goes on."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            x.send_marker(m.jid, "displayed", "never-sent-" + token(4))
            body = "still fine " + token(3)
            x.send_chat(m.jid, body)
            await m.wait_message(room_id, x.ghost, body)
            await m.sync_once(0)
            receipts = [e for e in m.ephemeral.get(room_id, []) if e.get("type") == "m.receipt"
                        and any(x.ghost in v.get("m.read", {}) for v in e.get("content", {}).values())]
            # The ghost's own message may carry its implicit read position; a marker for an unknown id
            # must not put a receipt on any *other* event.
            own = {e["event_id"] for e in await m.room_messages(room_id, x.ghost)}
            stray = [eid for e in receipts for eid, v in e["content"].items()
                     if x.ghost in v.get("m.read", {}) and eid not in own]
            assert not stray, f"a marker for an unknown id produced receipts on {stray}"
    run(go())


def test_refused_message_gets_no_delivery_receipt(bridge):
    """A message the bridge refuses (too long) gets an error, never a <received/>."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            big = f"big {token(3)} " + "a" * (settings().max_message_bytes + 1000)
            refused = x.send_chat_requesting_receipts(m.jid, big)
            err = await x.wait_error(refused)
            assert err.error_condition, f"error reply without a condition: {err.xml}"
            # A normal message after it: once its receipt is here, one for the refused one would be too.
            body = "this one fits " + token(3)
            ok = x.send_chat_requesting_receipts(m.jid, body)
            await m.wait_message(room_id, x.ghost, body)
            await _wait_ack(x, m.jid, RECEIPTS_NS, "received", ok)
            wrong = _acks(x, m.jid, RECEIPTS_NS, "received", refused) + _acks(x, m.jid, MARKERS_NS, "received", refused)
            assert not wrong, f"a delivery receipt for the refused message: {[w.xml for w in wrong]}"
    run(go())
