"""Helpers for the governance tests (issue C1, /tmp/lakeshare-spec-C1.md): the extended recipient CLI
(create with --expires-in/--property/--allow-ip, update, rotate, show, grant add/remove), dedicated
servers with their own state DB, and bounded polling for time-based expiry.

Every governance module starts its own server(s) (server.start_server) with its own SQLite state so
the shared session server is never disturbed.
"""
import json
import os
import time

import deltalog
import server as srv
from api import Api

# poll interval for time-based expiry; polls are always bounded by an explicit deadline
POLL_INTERVAL = 0.05


def poll_until(check, timeout, interval=POLL_INTERVAL):
    """Call check() until it returns a truthy value or `timeout` seconds pass (bounded loop).

    Returns (value, elapsed_seconds); value is the last (falsy) result on timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        v = check()
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() >= deadline:
            return v, time.monotonic() - t0
        time.sleep(interval)


class GovServer:
    """A lakeshare server with its own config and state DB, plus the governance CLI bound to them."""

    def __init__(self, binary, d, shares, extra=None, bootstrap=True, serve_args=()):
        self.binary = binary
        self.dir = str(d)
        self.config = srv.write_config(os.path.join(self.dir, "lakeshare.yaml"), shares, extra=extra)
        self.state = os.path.join(self.dir, "state.db")
        self._n = 0
        if bootstrap:
            # `serve` refuses to start without any recipient (or config token)
            self.cli("recipient", "create", "bootstrap", "--share", shares[0]["name"], *self.where,
                     "--endpoint", "http://127.0.0.1:9/delta-sharing",
                     "--profile", os.path.join(self.dir, "bootstrap.share"))
        self.server = srv.start_server(binary, self.config, self.state, list(serve_args))

    @property
    def where(self):
        return ["--config", self.config, "--state", self.state]

    @property
    def endpoint(self):
        return self.server.url

    def stop(self):
        self.server.stop()

    def cli(self, *args, check=True):
        return srv.lakeshare(self.binary, *args, check=check)

    def fresh_name(self, prefix):
        self._n += 1
        return f"{prefix}{self._n}"

    def profile_path(self, name, tag=""):
        return os.path.join(self.dir, f"{name}{tag}.share")

    def create(self, name, shares, expires=None, expires_in=None, properties=None, allow_ip=(), check=True,
               profile=None):
        """`recipient create`; returns (profile_path, profile dict) (dict is None when it failed)."""
        args = ["recipient", "create", name]
        for s in shares:
            args += ["--share", s]
        if expires:
            args += ["--expires", expires]
        if expires_in:
            args += ["--expires-in", expires_in]
        for k, v in (properties or {}).items():
            args += ["--property", f"{k}={v}"]
        for c in allow_ip:
            args += ["--allow-ip", c]
        profile = profile or self.profile_path(name)
        args += [*self.where, "--endpoint", self.endpoint, "--profile", profile]
        proc = self.cli(*args, check=check)
        if proc.returncode != 0:
            return profile, None
        with open(profile) as fh:
            return profile, json.load(fh)

    def new_recipient(self, prefix, shares, **kw):
        """Create a recipient with a fresh name; returns (name, profile_path, token)."""
        name = self.fresh_name(prefix)
        profile, prof = self.create(name, shares, **kw)
        return name, profile, prof["bearerToken"]

    def rotate(self, name, grace=None, expires_in=None, tag="-rot"):
        profile = self.profile_path(name, tag)
        args = ["recipient", "rotate", name, *self.where, "--endpoint", self.endpoint, "--profile", profile]
        if grace is not None:
            args += ["--grace", str(grace)]
        if expires_in:
            args += ["--expires-in", expires_in]
        self.cli(*args)
        with open(profile) as fh:
            prof = json.load(fh)
        return profile, prof["bearerToken"]

    def update(self, name, *flags):
        return self.cli("recipient", "update", name, *flags, *self.where)

    def revoke(self, name):
        return self.cli("recipient", "revoke", name, *self.where)

    def grant_add(self, recipient, share, expires_in=None, expires=None):
        args = ["grant", "add", recipient, share]
        if expires_in:
            args += ["--expires-in", expires_in]
        if expires:
            args += ["--expires", expires]
        return self.cli(*args, *self.where)

    def grant_remove(self, recipient, share):
        return self.cli("grant", "remove", recipient, share, *self.where)

    def show(self, name, as_json=True):
        args = ["recipient", "show", name, *self.where] + (["--json"] if as_json else [])
        proc = self.cli(*args)
        return (json.loads(proc.stdout), proc) if as_json else (proc.stdout, proc)

    def api(self, token):
        return Api(self.endpoint, token)


def live_rows(table_path, version=None):
    """Row count of a snapshot from the log's stats (every gov-sales file has stats)."""
    total = 0
    for a in deltalog.replay(table_path, version).adds:
        n = deltalog.num_records(a)
        assert n is not None, f"file without stats: {a['path']}"
        total += n
    return total


def json_strings(obj):
    """Every string value and key in a parsed JSON document (for 'never prints the token' checks)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(str(k))
            out.extend(json_strings(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(json_strings(v))
    elif isinstance(obj, str):
        out.append(obj)
    return out
