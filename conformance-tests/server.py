"""Start/stop `lakeshare serve` processes and drive the `lakeshare recipient` CLI.

Readiness is detected by reading the server's stdout until the line
`lakeshare listening on http(s)://...` appears (the CLI contract), with a
timeout -- never by sleeping. stderr goes to a file so that warnings can be inspected and the
pipe can never fill up.
"""
import json
import os
import queue
import re
import subprocess
import threading
import time
from urllib.parse import urlsplit

LISTEN_RE = re.compile(r"listening on (https?://\S+)")
READY_TIMEOUT = 60.0


class ServerStartError(RuntimeError):
    pass


class Server:
    def __init__(self, proc, url, stderr_path, stdout_lines):
        self.proc = proc
        self.url = url.rstrip("/")
        self.stderr_path = stderr_path
        self.stdout_lines = stdout_lines

    @property
    def base(self):
        """scheme://host:port (no endpoint prefix)."""
        p = urlsplit(self.url)
        return f"{p.scheme}://{p.netloc}"

    @property
    def metrics_url(self):
        return self.base + "/_lakeshare/metrics"

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_for_stdout(self, pattern, timeout=READY_TIMEOUT, interval=0.02):
        """Bounded wait for a later stdout line matching `pattern` (a regex); returns the match.

        The reader thread keeps appending to `stdout_lines` after readiness, so lines printed after
        the `listening on URL` line (e.g. the admin listener's) are seen here. Raises
        ServerStartError if the process exits or no line matches within `timeout` seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.stdout_lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise ServerStartError(
                    f"no stdout line matching {pattern!r} within {timeout}s (exit code {self.proc.poll()}).\n"
                    f"stdout: {''.join(self.stdout_lines)!r}\nstderr:\n{self.stderr_text()}"
                )
            time.sleep(interval)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _pump(stream, q, sink):
    for line in iter(stream.readline, ""):
        sink.append(line)
        q.put(line)
    q.put(None)


def start_server(binary, config, state=None, extra_args=(), workdir=None, timeout=READY_TIMEOUT, env=None):
    """Start `lakeshare serve --config CONFIG [--state STATE] EXTRA...`; return a Server once ready.

    Raises ServerStartError (with the stderr text) if the process exits or prints nothing
    matching `listening on URL` within `timeout` seconds.
    """
    args = [binary, "serve", "--config", str(config)]
    if state is not None:
        args += ["--state", str(state)]
    args += list(extra_args)
    workdir = workdir or os.path.dirname(str(config))
    stderr_path = os.path.join(workdir, "server-%d-%d.stderr" % (os.getpid(), time.monotonic_ns()))
    errf = open(stderr_path, "w")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL, text=True, bufsize=1,
        cwd=workdir, env=env,
    )
    errf.close()
    q = queue.Queue()
    lines = []
    threading.Thread(target=_pump, args=(proc.stdout, q, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            proc.wait()
            raise ServerStartError(
                f"`{' '.join(args)}` printed no 'listening on URL' line within {timeout}s.\n"
                f"stdout so far: {''.join(lines)!r}\nstderr:\n{_read(stderr_path)}"
            )
        try:
            line = q.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            rc = proc.wait()
            raise ServerStartError(
                f"`{' '.join(args)}` exited with code {rc} before becoming ready.\n"
                f"stdout: {''.join(lines)!r}\nstderr:\n{_read(stderr_path)}"
            )
        m = LISTEN_RE.search(line)
        if m:
            return Server(proc, m.group(1), stderr_path, lines)


def run_serve_expect_exit(binary, config, state=None, extra_args=(), timeout=30, workdir=None):
    """Run `lakeshare serve ...` that is expected to refuse to start.

    Returns CompletedProcess. If the server instead becomes ready (prints 'listening on'), it is
    killed and the returned object has returncode None and the stdout seen so far.
    """
    try:
        srv = start_server(binary, config, state, extra_args, workdir=workdir, timeout=timeout)
    except ServerStartError:
        pass
    else:
        out = "".join(srv.stdout_lines)
        err = srv.stderr_text()
        srv.stop()
        return subprocess.CompletedProcess(srv.proc.args, None, out, err)
    # it exited: run again synchronously to capture exit code and output cleanly
    args = [binary, "serve", "--config", str(config)]
    if state is not None:
        args += ["--state", str(state)]
    args += list(extra_args)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          cwd=workdir or os.path.dirname(str(config)))


def _read(path):
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def lakeshare(binary, *args, timeout=60, check=True):
    """Run a lakeshare CLI command; raise with full output when check and exit status != 0."""
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"`lakeshare {' '.join(map(str, args))}` failed with exit code {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def create_recipient(binary, state, name, shares, profile, endpoint=None, expires=None, config=None):
    """`lakeshare recipient create NAME --share S... [--config F] --state DB [--endpoint URL] [--expires T]
    --profile P`. Returns the parsed profile JSON.

    `--config` is passed too when given: the CLI checks the granted shares against the config
    (before the server has ever started, the state store alone does not know the shares).
    """
    args = ["recipient", "create", name]
    for s in shares:
        args += ["--share", s]
    if config:
        args += ["--config", config]
    args += ["--state", state]
    if endpoint:
        args += ["--endpoint", endpoint]
    if expires:
        args += ["--expires", expires]
    args += ["--profile", profile]
    lakeshare(binary, *args)
    with open(profile) as fh:
        return json.load(fh)


def revoke_recipient(binary, state, name, config=None):
    extra = ["--config", config] if config else []
    lakeshare(binary, "recipient", "revoke", name, *extra, "--state", state)


# ---- YAML writing (reference-server config format, PROTOCOL-NOTES §9.1) ------------------------


def _yq(s):
    return json.dumps(str(s))  # a JSON string is a valid double-quoted YAML scalar


def _yaml_lines(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.extend(_yaml_lines(v, indent + 2))
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                sub = _yaml_lines(item, indent + 2)
                sub[0] = pad + "- " + sub[0].lstrip()
                out.extend(sub)
            else:
                out.append(f"{pad}- {_scalar(item)}")
    return out


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _yq(v)


def to_yaml(obj):
    return "\n".join(_yaml_lines(obj)) + "\n"


def write_config(path, shares, host="127.0.0.1", port=0, extra=None):
    """Write a reference-format YAML config. `shares` is the `shares:` list structure."""
    cfg = {"version": 1, "shares": shares, "host": host, "port": port, "endpoint": "/delta-sharing"}
    if extra:
        cfg.update(extra)
    with open(path, "w") as fh:
        fh.write(to_yaml(cfg))
    return path
