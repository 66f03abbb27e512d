"""Governance and audit defects found by trying Lakeshare as providers and attackers would (issue F,
items 6-12): each test failed before its fix.

* 6: rotating with grace 0 must end an unredeemed activation link issued before the rotation;
* 7: `PATCH recipients/{name}` with `expiration_time` is refused (400), never answered 200 and ignored;
* 8: recipient names are validated on every way in (admin API, CLI, policy files), so no name can
  forge lines in `lakeshare admin-log`;
* 9: refusals of revoked or expired tokens, refused addresses and rate limits are attributed to the
  recipient in the audit log;
* 10: the event time that exports filter on is covered by `audit verify`;
* 11/12: admin writes wait their turn behind concurrent audit writes (no `503 database is
  locked`), and a recipient is created together with its activation link or not at all.
"""
import json
import os
import sqlite3
import threading
import time

import pytest
import requests

import admin as A
import audit_support as AS
import server as srv

UC = "/api/2.1/unity-catalog"
HTTP_TIMEOUT = 30


@pytest.fixture(scope="module")
def audited(lakeshare_bin, tables, tmp_path_factory):
    """An audited server with the admin API, recipients alice (share s) and a limited one."""
    s = AS.AuditServer(lakeshare_bin, tmp_path_factory.mktemp("gov-defects"), tables, admin=True,
                       recipients=(("alice", ("s",)), ("gone", ("s",)), ("late", ("s",))))
    yield s
    s.stop()


def admin(s, method, path, body=None):
    return requests.request(method, s.admin_url + path, json=body, timeout=HTTP_TIMEOUT,
                            headers={"Authorization": f"Bearer {s.admin_token}"})


def code_of(url):
    return url.rstrip("/").rsplit("/", 1)[-1]


def redeem(s, link):
    return requests.get(link, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})


def links(info):
    return [t["activation_url"] for t in info.get("tokens", []) if t.get("activation_url")]


# ------------------------------------------------------------------------------------------ 6


def test_rotation_with_grace_zero_ends_the_pending_link(audited):
    r = admin(audited, "POST", f"{UC}/recipients", {"name": "pending1"})
    assert r.status_code == 200, r.text
    (early,) = links(r.json())
    r = admin(audited, "POST", f"{UC}/recipients/pending1/rotate-token",
              {"existing_token_expire_in_seconds": 0})
    assert r.status_code == 200, r.text
    (fresh,) = links(r.json())
    assert code_of(fresh) != code_of(early)
    old = redeem(audited, early)
    assert old.status_code == 404, f"a link issued before the rotation must mint nothing: {old.status_code} {old.text}"
    new = redeem(audited, fresh)
    assert new.status_code == 200, new.text
    assert new.json().get("bearerToken"), new.text


def test_rotation_with_grace_also_ends_the_pending_link(audited):
    r = admin(audited, "POST", f"{UC}/recipients", {"name": "pending2"})
    (early,) = links(r.json())
    r = admin(audited, "POST", f"{UC}/recipients/pending2/rotate-token",
              {"existing_token_expire_in_seconds": 3600})
    assert r.status_code == 200, r.text
    assert redeem(audited, early).status_code == 404


# ------------------------------------------------------------------------------------------ 7


def test_patch_expiration_time_is_refused_not_ignored(audited):
    r = admin(audited, "POST", f"{UC}/recipients", {"name": "exp1", "comment": "before"})
    assert r.status_code == 200, r.text
    later = int(time.time() * 1000) + 3_600_000
    r = admin(audited, "PATCH", f"{UC}/recipients/exp1", {"expiration_time": later, "comment": "after"})
    body = A.admin_error(r, 400, "INVALID_PARAMETER_VALUE", "PATCH expiration_time")
    assert "expiration_time" in body["message"] and "rotate" in body["message"], body
    got = admin(audited, "GET", f"{UC}/recipients/exp1").json()
    assert got.get("comment") == "before", "a refused PATCH changes nothing"
    r = admin(audited, "PATCH", f"{UC}/recipients/exp1", {"owner": "someone"})
    A.admin_error(r, 400, "INVALID_PARAMETER_VALUE", "PATCH owner")
    r = admin(audited, "PATCH", f"{UC}/recipients/exp1", {"comment": "after"})
    assert r.status_code == 200 and r.json().get("comment") == "after", r.text


# ------------------------------------------------------------------------------------------ 8

