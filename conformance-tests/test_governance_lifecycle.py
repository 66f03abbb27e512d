"""Recipient lifecycle on the embedded store (issue C1 contract, /tmp/lakeshare-spec-C1.md):
create (with --expires-in), rotate with and without a grace period, revoke (tokens and outstanding
signed file URLs), expiry, and `recipient show` (never the token itself; token prefixes listed).

The stock Python connector reads data between the steps. Time-based steps use bounded polling
loops (governance.poll_until) with explicit deadlines, never a blind sleep.
"""
import datetime as dt
import time

import delta_sharing
import pytest
import requests

from api import assert_error, file_lines, ndjson
from governance import GovServer, json_strings, live_rows, poll_until

SHARES = ["alpha", "beta"]
TABLE = ("alpha", "s", "sales")


def _shares(path):
    return [{"name": s, "schemas": [{"name": "s", "tables": [
        {"name": "sales", "location": path, "historyShared": True}]}]} for s in SHARES]


@pytest.fixture(scope="module")
def gov(lakeshare_bin, gov_sales, tmp_path_factory):
    g = GovServer(lakeshare_bin, tmp_path_factory.mktemp("gov-lifecycle"), _shares(gov_sales["path"]))
    yield g
    g.stop()


@pytest.fixture(scope="module")
def nrows(gov_sales):
    return live_rows(gov_sales["path"])


def _read(profile):
    return delta_sharing.load_as_pandas(f"{profile}#alpha.s.sales")


def _status(g, token, path="/shares"):
    return g.api(token).get(path).status_code


def _signed_url(g, token):
    r = g.api(token).query(*TABLE, {})
    assert r.status_code == 200, r.text[:500]
    files = file_lines(ndjson(r))
    assert files, "gov-sales has files"
    url = files[0]["url"]
    assert requests.get(url, timeout=30).status_code == 200, "a fresh signed URL must be readable"
    return url


def test_lifecycle_walk(gov, nrows):
    """create -> rotate --grace 2 -> rotate --grace 0 -> revoke, with connector reads in between."""
    g = gov
    name = "walker"
    profile0, prof0 = g.create(name, ["alpha"])
    tok0 = prof0["bearerToken"]
    assert prof0["shareCredentialsVersion"] == 1 and prof0["endpoint"].rstrip("/") == g.endpoint
    assert len(_read(profile0)) == nrows, "a freshly created recipient reads the table"

    # rotate with a 2 s grace period: both tokens work right after
    t0 = time.monotonic()
    profile1, tok1 = g.rotate(name, grace=2, tag="-r1")
    t_rot = time.monotonic()
    assert tok1 != tok0, "rotate must issue a new token"
    assert _status(g, tok0) == 200, "the old token keeps working during the grace period"
    assert _status(g, tok1) == 200, "the new token works at once"
    assert len(_read(profile1)) == nrows, "the connector reads with the rotated profile"
    # ... and the old one gets 401 once the grace is over (bounded poll: at most ~2.5 s after rotate)
    got, _ = poll_until(lambda: _status(g, tok0) == 401, timeout=max(0.0, t_rot + 2.5 - time.monotonic()))
    t_401 = time.monotonic() - t0
    assert got, "the old token must get 401 within ~2.5 s of a rotate with --grace 2"
    assert t_401 >= 0.9, f"the old token was refused after {t_401:.2f}s, before the 2 s grace was over"
    assert_error(g.api(tok0).get("/shares"), 401, what="token rotated out after its grace")
    assert _status(g, tok1) == 200

    # rotate with --grace 0: the previous token is refused on the very next request
    profile2, tok2 = g.rotate(name, grace=0, tag="-r2")
    assert len({tok0, tok1, tok2}) == 3
    assert_error(g.api(tok1).get("/shares"), 401, what="token rotated out with --grace 0")
    assert len(_read(profile2)) == nrows

    # revoke: every token and every outstanding signed URL stops at once
    url = _signed_url(g, tok2)
    g.revoke(name)
    assert_error(g.api(tok2).get("/shares"), 401, what="revoked recipient's current token")
    assert g.api(tok2).query(*TABLE, {}).status_code == 401
    for t in (tok0, tok1):
        assert _status(g, t) == 401
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, f"signed URL issued before revoke must give 403, got {r.status_code}"
    with pytest.raises(Exception) as ei:
        _read(profile2)
    assert "401" in str(ei.value), f"connector with a revoked profile must fail with 401: {ei.value}"


