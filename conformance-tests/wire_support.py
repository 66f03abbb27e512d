"""Helpers for the wire-robustness tests (test_wire_robustness.py, test_wire_robustness_load.py):
a minimal HTTP/1.1 client on a raw socket (keep-alive, duplicated headers, half-sent requests),
hand-written Delta logs (tables whose data files need not exist), stock-client profiles and the
`lakeshare serve` setups those modules share.

The raw client exists because `requests`/`http.client` hide exactly what these tests look at:
whether a kept-alive connection answers promptly, whether a header can be sent twice, what a
server does with a request that never completes.
"""
import json
import os
import shutil
import socket
import time
import uuid
from urllib.parse import urlsplit

TOKEN = "wire-robustness-token-0123456789"


class ConnectionClosed(Exception):
    """The server closed the connection (recv returned b'')."""


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lower-case name, value)] in order
        self.body = body

    def header(self, name):
        name = name.lower()
        vals = [v for k, v in self.headers if k == name]
        return vals[0] if vals else None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers!r} {self.body[:500]!r}>"


class RawHttp:
    """One HTTP/1.1 connection on a plain socket. `request` sends one request in a single
    `sendall` and reads one whole response (Content-Length or chunked)."""

    def __init__(self, base_url, timeout=30.0, nodelay=True):
        p = urlsplit(base_url)
        assert p.scheme == "http", base_url
        self.host = p.hostname
        self.port = p.port
        self.prefix = p.path.rstrip("/")
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        if nodelay:  # the client never delays its own (single-write) requests
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading ---------------------------------------------------------------------------------
    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET"):
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"bad status line {status_line!r}"
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip().lower(), v.strip()))
        hd = {k: v for k, v in headers}
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line():  # trailers up to the empty line
                        pass
                    break
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n", "chunk not followed by CRLF"
        elif "content-length" in hd:
            body = self._exactly(int(hd["content-length"]))
        else:  # read to close
            try:
                while True:
                    self._fill()
            except ConnectionClosed:
                pass
            body, self.buf = self.buf, b""
        return Response(status, reason, headers, body)

    # -- writing ---------------------------------------------------------------------------------
    def raw_request(self, method, path, headers=(), body=b""):
        """Bytes of a request; `headers` is a list of (name, value) pairs (duplicates allowed)."""
        if isinstance(body, str):
            body = body.encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        names = {k.lower() for k, _ in headers}
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if body and "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
        elif method in ("POST", "PUT", "PATCH") and "content-length" not in names:
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def request(self, method, path, headers=(), body=b""):
        """Send one request (path relative to the endpoint prefix unless it starts with '//')."""
        full = path[1:] if path.startswith("//") else self.prefix + path
        self.sock.sendall(self.raw_request(method, full, headers, body))
        return self.read_response(method)


def bearer(token=TOKEN):
    return [("Authorization", f"Bearer {token}")]


def wait_closed(sock, deadline):
    """Read from a stalled socket until the server closes it or `deadline` (monotonic) passes.
    Returns (closed, data_received, seconds_waited)."""
    t0 = time.monotonic()
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, data, time.monotonic() - t0
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, data, time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError):
            return True, data, time.monotonic() - t0
        if not chunk:
            return True, data, time.monotonic() - t0
        data += chunk


# ---------------------------------------------------------------------------------- Delta logs


def commit_path(table, version):
    return os.path.join(table, "_delta_log", "%020d.json" % version)


def write_commit(table, version, actions=None, text=None):
    """Write commit `version` of `table` (creating _delta_log); either JSON actions or raw text."""
    os.makedirs(os.path.join(table, "_delta_log"), exist_ok=True)
    if text is None:
        text = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions)
    with open(commit_path(table, version), "x") as fh:
        fh.write(text)
    return commit_path(table, version)


def latest_version(table):
    names = [n for n in os.listdir(os.path.join(table, "_delta_log"))
             if n.endswith(".json") and n[:20].isdigit() and len(n) == 25]
    return max(int(n[:20]) for n in names)


def schema_string(fields):
    """fields: [(name, type)] -> a Delta schemaString."""
    return json.dumps({"type": "struct", "fields": [
        {"name": n, "type": t, "nullable": True, "metadata": {}} for n, t in fields]})


def metadata_action(fields, partition_columns=(), configuration=None, schema=None):
    return {"metaData": {
        "id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
        "schemaString": schema if schema is not None else schema_string(fields),
        "partitionColumns": list(partition_columns), "configuration": configuration or {},
        "createdTime": 1735689600000}}


def commit_info(ts=1735689600000, op="WRITE"):
    return {"commitInfo": {"timestamp": ts, "operation": op, "operationParameters": {},
                           "engineInfo": "lakeshare-conformance wire_support.py"}}


def add_action(path, size=1000, partition_values=None, stats=None, ts=1735689600000):
    a = {"path": path, "partitionValues": partition_values or {}, "size": size,
         "modificationTime": ts, "dataChange": True}
    if stats is not None:
        a["stats"] = json.dumps(stats, separators=(",", ":"))
    return {"add": a}


def copy_table(src, dst):
    shutil.copytree(src, dst)
    return str(dst)


def append_add(table, path, size=440):
    """Append commit latest+1 with one `add` of `path` (written verbatim); returns the version."""
    v = latest_version(table) + 1
    write_commit(table, v, [commit_info(1735689600000 + v * 60_000), add_action(path, size=size)])
    return v


# ---------------------------------------------------------------------------------- clients


def write_profile(path, endpoint, token=TOKEN):
    with open(path, "w") as fh:
        json.dump({"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": token}, fh)
    return str(path)


def table_entry(name, location, **kw):
    return {"name": name, "location": str(location), "historyShared": True, **kw}


def one_schema_share(share, schema, tables):
    return [{"name": share, "schemas": [{"name": schema, "tables": tables}]}]
