"""Wire robustness under load (real-world defects F, continued from test_wire_robustness.py):

* hint evaluation runs off the async threads: two queries with ~900 KB `jsonPredicateHints` on a
  40 000-file table leave `/healthz` and `/shares` answering; hints over 1 MiB or deeper than 100
  levels are a 400 INVALID_PARAMETER_VALUE;
* deeply nested YAML on the admin policy endpoint is refused quickly (400, JSON) without freezing the
  server; a policy over 1 MiB is a 400;
* connection limits (`connections:` in the config): stalled clients are disconnected after the
  header / body / idle timeouts, and a client waiting behind a full connection cap is served once
  they are gone.

Two servers: `big` (admin.AdminServer with the synthetic 40k-file table and a config bearer token)
and `limited` (`connections: {maxConnections: 8, header/idle/body timeouts 1 s}`). Time limits are
generous (debug build, two cores); polling loops have explicit deadlines.
"""
import json
import socket
import threading
import time

import pytest
import requests

import admin as A
import server as srv
import wire_support as W
from conftest import GOLDEN

SHARE, SCHEMA, BIG = "load", "t", "big"
N_FILES = 40_000
HEALTH_LIMIT_S = 1.0


# ---------------------------------------------------------------------------------- the 40k-file table


def _write_big_table(path):
    """One commit: protocol, metaData (partition column `part`, numeric stats column `n`) and
    40 000 adds with stats. The data files do not exist (queries only sign URLs)."""
    actions = [W.commit_info(),
               {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
               W.metadata_action([("part", "string"), ("n", "long")], partition_columns=["part"])]
    for i in range(N_FILES):
        p = f"p{i % 4}"
        actions.append(W.add_action(
            f"part={p}/part-{i:05d}-0000.snappy.parquet", size=1000 + i % 97, partition_values={"part": p},
            stats={"numRecords": 10, "minValues": {"n": i * 10}, "maxValues": {"n": i * 10 + 9},
                   "nullCount": {"n": 0}}))
    W.write_commit(path, 0, actions)
    return str(path)


@pytest.fixture(scope="module")
def big(lakeshare_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("wire-load")
    table = _write_big_table(d / "tables" / BIG)
    a = A.AdminServer(lakeshare_bin, d, W.one_schema_share(SHARE, SCHEMA, [W.table_entry(BIG, table)]),
                      extra={"authorization": {"bearerToken": W.TOKEN}})
    yield a
    a.stop()


def _query_url(big):
    return f"{big.endpoint}/shares/{SHARE}/schemas/{SCHEMA}/tables/{BIG}/query"


def _post(big, body, timeout=110):
    return requests.post(_query_url(big), data=json.dumps(body), timeout=timeout,
                         headers={"Authorization": f"Bearer {W.TOKEN}", "Content-Type": "application/json"})


def _equal_leaf(value, width=0):
    """`n = value`; the literal's digits are zero-padded to `width` characters (still a valid long)."""
    text = str(abs(value)).rjust(width, "0")
    text = ("-" if value < 0 else "") + text
    return {"op": "equal", "children": [{"op": "column", "name": "n", "valueType": "long"},
                                        {"op": "literal", "value": text, "valueType": "long"}]}


def _or_of_equals(min_bytes, leaves=None):
    """An `or` of `equal` leaves on stats column n (tree depth 3) with literals no file matches
    (negative values), at least `min_bytes` of JSON text. With `leaves`, that many leaves whose
    literals are zero-padded to reach the size; else as many unpadded leaves as the size takes."""
    if leaves is None:
        one = len(json.dumps(_equal_leaf(-1000000), separators=(",", ":"))) + 1
        leaves, width = min_bytes // one + 2, 0
    else:
        bare = len(json.dumps(_equal_leaf(-1000000), separators=(",", ":"))) + 1
        width = (min_bytes // leaves) - bare + 10
    text = json.dumps({"op": "or", "children": [_equal_leaf(-1000000 - i, width) for i in range(leaves)]},
                      separators=(",", ":"))
    assert len(text) >= min_bytes, (len(text), min_bytes)
    return text


def _not_chain(depth):
    """`not(not(...equal...))`: tree depth = depth `not`s + the comparison + its leaves."""
    node = _equal_leaf(5)
    for _ in range(depth):
        node = {"op": "not", "children": [node]}
    return json.dumps(node, separators=(",", ":"))


def _lines(resp):
    return [json.loads(x) for x in resp.text.rstrip("\n").split("\n")]


def _probe(url, what, samples, headers=None):
    t0 = time.perf_counter()
    try:
        r = requests.get(url, headers=headers, timeout=10)
        status = r.status_code
    except requests.exceptions.RequestException as exc:
        status = f"error {type(exc).__name__}"
    samples.append((what, time.perf_counter() - t0, status))


def _run_concurrently(fns, probe_urls, limit_s):
    """Run `fns` in threads; while any runs, probe each of `probe_urls` ([(what, url, headers)])
    in turn. Returns (results, samples [(what, seconds, status)], wall seconds)."""
    results = [None] * len(fns)

    def wrap(i, fn):
        try:
            results[i] = fn()
        except Exception as exc:  # reported by the caller's assertions
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i, f), daemon=True) for i, f in enumerate(fns)]
    samples = []
    t0 = time.monotonic()
    for t in threads:
        t.start()
    deadline = t0 + limit_s
    k = 0
    while (k == 0 or any(t.is_alive() for t in threads)) and time.monotonic() < deadline:
        what, url, headers = probe_urls[k % len(probe_urls)]  # the first probe always runs
        _probe(url, what, samples, headers)
        k += 1
        time.sleep(0.05)  # pacing between probes (not a readiness wait)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 1)
    return results, samples, time.monotonic() - t0