def test_rotate_default_grace_is_zero(gov):
    name, _, tok0 = gov.new_recipient("nograce", ["alpha"])
    assert _status(gov, tok0) == 200
    _, tok1 = gov.rotate(name)
    assert_error(gov.api(tok0).get("/shares"), 401, what="rotate without --grace revokes the old token at once")
    assert _status(gov, tok1) == 200


def test_rotate_keeps_grants(gov):
    """A rotated token sees exactly the shares the recipient had (grants belong to the recipient)."""
    name, _, tok0 = gov.new_recipient("keep", ["beta"])
    _, tok1 = gov.rotate(name, grace=0)
    r = gov.api(tok1).get("/shares")
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["items"]] == ["beta"]


def test_expires_in(gov, nrows):
    """--expires-in 2s: works now, then 401 with 'expired' (bounded poll)."""
    name = gov.fresh_name("short")
    t0 = time.time()
    profile, prof = gov.create(name, ["alpha"], expires_in="2s")
    t_created = time.monotonic()
    tok = prof["bearerToken"]
    assert "expirationTime" in prof, f"profile of an expiring recipient must carry expirationTime: {prof}"
    exp = dt.datetime.fromisoformat(prof["expirationTime"].replace("Z", "+00:00")).timestamp()
    assert t0 + 0.5 <= exp <= time.time() + 3.5, (
        f"expirationTime {prof['expirationTime']} is not ~2 s after creation")
    assert _status(gov, tok) == 200, "an unexpired token works"

    def expired():
        r = gov.api(tok).get("/shares")
        return r if r.status_code == 401 else None

    r, _ = poll_until(expired, timeout=max(0.0, t_created + 3.5 - time.monotonic()))
    assert r is not None, "a token created with --expires-in 2s must get 401 within ~3.5 s"
    _, msg = assert_error(r, 401, what="expired token")
    assert "expired" in msg.lower(), f"401 for an expired token must say 'expired': {msg!r}"
    assert time.monotonic() - t_created >= 0.5, "refused too early"
    with pytest.raises(Exception) as ei:
        _read(profile)
    assert "401" in str(ei.value) or "expired" in str(ei.value).lower(), str(ei.value)


@pytest.mark.parametrize("value", ["90d", "12h", "30m", "45s"])
def test_expires_in_units(gov, value):
    """DURATION like 90d, 12h, 30m, 45s: the profile's expirationTime is now + DURATION."""
    secs = int(value[:-1]) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[value[-1]]
    t0 = time.time()
    _, prof = gov.create(gov.fresh_name("unit"), ["alpha"], expires_in=value)
    exp = dt.datetime.fromisoformat(prof["expirationTime"].replace("Z", "+00:00")).timestamp()
    assert t0 + secs - 2 <= exp <= time.time() + secs + 2, (value, prof["expirationTime"])
    assert _status(gov, prof["bearerToken"]) == 200


