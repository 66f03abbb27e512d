"""IP allow lists (issue C1): a recipient whose --allow-ip list does not contain the peer address gets
403 PERMISSION_DENIED ("not allowed from") on every route; a matching CIDR or bare IP works; an
empty list means any address; `recipient update --allow-ip/--clear-ip-list` takes effect on the next
request. The test client always connects from 127.0.0.1 (the server binds loopback)."""
import delta_sharing
import pytest

from api import assert_error, file_lines, ndjson
from governance import GovServer, live_rows

T = "/shares/alpha/schemas/s/tables/sales"
ROUTES = [
    ("GET", "/shares"),
    ("GET", "/shares/alpha"),
    ("GET", "/shares/alpha/schemas"),
    ("GET", "/shares/alpha/all-tables"),
    ("GET", "/shares/alpha/schemas/s/tables"),
    ("GET", T + "/version"),
    ("GET", T + "/metadata"),
    ("POST", T + "/query"),
    ("POST", T + "/query#startingVersion"),
    ("GET", T + "/changes?startingVersion=0"),
    ("GET", T + "/changes?startingVersion=1&endingVersion=3"),
]


def _call(api, method, path, headers=None):
    # a fresh connection per request: the per-route checks are about status and body only;
    # connection reuse after a refusal is tested on its own (test_keep_alive_after_refusal)
    headers = dict(headers or {}, Connection="close")
    if method == "GET":
        return api.get(path, headers=headers)
    if path.endswith("#startingVersion"):
        return api.post(path.split("#")[0], {"startingVersion": 1}, headers=headers)
    return api.post(path, {}, headers=headers)


@pytest.fixture(scope="module")
def gov(lakeshare_bin, gov_sales, tmp_path_factory):
    shares = [{"name": "alpha", "schemas": [{"name": "s", "tables": [
        {"name": "sales", "location": gov_sales["path"], "historyShared": True}]}]}]
    g = GovServer(lakeshare_bin, tmp_path_factory.mktemp("gov-ip"), shares)
    yield g
    g.stop()


def _recipient(gov, cidrs, prefix="ip"):
    return gov.new_recipient(prefix, ["alpha"], allow_ip=list(cidrs))


def _assert_denied_everywhere(api, what, headers=None):
    for method, path in ROUTES:
        r = _call(api, method, path, headers)
        assert_error(r, 403, "PERMISSION_DENIED", "not allowed from", what=f"{what}: {method} {path}")
    r = api.head(T, headers={"Connection": "close"})
    assert r.status_code == 403, f"{what}: HEAD {T} -> {r.status_code}"


def _assert_allowed_everywhere(api, what):
    for method, path in ROUTES:
        r = _call(api, method, path)
        assert r.status_code == 200, f"{what}: {method} {path} -> {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("cidrs", [["10.1.2.0/24"], ["10.9.9.9"], ["10.1.2.0/24", "192.168.0.0/16"],
                                   ["2001:db8::/32"]],
                         ids=["cidr", "bare-ip", "two-cidrs", "ipv6-only"])
def test_denied_on_every_route(gov, cidrs):
    _, _, tok = _recipient(gov, cidrs)
    _assert_denied_everywhere(gov.api(tok), f"allow-ip {cidrs}")


@pytest.mark.parametrize("cidrs", [["127.0.0.0/8"], ["127.0.0.1"], ["127.0.0.1/32"], ["10.1.2.0/24", "127.0.0.0/8"]],
                         ids=["loopback-cidr", "bare-ip", "slash32", "second-entry-matches"])
def test_allowed_on_every_route(gov, gov_sales, cidrs):
    _, profile, tok = _recipient(gov, cidrs)
    _assert_allowed_everywhere(gov.api(tok), f"allow-ip {cidrs}")
    df = delta_sharing.load_as_pandas(f"{profile}#alpha.s.sales")
    assert len(df) == live_rows(gov_sales["path"])