# ---------------------------------------------------------------------------------- (13) hints


# 120 leaves of ~7.5 KB each (zero-padded literals): every one of the 40 000 files is evaluated
# against the whole tree (~4.8M predicate nodes per query, inside the server's per-request
# evaluation budget), so the result is exact (no file matches) and the hint work is real: ~10-20 s
# per query in a debug build. (With ~8 600 short leaves the budget, 50M nodes, would be spent after
# ~5 800 files, at ~70 s per query in a debug build: too slow for the 120 s test timeout.)
BIG_PREDICATE_LEAVES = 120


def test_big_predicates_do_not_freeze_the_api(big):
    warm = _post(big, {"limitHint": 0})  # builds and caches the 40k-file snapshot before timing
    assert warm.status_code == 200, warm.text[:500]
    assert [next(iter(o)) for o in _lines(warm)] == ["protocol", "metaData"]
    pred = _or_of_equals(900_000, leaves=BIG_PREDICATE_LEAVES)
    assert 900_000 <= len(pred) < 1024 * 1024

    def query():
        t0 = time.monotonic()
        r = _post(big, {"jsonPredicateHints": pred})
        return r.status_code, r.text[:300] if r.status_code != 200 else _lines(r), time.monotonic() - t0

    health = big.server.base + "/healthz"
    shares = (big.endpoint + "/shares", {"Authorization": f"Bearer {W.TOKEN}"})
    results, samples, wall = _run_concurrently(
        [query, query], [("healthz", health, None), ("healthz", health, None), ("shares",) + shares], 105)
    for i, res in enumerate(results):
        assert not isinstance(res, Exception) and res is not None, f"query {i} failed: {res!r}"
        status, body, took = res
        assert status == 200, f"query {i} with a {len(pred)}-byte predicate: HTTP {status}: {body}"
        kinds = [next(iter(o)) for o in body]
        # no file's [min, max] of n holds a negative value: every file is pruned
        assert kinds == ["protocol", "metaData"], (
            f"query {i}: expected no file lines (the predicate matches no file), got {len(kinds) - 2} files")
    health_samples = [s for s in samples if s[0] == "healthz"]
    assert len(health_samples) >= 2, (
        f"the queries ended before /healthz could be probed twice (wall {wall:.1f}s): {samples}")
    slow = [s for s in samples if s[1] >= HEALTH_LIMIT_S or s[2] != 200]
    assert not slow, (
        f"/healthz and /shares must answer 200 within {HEALTH_LIMIT_S}s while two big-predicate queries run "
        f"(query times {[round(r[2], 1) for r in results]}s); slow or failed probes: "
        f"{[(w, round(t, 2), s) for w, t, s in slow]} of {len(samples)}")


def test_predicate_over_one_mib_is_refused(big):
    pred = _or_of_equals(1024 * 1024 + 1000)
    r = _post(big, {"jsonPredicateHints": pred})
    assert r.status_code == 400, f"a {len(pred)}-byte predicate: expected 400, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert body.get("errorCode") == "INVALID_PARAMETER_VALUE", body
    assert "jsonPredicateHints" in body.get("message", ""), body


def test_predicate_deeper_than_100_levels_is_refused(big):
    r = _post(big, {"jsonPredicateHints": _not_chain(150)})
    assert r.status_code == 400, f"a 150-level predicate: expected 400, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert body.get("errorCode") == "INVALID_PARAMETER_VALUE", body
    assert "jsonPredicateHints" in body.get("message", ""), body


def test_moderately_deep_predicate_is_used(big):
    """Control: a valid 40-level predicate (`not` x40 around n = 5, i.e. n = 5) is evaluated: only
    the file whose [min, max] holds 5 is returned."""
    r = _post(big, {"jsonPredicateHints": _not_chain(40)})
    assert r.status_code == 200, r.text[:500]
    files = [o["file"] for o in _lines(r) if "file" in o]
    assert len(files) == 1 and json.loads(files[0]["stats"])["minValues"]["n"] == 0, (
        f"expected exactly the file with n in [0, 9], got {len(files)} files")


