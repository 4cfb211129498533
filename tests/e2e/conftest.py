"""Session fixtures for the end-to-end suite: settings, a fresh database, the bridge process.

The peers (Synapse, Prosody) must already run (scripts/test.sh starts them); the bridge is started
here, once per session, and restarted by the tests that crash it. On a failure the tail of the
bridge log is attached to the report.
"""
from __future__ import annotations

import pytest

import ucb

_BRIDGE: ucb.Bridge | None = None


@pytest.fixture(scope="session")
def s() -> ucb.Settings:
    return ucb.settings()


@pytest.fixture(scope="session")
def bridge_session(s):
    global _BRIDGE
    b = ucb.Bridge(s, ucb.fresh_database_url(s))
    _BRIDGE = b
    b.start()
    yield b
    rc = b.stop()
    _BRIDGE = None
    # A clean shutdown on SIGTERM is part of the contract (exit 0, or 143 if it re-raises).
    assert rc in (0, -15, 143, None), f"bridge exited with {rc} on SIGTERM; log tail:\n{b.log_tail()}"


@pytest.fixture
def bridge(bridge_session) -> ucb.Bridge:
    """The running bridge; restarted first if an earlier test left it down."""
    if not bridge_session.running():
        bridge_session.start()
    return bridge_session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _BRIDGE is not None:
        rep.sections.append((f"bridge log tail ({_BRIDGE.log_path})", _BRIDGE.log_tail(80)))


def pytest_report_header(config):
    try:
        st = ucb.settings()
    except Exception as e:  # noqa: BLE001
        return [f"ucbridge e2e: settings unavailable: {e}"]
    return [f"ucbridge e2e: bin={st.bin} config={st.config_path} db={st.db} state={st.state}"]
