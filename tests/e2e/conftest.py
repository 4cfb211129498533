"""Session fixtures for the end-to-end suite: settings, a fresh database, the bridge process.

The peers (Synapse, Prosody) must already run (scripts/test.sh starts them); the bridge is started
here, once per session. After every test (`_bridge_guard`):
- a session bridge that exited on its own (crashed, or returned) fails that test;
- a `panicked at` in the bridge log written during the test fails it (variant bridges share the log);
- a test that SIGKILLs the bridge must be marked `@pytest.mark.kills_bridge` and start it again itself.
A test may stop the session bridge through ucb (`bridge.stop()`, `start_variant`); the next test's
`bridge` fixture starts it again. Every SIGTERM stop checks for exit code 0 (ucb.Bridge.stop).
On a failure the tail of the bridge log is attached to the report.
"""
from __future__ import annotations

import re

import pytest

import ucb

_BRIDGE: ucb.Bridge | None = None
PANIC = re.compile(r"panicked at")


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
    if b.proc is None:
        # The last test stopped it on purpose (a config variant): start it once more, so that the
        # session still ends with a checked SIGTERM of the session bridge.
        b.start()
    b.stop()   # asserts exit code 0 on SIGTERM (a clean shutdown), not -15, -9 or "already dead"
    _BRIDGE = None


@pytest.fixture
def bridge(bridge_session) -> ucb.Bridge:
    """The running bridge; started again first if an earlier test stopped it on purpose."""
    rc = bridge_session.died()
    if rc is not None:
        # It died after the previous test's check: bring it back for the tests after this one,
        # but fail this one rather than hide it.
        bridge_session.stop(check=False)
        bridge_session.start()
        pytest.fail(f"the bridge was found dead (exit {rc}) before this test started")
    if not bridge_session.running():
        bridge_session.start()
    return bridge_session


@pytest.fixture(autouse=True)
def _bridge_guard(request):
    b = _BRIDGE
    offset = b.log_size() if b is not None else 0
    kills = b.kills if b is not None else 0
    yield
    b = _BRIDGE
    if b is None:
        return
    problems = []
    rc = b.died()
    if rc is not None:
        problems.append(f"the bridge exited on its own with {rc} during this test")
        b.stop(check=False)
    panics = [line for line in b.log_since(offset).splitlines() if PANIC.search(line)]
    if panics:
        problems.append("the bridge panicked during this test:\n  " + "\n  ".join(panics[:5]))
    killed = b.kills > kills
    marked = request.node.get_closest_marker("kills_bridge") is not None
    if killed and not marked:
        problems.append("this test SIGKILLed the bridge but is not marked @pytest.mark.kills_bridge")
    if marked and not b.running():
        problems.append("a kills_bridge test must leave the session bridge running (start it again)")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


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
