"""Helpers for the tamper-evident audit log tests (test_audit_log.py).

* `AuditServer`: a `lakeshare serve` with its own config and SQLite (or PostgreSQL) state, an audit
  signing key from `lakeshare audit keygen`, a recipient `alice` granted share `s`, optionally an
  admin token and `--admin-port 0`.
* An independent model of the stored format, written from the documented rules (not from the
  server's code): `link_hash` (SHA-256 over the NUL-terminated parts "lakeshare-audit-v1", writer,
  seq, prev_hash, body), the checkpoint message and key id, Ed25519 verification with
  `cryptography` (installed with moto, see requirements.txt).
* Reading the SQLite store directly (`sqlite3`), and the "hard way" tampering used by the attack
  tests: triggers dropped, records changed, every later hash recomputed so that the plain chain is
  valid again.
* `lakeshare audit verify|export` runners and parsers.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import uuid

import server as srv
from api import Api

GENESIS = "0" * 64
ADMIN_LINE_RE = r"lakeshare admin API listening on (http://\S+)"
UA = "lakeshare-audit-conformance/1.0"
VERIFY_SUMMARY_RE = re.compile(
    r"(\d+) record\(s\) in (\d+) chain\(s\); (\d+) signed checkpoint\(s\) verified; (\d+) record\(s\) after")
BAD_RE = re.compile(r"^BAD chain (\S+) at record (\d+): (.+)$")


# ------------------------------------------------------------------------------- the stored format


def link_hash(writer, seq, prev_hash, body):
    h = hashlib.sha256()
    for part in ("lakeshare-audit-v1", writer, str(seq), prev_hash, body):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def checkpoint_message(writer, seq, hash_, at_ms):
    return f"lakeshare-audit-checkpoint-v1\n{writer}\n{seq}\n{hash_}\n{at_ms}".encode("utf-8")


def key_id(public_raw):
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_from_seed(seed_b64):
    """Raw 32-byte Ed25519 public key of a base64 seed (computed by `cryptography`)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    seed = base64.b64decode(seed_b64.strip())
    assert len(seed) == 32, f"the signing key file must hold a base64 32-byte seed, got {len(seed)} bytes"
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signature_ok(public_raw, cp):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            base64.b64decode(cp["signature"]), checkpoint_message(cp["writer"], cp["seq"], cp["hash"], cp["at"]))
        return True
    except (InvalidSignature, ValueError):
        return False


def chain_problems(records):
    """Plain-chain check of one writer's records (sorted by seq): list of problems (empty = valid)."""
    out = []
    prev = GENESIS
    for i, r in enumerate(sorted(records, key=lambda r: r["seq"])):
        if r["seq"] != i + 1:
            out.append(f"seq {r['seq']} at position {i + 1}")
            break
        if r["prev_hash"] != prev:
            out.append(f"record {r['seq']} does not link to its predecessor")
            break
        if link_hash(r["writer"], r["seq"], r["prev_hash"], r["body"]) != r["hash"]:
            out.append(f"record {r['seq']}: hash does not match the documented formula")
            break
        prev = r["hash"]
    return out


def keygen(binary, path):
    """`lakeshare audit keygen --out PATH`: returns (public key base64, seed text)."""
    proc = srv.lakeshare(binary, "audit", "keygen", "--out", path)
    m = re.search(r"^public key: (\S+)$", proc.stdout, re.M)
    assert m, f"`audit keygen` must print 'public key: <base64>', got {proc.stdout!r}"
    with open(path) as fh:
        seed = fh.read()
    return m.group(1), seed


# ------------------------------------------------------------------------------- SQLite store


# Changes made with the CLI on the local store (creating the test recipients) are audited too,
# each invocation in a chain of its own; the tests look at the serving process's chain(s).
SERVER_ONLY = ("writer NOT IN (SELECT writer FROM audit_events WHERE body LIKE '%\"kind\":\"cli\"%')")

EVENT_COLS = ("writer", "seq", "at", "recipient", "share_name", "table_name", "body", "prev_hash", "hash")
CP_COLS = ("writer", "seq", "hash", "at", "key_id", "signature")


def _connect(path):
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.row_factory = sqlite3.Row
    return con


def sqlite_events(path):
    con = _connect(path)
    try:
        rows = con.execute(f"SELECT {', '.join(EVENT_COLS)} FROM audit_events WHERE {SERVER_ONLY} "
                           "ORDER BY writer, seq").fetchall()
    finally:
        con.close()
    return [dict(r) for r in rows]


