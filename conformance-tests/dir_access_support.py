"""Helpers for test_directory_access.py (directory access, `temporary-table-credentials`).

* `Recorder`: a tiny threaded HTTP server on 127.0.0.1 (free port) that records every request
  (method, path, headers, body) and answers with a canned response chosen by a `respond`
  function. It plays AWS STS, the Google OAuth token endpoint and Google STS.
* `write_delta_table(dir, partition_columns)`: a minimal Delta table (one commit: protocol +
  metaData, no data files), enough for the server to open the log and validate partition filters.
* `DirServer`: `lakeshare serve` over a `storage:` list with several shares and recipients.
* Known-answer builders: the expected S3 session policy, the GCS Credential Access Boundary, the
  STS session name, the Azure directory SAS string-to-sign and signature.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl

import requests

import server as srv
from api import Api


# ------------------------------------------------------------------------------ recording fake


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # [(name, value)] as received
        self.body = body  # bytes

    def header(self, name):
        """The single value of header `name` (case-insensitive); None when absent."""
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(vals) <= 1, f"header {name} sent {len(vals)} times: {vals}"
        return vals[0] if vals else None

    def form(self):
        """The body as an application/x-www-form-urlencoded form: {name: value}, each name once."""
        pairs = parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)
        d = dict(pairs)
        assert len(d) == len(pairs), f"repeated form field in {self.body!r}"
        return d

    def __repr__(self):
        return f"<{self.method} {self.path} {self.body[:200]!r}>"


class Recorder:
    """HTTP server recording every request; `respond(rec) -> (status, content_type, body)`."""

    def __init__(self, respond):
        self.respond = respond
        self.requests = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _body(self):
                if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self):
                rec = Recorded(self.command, self.path, list(self.headers.items()), self._body())
                with outer._lock:
                    outer.requests.append(rec)
                status, ctype, body = outer.respond(rec)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = _handle
            do_GET = _handle
            do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def mark(self):
        with self._lock:
            return len(self.requests)

    def since(self, mark):
        with self._lock:
            return list(self.requests[mark:])

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------ canned STS answers

NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_credentials_xml(action, key_id, secret, token, expiration):
    """A GetFederationToken / AssumeRole success answer (the shape AWS STS sends)."""
    extra = ""
    if action == "GetFederationToken":
        extra = ("<FederatedUser><Arn>arn:aws:sts::123456789012:federated-user/x</Arn>"
                 "<FederatedUserId>123456789012:x</FederatedUserId></FederatedUser>"
                 "<PackedPolicySize>7</PackedPolicySize>")
    else:
        extra = ("<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/x</Arn>"
                 "<AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>")
    return (f'<{action}Response xmlns="{NS}"><{action}Result><Credentials>'
            f"<SessionToken>{token}</SessionToken><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<Expiration>{expiration}</Expiration><AccessKeyId>{key_id}</AccessKeyId>"
            f"</Credentials>{extra}</{action}Result>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>")


STS_ERROR_XML = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                 "<Code>AccessDenied</Code><Message>x</Message></Error>"
                 "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")


# ------------------------------------------------------------------------------ known answers


def s3_session_policy(bucket, prefix):
    """The session policy the server must send for a table at s3://bucket/prefix (no slashes)."""
    p = prefix.strip("/")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadTableObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": [f"arn:aws:s3:::{bucket}/{p}/*"]},
            {"Sid": "ListTablePrefix", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{bucket}"],
             "Condition": {"StringLike": {"s3:prefix": [f"{p}/", f"{p}/*"]}}},
        ],
    }


def _iam_like(pattern, value):
    """IAM wildcard match (`*` any run, `?` one character, nothing else special)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S) is not None


def _as_list(v):
    return v if isinstance(v, list) else [v]


def policy_allows(policy, action, resource, context=None):
    """Whether an IAM policy document of Allow statements (with StringLike conditions only)
    allows `action` on `resource` given the condition `context` {key: value}."""
    context = context or {}
    for st in policy["Statement"]:
        assert st.get("Effect") in ("Allow", "Deny"), st
        assert st["Effect"] == "Allow", f"unexpected Deny statement: {st}"
        if not any(_iam_like(a, action) for a in _as_list(st["Action"])):
            continue
        if not any(_iam_like(r, resource) for r in _as_list(st["Resource"])):
            continue
        ok = True
        for op, conds in st.get("Condition", {}).items():
            assert op == "StringLike", f"condition operator {op} not modelled"
            for key, pats in conds.items():
                if key not in context or not any(_iam_like(p, context[key]) for p in _as_list(pats)):
                    ok = False
        if ok:
            return True
    return False


def sts_session_name(recipient):
    """`lakeshare-<recipient>`, characters outside [A-Za-z0-9+=,.@_-] replaced by '-', <= 32 chars."""
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-")
    clean = "".join(c if c in ok else "-" for c in recipient)
    return ("lakeshare-" + clean)[:32]


def gcs_access_boundary(bucket, prefix):
    """The Credential Access Boundary for a table at gs://bucket/prefix (no slashes)."""
    p = prefix.strip("/") + "/"
    return {"accessBoundary": {"accessBoundaryRules": [{
        "availableResource": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "availablePermissions": ["inRole:roles/storage.objectViewer"],
        "availabilityCondition": {
            "title": "lakeshare-table-prefix",
            "expression": (f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/{p}') || "
                           f"api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('{p}')"),
        },
    }]}}


AZURE_SAS_VERSION = "2022-11-02"


def azure_dir_string_to_sign(account, container, directory, st, se, spr):
    return "\n".join(["rl", st, se, f"/blob/{account}/{container}/{directory}", "", "", spr,
                      AZURE_SAS_VERSION, "d", "", "", "", "", "", "", ""])


def azure_sig(key_b64, string_to_sign):
    mac = hmac.new(base64.b64decode(key_b64), string_to_sign.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def write_service_account(path, token_uri):
    """A fresh RSA service account key JSON whose token_uri is `token_uri`; returns (key, email, key_id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = "dir-access@lakeshare-test.iam.gserviceaccount.com"
    key_id = "dir-access-key-1"
    Path(path).write_text(json.dumps({
        "type": "service_account", "project_id": "lakeshare-test", "private_key_id": key_id,
        "private_key": pem, "client_email": email, "client_id": "2", "token_uri": token_uri}))
    os.chmod(path, 0o600)
    return key, email, key_id


# ------------------------------------------------------------------------------ tables


def write_delta_table(path, partition_columns=()):
    """A minimal Delta table at `path`: version 0 with protocol and metaData, no data files.
    Columns: id (long), region (string); `partition_columns` a subset of them."""
    path = Path(path)
    (path / "_delta_log").mkdir(parents=True, exist_ok=True)
    schema = {"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {"name": "region", "type": "string", "nullable": True, "metadata": {}}]}
    actions = [
        {"commitInfo": {"timestamp": 1700000000000, "operation": "CREATE TABLE",
                        "operationParameters": {}, "isBlindAppend": True}},
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(path))), "format": {"provider": "parquet",
                                                                                       "options": {}},
                      "schemaString": json.dumps(schema), "partitionColumns": list(partition_columns),
                      "configuration": {}, "createdTime": 1700000000000}},
    ]
    log = path / "_delta_log" / "00000000000000000000.json"
    log.write_text("".join(json.dumps(a) + "\n" for a in actions))
    return str(path)


# ------------------------------------------------------------------------------ server


CREDS_SUFFIX = "/temporary-table-credentials"


class DirServer:
    """`lakeshare serve` with `shares`, config extras (e.g. `storage`) and named recipients
    {name: [share, ...]}; `env` goes to the CLI and the server (for {env: NAME} secrets)."""

    def __init__(self, binary, workdir, shares, extra, recipients, env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = srv.write_config(str(self.workdir / "lakeshare.yaml"), shares, extra=extra)
        self.state = str(self.workdir / "state.db")
        self.tokens = {}
        with mock.patch.dict(os.environ, env or {}):
            for name, granted in recipients.items():
                prof = srv.create_recipient(binary, self.state, name, granted,
                                            str(self.workdir / f"{len(self.tokens)}.share"),
                                            endpoint="http://127.0.0.1:9/delta-sharing", config=self.config)
                self.tokens[name] = prof["bearerToken"]
        run_env = None
        if env:
            run_env = dict(os.environ)
            run_env.update(env)
        self.server = srv.start_server(binary, self.config, self.state, workdir=str(self.workdir), env=run_env)
        self.url = self.server.url

    def api(self, who):
        return Api(self.url, self.tokens.get(who, who))

    def creds(self, coords, body=None, who=None, raw=None):
        """POST temporary-table-credentials. `body`: JSON body ({} when None); `raw`: bytes sent
        as is instead (b"" = no body at all)."""
        who = who or next(iter(self.tokens))
        api = self.api(who)
        path = Api.table_path(*coords, CREDS_SUFFIX)
        if raw is not None:
            return requests.post(api.url(path), data=raw, headers=api.headers(), timeout=60)
        return api.post(path, body)

    def stop(self):
        self.server.stop()
