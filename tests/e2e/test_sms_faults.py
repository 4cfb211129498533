"""Issue 12 fault campaign, the Kannel rows: delivery reports per part, a "failed" report, and
Kannel refusing an SMS.

A long SMS goes to the network as several parts and real Kannel (SMPP, EMI, ...) calls the
DLR URL once per part, each call naming the part by the SMSC's id of it (`%F`). The rig's fake
SMSC cannot do that: it reports a concatenated SMS once, and never "failed". So these tests run a
bridge with Kannel's own reports off (`dlr_mask: 0`) and call the bridge's DLR URL themselves,
with exactly the parameters Kannel fills into the URL the bridge gives it
(`/sms/kannel/dlr?key=…&ref=…&status=%d&reply=%A&part=%F`). The SMS themselves go through the
real Kannel and its fake SMSC. Kannel refusing: the real Kannel with a wrong sendsms password
answers `403 Authorization failed`.
"""
from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import ucb
from test_sms import address, ghost, grant, notices, rnd_mobile, sms_room, sms_to, wait_sms
from ucb import RECEIPTS_NS, Peers, run, settings, token, wait_for

SMS_LOAD = 10
THREE_PARTS = "Lorem ipsum dolor sit amet " * 12   # 324 GSM characters: 3 parts with a short suffix


def no_kannel_reports(cfg: dict) -> None:
    cfg["sms"]["kannel"]["dlr_mask"] = 0