def test_denied_connector_read(gov):
    _, profile, _ = _recipient(gov, ["10.1.2.0/24"])
    with pytest.raises(Exception) as ei:
        delta_sharing.load_as_pandas(f"{profile}#alpha.s.sales")
    assert "403" in str(ei.value), f"the connector must surface the 403: {ei.value}"
    with pytest.raises(Exception) as ei:
        delta_sharing.SharingClient(profile).list_all_tables()
    assert "403" in str(ei.value)


def test_forwarded_for_header_is_not_trusted(gov):
    """Without any proxy configuration the peer address decides, not X-Forwarded-For / Forwarded."""
    _, _, tok = _recipient(gov, ["10.1.2.0/24"])
    hdrs = {"X-Forwarded-For": "10.1.2.7", "X-Real-IP": "10.1.2.7", "Forwarded": "for=10.1.2.7"}
    _assert_denied_everywhere(gov.api(tok), "spoofed forwarding headers", headers=hdrs)


def test_update_ip_list_takes_effect_next_request(gov):
    name, _, tok = _recipient(gov, [])
    api = gov.api(tok)
    assert api.get("/shares").status_code == 200, "empty list = any address"
    gov.update(name, "--allow-ip", "10.1.2.0/24")
    _assert_denied_everywhere(api, "after update --allow-ip 10.1.2.0/24")
    gov.update(name, "--clear-ip-list")
    _assert_allowed_everywhere(api, "after update --clear-ip-list")
    gov.update(name, "--allow-ip", "127.0.0.0/8")
    _assert_allowed_everywhere(api, "after update --allow-ip 127.0.0.0/8")


def test_clear_ip_list_restores_access(gov, gov_sales):
    name, profile, tok = _recipient(gov, ["10.1.2.0/24"])
    api = gov.api(tok)
    assert_error(api.get("/shares"), 403, "PERMISSION_DENIED", "not allowed from", what="before clear")
    gov.update(name, "--clear-ip-list")
    assert api.get("/shares").status_code == 200, "--clear-ip-list restores access on the next request"
    df = delta_sharing.load_as_pandas(f"{profile}#alpha.s.sales")
    assert len(df) == live_rows(gov_sales["path"])


def test_denied_message_names_address(gov):
    _, _, tok = _recipient(gov, ["10.1.2.0/24"])
    _, msg = assert_error(gov.api(tok).get("/shares"), 403, "PERMISSION_DENIED", "not allowed from")
    assert "127.0.0.1" in msg, f"the message should name the refused address: {msg!r}"


def test_other_recipients_unaffected(gov):
    _, _, denied = _recipient(gov, ["10.1.2.0/24"])
    _, _, free = _recipient(gov, [])
    assert gov.api(denied).get("/shares").status_code == 403
    r = gov.api(free).query("alpha", "s", "sales", {})
    assert r.status_code == 200 and file_lines(ndjson(r))


@pytest.mark.parametrize("bad", ["10.1.2.0/33", "not-an-ip", "300.1.1.1"])
def test_invalid_cidr_rejected(gov, bad):
    name = gov.fresh_name("bad")
    _, prof = gov.create(name, ["alpha"], allow_ip=[bad], check=False)
    assert prof is None, f"--allow-ip {bad!r} must be rejected"


@pytest.mark.parametrize("who", ["ip-denied-403", "bad-token-401"])
def test_keep_alive_after_refusal(gov, who):
    """After a refused POST with a body (403 IP denial / 401 bad token) the server must either answer
    the next request on the same keep-alive connection or announce `Connection: close`; it must not
    drop the reused connection without a response (the stock connector reuses a requests.Session)."""
    import requests

    if who == "ip-denied-403":
        _, _, tok = _recipient(gov, ["10.1.2.0/24"])
        want = 403
    else:
        tok, want = "not-a-valid-token", 401
    api = gov.api(tok)
    errors = []
    for i in range(150):
        for call in (lambda: api.post(T + "/query", {"startingVersion": 1}), lambda: api.get(T + "/metadata")):
            try:
                r = call()
                assert r.status_code == want, r.status_code
            except requests.exceptions.ConnectionError as exc:
                errors.append(f"request {i}: {exc}")
    assert not errors, (f"{len(errors)} of 300 requests on a reused connection after a refused POST got no "
                        f"response:\n" + "\n".join(errors[:3]))
