"""Issue 12 fault campaign, the SMTP rows: a mail server answering 4xx, then 5xx, and one that
black-holes (accepts the TCP connection, never says a word). A burst of missed calls goes in
during each fault; afterwards each notice e-mail arrived exactly once and in order, or (5xx) was
given up with a notice in the control room, and the lane carries on.

The SMTP server is a real one (aiosmtpd) whose RCPT answer the test sets; the black hole is a
plain listening socket. Both sit on the port of the bridge's `missed_calls.mail.smtp` (the rig
sets `timeout_secs: 5`). Each test appends its result line to `<state>/faults.md`.
"""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from test_control import control_room
from test_missed_calls import Sink, _calls_cfg, message_id, missed_call, post_events, rnd_number
from test_rooms import _bot
from ucb import Peers, run, settings, token, wait_for

BURST = 50
DORA = "dora@calls.test"   # extension 204, e-mail notices only


class Controlled(Sink):
    """The SMTP server, answering RCPT as `mode` says: `ok`, `4xx` (451 for everyone) or `5xx`
    (550 for the addresses in `refuse`). Counts the refusals it gave."""

    def __init__(self, port: int):
        super().__init__(port)
        self.mode = "ok"
        self.refuse: set[str] = set()
        self.refused = {"4xx": 0, "5xx": 0}
        self.order: list[str] = []   # Message-IDs in the order they arrived

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd)
        if self.mode == "4xx":
            self.refused["4xx"] += 1
            return "451 4.3.0 Try again later"
        if self.mode == "5xx" and address in self.refuse:
            self.refused["5xx"] += 1
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd)
        answer = await super().handle_DATA(server, session, envelope)
        with self.lock:
            self.order.append(self.messages[-1]["Message-ID"])
        return answer