def test_show_never_prints_token(gov):
    name = gov.fresh_name("shown")
    _, prof = gov.create(name, ["alpha", "beta"], properties={"country": "US", "tier": "gold"},
                         allow_ip=["127.0.0.0/8", "10.1.2.0/24"])
    tok0 = prof["bearerToken"]
    _, tok1 = gov.rotate(name, grace=3600)
    data, pj = gov.show(name, as_json=True)
    text, pt = gov.show(name, as_json=False)
    everything = pj.stdout + pj.stderr + pt.stdout + pt.stderr
    strings = json_strings(data)
    for tok in (tok0, tok1):
        assert tok not in everything, "recipient show must never print a token"
        prefixes = [s for s in strings if 4 <= len(s) < len(tok) and tok.startswith(s)]
        assert prefixes, f"show --json must list the token prefix of every live token; strings: {strings}"
        secret = tok[max(len(p) for p in prefixes):]
        assert secret not in everything, "the secret part of a token must not appear"
        assert tok[-8:] not in everything, "no tail of a token secret may appear"
        assert max(len(p) for p in prefixes) <= len(tok) // 2, "a 'prefix' must not reveal most of the token"
    for want in ("country", "US", "tier", "gold", "127.0.0.0/8", "10.1.2.0/24", "alpha", "beta"):
        assert want in strings or any(want in s for s in strings), f"show --json lacks {want!r}: {data}"
        assert want in text, f"plain `recipient show` lacks {want!r}:\n{text}"


def test_show_after_update(gov):
    name = gov.fresh_name("upd")
    gov.create(name, ["alpha"], properties={"country": "US"})
    gov.update(name, "--property", "region=emea", "--remove-property", "country", "--allow-ip", "127.0.0.1")
    data, _ = gov.show(name)
    strings = json_strings(data)
    assert "emea" in strings and "region" in strings, data
    assert "country" not in strings, f"--remove-property country must remove it: {data}"
    assert any("127.0.0.1" in s for s in strings), data


@pytest.mark.parametrize("cmd", [
    ["recipient", "rotate", "nosuchrecipient", "--profile", "{dir}/x.share"],
    ["recipient", "update", "nosuchrecipient", "--property", "a=b"],
    ["recipient", "show", "nosuchrecipient"],
])
def test_unknown_recipient_fails(gov, cmd):
    args = [c.replace("{dir}", gov.dir) for c in cmd] + gov.where
    proc = gov.cli(*args, check=False)
    assert proc.returncode != 0, f"`lakeshare {' '.join(args)}` must fail"
    assert "nosuchrecipient" in proc.stderr + proc.stdout, "the error names the recipient"


def test_revoke_stops_grace_tokens_too(gov):
    """revoke: every token stops at once, including one still inside a rotate grace period."""
    name, _, tok0 = gov.new_recipient("rg", ["alpha"])
    _, tok1 = gov.rotate(name, grace=3600)
    assert _status(gov, tok0) == 200 and _status(gov, tok1) == 200
    url = _signed_url(gov, tok0)
    gov.revoke(name)
    for t in (tok0, tok1):
        assert_error(gov.api(t).get("/shares"), 401, what="token of a revoked recipient")
    assert requests.get(url, timeout=30).status_code == 403


def test_rotate_expires_in(gov):
    """rotate --expires-in 2s: the new token expires (401 'expired', bounded poll)."""
    name, _, _ = gov.new_recipient("re", ["alpha"])
    profile = gov.profile_path(name, "-exp")
    gov.cli("recipient", "rotate", name, *gov.where, "--endpoint", gov.endpoint, "--profile", profile,
            "--expires-in", "2s")
    t = time.monotonic()
    import json
    with open(profile) as fh:
        prof = json.load(fh)
    assert "expirationTime" in prof, prof
    tok = prof["bearerToken"]
    assert _status(gov, tok) == 200

    def expired():
        r = gov.api(tok).get("/shares")
        return r if r.status_code == 401 else None

    r, _ = poll_until(expired, timeout=max(0.0, t + 3.5 - time.monotonic()))
    assert r is not None, "a rotated token with --expires-in 2s must expire within ~3.5 s"
    _, msg = assert_error(r, 401, what="expired rotated token")
    assert "expired" in msg.lower(), msg
