"""The bridge as an XMPP service: service discovery and presence subscriptions."""
from __future__ import annotations

from slixmpp.exceptions import IqError

from ucb import Peers, bare, run, settings, wait_for

SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error")


def _presence_from(x, jid: str, after: int = 0):
    return [pr for pr in x.presences[after:] if bare(pr.frm) == jid and pr.type not in SUBSCRIPTION_TYPES]


def test_disco_info_of_the_gateway(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user()
            iq = await x.plugin["xep_0030"].get_info(jid=settings().component, timeout=10)
            identities = iq["disco_info"]["identities"]
            assert any(i[0] == "gateway" for i in identities), f"no gateway identity: {identities}"
    run(go())


def test_disco_info_of_a_matrix_contact(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            try:
                iq = await x.plugin["xep_0030"].get_info(jid=m.jid, timeout=10)
            except IqError as e:
                raise AssertionError(f"disco#info to {m.jid}: {e.iq['error']['condition']}") from None
            identities = iq["disco_info"]["identities"]
            assert any(i[0] in ("account", "client") for i in identities), f"identities: {identities}"
    run(go())


async def _subscribe(x, jid: str) -> None:
    x.send_presence(pto=jid, ptype="subscribe")
    await wait_for(lambda: any(bare(pr.frm) == jid and pr.type == "subscribed" for pr in x.presences), 20,
                   what=f"'subscribed' from {jid}")
    await wait_for(lambda: _presence_from(x, jid), 20, what=f"a presence from {jid} after subscribing")
    await wait_for(lambda: x.client_roster[jid]["subscription"] in ("to", "both"), 10,
                   what=f"the roster item for {jid} to show the subscription")


def test_subscribe_to_a_matrix_contact(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)   # a conversation: no approval needed (see test_consent.py)
            await _subscribe(x, m.jid)
    run(go())


def test_subscription_survives_a_restart(bridge):
    """After a bridge restart the contact still answers the server's probe at login with a presence."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)   # a conversation: no approval needed (see test_consent.py)
            await _subscribe(x, m.jid)
            bridge.restart()
            y = await p.relogin(x)   # initial presence: Prosody probes every contact the user is subscribed to
            await wait_for(lambda: _presence_from(y, m.jid), 20,
                           what=f"a presence from {m.jid} after the restart, without subscribing again")
            assert y.client_roster[m.jid]["subscription"] in ("to", "both")
    run(go())
