"""Operating the bridge: config keys from the environment, secrets from files, and the bot's
profile (its Matrix display name and avatar, and the component's vCard) from the config."""
from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

from test_avatars import VCARD, download, png
from test_rooms import iq
from ucb import Peers, config_variant, run, token


def test_a_key_from_the_environment_and_a_secret_from_a_file(bridge):
    """The variant's file names an XMPP server nobody listens on and holds no component secret:
    the bridge connects (health says so) only with the server from UCBRIDGE__XMPP__SERVER and the
    secret read from the file UCBRIDGE__XMPP__SECRET_FILE names. `check-config --explain` says
    where each came from, without the secret."""
    s = bridge.s
    server = s.config["xmpp"]["server"]
    secret_path = os.path.join(s.state, "e2e-xmpp.secret")
    with open(secret_path, "w") as f:
        f.write(s.config["xmpp"]["secret"] + "\n")   # the line break is not part of it
    os.chmod(secret_path, 0o600)

    def change(cfg):
        del cfg["xmpp"]["secret"]
        cfg["xmpp"]["server"] = "127.0.0.1:1"

    env = {"UCBRIDGE__XMPP__SERVER": server, "UCBRIDGE__XMPP__SECRET_FILE": secret_path}
    with config_variant(bridge, "env-secret", change, env=env) as b:
        assert b.health()["xmpp"] == "connected"
        explained = subprocess.run(
            [s.bin, "-c", b.s.config_path, "check-config", "--explain"],
            env=dict(os.environ, UCBRIDGE_DATABASE_URL=bridge.database_url, **env),
            capture_output=True, text=True, timeout=30)
    assert explained.returncode == 0, explained.stderr
    out = explained.stdout
    assert f'xmpp.server = "{server}"  [env UCBRIDGE__XMPP__SERVER]' in out, out
    assert (f"xmpp.secret = (hidden)  [secret file {secret_path} (named by env UCBRIDGE__XMPP__SECRET_FILE)]"
            in out), out
    assert f'xmpp.component_jid = "{s.component}"  [file]' in out, out
    assert "rooms.alias_prefix  [default]" in out, out
    assert s.config["xmpp"]["secret"] not in out + explained.stderr


def test_the_bot_profile_comes_from_the_config_and_is_the_components_vcard(bridge):
    """`appservice.bot_display_name` and `bot_avatar` (a file) become the bot's Matrix profile at
    start; an XMPP user asking the component for its vCard gets that name and photo."""
    s = bridge.s
    tag = token()
    name = f"UC Bridge {tag}"
    # A colour of its own per run: the avatar differs from any earlier one, so it is uploaded.
    photo = png(*bytes.fromhex(tag)[:3])
    avatar = os.path.join(s.state, f"e2e-bot-{tag}.png")
    with open(avatar, "wb") as f:
        f.write(photo)
    bot = f"@{s.config['appservice'].get('bot_localpart', 'ucbridge')}:{s.matrix_domain}"

    def change(cfg):
        cfg["appservice"]["bot_display_name"] = name
        cfg["appservice"]["bot_avatar"] = avatar

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("prof")
            x = await p.xmpp_user("profx")
            quoted = urllib.parse.quote(bot)
            profile = {}
            for _ in range(150):
                status, profile = await m.request("GET", f"/profile/{quoted}")
                if status == 200 and profile.get("displayname") == name and profile.get("avatar_url"):
                    break
                await asyncio.sleep(0.2)
            assert profile.get("displayname") == name, profile
            assert await download(m, profile["avatar_url"]) == photo

            kind, res = await iq(x, s.component, "get", f"<vCard xmlns='{VCARD}'/>")
            assert kind == "result", res
            fn = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}FN")
            assert fn is not None and fn.text == name, ET.tostring(res)
            binval = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL")
            assert binval is not None, ET.tostring(res)
            assert base64.b64decode("".join(binval.text.split())) == photo

    with config_variant(bridge, "bot-profile", change):
        run(go(), timeout=120)
