"""Helpers for the policy-as-code tests (test_policy_as_code.py): policy files, the `plan`/`apply`
CLI, catalog snapshots, and servers whose state was seeded from a policy file.

A policy file is the reference server YAML (`version: 1`, `shares:`) plus an optional `recipients:`
section. The files are written with `server.to_yaml` (block style; every string double-quoted), or
by hand where a test wants the flow style of the documentation.
"""
import json
import os
import re
import subprocess

import requests

import admin
import server as srv

CLI_USER = "policy-tester"  # USER of every CLI run here: local changes are attributed to cli:<USER>
SUMMARY_RE = re.compile(
    r"^(\d+) to create, (\d+) to update, (\d+) to delete(?: \((\d+) destructive: apply needs --allow-delete\))?\.$")


def run(binary, *args, cwd=None, env=None, check=True, timeout=60):
    """Run `lakeshare ARGS` with USER=CLI_USER (plus `env`) and no inherited LAKESHARE_ADMIN_* variables."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAKESHARE_ADMIN_")}
    e["USER"] = CLI_USER
    e.update(env or {})
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=e)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`lakeshare {' '.join(map(str, args))}` failed with exit code {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def write_policy(path, shares=None, recipients=None, text=None):
    """Write a policy file; a section given as None is left out (= not managed)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    if text is None:
        doc = {"version": 1}
        if shares is not None:
            doc["shares"] = shares
        if recipients is not None:
            doc["recipients"] = recipients
        text = srv.to_yaml(doc)
    with open(path, "w") as fh:
        fh.write(text)
    return str(path)


def table(name, location, **kw):
    """One table entry of a schema (keys as in the reference YAML: historyShared, startVersion, partitions)."""
    return {"name": name, "location": location, **kw}


def share(name, schemas, comment=None):
    """A share entry; `schemas` maps schema name -> list of table entries."""
    d = {"name": name}
    if comment is not None:
        d["comment"] = comment
    d["schemas"] = [{"name": s, "tables": ts} for s, ts in schemas.items()]
    return d


def by_property(column, key):
    """`partitions:` with one entry: column EQUAL the recipient's property `key`."""
    return [{"values": [{"name": column, "op": "EQUAL", "recipientPropertyKey": key}]}]


def recipient(name, shares, comment=None, properties=None, ip=None):
    d = {"name": name}
    if comment is not None:
        d["comment"] = comment
    if properties is not None:
        d["properties"] = properties
    if ip is not None:
        d["ipAccessList"] = ip
    d["shares"] = shares
    return d


def file_uri_dir(path):
    """The location text `plan` prints for a local table directory: file:///abs/path/."""
    return "file://" + os.path.realpath(str(path)).rstrip("/") + "/"


def plan_lines(stdout):
    """The change lines of a text plan (without the summary line), stripped of the leading indent."""
    return [ln.strip() for ln in stdout.splitlines() if ln.startswith("  ")]


def summary_line(stdout):
    lines = [ln for ln in stdout.splitlines() if SUMMARY_RE.match(ln.strip())]
    assert len(lines) == 1, f"plan must print exactly one summary line, got:\n{stdout}"
    return lines[0].strip()


class Catalog:
    """`--state DB` (local) or `--admin-url URL --admin-token T` (remote) plus the CLI bound to it."""

    def __init__(self, binary, where, cwd=None):
        self.binary = binary
        self.where = list(where)
        self.cwd = cwd

    def cli(self, *args, check=True, env=None, cwd=None):
        return run(self.binary, *args, *self.where, check=check, env=env, cwd=cwd or self.cwd)

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def plan(self, policy, *flags, check=True, cwd=None):
        return self.cli("plan", policy, *flags, check=check, cwd=cwd)

    def plan_json(self, policy, cwd=None):
        return json.loads(self.cli("plan", policy, "--json", cwd=cwd).stdout)

    def apply(self, policy, *flags, check=True, cwd=None):
        return self.cli("apply", policy, *flags, check=check, cwd=cwd)

    def shares(self):
        return self.json("share", "list")["shares"]

    def owners(self):
        return {s["name"]: s["owner"] for s in self.shares()}

    def share_show(self, name):
        return self.json("share", "show", name)

    def preview(self, name, max_files=1000):
        return self.json("recipient", "preview", name, "--max-files", max_files)

    def admin_log(self, limit=50):
        out = self.cli("admin-log", "--json", "--limit", limit).stdout
        return [json.loads(ln) for ln in out.splitlines() if ln.strip()]


