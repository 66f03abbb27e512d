"""The Unity-Catalog-shaped admin API (issue C2 contract, /tmp/lakeshare-spec-C2.md), driven by the
stock Databricks SDK (`databricks-sdk` 0.156.0, `WorkspaceClient(host=admin URL, token=admin token,
auth_type="pat")`), with the stock Delta Sharing connector reading data between the steps.

One dedicated server per module (`lakeshare serve --admin-port 0`, own config and state DB, an admin
token from `lakeshare admin-token create`). Recipients are created through the admin API, activated
through `recipient_activation.retrieve_token(code)` on the **recipient** listener, granted through
`shares.update_permissions`, rotated, updated and deleted through the SDK. Raw HTTP covers what the SDK
hides: the 401s without/with a bad admin token, the 404 of `/.well-known/databricks-config`, the error
bodies, and that a recipient token is not an admin token.

Time-based steps (rotate with `existing_token_expire_in_seconds=2`) use bounded polling loops.

Note: in databricks-sdk 0.156.0 the share listing method is `shares.list_shares()` (there is no
`shares.list`).
"""
import json
import os
import re
import time

import delta_sharing
import pytest
import requests

import admin as A
from governance import live_rows


@pytest.fixture(scope="module", autouse=True)
def _sdk_env():
    A.clean_sdk_env()


# ---------------------------------------------------------------------------------------- fixtures

SHARE = "alpha"
OTHER_SHARE = "beta"


def _shares(path):
    return [
        {"name": SHARE, "schemas": [
            {"name": "s", "tables": [
                {"name": "sales", "location": path, "historyShared": True},
                {"name": "sales_v1", "location": path, "historyShared": True, "startVersion": 1},
                {"name": "sales_nohist", "location": path, "historyShared": False},
            ]},
            {"name": "t", "tables": [
                {"name": "by_country", "location": path, "historyShared": True,
                 "partitions": [{"values": [{"name": "country", "op": "EQUAL", "recipientPropertyKey": "country"}]}]},
            ]},
        ]},
        {"name": OTHER_SHARE, "schemas": [{"name": "s", "tables": [
            {"name": "sales", "location": path, "historyShared": True}]}]},
    ]


# expected `objects` of shares.get(SHARE): name -> (shared_as, history status, declared startVersion)
EXPECTED_OBJECTS = {
    f"{SHARE}.s.sales": ("s.sales", "ENABLED", None),
    f"{SHARE}.s.sales_v1": ("s.sales_v1", "ENABLED", 1),
    f"{SHARE}.s.sales_nohist": ("s.sales_nohist", "DISABLED", None),
    f"{SHARE}.t.by_country": ("t.by_country", "ENABLED", None),
}


@pytest.fixture(scope="module")
def adm(lakeshare_bin, gov_sales, tmp_path_factory):
    a = A.AdminServer(lakeshare_bin, tmp_path_factory.mktemp("admin-api"), _shares(gov_sales["path"]))
    yield a
    a.stop()


@pytest.fixture(scope="module")
def w(adm):
    return adm.workspace()


@pytest.fixture(scope="module")
def nrows(gov_sales):
    return live_rows(gov_sales["path"])


# ---------------------------------------------------------------------------------------- helpers


def _kv(props):
    from databricks.sdk.service.sharing import SecurablePropertiesKvPairs

    return SecurablePropertiesKvPairs(properties=dict(props))


def _ips(ips):
    from databricks.sdk.service.sharing import IpAccessList

    return IpAccessList(allowed_ip_addresses=list(ips))


def _create(w, name, **kw):
    from databricks.sdk.service.sharing import AuthenticationType

    return w.recipients.create(name=name, authentication_type=AuthenticationType.TOKEN, **kw)


def _grant(w, share, principal, op="add"):
    from databricks.sdk.service.sharing import PermissionsChange

    return w.shares.update_permissions(share, changes=[PermissionsChange(principal=principal, **{op: ["SELECT"]})])


