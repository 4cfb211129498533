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

from ucb import Peers, run, settings, token, wait_for

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
