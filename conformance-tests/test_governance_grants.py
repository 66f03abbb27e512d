"""Grants (issue C1): `grant add` / `grant remove` take effect on the next request; an ungranted,
removed or expired grant answers 404 exactly like an unknown share (same status, errorCode and
message shape); signed file URLs issued under a removed grant give 403."""
import re
import time

import delta_sharing
import pytest
import requests

from api import error_of, file_lines, ndjson
from governance import GovServer, json_strings, live_rows, poll_until

UNKNOWN = "nosuchshare"


def _shares(path):
    return [{"name": s, "schemas": [{"name": "s", "tables": [
        {"name": "sales", "location": path, "historyShared": True}]}]} for s in ("alpha", "beta")]


@pytest.fixture(scope="module")
def gov(lakeshare_bin, gov_sales, tmp_path_factory):
    g = GovServer(lakeshare_bin, tmp_path_factory.mktemp("gov-grants"), _shares(gov_sales["path"]))
    yield g
    g.stop()


PATHS = [
    ("GET", "/shares/{s}"),
    ("GET", "/shares/{s}/schemas"),
    ("GET", "/shares/{s}/all-tables"),
    ("GET", "/shares/{s}/schemas/s/tables"),
    ("GET", "/shares/{s}/schemas/s/tables/sales/version"),
    ("GET", "/shares/{s}/schemas/s/tables/sales/metadata"),
    ("POST", "/shares/{s}/schemas/s/tables/sales/query"),
    ("GET", "/shares/{s}/schemas/s/tables/sales/changes?startingVersion=0"),
]


def _call(api, method, path):
    return api.get(path) if method == "GET" else api.post(path, {})


def _listed(api):
    r = api.get("/shares")
    assert r.status_code == 200, r.text[:300]
    return [s["name"] for s in r.json().get("items", [])]


def _assert_like_unknown(api, share, what):
    """Every share path of `share` answers exactly like the same path of an unknown share."""
    for method, path in PATHS:
        r = _call(api, method, path.format(s=share))
        u = _call(api, method, path.format(s=UNKNOWN))
        assert u.status_code == 404, f"unknown share {method} {path}: {u.status_code}"
        assert r.status_code == 404, f"{what}: {method} {path.format(s=share)} -> {r.status_code} {r.text[:300]}"
        _, rc, rm = error_of(r)
        _, uc, um = error_of(u)
        assert rc == uc, f"{what}: errorCode {rc} != unknown share's {uc} ({method} {path})"
        norm = lambda m, name: re.sub(re.escape(name), "<SHARE>", m, flags=re.I)  # noqa: E731
        assert norm(rm, share) == norm(um, UNKNOWN), (
            f"{what}: message shape differs from an unknown share's ({method} {path}):\n  {rm!r}\n  {um!r}")


def _signed_url(api, share):
    r = api.query(share, "s", "sales", {})
    assert r.status_code == 200, r.text[:300]
    url = file_lines(ndjson(r))[0]["url"]
    assert requests.get(url, timeout=30).status_code == 200
    return url


def test_grant_add_then_remove(gov, gov_sales):
    name, profile, tok = gov.new_recipient("g", ["alpha"])
    api = gov.api(tok)
    assert _listed(api) == ["alpha"]
    _assert_like_unknown(api, "beta", "never-granted share")

    gov.grant_add(name, "beta")
    assert _listed(api) == ["alpha", "beta"], "grant add takes effect on the next request"
    for method, path in PATHS:
        r = _call(api, method, path.format(s="beta"))
        assert r.status_code == 200, f"after grant add: {method} {path} -> {r.status_code} {r.text[:300]}"
    df = delta_sharing.load_as_pandas(f"{profile}#beta.s.sales")
    assert len(df) == live_rows(gov_sales["path"])

    gov.grant_remove(name, "beta")
    assert _listed(api) == ["alpha"], "grant remove takes effect on the next request"
    _assert_like_unknown(api, "beta", "removed grant")
    assert api.query("alpha", "s", "sales", {}).status_code == 200, "other grants are untouched"