def _redeem(adm, activation_url, path):
    """retrieve_token(code) on the recipient listener; writes the profile to `path`; returns the dict."""
    resp = adm.activation_client().recipient_activation.retrieve_token(A.activation_code(activation_url))
    prof = resp.as_dict()
    with open(path, "w") as fh:
        json.dump(prof, fh)
    return prof


def _new_token_url(before, after):
    """activation_url of the one token entry of `after` whose id is not among `before`'s."""
    old = {t.id for t in A.token_entries(before)}
    new = [t for t in A.token_entries(after) if t.id not in old]
    assert len(new) == 1, (f"rotate_token must add exactly one new token entry; before ids {sorted(old)}, "
                           f"after {[t.as_dict() for t in A.token_entries(after)]}")
    assert new[0].activation_url, f"the new token entry needs an activation_url: {new[0].as_dict()}"
    return new[0].activation_url


def _activated(adm, w, prefix, shares=(SHARE,), **kw):
    """Create a recipient through the SDK, redeem its link, grant `shares`; returns (name, profile path, dict)."""
    name = adm.fresh_name(prefix)
    info = _create(w, name, **kw)
    path = os.path.join(adm.dir, f"{name}.share")
    prof = _redeem(adm, A.token_entries(info)[0].activation_url, path)
    for s in shares:
        _grant(w, s, name)
    return name, path, prof


def _status(adm, token, path="/shares"):
    return requests.get(adm.endpoint + path, headers={"Authorization": f"Bearer {token}"},
                        timeout=A.HTTP_TIMEOUT).status_code


def _read(path, table=f"{SHARE}.s.sales"):
    return delta_sharing.load_as_pandas(f"{path}#{table}")


def _priv_map(assignments):
    return {a.principal: sorted(p.value if hasattr(p, "value") else p for p in (a.privileges or []))
            for a in (assignments or [])}


# ---------------------------------------------------------------------------------------- listener, auth


def test_admin_listener_line(adm):
    """The admin URL comes on a second stdout line, after the recipient listener's line."""
    lines = [ln.rstrip("\n") for ln in adm.server.stdout_lines if "listening on" in ln]
    assert len(lines) >= 2, f"expected two 'listening on' lines, stdout: {adm.server.stdout_lines!r}"
    assert "admin API" not in lines[0], f"the first line must be the recipient listener's: {lines!r}"
    assert re.fullmatch(A.ADMIN_LINE_RE, lines[1]), f"second line: {lines[1]!r}"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", adm.admin_url), adm.admin_url
    assert adm.admin_url != adm.recipient_origin, "the admin API must be a listener of its own"


def test_admin_token_cli_output(adm):
    """`admin-token create` prints one line `admin token: <TOKEN>` (parsed in AdminServer)."""
    assert adm.admin_token_proc.stdout.strip() == f"admin token: {adm.admin_token}"


def test_well_known_databricks_config_is_404(adm):
    t0 = time.monotonic()
    r = requests.get(adm.admin_url + "/.well-known/databricks-config", timeout=10)
    assert r.status_code == 404, f"/.well-known/databricks-config must be 404, got {r.status_code}: {r.text[:300]}"
    r = adm.raw("GET", "/.well-known/databricks-config")
    assert r.status_code == 404, "also 404 with an admin token"
    assert time.monotonic() - t0 < 5, "the probe must be answered quickly"
    # the SDK probes it while building its config; a 404 makes it fall back at once
    t0 = time.monotonic()
    w = adm.workspace()
    assert w.config.host.rstrip("/") == adm.admin_url
    assert time.monotonic() - t0 < 10, "WorkspaceClient construction must not wait on the probe"


