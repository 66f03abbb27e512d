"""The container layout of the Dockerfile, reproduced without a container engine (issue G5): the
config in a read-only folder (as mounted at /etc/lakeshare), the server running as a non-root
user, the state store in its own writable folder named by LAKESHARE_STATE (as
/var/lib/lakeshare in the image).

* `serve` never creates an empty state store, and says how to create one (naming --state);
* a state folder the user cannot write is named in the error, with --state / LAKESHARE_STATE;
* with LAKESHARE_STATE set, recipient management and `serve` need no --state, and a partner
  reads through the stock connector;
* CLI changes are attributed to the operating-system user even without $USER.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile

import delta_sharing
import pytest

import frames
import server as srv

TABLE = "gen-partitioned"
NOBODY = "nobody"


@pytest.fixture
def layout(lakeshare_bin, tables):
    """/etc-like read-only config folder, /var/lib-like state folder owned by the service user, a
    world-readable copy of a table, and a wrapper that runs the binary as that (non-root) user."""
    root = tempfile.mkdtemp(prefix="lakeshare-layout-")
    os.chmod(root, 0o755)
    etc, var, data = (os.path.join(root, d) for d in ("etc", "var", "data"))
    for d in (etc, var, data):
        os.makedirs(d)
    table = os.path.join(data, "t")
    shutil.copytree(tables[TABLE]["path"], table)
    for dirpath, dirs, files in os.walk(data):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    config = srv.write_config(os.path.join(etc, "config.yaml"),
                              [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": table}]}]}])
    os.chmod(config, 0o644)
    os.chmod(etc, 0o555)  # read-only, like a `:ro` mount
    if os.geteuid() == 0:
        shutil.chown(var, user=NOBODY)
        wrapper = os.path.join(root, "lakeshare-as-service-user")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nexec runuser -u {NOBODY} -- {lakeshare_bin} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        binary = wrapper
    else:
        binary = lakeshare_bin
    yield {"root": root, "etc": etc, "var": var, "config": config, "table": table, "binary": binary}
    os.chmod(etc, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def run(binary, *args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("LAKESHARE_STATE", "USER", "LOGNAME")}
    e.update(env or {})
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, env=e)


def test_serve_refuses_without_a_state_store_and_creates_none(layout):
    p = run(layout["binary"], "serve", "--config", layout["config"])
    assert p.returncode != 0
    assert "no state store" in p.stderr and "--state" in p.stderr and "LAKESHARE_STATE" in p.stderr, p.stderr
    assert os.listdir(layout["etc"]) == ["config.yaml"], "nothing was created next to the config"


def test_an_unwritable_state_folder_is_named(layout):
    p = run(layout["binary"], "recipient", "create", "acme", "--share", "s", "--config", layout["config"],
            "--endpoint", "http://127.0.0.1:9/delta-sharing", "--profile", os.path.join(layout["var"], "p.share"))
    assert p.returncode != 0
    assert layout["etc"] in p.stderr and "not writable" in p.stderr and "--state" in p.stderr, p.stderr
    assert os.listdir(layout["etc"]) == ["config.yaml"]


def test_the_documented_layout_serves_a_partner(layout, oracle, tmp_path):
    state = os.path.join(layout["var"], "lakeshare.db")
    env = {"LAKESHARE_STATE": state}
    profile = os.path.join(layout["var"], "acme.share")
    p = run(layout["binary"], "recipient", "create", "acme", "--share", "s", "--config", layout["config"],
            "--endpoint", "http://127.0.0.1:9/delta-sharing", "--profile", profile, env=env)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(state) and not os.path.exists(os.path.join(layout["etc"], "lakeshare.db"))
    listed = run(layout["binary"], "recipient", "list", "--json", "--config", layout["config"], env=env)
    assert listed.returncode == 0 and [r["name"] for r in json.loads(listed.stdout)] == ["acme"], listed.stderr
    log = run(layout["binary"], "admin-log", "--config", layout["config"], env=env)
    assert log.returncode == 0, log.stderr
    assert "cli:unknown" not in log.stdout, "the OS user is recorded when $USER is unset"
    if os.geteuid() == 0:
        assert f"cli:{NOBODY}" in log.stdout, log.stdout
    full_env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME")}
    full_env.update(env)
    server = srv.start_server(layout["binary"], layout["config"], None, workdir=layout["var"], env=full_env)
    try:
        prof = json.load(open(profile))
        prof["endpoint"] = server.url
        mine = tmp_path / "acme.share"
        mine.write_text(json.dumps(prof))
        got = delta_sharing.load_as_pandas(f"{mine}#s.d.t", use_delta_format=False)
        frames.assert_same_table(frames.Snapshot.from_pandas(got), oracle.snapshot(TABLE), "container layout")
    finally:
        server.stop()