class BlackHole:
    """Accepts TCP connections on the port and never writes or reads a byte."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stopped = True
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture(scope="module")
def smtp():
    server = Controlled(int(_calls_cfg()["mail"]["smtp"]["port"]))
    server.start()
    yield server
    server.stop()


def tally(got: list[str], expected: list[str]) -> tuple[int, int, int]:
    """(lost, duplicated, reordered) of the Message-IDs that arrived against those expected."""
    got = [g for g in got if g in expected]
    lost = sum(1 for e in expected if e not in got)
    dup = len(got) - len(set(got))
    seen = [g for i, g in enumerate(got) if g not in got[:i]]
    order = [e for e in expected if e in seen]
    return lost, dup, sum(1 for a, b in zip(seen, order) if a != b)


def verdict(fault: str, load: str, counts: tuple[int, int, int], recovery: float) -> None:
    line = f"| {fault} | {load} | {counts[0]} | {counts[1]} | {counts[2]} | {recovery:.1f} s | {settings().db} |"
    print("\nFAULT " + line)
    with open(os.path.join(settings().state, "faults.md"), "a") as f:   # collected for bench/faults.md
        f.write(line + "\n")


def outbox(bridge) -> int:
    return (bridge.health() or {}).get("outbox", -1)


def burst(n: int) -> list[str]:
    """n missed calls for dora (one mail lane), posted in order; their Message-IDs."""
    calls = [f"sf-{token(5)}-{i}" for i in range(n)]
    for c in calls:
        status, body = post_events(missed_call(c, "204", rnd_number()))
        assert status == 200, body
    return [message_id(c, "dora") for c in calls]


def drained_exactly_once(bridge, smtp: Controlled, mids: list[str], since: float, timeout: float = 120) -> float:
    """Wait for every mail and an empty outbox; assert each arrived once and in order. Returns the
    seconds from `since` to the last arrival."""
    run(wait_for(lambda: all(smtp.by_id(m) for m in mids), timeout,
                 what=f"all {len(mids)} mails (got {sum(1 for m in mids if smtp.by_id(m))})"))
    recovery = time.monotonic() - since
    run(wait_for(lambda: outbox(bridge) == 0, 60, what=f"an empty outbox (/health {bridge.health()})"))
    with smtp.lock:
        order = list(smtp.order)
    counts = tally(order, mids)
    assert counts == (0, 0, 0), f"lost, duplicated, reordered: {counts}"
    return recovery


@pytest.mark.timeout(600)
def test_smtp_4xx_during_a_burst_is_retried_each_mail_once_in_order(bridge, smtp):
    smtp.mode = "4xx"
    before = smtp.refused["4xx"]
    offset = bridge.log_size()
    try:
        mids = burst(BURST)
        # Positive control: the server refused at least one attempt with 451, the bridge logged the
        # failed attempt and kept all the mails queued.
        bridge.wait_log(offset, "delivery failed; will retry", "mail>" + DORA, timeout=30)
        run(wait_for(lambda: smtp.refused["4xx"] > before and outbox(bridge) >= BURST, 30,
                     what=f"451 answers and {BURST} mails queued (/health {bridge.health()})"))
        assert not any(smtp.by_id(m) for m in mids), "a mail went through a 451"
    finally:
        smtp.mode = "ok"
    back = time.monotonic()
    recovery = drained_exactly_once(bridge, smtp, mids, back)
    verdict("SMTP answering 451 (4xx) during a burst", f"{BURST} missed-call mails, one lane",
            (0, 0, 0), recovery)


@pytest.mark.timeout(600)
def test_smtp_5xx_is_given_up_and_shown_in_the_control_room_the_lane_goes_on(bridge, smtp):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            smtp.mode, smtp.refuse = "5xx", {DORA}
            offset = bridge.log_size()
            try:
                refused = burst(5)
                # Each refused mail is logged and becomes a notice in the control room.
                await admin.sync_until(
                    lambda: all(any(mid in e["content"].get("body", "") and "was not sent" in e["content"]["body"]
                                    for e in admin.messages_in(room, _bot())) for mid in refused),
                    60, "a control-room notice for each refused mail")
                assert bridge.log_lines(offset, "delivery refused", "mail>" + DORA)
                assert smtp.refused["5xx"] >= len(refused)
            finally:
                smtp.mode, smtp.refuse = "ok", set()
            # No stuck lane: later mails on dora's lane go out, each once, in order; the refused
            # ones (before them on the lane) were given up, not retried.
            back = time.monotonic()
            later = burst(BURST)
            await wait_for(lambda: all(smtp.by_id(m) for m in later), 120, what=f"the {BURST} later mails")
            recovery = time.monotonic() - back
            await wait_for(lambda: outbox(bridge) == 0, 60, what="an empty outbox")
            with smtp.lock:
                order = list(smtp.order)
            counts = tally(order, later)
            assert counts == (0, 0, 0), f"lost, duplicated, reordered: {counts}"
            assert not any(smtp.by_id(m) for m in refused), "a refused mail was sent after all"
            notes = [e for e in admin.messages_in(room, _bot()) for mid in refused if mid in e["content"]["body"]]
            assert len(notes) == len(refused), f"one notice per refused mail: {len(notes)}"
            verdict("SMTP answering 550 (5xx) for one recipient",
                    f"5 refused mails (5 control-room notices), then {BURST} more on the lane", counts, recovery)
    run(go(), timeout=500)


@pytest.mark.timeout(600)
def test_smtp_black_hole_times_out_is_retried_and_no_lane_stays_stuck(bridge, smtp):
    smtp.stop()
    hole = BlackHole(smtp.port)
    offset = bridge.log_size()
    try:
        mids = burst(BURST)
        # Positive control: the bridge connected to the black hole, gave up on the silent server
        # after smtp.timeout_secs (5 s in the rig) and kept every mail queued.
        bridge.wait_log(offset, "delivery failed; will retry", "no answer within", timeout=60)
        assert hole.held, "the bridge never connected"
        run(wait_for(lambda: outbox(bridge) >= BURST, 30, what=f"{BURST} mails queued (/health {bridge.health()})"))
        # A second timed-out attempt: the lane is retrying, not hanging on the first connection.
        run(wait_for(lambda: len(bridge.log_lines(offset, "delivery failed; will retry", "no answer within")) >= 2,
                     60, what="a second timed-out attempt"))
    finally:
        hole.close()
        smtp.start()
    back = time.monotonic()
    recovery = drained_exactly_once(bridge, smtp, mids, back)
    verdict("SMTP black-holing (accepts TCP, never answers)", f"{BURST} missed-call mails, one lane",
            (0, 0, 0), recovery)