ADMIN_ROUTES = [
    ("GET", "/api/2.1/unity-catalog/shares", None),
    ("GET", f"/api/2.1/unity-catalog/shares/{SHARE}", None),
    ("GET", f"/api/2.1/unity-catalog/shares/{SHARE}/permissions", None),
    ("PATCH", f"/api/2.1/unity-catalog/shares/{SHARE}/permissions",
     {"changes": [{"principal": "bootstrap", "remove": ["SELECT"]}]}),
    ("GET", "/api/2.1/unity-catalog/recipients", None),
    ("POST", "/api/2.1/unity-catalog/recipients", {"name": "intruder", "authentication_type": "TOKEN"}),
    ("GET", "/api/2.1/unity-catalog/recipients/bootstrap", None),
    ("PATCH", "/api/2.1/unity-catalog/recipients/bootstrap", {"comment": "x"}),
    ("DELETE", "/api/2.1/unity-catalog/recipients/bootstrap", None),
    ("POST", "/api/2.1/unity-catalog/recipients/bootstrap/rotate-token", {"existing_token_expire_in_seconds": 0}),
    ("GET", "/api/2.1/unity-catalog/recipients/bootstrap/share-permissions", None),
]


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_routes_need_admin_token(adm, method, path, body):
    A.admin_error(adm.raw(method, path, body=body, auth=False), 401, "UNAUTHENTICATED", what="no token")
    A.admin_error(adm.raw(method, path, token="not-an-admin-token", body=body), 401, "UNAUTHENTICATED",
                  what="unknown token")
    A.admin_error(adm.raw(method, path, token=adm.admin_token + "x", body=body), 401, "UNAUTHENTICATED",
                  what="altered admin token")


def test_unauthenticated_calls_change_nothing(adm, w):
    """After the 401s above: no recipient `intruder`, `bootstrap` still exists and still has its share."""
    from databricks.sdk.errors import NotFound

    for method, path, body in ADMIN_ROUTES:
        adm.raw(method, path, body=body, auth=False)
    with pytest.raises(NotFound):
        w.recipients.get("intruder")
    assert w.recipients.get("bootstrap").name == "bootstrap"
    perms = w.recipients.share_permissions("bootstrap")
    assert [p.share_name for p in perms.permissions_out or []] == [SHARE]


def test_sdk_with_bad_token_is_unauthenticated(adm):
    from databricks.sdk.errors import DatabricksError, Unauthenticated

    bad = adm.workspace(token="not-an-admin-token")
    with pytest.raises(DatabricksError) as ei:
        list(bad.shares.list_shares())
    assert isinstance(ei.value, Unauthenticated), f"expected Unauthenticated (401), got {type(ei.value)}: {ei.value}"


def test_recipient_token_is_not_an_admin_token(adm, w):
    name, path, prof = _activated(adm, w, "notadmin")
    tok = prof["bearerToken"]
    assert _status(adm, tok) == 200, "the recipient token works on the recipient listener"
    for method, p, body in [("GET", "/api/2.1/unity-catalog/shares", None),
                            ("GET", f"/api/2.1/unity-catalog/recipients/{name}", None),
                            ("POST", f"/api/2.1/unity-catalog/recipients/{name}/rotate-token",
                             {"existing_token_expire_in_seconds": 0})]:
        A.admin_error(adm.raw(method, p, token=tok, body=body), 401, "UNAUTHENTICATED",
                      what=f"recipient token on {method} {p}")
    assert _status(adm, tok) == 200, "a refused admin call must not have rotated the recipient's token"


# ---------------------------------------------------------------------------------------- shares


def test_shares_list(adm, w):
    got = sorted(s.name for s in w.shares.list_shares())
    assert got == sorted([SHARE, OTHER_SHARE])
    r = adm.raw("GET", "/api/2.1/unity-catalog/shares")
    assert r.status_code == 200, r.text[:500]
    assert sorted(s["name"] for s in r.json()["shares"]) == sorted([SHARE, OTHER_SHARE])


def test_shares_get_objects(adm, w):
    info = w.shares.get(SHARE)
    assert info.name == SHARE
    objs = {o.name: o for o in info.objects or []}
    assert sorted(objs) == sorted(EXPECTED_OBJECTS), f"objects of {SHARE}: {sorted(objs)}"
    for name, (shared_as, hist, start) in EXPECTED_OBJECTS.items():
        o = objs[name]
        assert o.data_object_type is not None and o.data_object_type.value == "TABLE", (name, o.as_dict())
        assert o.shared_as == shared_as, (name, o.as_dict())
        assert o.history_data_sharing_status is not None and o.history_data_sharing_status.value == hist, (
            name, o.as_dict())
        if start is None:
            assert o.start_version in (None, 0), f"{name} declares no startVersion: {o.as_dict()}"
        else:
            assert o.start_version == start, (name, o.as_dict())
    other = w.shares.get(OTHER_SHARE)
    assert [o.name for o in other.objects or []] == [f"{OTHER_SHARE}.s.sales"]