def sqlite_checkpoints(path):
    con = _connect(path)
    try:
        rows = con.execute(f"SELECT {', '.join(CP_COLS)} FROM audit_checkpoints WHERE {SERVER_ONLY} "
                           "ORDER BY writer, seq").fetchall()
    finally:
        con.close()
    return [dict(r) for r in rows]


def sqlite_count(path):
    con = _connect(path)
    try:
        return con.execute(f"SELECT count(*) FROM audit_events WHERE {SERVER_ONLY}").fetchone()[0]
    finally:
        con.close()


def sqlite_copy(src, dst):
    """A consistent copy of a live or stopped SQLite database (backup API, WAL included)."""
    s = sqlite3.connect(src, timeout=10)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        s.close()
        d.close()
    return dst


def drop_audit_triggers(con):
    names = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_events', 'audit_checkpoints')")]
    for n in names:
        con.execute(f'DROP TRIGGER "{n}"')
    return names


def rehash_from(con, writer, start):
    """Recompute hash and prev_hash of `writer`'s records from seq `start` on (the attacker's work)."""
    prev = GENESIS
    if start > 1:
        row = con.execute("SELECT hash FROM audit_events WHERE writer = ? AND seq = ?", (writer, start - 1)).fetchone()
        assert row is not None, f"no record {start - 1} to link to"
        prev = row[0]
    rows = con.execute("SELECT seq, body FROM audit_events WHERE writer = ? AND seq >= ? ORDER BY seq",
                       (writer, start)).fetchall()
    for seq, body in rows:
        h = link_hash(writer, seq, prev, body)
        con.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE writer = ? AND seq = ?",
                    (prev, h, writer, seq))
        prev = h


def shift_seqs(con, writer, start, delta):
    """seq += delta for every record of `writer` with seq >= start (via negative values: no PK clash)."""
    con.execute("UPDATE audit_events SET seq = -seq WHERE writer = ? AND seq >= ?", (writer, start))
    con.execute("UPDATE audit_events SET seq = -seq + ? WHERE writer = ? AND seq < 0", (delta, writer))


# ------------------------------------------------------------------------------- CLI


def verify(binary, state, public_key=None):
    args = ["audit", "verify", "--state", state]
    if public_key is not None:
        args += ["--public-key", public_key]
    return srv.lakeshare(binary, *args, check=False)


def verify_summary(proc):
    m = VERIFY_SUMMARY_RE.search(proc.stdout)
    assert m, f"`audit verify` printed no summary line:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return {"records": int(m.group(1)), "chains": int(m.group(2)), "checkpoints": int(m.group(3)),
            "uncovered": int(m.group(4))}


def bad_lines(proc):
    """[(writer, position, reason)] of the `BAD chain <writer> at record <n>: <reason>` lines on stderr."""
    out = []
    for line in proc.stderr.splitlines():
        m = BAD_RE.match(line.strip())
        if m:
            out.append((m.group(1), int(m.group(2)), m.group(3)))
    return out


def export(binary, state, fmt, *extra):
    proc = srv.lakeshare(binary, "audit", "export", "--state", state, "--format", fmt, *extra)
    return proc.stdout


# ------------------------------------------------------------------------------- PostgreSQL


def pg_admin_url():
    url = os.environ.get("LAKESHARE_TEST_PG_URL")
    assert url, ("LAKESHARE_TEST_PG_URL is not set: run the suite through scripts/test.sh, which starts a "
                 "private PostgreSQL cluster (or `eval \"$(scripts/postgres.sh)\"`); this test never skips")
    return url


def psql_path():
    p = shutil.which("psql")
    assert p, "psql (PostgreSQL client) is required for the PostgreSQL audit tests"
    return p


