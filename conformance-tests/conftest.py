"""Session fixtures: binary, table copies, oracle reads, the main server and its recipient.

Nothing here refers to anything outside the repository: the golden tables come from
conformance-tests/fixtures/golden (a copy), the rest is generated into a pytest temp dir.
"""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import expectations as E  # noqa: E402
import frames  # noqa: E402
import oracle as oracle_mod  # noqa: E402
import server as srv  # noqa: E402
from api import Api  # noqa: E402

REPO_ROOT = HERE.parent
FIXTURES = HERE / "fixtures"
GOLDEN = FIXTURES / "golden"
MAIN_SHARE = "conformance"
GATED_SHARE = "gated"
GATED_SCHEMA = "gated"


# ---------------------------------------------------------------------------------- binary


def find_binary():
    env = os.environ.get("LAKESHARE_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "lakeshare"
    return path, bool(env)


@pytest.fixture(scope="session")
def lakeshare_bin():
    path, from_env = find_binary()
    origin = "LAKESHARE_BIN" if from_env else f"default location (repo root {REPO_ROOT})"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"lakeshare binary not found or not executable at {path} (from {origin}). "
            "Build it with `cargo build` at the repo root, or set LAKESHARE_BIN to the binary. "
            "The conformance suite never skips for a missing binary.",
            pytrace=False,
        )
    return str(path)


# ---------------------------------------------------------------------------------- tables


@pytest.fixture(scope="session")
def manifest():
    with open(GOLDEN / "MANIFEST.json") as fh:
        return {t["name"]: t for t in json.load(fh)["tables"]}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("lakeshare")