BAD_NAMES = ["a/../b", "line\nFORGED admin:root recipient.create everyone", "tab\there", "with space",
             "..", "esc\x1b[31mred"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_bad_recipient_names_are_refused_by_the_api(audited, name):
    r = admin(audited, "POST", f"{UC}/recipients", {"name": name})
    body = A.admin_error(r, 400, "INVALID_PARAMETER_VALUE", f"create {name!r}")
    assert "invalid recipient name" in body["message"], body
    assert "\n" not in body["message"], "the message escapes what it quotes"


@pytest.mark.parametrize("name", BAD_NAMES[:3], ids=lambda n: repr(n)[:20])
def test_bad_recipient_names_are_refused_by_the_cli(audited, name, tmp_path):
    p = srv.lakeshare(audited.binary, "recipient", "create", name, "--share", "s", "--config", audited.config,
                      "--state", audited.state, "--endpoint", "http://127.0.0.1:9/delta-sharing",
                      "--profile", str(tmp_path / "p.share"), check=False)
    assert p.returncode != 0 and "invalid recipient name" in p.stderr, (p.stdout, p.stderr)
    assert not (tmp_path / "p.share").exists()


def test_bad_recipient_names_are_refused_in_policy_files(audited, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps({"version": 1, "recipients": [{"name": "a/../b", "shares": ["s"]}]}))
    p = srv.lakeshare(audited.binary, "plan", str(policy), "--config", audited.config, "--state", audited.state,
                      check=False)
    assert p.returncode != 0 and "invalid recipient name" in (p.stdout + p.stderr), (p.stdout, p.stderr)


def test_admin_log_lines_cannot_be_forged(audited):
    # Whatever reaches the change log (comments, property values) is printed escaped.
    r = admin(audited, "POST", f"{UC}/recipients",
              {"name": "forger", "comment": "c\nFORGED line",
               "properties_kvpairs": {"properties": {"k": "v\nFORGED too"}}})
    assert r.status_code == 200, r.text
    out = srv.lakeshare(audited.binary, "admin-log", "--config", audited.config, "--state", audited.state).stdout
    assert "forger" in out
    assert not any(line.startswith("FORGED") for line in out.splitlines()), out
    assert "\x1b" not in out


# ------------------------------------------------------------------------------------------ 9


def event_ids(s):
    return {json.loads(e["body"])["id"] for e in s.events()}


def events_since(s, seen):
    """Events not in `seen` (ids), in time order (chains of CLI runs may sort anywhere)."""
    new = [json.loads(e["body"]) for e in s.events()]
    return sorted((e for e in new if e["id"] not in seen), key=lambda e: e["at_ms"])


def wait_events(s, n):
    deadline = time.monotonic() + 10
    while s.count() < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return s.count()


def test_refusals_of_known_tokens_are_attributed(audited):
    gone_token, late_token = audited.tokens["gone"], audited.tokens["late"]
    gone_prefix = audited.token_prefix("gone")
    srv.lakeshare(audited.binary, "recipient", "revoke", "gone", "--config", audited.config,
                  "--state", audited.state)
    n0 = audited.count()
    seen = event_ids(audited)
    r = requests.get(audited.server.url + "/shares", headers={"Authorization": f"Bearer {gone_token}"},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    unknown = requests.get(audited.server.url + "/shares", headers={"Authorization": "Bearer nobody-knows-this"},
                           timeout=HTTP_TIMEOUT)
    assert unknown.status_code == 401
    wait_events(audited, n0 + 2)
    evs = [e for e in events_since(audited, seen) if e.get("route") == "/shares"]
    assert len(evs) == 2, evs
    revoked, anonymous = evs
    assert revoked["status"] == 401 and revoked.get("principal") == "gone", revoked
    assert revoked.get("token_prefix") == gone_prefix, revoked
    assert anonymous.get("principal") is None, "an unknown token names nobody"
    del late_token


def test_expired_tokens_and_refused_addresses_are_attributed(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, recipients=(), start=False)
    srv.lakeshare(lakeshare_bin, "recipient", "create", "brief", "--share", "s", "--config", s.config,
                  "--state", s.state, "--endpoint", "http://127.0.0.1:9/delta-sharing", "--expires-in", "1s",
                  "--profile", str(tmp_path / "brief.share"))
    prof = json.loads((tmp_path / "brief.share").read_text())
    walled = srv.create_recipient(lakeshare_bin, s.state, "walled", ["s"], str(tmp_path / "walled.share"),
                                  endpoint="http://127.0.0.1:9/delta-sharing", config=s.config)
    srv.lakeshare(lakeshare_bin, "recipient", "update", "walled", "--allow-ip", "203.0.113.0/24",
                  "--config", s.config, "--state", s.state)
    s.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            r = requests.get(s.server.url + "/shares", headers={"Authorization": f"Bearer {prof['bearerToken']}"},
                             timeout=HTTP_TIMEOUT)
            if r.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 401 and "expired" in r.json()["message"], r.text
        w = requests.get(s.server.url + "/shares", headers={"Authorization": f"Bearer {walled['bearerToken']}"},
                         timeout=HTTP_TIMEOUT)
        assert w.status_code == 403, w.text
        n = s.count()
        wait_events(s, n)
        evs = [json.loads(e["body"]) for e in s.events()]
        expired = [e for e in evs if e["status"] == 401]
        assert expired and all(e.get("principal") == "brief" for e in expired), expired
        refused = [e for e in evs if e["status"] == 403]
        assert refused and refused[-1].get("principal") == "walled", refused
    finally:
        s.stop()


def test_rate_limited_requests_are_attributed(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, extra={"limits": {"requestsPerMinute": 2}})
    try:
        a = s.api("alice")
        statuses = [a.get("/shares").status_code for _ in range(3)]
        assert statuses == [200, 200, 429], statuses
        wait_events(s, 3)
        evs = [json.loads(e["body"]) for e in s.events()]
        limited = [e for e in evs if e["status"] == 429]
        assert len(limited) == 1 and limited[0].get("principal") == "alice", limited
    finally:
        s.stop()


# ----------------------------------------------------------------------------------------- 10


def test_moving_an_event_time_is_caught_and_exports_filter_on_the_hashed_time(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables)
    try:
        a = s.api("alice")
        for _ in range(6):
            assert a.get("/shares").status_code == 200
    finally:
        s.stop()
    assert AS.verify(lakeshare_bin, s.state, s.public_key).returncode == 0
    ev = s.events()[2]
    real_at = ev["at"]
    day = 86_400_000
    con = sqlite3.connect(s.state, isolation_level=None)
    try:
        AS.drop_audit_triggers(con)
        # The attacker hides the event from a range export by moving its indexed time a day back.
        con.execute("UPDATE audit_events SET at = ? WHERE writer = ? AND seq = ?",
                    (real_at - day, ev["writer"], ev["seq"]))
    finally:
        con.close()
    proc = AS.verify(lakeshare_bin, s.state, s.public_key)
    assert proc.returncode != 0, "verify must notice the moved time"
    bad = AS.bad_lines(proc)
    assert bad and bad[0][1] == ev["seq"] and "time" in bad[0][2], (proc.stdout, proc.stderr)
    # A range export around the real time still lists the event (it filters on the hashed body).
    import datetime as dt
    iso = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = AS.export(lakeshare_bin, s.state, "jsonl", "--from", iso(real_at - 1), "--to", iso(real_at + 1))
    ids = [json.loads(line)["id"] for line in out.splitlines() if line.strip()]
    assert json.loads(ev["body"])["id"] in ids, out


# ------------------------------------------------------------------------------------- 11, 12


def test_admin_writes_wait_their_turn_under_recipient_load(audited):
    """Recipient traffic writes audit events all the time; admin changes must still succeed."""
    stop = threading.Event()
    served = []

    def traffic():
        a = audited.api("alice")
        while not stop.is_set():
            served.append(a.get("/shares").status_code)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for t in workers:
        t.start()
    results = []
    lock = threading.Lock()

    def create(i):
        r = admin(audited, "POST", f"{UC}/recipients", {"name": f"load{i}"})
        with lock:
            results.append((i, r.status_code, r.text[:200]))

    try:
        admins = [threading.Thread(target=create, args=(i,)) for i in range(40)]
        for t in admins:
            t.start()
        for t in admins:
            t.join(timeout=120)
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=30)
    failed = [r for r in results if r[1] != 200]
    assert len(results) == 40 and not failed, failed[:5]
    assert served and set(served) == {200}, set(served)
    # 12: every created recipient has its activation link (both or neither).
    for i in range(40):
        info = admin(audited, "GET", f"{UC}/recipients/load{i}").json()
        assert info["name"] == f"load{i}"
    lst = json.loads(srv.lakeshare(audited.binary, "recipient", "list", "--json", "--config", audited.config,
                                   "--state", audited.state).stdout)
    assert {f"load{i}" for i in range(40)} <= {r["name"] for r in lst}
