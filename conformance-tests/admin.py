"""Helpers for the Unity-Catalog-shaped admin API tests (issue C2, /tmp/lakeshare-spec-C2.md).

`AdminServer` is a lakeshare server with its own config and state DB started with `--admin-port 0`:
it reads the admin URL from the second stdout line (`lakeshare admin API listening on URL`),
creates an admin token with `lakeshare admin-token create`, and hands out Databricks SDK clients:

* `workspace()` -- a `WorkspaceClient` on the admin listener with the admin token (PAT auth);
* `activation_client()` -- a `WorkspaceClient` on the **recipient** listener's origin, for
  `recipient_activation.retrieve_token(code)` (a public path: the code is the credential, the
  token sent along is a dummy).

The SDK first probes `GET /.well-known/databricks-config` (the server answers 404 and the SDK falls
back to the explicit configuration). Its retry budget is bounded (`retry_timeout_seconds`) so that
no call can hang for the SDK's default 300 s.
"""
import os
import re
import time
from urllib.parse import urlsplit

import requests

import server as srv

ADMIN_LINE_RE = r"lakeshare admin API listening on (http://\S+)"
SDK_RETRY_TIMEOUT = 20  # seconds; the SDK default (300 s) would outlive the 120 s test timeout
HTTP_TIMEOUT = 30


def sdk_client(host, token, **kw):
    """A WorkspaceClient with PAT auth and a bounded retry budget, independent of ~/.databrickscfg and
    DATABRICKS_* variables of the environment."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    cfg = Config(host=host, token=token, auth_type="pat", retry_timeout_seconds=SDK_RETRY_TIMEOUT,
                 http_timeout_seconds=HTTP_TIMEOUT, **kw)
    return WorkspaceClient(config=cfg)


def clean_sdk_env():
    """Drop DATABRICKS_* variables so that the SDK uses only what the tests pass explicitly."""
    for k in list(os.environ):
        if k.startswith("DATABRICKS_"):
            del os.environ[k]


def activation_code(activation_url):
    """The activation code: the last path segment of a token's `activation_url`."""
    path = urlsplit(activation_url).path.rstrip("/")
    return path.rsplit("/", 1)[-1]


def token_entries(info):
    """`tokens` of a RecipientInfo (SDK object) as a list (never None)."""
    return list(info.tokens or [])


class AdminServer:
    """lakeshare serve --admin-port 0 with its own config/state, an admin token and SDK clients."""

    def __init__(self, binary, d, shares, extra=None, serve_args=()):
        self.binary = binary
        self.dir = str(d)
        self.shares = shares
        self.config = srv.write_config(os.path.join(self.dir, "lakeshare.yaml"), shares, extra=extra)
        self.state = os.path.join(self.dir, "state.db")
        # `serve` refuses to start without any recipient (or config token)
        self.cli("recipient", "create", "bootstrap", "--share", shares[0]["name"], *self.where,
                 "--endpoint", "http://127.0.0.1:9/delta-sharing",
                 "--profile", os.path.join(self.dir, "bootstrap.share"))
        self.admin_token_proc = self.cli("admin-token", "create", "conformance-admin", *self.where)
        self.admin_token = parse_admin_token(self.admin_token_proc.stdout)
        self.server = srv.start_server(binary, self.config, self.state, ["--admin-port", "0", *serve_args])
        try:
            m = self.server.wait_for_stdout(ADMIN_LINE_RE, timeout=srv.READY_TIMEOUT)
        except Exception:
            self.server.stop()
            raise
        self.admin_url = m.group(1).rstrip("/")
        self._n = 0

    # -- CLI ------------------------------------------------------------------------------------
    @property
    def where(self):
        return ["--config", self.config, "--state", self.state]

    def cli(self, *args, check=True):
        return srv.lakeshare(self.binary, *args, check=check)

    def stop(self):
        self.server.stop()

    def fresh_name(self, prefix):
        self._n += 1
        return f"{prefix}{self._n}"

    # -- endpoints --------------------------------------------------------------------------------
    @property
    def endpoint(self):
        """Delta Sharing endpoint URL of the recipient listener (with its prefix)."""
        return self.server.url

    @property
    def recipient_origin(self):
        """scheme://host:port of the recipient listener (the activation links live here)."""
        return self.server.base

    # -- SDK ----------------------------------------------------------------------------------------
    def workspace(self, token=None):
        return sdk_client(self.admin_url, self.admin_token if token is None else token)

    def activation_client(self):
        return sdk_client(self.recipient_origin, "unused-the-activation-code-is-the-credential")

    # -- raw HTTP on the admin listener ------------------------------------------------------------
    def raw(self, method, path, token=None, body=None, auth=True):
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.admin_token if token is None else token}"
        kw = {}
        if body is not None:
            kw["json"] = body
        return requests.request(method, self.admin_url + path, headers=headers, timeout=HTTP_TIMEOUT, **kw)


def parse_admin_token(stdout):
    """`lakeshare admin-token create` prints one line `admin token: <TOKEN>`; the token is its last word."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"admin-token create must print exactly one line, got: {stdout!r}"
    assert lines[0].startswith("admin token: "), f"expected a line 'admin token: <TOKEN>', got {lines[0]!r}"
    token = lines[0].split()[-1]
    assert token and re.fullmatch(r"\S+", token), f"bad admin token in {lines[0]!r}"
    return token


def admin_error(resp, status, code=None, what=""):
    """Assert a Unity-style admin error `{"error_code", "message"}` with the given HTTP status."""
    assert resp.status_code == status, (
        f"{what}: expected HTTP {status} {code or ''}, got {resp.status_code}: {resp.text[:800]}")
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"{what}: admin error body is not JSON: {resp.text[:500]!r}")
    assert isinstance(body, dict) and "error_code" in body and "message" in body, (
        f"{what}: admin error body must be {{error_code, message}}, got {resp.text[:500]}")
    if code is not None:
        assert body["error_code"] == code, f"{what}: expected error_code {code}, got {body['error_code']} ({body})"
    return body


def wait_status(fn, want, timeout):
    """Bounded poll: call fn() (-> HTTP status) until it returns `want`; returns (ok, elapsed)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        st = fn()
        if st == want:
            return True, time.monotonic() - t0
        if time.monotonic() >= deadline:
            return False, time.monotonic() - t0
        time.sleep(0.05)