def test_shares_get_raw_shape(adm):
    r = adm.raw("GET", f"/api/2.1/unity-catalog/shares/{SHARE}")
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["name"] == SHARE
    by_name = {o["name"]: o for o in body["objects"]}
    o = by_name[f"{SHARE}.s.sales_v1"]
    assert o["data_object_type"] == "TABLE" and o["shared_as"] == "s.sales_v1"
    assert o["history_data_sharing_status"] == "ENABLED" and o["start_version"] == 1
    assert by_name[f"{SHARE}.s.sales_nohist"]["history_data_sharing_status"] == "DISABLED"


def test_unknown_share_is_not_found(adm, w):
    from databricks.sdk.errors import NotFound

    with pytest.raises(NotFound):
        w.shares.get("no_such_share")
    A.admin_error(adm.raw("GET", "/api/2.1/unity-catalog/shares/no_such_share"), 404, "RESOURCE_DOES_NOT_EXIST")
    A.admin_error(adm.raw("PATCH", "/api/2.1/unity-catalog/shares/no_such_share/permissions",
                          body={"changes": [{"principal": "bootstrap", "add": ["SELECT"]}]}),
                  404, "RESOURCE_DOES_NOT_EXIST", what="permissions of an unknown share")


# ---------------------------------------------------------------------------------------- recipients


def test_create_recipient_info(adm, w):
    name = adm.fresh_name("info")
    t0 = int(time.time() * 1000)
    info = _create(w, name, comment="made by the SDK", properties_kvpairs=_kv({"country": "US", "tier": "gold"}),
                   ip_access_list=_ips(["127.0.0.1/32"]))
    assert info.name == name
    assert info.authentication_type is not None and info.authentication_type.value == "TOKEN"
    assert info.activated is False
    assert info.comment == "made by the SDK"
    assert info.created_at is not None and t0 - 60_000 <= info.created_at <= int(time.time() * 1000) + 60_000
    assert info.properties_kvpairs.properties == {"country": "US", "tier": "gold"}
    assert info.ip_access_list.allowed_ip_addresses == ["127.0.0.1/32"]
    toks = A.token_entries(info)
    assert len(toks) == 1, f"one token entry after create: {[t.as_dict() for t in toks]}"
    assert toks[0].id and toks[0].created_at
    url = toks[0].activation_url
    m = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/api/2\.1/unity-catalog/public/data_sharing_activation/([^/]+)", url)
    assert m, f"activation_url shape: {url!r}"
    assert m.group(1) == adm.recipient_origin, "the activation link is on the recipient listener"
    # get returns the same recipient
    got = w.recipients.get(name)
    assert got.name == name and got.comment == "made by the SDK"
    assert got.properties_kvpairs.properties == {"country": "US", "tier": "gold"}
    assert got.ip_access_list.allowed_ip_addresses == ["127.0.0.1/32"]


def test_create_recipient_raw_shape(adm):
    name = adm.fresh_name("raw")
    r = adm.raw("POST", "/api/2.1/unity-catalog/recipients",
                body={"name": name, "authentication_type": "TOKEN", "properties_kvpairs": {"properties": {"k": "v"}}})
    assert r.status_code == 200, r.text[:500]
    b = r.json()
    assert b["name"] == name and b["authentication_type"] == "TOKEN" and b["activated"] is False
    assert b["properties_kvpairs"] == {"properties": {"k": "v"}}
    assert isinstance(b["created_at"], int)
    assert len(b["tokens"]) == 1 and set(b["tokens"][0]) >= {"id", "activation_url", "created_at"}


def test_list_recipients(adm, w):
    name = adm.fresh_name("listed")
    _create(w, name)
    names = [r.name for r in w.recipients.list()]
    assert name in names and "bootstrap" in names
    assert len(names) == len(set(names))


