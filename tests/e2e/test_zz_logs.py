"""The bridge's log: JSON lines when asked for, and no secret the bridge is configured with, ever.

This file runs last (pytest takes the files in name order), so the log then holds everything the
suite made the bridge do, at the `debug` level the e2e bridge runs at (`logging.filter` in
scripts/lib.sh): every request, retry, error and variant configuration (variant bridges write
to the same log).
"""

import glob
import json
import os

import yaml

from ucb import config_variant, run, wait_for


# Keys whose values are secrets, wherever they are in a config (tokens, passwords, secrets, keys).
SECRET_WORDS = ("secret", "password", "token", "key")


def secrets_in(node, base: str, path: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) of every secret-looking string value in a parsed YAML document; a
    `*_file` key's secret is the file's content (relative to `base`), an `*_env` key names a
    variable and is no secret itself."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            name = f"{path}.{k}" if path else str(k)
            secret_key = any(w in str(k).lower() for w in SECRET_WORDS)
            if isinstance(v, str) and secret_key and str(k).endswith("_file"):
                with open(os.path.join(base, v)) as f:
                    found.append((name, f.read().strip()))
            elif isinstance(v, str) and secret_key and not str(k).endswith("_env") and len(v) >= 6:
                found.append((name, v))
            else:
                found.extend(secrets_in(v, base, name))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found.extend(secrets_in(v, base, f"{path}[{i}]"))
    return found


def test_json_logs_are_one_object_per_line(bridge):
    """With `logging.format: json` every line the bridge writes is a JSON object with the level,
    the target and the message; the first says which version (and git revision) started."""
    def json_logs(cfg):
        cfg["logging"]["format"] = "json"

    with open(bridge.log_path, "rb") as f:
        offset = len(f.read())

    def written() -> list[str]:
        """What the variant wrote: after the harness's marker of its start (before it come the
        session bridge's last lines, in its own format)."""
        with open(bridge.log_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode().splitlines()
        starts = [i for i, ln in enumerate(lines) if ln.startswith("===== e2e: start")]
        return [ln for ln in lines[starts[-1] + 1:] if ln.strip()] if starts else []

    with config_variant(bridge, "json-logs", json_logs):
        run(wait_for(lambda: [ln for ln in written() if "HTTP server listening" in ln], 20, what="the start"))
    lines = written()
    records = [json.loads(ln) for ln in lines]   # raises on any line that is not JSON
    assert all(isinstance(r, dict) and {"level", "target", "fields"} <= r.keys() for r in records), lines[:5]
    start = next(r for r in records if r["fields"].get("message") == "starting")
    assert start["fields"]["version"].startswith("0."), start
    listening = next(r for r in records if r["fields"].get("message") == "HTTP server listening")
    assert listening["level"] == "INFO" and listening["target"].startswith("ucbridge"), listening


def test_no_configured_secret_is_ever_logged(bridge):
    s = bridge.s
    configs = sorted(set(glob.glob(os.path.join(s.state, "ucbridge*.yaml")) + [s.config_path]))
    secrets = []
    for path in configs + [os.path.join(s.state, "registration.yaml")]:
        with open(path) as f:
            found = secrets_in(yaml.safe_load(f), os.path.dirname(path))
            secrets.extend((f"{os.path.basename(path)}: {k}", v) for k, v in found)
    names = {k.split(": ", 1)[1] for k, _ in secrets}
    # Positive controls: the secrets were found (the component's, the appservice tokens, the
    # SMS gateway's, the AI provider's key from its file), and the log is the bridge's.
    for expected in ("xmpp.secret", "as_token", "hs_token", "sms.inbound_secret", "chatbot.api_key_file"):
        assert expected in names, f"{expected} not among the configured secrets: {sorted(names)}"
    with open(bridge.log_path, errors="replace") as f:
        log = f.read()
    assert "HTTP server listening" in log, "not the bridge's log"
    leaked = [(k, v) for k, v in secrets if v in log]
    where = {k: next(line for line in log.splitlines() if v in line)[:300] for k, v in leaked}
    assert not leaked, f"secrets in {bridge.log_path}: {where}"