# ---------------------------------------------------------------------------------- (14) nested YAML


PLAN = "/api/2.1/lakeshare/policy/plan"


def _flow_yaml():
    """64k nested `[` (and their `]`), padded with a comment line to ~1 MB."""
    text = "version: 1\nshares: " + "[" * 65536 + "]" * 65536 + "\n"
    return text + "# " + "p" * (1_000_000 - len(text) - 3) + "\n"


def _block_yaml():
    """Block sequences each indented one column deeper than the last (~1400 levels, ~1 MB)."""
    lines = ["version: 1", "shares:"]
    i = 0
    size = 20
    while size < 990_000:
        lines.append(" " * i + "-")
        size += i + 2
        i += 1
    lines.append(" " * i + "- x")
    return "\n".join(lines) + "\n"


def _plan(big, body, timeout=60):
    return requests.post(big.admin_url + PLAN, data=body.encode(), timeout=timeout,
                         headers={"Authorization": f"Bearer {big.admin_token}", "Content-Type": "application/yaml"})


def test_small_policy_plan_answers(big):
    """Control: the endpoint plans an ordinary (empty) policy."""
    r = _plan(big, "version: 1\nrecipients: []\n")
    assert r.status_code == 200, r.text[:500]


@pytest.mark.parametrize("kind", ["flow", "block"])
def test_nested_yaml_is_refused_quickly(big, kind):
    body = {"flow": _flow_yaml, "block": _block_yaml}[kind]()
    assert 900_000 < len(body) < 1024 * 1024, len(body)

    def plan():
        t0 = time.monotonic()
        r = _plan(big, body)
        return r, time.monotonic() - t0

    health = big.server.base + "/healthz"
    results, samples, wall = _run_concurrently([plan, plan], [("healthz", health, None)], 60)
    for i, res in enumerate(results):
        assert not isinstance(res, Exception) and res is not None, f"plan {i} ({kind}) failed: {res!r}"
        r, took = res
        body_ = A.admin_error(r, 400, None, f"{kind} YAML nested ~64k deep, request {i}")
        assert "nest" in body_["message"].lower(), f"the error must mention the nesting: {body_}"
        assert took < 5, f"{kind}: the refusal took {took:.1f}s (must come within a few seconds)"
    slow = [s for s in samples if s[1] >= HEALTH_LIMIT_S or s[2] != 200]
    assert not slow, f"/healthz slow or failing while nested YAML was refused: {slow}"
    after = []
    _probe(health, "healthz", after)
    assert after[0][2] == 200 and after[0][1] < HEALTH_LIMIT_S, after


def test_policy_over_one_mib_is_refused(big):
    body = "version: 1\nrecipients: []\n# " + "p" * (1024 * 1024 + 10) + "\n"
    r = _plan(big, body)
    msg = A.admin_error(r, 400, None, f"a {len(body)}-byte policy")["message"]
    assert "1048576" in msg or "1 MiB" in msg, f"the message should name the limit: {msg!r}"


# ---------------------------------------------------------------------------------- (15) connection limits


LIMITS = {"maxConnections": 8, "headerReadTimeoutSeconds": 1, "idleTimeoutSeconds": 1, "bodyTimeoutSeconds": 1}
CLOSE_WITHIN_S = 5.0  # timeouts are 1 s; generous for a debug build on two cores