def test_retrieve_token_once(adm, w, nrows):
    """The activation code gives the profile once (on the recipient listener), then 404."""
    from databricks.sdk.errors import NotFound

    name = adm.fresh_name("once")
    info = _create(w, name)
    url = A.token_entries(info)[0].activation_url
    path = os.path.join(adm.dir, f"{name}.share")
    prof = _redeem(adm, url, path)
    assert prof.get("shareCredentialsVersion") == 1, prof
    assert prof.get("endpoint", "").rstrip("/") == adm.endpoint, f"profile endpoint {prof.get('endpoint')!r}"
    assert prof.get("bearerToken"), prof
    with pytest.raises(NotFound):
        adm.activation_client().recipient_activation.retrieve_token(A.activation_code(url))
    r = requests.get(url, timeout=A.HTTP_TIMEOUT)
    assert r.status_code == 404, f"a redeemed link gives 404, got {r.status_code}: {r.text[:300]}"
    # the token works (no share granted yet: an empty share list)
    assert _status(adm, prof["bearerToken"]) == 200
    assert delta_sharing.SharingClient(path).list_shares() == []


def test_activated_after_retrieval(adm, w):
    name, _, _ = _activated(adm, w, "act", shares=())
    assert w.recipients.get(name).activated is True


def test_grant_then_read(adm, w, nrows):
    """update_permissions(add SELECT) grants the share: load_as_pandas reads it on the next request."""
    name = adm.fresh_name("reader")
    info = _create(w, name, ip_access_list=_ips(["127.0.0.1/32"]))
    path = os.path.join(adm.dir, f"{name}.share")
    _redeem(adm, A.token_entries(info)[0].activation_url, path)
    with pytest.raises(Exception) as ei:
        _read(path)
    assert "404" in str(ei.value), f"an ungranted share reads like an unknown one (404): {ei.value}"
    resp = _grant(w, SHARE, name)
    assert name in _priv_map(resp.privilege_assignments), "the PATCH answer lists the new grant"
    assert len(_read(path)) == nrows
    assert [s.name for s in delta_sharing.SharingClient(path).list_shares()] == [SHARE]


def test_share_permissions_both_views(adm, w):
    name, _, _ = _activated(adm, w, "perm", shares=(SHARE, OTHER_SHARE))
    perms = w.recipients.share_permissions(name)
    got = {p.share_name: _priv_map(p.privilege_assignments) for p in perms.permissions_out or []}
    assert got == {SHARE: {name: ["SELECT"]}, OTHER_SHARE: {name: ["SELECT"]}}, got
    sp = w.shares.share_permissions(SHARE)
    assert _priv_map(sp.privilege_assignments).get(name) == ["SELECT"]
    r = adm.raw("GET", f"/api/2.1/unity-catalog/shares/{SHARE}/permissions")
    assert r.status_code == 200, r.text[:500]
    assert {"principal": name, "privileges": ["SELECT"]} in r.json()["privilege_assignments"]
    r = adm.raw("GET", f"/api/2.1/unity-catalog/recipients/{name}/share-permissions")
    assert r.status_code == 200, r.text[:500]
    assert sorted(p["share_name"] for p in r.json()["permissions_out"]) == sorted([SHARE, OTHER_SHARE])


def test_remove_permission(adm, w, nrows):
    name, path, _ = _activated(adm, w, "revperm", shares=(SHARE, OTHER_SHARE))
    assert len(_read(path)) == nrows
    _grant(w, SHARE, name, op="remove")
    with pytest.raises(Exception) as ei:
        _read(path)
    assert "404" in str(ei.value), f"a removed grant reads like an unknown share (404): {ei.value}"
    assert len(_read(path, f"{OTHER_SHARE}.s.sales")) == nrows, "the other grant stays"
    perms = w.recipients.share_permissions(name)
    assert [p.share_name for p in perms.permissions_out or []] == [OTHER_SHARE]
    assert name not in _priv_map(w.shares.share_permissions(SHARE).privilege_assignments)