def test_removed_grant_file_urls_403(gov):
    name, _, tok = gov.new_recipient("u", ["alpha", "beta"])
    api = gov.api(tok)
    beta_url = _signed_url(api, "beta")
    alpha_url = _signed_url(api, "alpha")
    gov.grant_remove(name, "beta")
    r = requests.get(beta_url, timeout=30)
    assert r.status_code == 403, f"file URL issued under a removed grant must give 403, got {r.status_code}"
    assert requests.head(beta_url, timeout=30).status_code == 403
    assert requests.get(alpha_url, timeout=30).status_code == 200, (
        "URLs issued under a grant that still exists keep working")
    # granting again gives access again (new URLs work)
    gov.grant_add(name, "beta")
    _signed_url(api, "beta")


def test_grant_expires(gov):
    name, _, tok = gov.new_recipient("e", ["alpha"])
    api = gov.api(tok)
    gov.grant_add(name, "beta", expires_in="2s")
    t_add = time.monotonic()
    assert _listed(api) == ["alpha", "beta"]
    url = _signed_url(api, "beta")
    gone, _ = poll_until(lambda: "beta" not in _listed(api), timeout=max(0.0, t_add + 3.5 - time.monotonic()))
    assert gone, "a grant with --expires-in 2s must disappear within ~3.5 s"
    _assert_like_unknown(api, "beta", "expired grant")
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, f"file URL issued under an expired grant must give 403, got {r.status_code}"
    assert api.query("alpha", "s", "sales", {}).status_code == 200
    # granting again (no expiry) restores access
    gov.grant_add(name, "beta")
    assert _listed(api) == ["alpha", "beta"]
    _signed_url(api, "beta")


def test_show_lists_grants_with_expiry(gov):
    name, _, _ = gov.new_recipient("s", ["alpha"])
    gov.grant_add(name, "beta", expires="2099-01-01T00:00:00Z")
    data, proc = gov.show(name)
    strings = json_strings(data)
    assert "alpha" in strings and "beta" in strings, data
    assert any("2099-01-01" in s for s in strings) or "4070908800" in proc.stdout, (
        f"show --json must list the grant expiry: {data}")


def test_grant_unknown_share_fails(gov):
    name, _, _ = gov.new_recipient("n", ["alpha"])
    proc = gov.cli("grant", "add", name, UNKNOWN, *gov.where, check=False)
    assert proc.returncode != 0, "granting a share that is not in the config must fail"
    assert UNKNOWN in proc.stderr + proc.stdout


def test_grant_remove_last_share(gov):
    """A recipient whose only grant is removed still authenticates (200, empty listing)."""
    name, _, tok = gov.new_recipient("l", ["alpha"])
    gov.grant_remove(name, "alpha")
    api = gov.api(tok)
    assert _listed(api) == []
    _assert_like_unknown(api, "alpha", "last grant removed")


def test_removed_grant_page_token_and_async_404(gov):
    """A page token or async query id obtained under a grant is useless once the grant is removed."""
    from paging import Page, spark_headers

    name, _, tok = gov.new_recipient("p", ["alpha", "beta"])
    api = gov.api(tok)
    h = spark_headers("responseformat=parquet;asyncquery=true")
    first = Page(api.query("beta", "s", "sales", {"predicateHints": [], "maxFiles": 1}, headers=spark_headers()))
    assert first.next_token
    r = api.query("beta", "s", "sales", {"predicateHints": [], "idempotency_key": "k-removed-grant"}, headers=h)
    assert r.status_code == 200, r.text[:300]
    qid = ndjson(r)[0]["queryStatus"]["queryId"]
    gov.grant_remove(name, "beta")
    r = api.query("beta", "s", "sales", {"predicateHints": [], "maxFiles": 1, "pageToken": first.next_token},
                  headers=spark_headers())
    assert r.status_code == 404 and error_of(r)[1] == "RESOURCE_DOES_NOT_EXIST", f"{r.status_code} {r.text[:300]}"
    r = api.post(api.table_path("beta", "s", "sales", f"/queries/{qid}"), {"queryId": qid}, headers=h)
    assert r.status_code == 404, f"async poll after grant remove: {r.status_code} {r.text[:300]}"