@pytest.fixture(scope="module")
def limited(lakeshare_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("wire-limits")
    table = W.copy_table(GOLDEN / "plain-unpartitioned", d / "good")
    cfg = srv.write_config(str(d / "c.yaml"), W.one_schema_share("s", "d", [W.table_entry("good", table)]),
                           extra={"authorization": {"bearerToken": W.TOKEN}, "connections": LIMITS})
    s = srv.start_server(lakeshare_bin, cfg, str(d / "state.db"))
    yield s
    s.stop()



def _hostport(server):
    from urllib.parse import urlsplit

    p = urlsplit(server.url)
    return p.hostname, p.port


def _stalled(server):
    """8 stalled connections: 3 silent, 3 with half a header line, 2 POSTs with full headers
    announcing 100 body bytes and sending 10. Returns [(kind, socket)]."""
    host, port = _hostport(server)
    prefix = server.url.split(f":{port}", 1)[1]
    out = []
    for kind in ["silent"] * 3 + ["half-header"] * 3 + ["half-body"] * 2:
        s = socket.create_connection((host, port), timeout=10)
        if kind == "half-header":
            s.sendall(f"GET {prefix}/shares HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bea".encode())
        elif kind == "half-body":
            s.sendall((f"POST {prefix}/shares/s/schemas/d/tables/good/query HTTP/1.1\r\nHost: {host}\r\n"
                       f"Authorization: Bearer {W.TOKEN}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: 100\r\n\r\n").encode() + b'{"limitHi')
        out.append((kind, s))
    return out


def _check_closed(stalled, t0):
    problems = []
    for kind, s in stalled:
        closed, data, _ = W.wait_closed(s, t0 + CLOSE_WITHIN_S)
        took = time.monotonic() - t0
        s.close()
        if not closed:
            problems.append(f"{kind}: still open after {took:.1f}s (received {data[:200]!r})")
            continue
        if data:
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 408"):
                problems.append(f"{kind}: closed with an answer that is not a 408: {data[:300]!r}")
            elif kind == "half-body":
                if b"application/json" not in head.lower():
                    problems.append(f"{kind}: 408 without a JSON body: {data[:300]!r}")
                elif b"errorCode" not in body:
                    problems.append(f"{kind}: 408 body is not an error object: {data[:300]!r}")
    return problems


def _get_shares(server, timeout=10):
    with W.RawHttp(server.url, timeout=timeout) as c:
        return c.request("GET", "/shares", W.bearer())


def test_stalled_connections_are_closed(limited):
    t0 = time.monotonic()
    stalled = _stalled(limited)
    problems = _check_closed(stalled, t0)
    assert not problems, "stalled connections must be closed by the server within " \
        f"{CLOSE_WITHIN_S}s (timeouts 1 s):\n" + "\n".join(problems)
    r = _get_shares(limited)
    assert r.status == 200 and [x["name"] for x in r.json()["items"]] == ["s"], r


def test_client_behind_a_full_cap_is_served_once_stalled_ones_drop(limited):
    t0 = time.monotonic()
    stalled = _stalled(limited)  # fills maxConnections (8)
    try:
        ninth = W.RawHttp(limited.url, timeout=CLOSE_WITHIN_S + 5)
        try:
            t1 = time.monotonic()
            r = ninth.request("GET", "/shares", W.bearer())
            waited = time.monotonic() - t1
        except (socket.timeout, W.ConnectionClosed) as exc:
            raise AssertionError(f"the 9th client was not served within {CLOSE_WITHIN_S + 5}s: {exc!r}")
        finally:
            ninth.close()
        assert r.status == 200, r
        assert waited < 4.0, (
            f"the 9th client waited {waited:.1f}s; the stalled connections time out after 1 s, so it must be "
            "served within ~3 s")
    finally:
        problems = _check_closed(stalled, t0)
    assert not problems, "\n".join(problems)


def test_idle_kept_alive_connection_is_closed(limited):
    with W.RawHttp(limited.url) as c:
        r = c.request("GET", "/shares", W.bearer())
        assert r.status == 200, r
        t0 = time.monotonic()
        closed, data, took = W.wait_closed(c.sock, t0 + CLOSE_WITHIN_S)
    assert closed and data == b"", (
        f"a kept-alive connection idle for {took:.1f}s must be closed (idleTimeoutSeconds 1); received {data[:200]!r}")
    assert took >= 0.5, f"closed after {took:.2f}s, before the 1 s idle timeout"


def test_slow_but_complete_request_is_still_served(limited):
    """Control: a request whose headers arrive in two parts well within the timeout is answered."""
    _, port = _hostport(limited)
    with W.RawHttp(limited.url) as c:
        raw = c.raw_request("GET", limited.url.split(f":{port}", 1)[1] + "/shares", W.bearer())
        c.sock.sendall(raw[:20])
        time.sleep(0.3)  # a slow client: a pause between the two halves (well under the 1 s timeout)
        c.sock.sendall(raw[20:])
        r = c.read_response()
    assert r.status == 200, r


@pytest.mark.parametrize("key,value", [("maxConnections", 0), ("idleTimeoutSeconds", -1),
                                       ("bodyTimeoutSeconds", 0), ("headerReadTimeoutSeconds", 0)])
def test_connection_limits_must_be_positive(lakeshare_bin, tmp_path, key, value):
    limits = dict(LIMITS, **{key: value})
    cfg = srv.write_config(str(tmp_path / "c.yaml"), [], extra={"authorization": {"bearerToken": W.TOKEN},
                                                                 "connections": limits})
    res = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    assert res.returncode != 0 and f"connections.{key}" in (res.stdout + res.stderr), (
        f"check-config must refuse connections.{key}: {value} and name it:\n{res.stdout}\n{res.stderr}")
    ok = srv.write_config(str(tmp_path / "ok.yaml"), [], extra={"authorization": {"bearerToken": W.TOKEN},
                                                                "connections": LIMITS})
    res = srv.lakeshare(lakeshare_bin, "check-config", ok, check=False)
    assert res.returncode == 0, f"check-config must accept {LIMITS}:\n{res.stdout}\n{res.stderr}"