def test_properties_drive_partition_filters(adm, w, gov_sales):
    """properties_kvpairs set through the admin API feed the `recipientPropertyKey` partition filter."""
    name, path, _ = _activated(adm, w, "us", properties_kvpairs=_kv({"country": "US"}))
    df = _read(path, f"{SHARE}.t.by_country")
    snap = gov_sales["snap"][gov_sales["latest_version"]]
    want = len(snap.filter(lambda r: r["country"] == "US").rows)
    assert want > 0
    assert len(df) == want and set(df["country"]) == {"US"}
    # an update of the properties takes effect on the next request
    w.recipients.update(name, properties_kvpairs=_kv({"country": "FR"}))
    df = _read(path, f"{SHARE}.t.by_country")
    want_fr = len(snap.filter(lambda r: r["country"] == "FR").rows)
    assert len(df) == want_fr and set(df["country"]) == {"FR"}


def test_update_recipient(adm, w):
    name, _, prof = _activated(adm, w, "upd", ip_access_list=_ips(["127.0.0.1"]))
    tok = prof["bearerToken"]
    assert _status(adm, tok) == 200
    info = w.recipients.update(name, comment="new comment", ip_access_list=_ips(["10.0.0.0/8"]))
    got = w.recipients.get(name)
    assert got.comment == "new comment"
    assert got.ip_access_list.allowed_ip_addresses == ["10.0.0.0/8"]
    assert _status(adm, tok) == 403, "a narrowed IP access list applies on the next request"
    w.recipients.update(name, ip_access_list=_ips(["127.0.0.0/8"]))
    assert _status(adm, tok) == 200
    del info


def test_rotate_with_grace(adm, w, nrows):
    """rotate_token(name, 2): old profile works right after, 401 within a bounded ~3 s poll; the new
    activation link gives a working profile."""
    name, path0, prof0 = _activated(adm, w, "rot")
    tok0 = prof0["bearerToken"]
    before = w.recipients.get(name)
    t0 = time.monotonic()
    after = w.recipients.rotate_token(name, existing_token_expire_in_seconds=2)
    assert after.name == name
    assert _status(adm, tok0) == 200, "the old token keeps working right after rotate (2 s grace)"
    assert len(_read(path0)) == nrows, "the old profile reads during the grace period"
    path1 = os.path.join(adm.dir, f"{name}-r1.share")
    prof1 = _redeem(adm, _new_token_url(before, after), path1)
    assert prof1["bearerToken"] != tok0
    assert len(_read(path1)) == nrows, "the rotated profile reads the share (grants belong to the recipient)"
    ok, _ = A.wait_status(lambda: _status(adm, tok0), 401, timeout=max(0.0, t0 + 3.0 - time.monotonic()))
    elapsed = time.monotonic() - t0
    assert ok, "the old token must get 401 within ~3 s of rotate_token(existing_token_expire_in_seconds=2)"
    assert elapsed >= 0.9, f"the old token was refused after {elapsed:.2f}s, before its 2 s were over"
    with pytest.raises(Exception) as ei:
        _read(path0)
    assert "401" in str(ei.value), f"the old profile fails with 401: {ei.value}"
    assert _status(adm, prof1["bearerToken"]) == 200


def test_rotate_zero_revokes_at_once(adm, w, nrows):
    name, path0, prof0 = _activated(adm, w, "rot0")
    before = w.recipients.get(name)
    after = w.recipients.rotate_token(name, existing_token_expire_in_seconds=0)
    assert _status(adm, prof0["bearerToken"]) == 401, "rotate_token(..., 0) revokes the old token at once"
    path1 = os.path.join(adm.dir, f"{name}-r1.share")
    prof1 = _redeem(adm, _new_token_url(before, after), path1)
    assert len(_read(path1)) == nrows
    r = requests.get(adm.endpoint + "/shares", headers={"Authorization": f"Bearer {prof0['bearerToken']}"},
                     timeout=A.HTTP_TIMEOUT)
    assert r.status_code == 401