@pytest.fixture(scope="session")
def tables(work, manifest):
    """Copy golden tables, restore their commit mtimes, generate our own tables.

    Returns {folder: {"path", "commit_mtimes_ms" {int: ms}, "latest_version"}}.
    """
    root = work / "tables"
    shutil.copytree(GOLDEN, root, ignore=shutil.ignore_patterns("*.md", "*.txt", "MANIFEST.json"))
    restore = subprocess.run(
        [sys.executable, str(FIXTURES / "restore-mtimes.py"), "--manifest", str(GOLDEN / "MANIFEST.json"),
         "--root", str(root), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert restore.returncode == 0, f"restore-mtimes.py failed:\n{restore.stdout}\n{restore.stderr}"
    out = {}
    for name, entry in manifest.items():
        out[name] = {
            "path": str(root / name),
            "commit_mtimes_ms": {int(k): v for k, v in entry["commit_mtimes_ms"].items()},
            "latest_version": entry["latest_version"],
        }
    gen = subprocess.run([sys.executable, str(HERE / "gen_tables.py"), str(root)],
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, f"gen_tables.py failed:\n{gen.stdout}\n{gen.stderr}"
    for name, info in json.loads(gen.stdout.strip().splitlines()[-1]).items():
        times = {int(k): v for k, v in info["commit_mtimes_ms"].items()}
        out[name] = {"path": info["path"], "commit_mtimes_ms": times, "latest_version": max(times)}
    missing = set(E.TABLES) - set(out)
    assert not missing, f"tables in expectations.py without data: {missing}"
    return out


def iso_ms(ms):
    """Epoch milliseconds -> ISO-8601 UTC text with milliseconds, e.g. 2025-01-01T00:00:00.000Z."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


# ---------------------------------------------------------------------------------- oracle


class Oracle:
    def __init__(self, results, manifest):
        self.results = results
        self.manifest = manifest

    def snapshot(self, table, version=None):
        exp = E.TABLES[table]
        if exp.oracle == "reference_rows":
            assert version is None
            rows = self.manifest[table]["reference_rows"]["rows"]
            cols = list(rows[0].keys())
            conv = []
            for r in rows:
                d = {}
                for c in cols:
                    v = r[c]
                    if isinstance(v, str) and v.endswith("Z") and "T" in v:
                        v = dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
                    d[c] = v
                conv.append(d)
            types = {c: "datetime" if isinstance(conv[0][c], dt.datetime) else type(conv[0][c]).__name__
                     for c in cols}
            return frames.Snapshot(cols, types, frames.canonical_rows_from_pylist(cols, conv), "reference_rows")
        key = f"{table}@{'latest' if version is None else version}"
        res = self.results.get(key)
        assert res is not None, f"no oracle read planned for {key}"
        assert res["ok"], f"oracle (deltalake {exp.oracle}) could not read {key}: {res['error']}"
        return frames.Snapshot(res["columns"], res["types"], res["rows"], f"deltalake:{exp.oracle}")

    def meta(self, table):
        res = self.results[f"{table}@meta"]
        assert res["ok"], f"oracle could not read metadata of {table}: {res['error']}"
        return res


@pytest.fixture(scope="session")
def oracle(tables, manifest, work):
    jobs = []
    for name, exp in E.TABLES.items():
        path = tables[name]["path"]
        jobs.append({"key": f"{name}@meta", "kind": "meta", "path": path})
        if exp.oracle == "reference_rows":
            continue
        versions = [None] + sorted(set(exp.history_versions) | set(exp.timestamp_versions))
        for v in versions:
            jobs.append({"key": f"{name}@{'latest' if v is None else v}", "kind": "read",
                         "path": path, "method": exp.oracle, "version": v})
    d = work / "oracle"
    d.mkdir(exist_ok=True)
    return Oracle(oracle_mod.run_jobs(jobs, str(d)), manifest)


@pytest.fixture(scope="session")
def cdf_oracle(tables, manifest, work):
    """deltalake load_cdf reads (child interpreter) + MANIFEST reference_cdf; see cdf_support.py."""
    import cdf_support

    d = work / "cdf-oracle"
    d.mkdir(exist_ok=True)
    return cdf_support.CdfOracle(oracle_mod.run_jobs(cdf_support.oracle_jobs(tables), str(d)), manifest, tables)


# ---------------------------------------------------------------------------------- config


def table_id(name):
    import hashlib

    h = hashlib.md5(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def main_shares(tables):
    golden = [
        {"name": E.share_table_name(n), "location": tables[n]["path"], "id": table_id(n), "historyShared": True}
        for n, e in E.TABLES.items() if e.source == "golden"
    ]
    generated = [
        {"name": E.share_table_name(n), "location": tables[n]["path"], "id": table_id(n), "historyShared": True}
        for n, e in E.TABLES.items() if e.source == "generated"
    ]
    gated = [
        {"name": "no_history", "location": tables["gen-partitioned"]["path"], "id": table_id("no_history"),
         "historyShared": False},
        {"name": "start_v1", "location": tables["gen-checkpointed"]["path"], "id": table_id("start_v1"),
         "historyShared": True, "startVersion": 1},
        # change-data-feed gates (issue B): a CDF table with startVersion 2, and one without history
        {"name": "cdf_start_v2", "location": tables["gen-cdf-partitioned"]["path"], "id": table_id("cdf_start_v2"),
         "historyShared": True, "startVersion": 2},
        {"name": "cdf_no_history", "location": tables["gen-cdf-partitioned"]["path"],
         "id": table_id("cdf_no_history"), "historyShared": False},
    ]
    return [
        {"name": MAIN_SHARE, "schemas": [{"name": "golden", "tables": golden},
                                         {"name": "generated", "tables": generated}]},
        {"name": GATED_SHARE, "schemas": [{"name": GATED_SCHEMA, "tables": gated}]},
    ]


class Env:
    """Handles of the main server: endpoint URL, main recipient token and profile, CLI helpers."""

    def __init__(self, binary, server, state, config, profile, token, work, shares_cfg):
        self.binary = binary
        self.server = server
        self.state = state
        self.config = config
        self.profile = profile
        self.token = token
        self.work = work
        self.shares_cfg = shares_cfg
        self._n = 0

    @property
    def endpoint(self):
        return self.server.url

    def api(self, token=None):
        return Api(self.endpoint, self.token if token is None else token)

    def url(self, table, profile=None):
        """load_as_pandas URL of a table in expectations.TABLES."""
        return f"{profile or self.profile}#{MAIN_SHARE}.{E.schema_of(table)}.{E.share_table_name(table)}"

    def coords(self, table):
        return MAIN_SHARE, E.schema_of(table), E.share_table_name(table)

    def new_recipient(self, shares, expires=None, prefix="r"):
        """Create a fresh recipient on the running server; returns (name, profile_path, token)."""
        self._n += 1
        name = f"{prefix}{self._n}_{os.getpid()}"
        profile = os.path.join(self.work, f"{name}.share")
        prof = srv.create_recipient(self.binary, self.state, name, shares, profile,
                                    endpoint=self.endpoint, expires=expires, config=self.config)
        return name, profile, prof["bearerToken"]

    def revoke(self, name):
        srv.revoke_recipient(self.binary, self.state, name, config=self.config)


@pytest.fixture(scope="session")
def env(lakeshare_bin, tables, work):
    d = work / "main-server"
    d.mkdir()
    shares_cfg = main_shares(tables)
    config = srv.write_config(str(d / "lakeshare.yaml"), shares_cfg)
    state = str(d / "state.db")
    # A recipient must exist before `serve` (it refuses to start with no auth at all); the URL is
    # only known after start, so a bootstrap recipient is created first and the main one after.
    # Its profile is never used; the endpoint is a placeholder (this build requires --endpoint or
    # --config to write a profile).
    srv.create_recipient(lakeshare_bin, state, "bootstrap", [MAIN_SHARE], str(d / "bootstrap.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=config)
    server = srv.start_server(lakeshare_bin, config, state)
    try:
        profile = str(d / "conformance.share")
        prof = srv.create_recipient(lakeshare_bin, state, "conformance", [MAIN_SHARE, GATED_SHARE], profile,
                                    endpoint=server.url, config=config)
        assert prof.get("shareCredentialsVersion") == 1, f"profile must be v1: {prof}"
        assert prof.get("endpoint", "").rstrip("/") == server.url, (
            f"profile endpoint {prof.get('endpoint')!r} != printed URL {server.url!r}")
        yield Env(lakeshare_bin, server, state, config, profile, prof["bearerToken"], str(d), shares_cfg)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api(env):
    return env.api()


@pytest.fixture(scope="session")
def client(env):
    import delta_sharing

    return delta_sharing.SharingClient(env.profile)


# ---------------------------------------------------------------------------------- governance (issue C1)


@pytest.fixture(scope="session")
def gov_sales(work):
    """The partitioned CDF table of the governance tests (gen_gov_tables.py), with its oracle reads:
    {"path", "commit_mtimes_ms" {v: ms}, "latest_version", "snap" {v: Snapshot}, "cdf" Snapshot-ish dict}."""
    root = work / "gov-tables"
    gen = subprocess.run([sys.executable, str(HERE / "gen_gov_tables.py"), str(root)],
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, f"gen_gov_tables.py failed:\n{gen.stdout}\n{gen.stderr}"
    info = json.loads(gen.stdout.strip().splitlines()[-1])
    times = {int(k): v for k, v in info["commit_mtimes_ms"].items()}
    latest = max(times)
    jobs = [{"key": f"v{v}", "kind": "read", "path": info["path"], "method": "to_pyarrow_table", "version": v}
            for v in range(latest + 1)]
    jobs.append({"key": "cdf", "kind": "cdf", "path": info["path"], "starting_version": 0, "ending_version": latest})
    d = work / "gov-oracle"
    d.mkdir(exist_ok=True)
    res = oracle_mod.run_jobs(jobs, str(d))
    for k, r in res.items():
        assert r["ok"], f"oracle read {k} of gov-sales failed: {r['error']}"
    snaps = {v: frames.Snapshot(res[f"v{v}"]["columns"], res[f"v{v}"]["types"], res[f"v{v}"]["rows"], "deltalake")
             for v in range(latest + 1)}
    return {"path": info["path"], "commit_mtimes_ms": times, "latest_version": latest, "snap": snaps,
            "cdf": res["cdf"]}


# ---------------------------------------------------------------------------------- object stores


@pytest.fixture(scope="session")
def s3store(tmp_path_factory):
    """s3s-fs on 127.0.0.1 (bucket `lake`), verifying SigV4 like S3; stopped at session end."""
    import cloud_support as cs

    emu = cs.S3sFs.start(tmp_path_factory.mktemp("s3s-fs"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto S3 on 127.0.0.1 (bucket `lake`); stopped at session end."""
    import cloud_support as cs

    emu = cs.Moto.start(tmp_path_factory.mktemp("moto"), Path(sys.executable).parent)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite blob service on 127.0.0.1 (container `lake`); stopped at session end."""
    import cloud_support as cs

    emu = cs.Azurite.start(tmp_path_factory.mktemp("azurite"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory):
    """fake-gcs-server on 127.0.0.1 (bucket `lake`, a generated service-account key)."""
    import cloud_support as cs

    emu = cs.FakeGcs.start(tmp_path_factory.mktemp("fake-gcs"))
    yield emu
    emu.stop()