def pg_create_database(prefix):
    admin = pg_admin_url()
    name = prefix + uuid.uuid4().hex[:12]
    subprocess.run([psql_path(), admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    return admin.rsplit("/", 1)[0] + "/" + name


def psql(db, sql):
    return subprocess.run([psql_path(), db, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql],
                          capture_output=True, text=True, timeout=60)


def pg_json(db, sql):
    """Rows of `sql` as a list of dicts (json_agg through psql)."""
    p = psql(db, f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) q")
    assert p.returncode == 0, f"psql failed: {p.stderr}"
    return json.loads(p.stdout)


# ------------------------------------------------------------------------------- servers


def shares_for(tables):
    """Share `s` (schema `d`: `t` partitioned, `c` change data feed) granted to alice; share `other` is not."""
    return [
        {"name": "s", "schemas": [{"name": "d", "tables": [
            {"name": "t", "location": tables["gen-partitioned"]["path"], "historyShared": True},
            {"name": "c", "location": tables["gen-cdf-partitioned"]["path"], "historyShared": True},
        ]}]},
        {"name": "other", "schemas": [{"name": "d", "tables": [
            {"name": "t", "location": tables["gen-checkpointed"]["path"], "historyShared": True},
        ]}]},
    ]


class AuditServer:
    """A server with an audit signing key; `state` is a SQLite path unless `state` is given."""

    def __init__(self, binary, d, tables, extra=None, admin=False, state=None, key_in_env=False,
                 recipients=(("alice", ("s",)),), env=None, start=True):
        self.binary = binary
        self.dir = str(d)
        self.key_file = os.path.join(self.dir, "audit-signing.key")
        self.public_key, self.seed = keygen(binary, self.key_file)
        cfg_extra = {"auditCheckpointEvery": 5}
        if not key_in_env:
            cfg_extra["auditSigningKeyFile"] = self.key_file
        cfg_extra.update(extra or {})
        self.config = srv.write_config(os.path.join(self.dir, "lakeshare.yaml"), shares_for(tables), extra=cfg_extra)
        self.state = state or os.path.join(self.dir, "state.db")
        self.sqlite = state is None
        self.env = dict(os.environ if env is None else env)
        self.env.pop("LAKESHARE_AUDIT_SIGNING_KEY", None)
        if key_in_env:
            self.env["LAKESHARE_AUDIT_SIGNING_KEY"] = self.seed.strip()
        self.tokens = {}
        for name, grants in recipients:
            prof = srv.create_recipient(binary, self.state, name, list(grants),
                                        os.path.join(self.dir, f"{name}.share"),
                                        endpoint="http://127.0.0.1:9/delta-sharing", config=self.config)
            self.tokens[name] = prof["bearerToken"]
        self.admin = admin
        self.admin_token = None
        if admin:
            out = srv.lakeshare(binary, "admin-token", "create", "boss", "--config", self.config,
                                "--state", self.state).stdout
            self.admin_token = out.split()[-1]
        self.server = None
        self.admin_url = None
        if start:
            self.start()

    def start(self):
        args = ["--admin-port", "0"] if self.admin else []
        self.server = srv.start_server(self.binary, self.config, self.state, args, env=self.env)
        if self.admin:
            try:
                self.admin_url = self.server.wait_for_stdout(ADMIN_LINE_RE).group(1).rstrip("/")
            except Exception:
                self.server.stop()
                raise
        return self.server

    def stop(self):
        if self.server is not None:
            self.server.stop()

    def api(self, name="alice"):
        a = Api(self.server.url, self.tokens[name] if name else None)
        a.session.headers["User-Agent"] = UA
        return a

    def token_prefix(self, name):
        """The display prefix `recipient list --json` shows for the recipient's (only) token."""
        out = srv.lakeshare(self.binary, "recipient", "list", "--config", self.config, "--state", self.state,
                            "--json").stdout
        for r in json.loads(out):
            if r["name"] == name:
                prefixes = [t["prefix"] for t in r["tokens"] if t.get("state") == "active"]
                assert len(prefixes) == 1, f"{name} has one active token: {r['tokens']}"
                return prefixes[0]
        raise AssertionError(f"recipient {name} not listed: {out}")

    def recipient_id(self, name):
        out = srv.lakeshare(self.binary, "recipient", "list", "--config", self.config, "--state", self.state,
                            "--json").stdout
        for r in json.loads(out):
            if r["name"] == name:
                return r["id"]
        raise AssertionError(f"recipient {name} not listed: {out}")

    def events(self):
        assert self.sqlite, "events() reads the SQLite store"
        return sqlite_events(self.state)

    def checkpoints(self):
        return sqlite_checkpoints(self.state)

    def count(self):
        return sqlite_count(self.state)


def cli_audit(path):
    """(events, chains, checkpoints) written by CLI invocations on the store (not by a server)."""
    con = _connect(path)
    try:
        cli = "writer IN (SELECT writer FROM audit_events WHERE body LIKE '%\"kind\":\"cli\"%')"
        ev = con.execute(f"SELECT count(*) FROM audit_events WHERE {cli}").fetchone()[0]
        chains = con.execute(f"SELECT count(DISTINCT writer) FROM audit_events WHERE {cli}").fetchone()[0]
        cps = con.execute(f"SELECT count(*) FROM audit_checkpoints WHERE {cli}").fetchone()[0]
    finally:
        con.close()
    return ev, chains, cps