def test_rotate_raw_shape(adm, w):
    name, _, _ = _activated(adm, w, "rotraw", shares=())
    r = adm.raw("POST", f"/api/2.1/unity-catalog/recipients/{name}/rotate-token",
                body={"existing_token_expire_in_seconds": 0})
    assert r.status_code == 200, r.text[:500]
    b = r.json()
    assert b["name"] == name
    urls = [t.get("activation_url") for t in b["tokens"]]
    assert any(u and u.startswith(adm.recipient_origin + "/api/2.1/unity-catalog/public/data_sharing_activation/")
               for u in urls), b["tokens"]


def test_delete_recipient(adm, w, nrows):
    from databricks.sdk.errors import NotFound

    name, path, prof = _activated(adm, w, "del")
    assert len(_read(path)) == nrows
    w.recipients.delete(name)
    assert _status(adm, prof["bearerToken"]) == 401, "a deleted recipient's next request is 401"
    with pytest.raises(Exception) as ei:
        _read(path)
    assert "401" in str(ei.value), f"connector with a deleted recipient's profile: {ei.value}"
    with pytest.raises(NotFound):
        w.recipients.get(name)
    assert name not in [r.name for r in w.recipients.list()]


def test_get_missing_recipient(adm, w):
    from databricks.sdk.errors import NotFound

    with pytest.raises(NotFound):
        w.recipients.get("no_such_recipient")
    A.admin_error(adm.raw("GET", "/api/2.1/unity-catalog/recipients/no_such_recipient"), 404,
                  "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(NotFound):
        w.recipients.rotate_token("no_such_recipient", existing_token_expire_in_seconds=0)
    with pytest.raises(NotFound):
        w.recipients.delete("no_such_recipient")


def test_create_duplicate_recipient(adm, w):
    from databricks.sdk.errors import ResourceAlreadyExists

    name = adm.fresh_name("dup")
    _create(w, name)
    with pytest.raises(ResourceAlreadyExists):
        _create(w, name)
    A.admin_error(adm.raw("POST", "/api/2.1/unity-catalog/recipients",
                          body={"name": name, "authentication_type": "TOKEN"}),
                  409, "RESOURCE_ALREADY_EXISTS")


def test_create_invalid_ip_list(adm, w):
    from databricks.sdk.errors import InvalidParameterValue, NotFound

    name = adm.fresh_name("badip")
    with pytest.raises(InvalidParameterValue):
        _create(w, name, ip_access_list=_ips(["not-an-address"]))
    A.admin_error(adm.raw("POST", "/api/2.1/unity-catalog/recipients",
                          body={"name": name, "authentication_type": "TOKEN",
                                "ip_access_list": {"allowed_ip_addresses": ["300.1.2.3/8"]}}),
                  400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(NotFound):
        w.recipients.get(name)


def test_create_with_expiration_time(adm, w):
    """expiration_time (epoch ms) on create: echoed on the token entry, the redeemed token works until
    then and gets 401 afterwards (bounded poll)."""
    name = adm.fresh_name("exp")
    t0 = time.monotonic()
    exp_ms = int(time.time() * 1000) + 3000
    info = _create(w, name, expiration_time=exp_ms)
    assert info.expiration_time in (None, exp_ms), info.as_dict()
    tok_entry = A.token_entries(info)[0]
    path = os.path.join(adm.dir, f"{name}.share")
    prof = _redeem(adm, tok_entry.activation_url, path)
    assert prof.get("expirationTime"), f"the profile carries the expiry: {prof}"
    tok = prof["bearerToken"]
    assert _status(adm, tok) == 200, "the token works before its expiration_time"
    ok, _ = A.wait_status(lambda: _status(adm, tok), 401, timeout=max(0.0, t0 + 4.5 - time.monotonic()))
    assert ok, "the token must get 401 within ~1.5 s after its expiration_time"
    r = requests.get(adm.endpoint + "/shares", headers={"Authorization": f"Bearer {tok}"}, timeout=A.HTTP_TIMEOUT)
    assert r.status_code == 401 and "expired" in r.json().get("message", ""), r.text[:300]
    # the RecipientInfo of create showed the expiry on its token entry (`tokens[].expiration_time`)
    assert tok_entry.expiration_time == exp_ms, f"token entry of create: {tok_entry.as_dict()}"