def dlr(reference: str, status: int, part: str, reply: str = "") -> int:
    """One delivery report as Kannel sends it for one part."""
    q = urllib.parse.urlencode({"key": settings().config["sms"]["inbound_secret"], "ref": reference,
                                "status": str(status), "reply": reply, "part": part})
    try:
        with urllib.request.urlopen(f"{settings().bridge_url}/sms/kannel/dlr?{q}", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def references(bridge, offset: int, number: str, n: int) -> list[str]:
    """Our references of the first n SMS to `number` the gateway accepted since `offset`, in order."""
    lines = bridge.wait_log(offset, "SMS accepted", number, timeout=60)
    deadline = time.monotonic() + 60
    while len(lines) < n:
        assert time.monotonic() < deadline, f"{len(lines)} of {n} SMS accepted"
        time.sleep(0.2)
        lines = bridge.log_lines(offset, "SMS accepted", number)
    refs = [re.search(r'reference="?([A-Za-z0-9-]+)', ln).group(1) for ln in lines[:n]]
    assert len(set(refs)) == n, refs
    return refs


def verdict(fault: str, load: str, counts: tuple[int, int, int], recovery: float) -> None:
    line = f"| {fault} | {load} | {counts[0]} | {counts[1]} | {counts[2]} | {recovery:.1f} s | {settings().db} |"
    print("\nFAULT " + line)
    with open(os.path.join(settings().state, "faults.md"), "a") as f:   # collected for bench/faults.md
        f.write(line + "\n")


@pytest.mark.timeout(400)
def test_the_tick_comes_only_when_every_part_was_delivered(bridge):
    with ucb.config_variant(bridge, "sms-dlr-parts", no_kannel_reports) as b:
        async def go():
            async with Peers() as p:
                x = await p.xmpp_user("sfp")
                await grant(p, x.bare)
                number = rnd_mobile()
                offset = b.log_size()
                texts = [f"{THREE_PARTS}{i:02d} {token(2)}" for i in range(SMS_LOAD)]
                sids = [x.send_chat_requesting_receipts(address(number), t) for t in texts]
                for t in texts:
                    await wait_sms(number, t, timeout=60)
                refs = references(b, offset, number, SMS_LOAD)

                def receipts(sid: str) -> int:
                    return len([r for r in x.messages_with(address(number), RECEIPTS_NS, "received")
                                if r.child(RECEIPTS_NS, "received").get("id") == sid])
                # Two of three parts of every SMS delivered, one of them reported twice.
                for ref in refs:
                    for part in ("p1", "p2", "p1"):
                        assert dlr(ref, 1, f"{ref}-{part}") == 200
                # Positive control: a later SMS with all its parts delivered gets its receipt; had the
                # reports above made a receipt, it would have come before this one.
                probe = f"probe {token(3)}"
                probe_sid = x.send_chat_requesting_receipts(address(number), probe)
                await wait_sms(number, probe)
                [probe_ref] = [r for r in references(b, offset, number, SMS_LOAD + 1) if r not in refs]
                assert dlr(probe_ref, 1, f"{probe_ref}-p1") == 200
                await wait_for(lambda: receipts(probe_sid), 30, what="the probe's receipt")
                assert [receipts(s) for s in sids] == [0] * SMS_LOAD, "a receipt before every part was delivered"
                # The last parts, in reverse order, two of them twice: one receipt each.
                t0 = time.monotonic()
                for ref in reversed(refs):
                    assert dlr(ref, 1, f"{ref}-p3") == 200
                for ref in refs[:2]:
                    assert dlr(ref, 1, f"{ref}-p3") == 200
                await wait_for(lambda: all(receipts(s) for s in sids), 30, what="a receipt for every SMS")
                recovery = time.monotonic() - t0
                # Exactly once: another probe's receipt comes after any second receipt would have.
                probe2 = f"probe two {token(3)}"
                probe2_sid = x.send_chat_requesting_receipts(address(number), probe2)
                await wait_sms(number, probe2)
                probe2_ref = references(b, offset, number, SMS_LOAD + 2)[-1]
                assert dlr(probe2_ref, 1, "only") == 200
                await wait_for(lambda: receipts(probe2_sid), 30, what="the second probe's receipt")
                counts = [receipts(s) for s in sids]
                assert counts == [1] * SMS_LOAD, counts
                assert [s[2] for s in sms_to(number)][:SMS_LOAD] == texts, "sent out of order"
                verdict("Kannel per-part delivery reports (3 parts, repeats, out of order; driven at the DLR URL)",
                        f"{SMS_LOAD} SMS of 3 parts from XMPP, {SMS_LOAD * 4 + 2} reports",
                        (0, 0, 0), recovery)
        run(go(), timeout=300)


@pytest.mark.timeout(300)
def test_a_failed_part_becomes_a_notice_to_the_sender(bridge):
    with ucb.config_variant(bridge, "sms-dlr-failed", no_kannel_reports) as b:
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("sff")
                x = await p.xmpp_user("sxf")
                await grant(p, m.user_id)
                await grant(p, x.bare)
                # Matrix: part 2 of 2 fails (status 2, "not delivered to the phone").
                number = rnd_mobile()
                room = await sms_room(m, number)
                offset = b.log_size()
                text = f"{THREE_PARTS[:200]} {token(3)}"   # 2 parts
                eid = await m.send_text(room, text)
                await wait_sms(number, text)
                [ref] = references(b, offset, number, 1)
                assert dlr(ref, 1, "a") == 200
                assert dlr(ref, 2, "b", "Absent subscriber") == 200
                assert dlr(ref, 2, "b", "Absent subscriber") == 200   # Kannel's retry of the same report
                await m.sync_until(lambda: notices(m, room, ghost(number), "Absent subscriber"), 30,
                                   "the failure notice")
                [n] = notices(m, room, ghost(number), "was not delivered")
                assert "part" in n["content"]["body"], n["content"]["body"]
                assert ghost(number) not in m.read_receipts(room, eid), "a failed SMS got the delivered tick"
                # XMPP: part 1 of 2 rejected by the SMSC (status 16): a message from the number's
                # address says so (an error reply to a bare JID would be dropped by the server).
                number2 = rnd_mobile()
                offset = b.log_size()
                x.send_chat_requesting_receipts(address(number2), text)
                await wait_sms(number2, text)
                [ref2] = references(b, offset, number2, 1)
                assert dlr(ref2, 16, "a", "Rejected") == 200
                assert dlr(ref2, 16, "a", "Rejected") == 200   # repeated
                await wait_for(lambda: [c for c in x.chats_from(address(number2)) if "Rejected" in c.body], 30,
                               what="the failure notice from the number's address")
                # Positive control for "once": a second SMS on the same conversation fails too; its
                # notice comes after a second one for the first would have.
                second = f"second {token(3)}"
                x.send_chat_requesting_receipts(address(number2), second)
                await wait_sms(number2, second)
                [_, ref3] = references(b, offset, number2, 2)
                assert dlr(ref3, 2, "x", "Second failure") == 200
                await wait_for(lambda: [c for c in x.chats_from(address(number2)) if "Second failure" in c.body], 30,
                               what="the second failure notice")
                firsts = [c for c in x.chats_from(address(number2)) if "Rejected" in c.body]
                assert len(firsts) == 1 and "was not delivered" in firsts[0].body, [c.body for c in firsts]
        run(go(), timeout=240)


@pytest.mark.timeout(300)
def test_kannel_refusing_the_sms_is_a_notice_and_no_retry(bridge):
    def wrong_password(cfg: dict) -> None:
        cfg["sms"]["kannel"]["password"] = "not-the-password"
    with ucb.config_variant(bridge, "sms-refused", wrong_password) as b:
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("sfr")
                await grant(p, m.user_id)
                number = rnd_mobile()
                room = await sms_room(m, number)
                offset = b.log_size()
                await m.send_text(room, f"refused {token(3)}")
                await m.sync_until(lambda: notices(m, room, ghost(number), "Authorization failed"), 30,
                                   "the refusal notice")
                # No retry: a second SMS gets its own notice; a retry of the first would have come
                # before it (one lane per conversation), and the log shows one attempt per SMS.
                await m.send_text(room, f"refused again {token(3)}")
                await m.sync_until(lambda: len(notices(m, room, ghost(number), "Authorization failed")) >= 2, 30,
                                   "the second refusal notice")
                assert len(b.log_lines(offset, "delivery refused", number)) == 2
                assert not b.log_lines(offset, "will retry", number)
                assert sms_to(number) == []
        run(go(), timeout=200)
