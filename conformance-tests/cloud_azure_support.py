"""Helpers for the cloud-table tests against Azurite / moto (test_cloud_azure.py,
test_cloud_failures.py): a small "deployment" (config + state + recipients + server started with
the storage secrets in its environment), SAS-URL surgery, and oracle reads of a few tables.

The account key of the Azurite development account reaches the server only through the
environment variable KEY_ENV (config `accessKey: {env: KEY_ENV}`) or a key file; the pytest process
itself never sets it in os.environ, so CLI calls that load the config get it explicitly (`env=`).
"""
import json
import os
import subprocess
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import cloud_support as cs
import frames
import oracle as oracle_mod
import server as srv
from api import Api

KEY_ENV = "LAKESHARE_TEST_AZURE_KEY"
# base64 of 64 bytes that are not the Azurite key: a well-formed but wrong account key
WRONG_AZURE_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3I="
BOOTSTRAP_ENDPOINT = "http://127.0.0.1:9/delta-sharing"


def server_env(**extra):
    """Environment of a server/CLI run: ours plus the Azurite key in KEY_ENV."""
    return {**os.environ, KEY_ENV: cs.AZURITE_KEY, **extra}


def cli(binary, *args, env=None, timeout=120, check=True):
    """Run `lakeshare ARGS...` with `env` (default: server_env()); raise on failure when check."""
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=server_env() if env is None else env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`lakeshare {' '.join(map(str, args))}` exited {proc.returncode}\n"
                           f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def azure_entry(azurite, location=None, key=None, endpoint=None):
    """The config `storage:` item for Azurite; `location` overrides the prefix, `key` the accessKey
    value (default {env: KEY_ENV}), `endpoint` the blob endpoint."""
    entry = azurite.storage_entry(key_env=KEY_ENV)
    if location is not None:
        entry["location"] = location
    if key is not None:
        entry["azure"]["accessKey"] = key
    if endpoint is not None:
        entry["azure"]["endpoint"] = endpoint
    return entry


def one_share(tables, share="cloud", schema="s"):
    """shares: list with one share/schema holding `tables` ({name, location, ...} dicts)."""
    return [{"name": share, "schemas": [{"name": schema, "tables": tables}]}]


class Deployment:
    """A config + state + a running `lakeshare serve` whose environment holds the storage secret."""

    def __init__(self, binary, workdir, shares, extra=None, env=None):
        self.binary = binary
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.env = server_env() if env is None else env
        self.shares = shares
        self.config = srv.write_config(os.path.join(self.dir, "lakeshare.yaml"), shares, extra=extra)
        self.state = os.path.join(self.dir, "state.db")
        self.share_names = [s["name"] for s in shares]
        # serve refuses to start without any recipient; the real ones need the URL (known after start)
        self._create("bootstrap", BOOTSTRAP_ENDPOINT)
        self.server = srv.start_server(binary, self.config, self.state, env=self.env)
        self.url = self.server.url

    def _create(self, name, endpoint):
        profile = os.path.join(self.dir, f"{name}.share")
        args = ["recipient", "create", name]
        for s in self.share_names:
            args += ["--share", s]
        args += ["--config", self.config, "--state", self.state, "--endpoint", endpoint, "--profile", profile]
        cli(self.binary, *args, env=self.env)
        with open(profile) as fh:
            prof = json.load(fh)
        return profile, prof

    def recipient(self, name):
        """(profile path, bearer token) of a new recipient of every share; profile endpoint = server URL."""
        profile, prof = self._create(name, self.url)
        if prof["endpoint"].rstrip("/") != self.url:
            prof["endpoint"] = self.url
            with open(profile, "w") as fh:
                json.dump(prof, fh)
        return profile, prof["bearerToken"]

    def api(self, token):
        return Api(self.url, token)

    def stderr(self):
        return self.server.stderr_text()

    def stop(self):
        self.server.stop()


# ------------------------------------------------------------------------------------ SAS URLs


def query_pairs(url):
    """The query of a URL as a list of (name, decoded value) pairs, in order."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def sas(url):
    """The query of a SAS URL as a dict of decoded values."""
    return dict(query_pairs(url))


def rebuild(url, path=None, **changes):
    """The URL with some query values replaced (decoded values, re-encoded here) and/or its path
    replaced (`path` is a decoded path, re-encoded here). rebuild(url) is the same URL re-encoded."""
    parts = urlsplit(url)
    pairs = [(k, changes.get(k, v)) for k, v in query_pairs(url)]
    new_path = parts.path if path is None else quote(path, safe="/")
    return urlunsplit((parts.scheme, parts.netloc, new_path, urlencode(pairs, quote_via=quote, safe=""), ""))


def blob_path(url):
    """Decoded URL path of a file URL, e.g. /devstoreaccount1/lake/az/parts/region=eu/part-....parquet"""
    return unquote(urlsplit(url).path)


def relative_to_table(url, container_prefix):
    """Path of the file inside its table: blob path minus `/account/container/prefix/`."""
    p = blob_path(url)
    head = container_prefix.rstrip("/") + "/"
    assert p.startswith(head), f"file URL path {p!r} is not under the table's blob prefix {head!r}"
    return p[len(head):]


def flip_char(text, index=0):
    """`text` with the character at `index` replaced by a different base64 character."""
    c = text[index]
    repl = "A" if c != "A" else "B"
    return text[:index] + repl + text[index + 1:]


# ------------------------------------------------------------------------------------ oracle


def snapshot_reads(jobs, workdir):
    """Run deltalake oracle jobs (oracle.py) and return {key: frames.Snapshot} (asserting success)."""
    os.makedirs(workdir, exist_ok=True)
    res = oracle_mod.run_jobs(jobs, str(workdir))
    out = {}
    for key, r in res.items():
        assert r["ok"], f"oracle read {key} failed: {r['error']}"
        out[key] = frames.Snapshot(r["columns"], r["types"], r["rows"], "deltalake")
    return out