def local(binary, state, cwd=None):
    return Catalog(binary, ["--state", str(state)], cwd=cwd)


def recipients(binary, state):
    """`recipient list --json` (local only: the command has no --admin-url) as {name: entry}."""
    out = run(binary, "recipient", "list", "--state", state, "--json").stdout
    return {r["name"]: r for r in json.loads(out)}


def snapshot(binary, state):
    """Everything a failed apply must leave untouched: share list, every share's contents, recipients."""
    cat = local(binary, state)
    shares = cat.shares()
    return {
        "shares": shares,
        "contents": {s["name"]: cat.share_show(s["name"]) for s in shares},
        "recipients": run(binary, "recipient", "list", "--state", state, "--json").stdout,
        "tables": cat.json("table", "list"),
    }


def redeem(link, path):
    """GET the activation link (the code is the credential); write the profile to `path`; return it."""
    r = requests.get(link, timeout=30, headers={"Accept": "application/json"})
    assert r.status_code == 200, f"activation link {link} gave HTTP {r.status_code}: {r.text[:500]}"
    prof = r.json()
    with open(path, "w") as fh:
        json.dump(prof, fh)
    return prof


def link_profile(binary, state, name, endpoint, path):
    """`lakeshare recipient link NAME --state DB --endpoint URL`, then redeem the printed link."""
    out = run(binary, "recipient", "link", name, "--state", state, "--endpoint", endpoint).stdout
    links = re.findall(r"https?://\S+", out)
    assert len(links) == 1, f"`recipient link` must print one link, got:\n{out}"
    return redeem(links[0], path)


class PolicyServer:
    """`lakeshare serve --config CFG --state DB --port 0 [--admin-port 0]` on a state DB that a policy
    file (`seed`) was applied to first -- serve needs at least one recipient, and a recipient created
    by apply has no token, so the server's state is seeded without any token in files."""

    def __init__(self, binary, d, seed, config_shares=(), admin_name=None):
        self.binary = binary
        self.dir = str(d)
        self.config = srv.write_config(os.path.join(self.dir, "lakeshare.yaml"), list(config_shares))
        self.state = os.path.join(self.dir, "state.db")
        if seed:
            run(binary, "apply", seed, "--config", self.config, "--state", self.state)
        self.admin_token = None
        if admin_name:
            self.admin_token = admin.parse_admin_token(
                run(binary, "admin-token", "create", admin_name, "--state", self.state).stdout)
        args = ["--port", "0"] + (["--admin-port", "0"] if admin_name else [])
        self.server = srv.start_server(binary, self.config, self.state, args, workdir=self.dir)
        self.admin_url = None
        if admin_name:
            try:
                self.admin_url = self.server.wait_for_stdout(admin.ADMIN_LINE_RE).group(1).rstrip("/")
            except Exception:
                self.server.stop()
                raise

    @property
    def endpoint(self):
        return self.server.url

    def local(self, cwd=None):
        return local(self.binary, self.state, cwd=cwd)

    def remote(self, token=None, cwd=None):
        return Catalog(self.binary, ["--admin-url", self.admin_url, "--admin-token",
                                     self.admin_token if token is None else token], cwd=cwd)

    def profile(self, name, tag=""):
        path = os.path.join(self.dir, f"{name}{tag}.share")
        link_profile(self.binary, self.state, name, self.endpoint, path)
        return path

    def stop(self):
        self.server.stop()
