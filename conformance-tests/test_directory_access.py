"""Directory access (Delta Sharing `accessModes: ["url", "dir"]`):
`POST .../tables/{table}/temporary-table-credentials`.

What the server sends to the credential services is checked against known answers, because the
emulators cannot prove the scoping:

* S3: a recording fake STS (`stsEndpoint`) captures the SigV4-signed GetFederationToken /
  AssumeRole request; the form fields, the session policy and DurationSeconds are compared with
  the expected ones, the policy is also evaluated with IAM wildcard semantics (what it allows and
  denies), and the signature is recomputed with botocore. moto then plays STS end to end
  (moto does not enforce session policies, so that part only proves the credentials work).
* Azure: the directory SAS is recomputed from its own fields with the Azurite account key.
* GCS: a recording fake OAuth token endpoint (the service account's `token_uri`) and a fake Google
  STS capture the JWT-bearer grant (RS256, verified with the public key) and the token exchange
  with its Credential Access Boundary.

Plus the rules: listings advertise `location` + `accessModes` only where directory access is
possible, history sharing is required, partition-filtered tables are refused, the requested
`location` must be the table root or under it, and the usual 401/404.

Tables are minimal Delta tables (one commit, no data files) written by dir_access_support.
"""
import datetime as dt
import hashlib
import json
import re
import time
from unittest import mock
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests

import cloud_support as cs
import dir_access_support as D
from api import assert_error

SHARE, SCHEMA, OTHER = "dir", "s", "other"
READER = "reader"
# a recipient name with characters STS refuses and longer than 32 characters once prefixed
ODD_READER = "acme:eu#data(science)+team=x@y,z.lab"
OTHER_READER = "otherreader"

# S3 key prefixes (bucket `lake` of moto)
S3 = {
    "fed": "dirfed/tbl",        # GetFederationToken via the recording STS
    "part": "dirfed/part",      # partitioned table, same storage location
    "role": "dirrole/tbl",      # AssumeRole via the recording STS
    "e2e": "dirmoto/tbl",       # moto as STS
    "sts_err": "direrr/tbl",    # STS answers an error
    "sts_junk": "dirjunk/tbl",  # STS answers 200 with no credentials
    "sts_down": "dirdown/tbl",  # nothing listens at the STS endpoint
    "plain": "plain/tbl",       # storage location without temporaryCredentials
    "spaced": "dirfed/my table=1",  # a root whose URL form needs percent-encoding
}
ROLE_ARN = "arn:aws:iam::123456789012:role/lakeshare-readers"
VALIDITY = 1800
ROOT_NOT_UNDER = "same as or under this table's configured storage location"

FED_CREDS = ("ASIAFEDERATED0001", "fed-secret/+=key", "fed-session-token//+=abc", "2031-02-03T04:05:06Z")
ROLE_CREDS = ("ASIAASSUMEDROLE01", "role-secret-key", "role-session-token-xyz", "2032-03-04T05:06:07.250Z")


def ms_of(rfc3339):
    return int(dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def s3_root(key):
    return f"s3://lake/{S3[key]}"


def creds_of(r, what):
    """The `credentials` object of a 200 answer, with its shape checked: exactly one kind."""
    assert r.status_code == 200, f"{what}: expected 200, got {r.status_code}: {r.text[:800]}"
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["credentials"], f"{what}: body must be {{credentials}}: {body}"
    c = body["credentials"]
    kinds = [k for k in ("awsTempCredentials", "azureUserDelegationSas", "gcpOauthToken") if k in c]
    assert len(kinds) == 1, f"{what}: exactly one credential kind expected, got {kinds}: {c}"
    assert set(c) == {"location", kinds[0], "expirationTime"}, f"{what}: unexpected keys {sorted(c)}"
    assert isinstance(c["expirationTime"], int), f"{what}: expirationTime must be an integer (ms): {c}"
    return c


def same_root(got, configured, what):
    """`got` (a URL, possibly percent-encoded) names the configured table root."""
    assert unquote(got).rstrip("/") == unquote(configured).rstrip("/"), (
        f"{what}: location {got!r} is not the table root {configured!r}")


# ------------------------------------------------------------------------------------ S3 fixtures


def _sts_ok(rec):
    form = rec.form()
    action = form.get("Action")
    if action == "GetFederationToken":
        key, secret, token, exp = FED_CREDS
    elif action == "AssumeRole":
        key, secret, token, exp = ROLE_CREDS
    else:
        return 400, "text/xml", D.STS_ERROR_XML
    return 200, "text/xml", D.sts_credentials_xml(action, key, secret, token, exp)


@pytest.fixture(scope="module")
def sts():
    """The recording fake STS that answers every GetFederationToken / AssumeRole."""
    r = D.Recorder(_sts_ok)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def sts_err():
    r = D.Recorder(lambda rec: (403, "text/xml", D.STS_ERROR_XML))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def sts_junk():
    r = D.Recorder(lambda rec: (200, "text/html", "<html><body>maintenance</body></html>"))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def s3_tables(moto, tmp_path_factory):
    """Upload the minimal tables to moto; returns {name: local path}."""
    d = tmp_path_factory.mktemp("dir-s3-tables")
    out = {}
    for name, prefix in S3.items():
        local = D.write_delta_table(d / name, ["region"] if name == "part" else ())
        assert moto.upload_dir(local, prefix) == s3_root(name)
        out[name] = local
    return out


def _s3_entry(moto, secret, prefix=None, **directory):
    e = moto.storage_entry(secret)
    if prefix is not None:
        e["location"] = f"s3://{moto.bucket}/{prefix}/"
    if directory:
        e["s3"].update({"temporaryCredentials": True, **directory})
    return e


def _s3_storage(moto, secret, sts, sts_err, sts_junk):
    down = f"http://127.0.0.1:{cs.free_port()}/"  # nothing listens there
    return [
        _s3_entry(moto, secret),  # s3://lake/: no directory access
        _s3_entry(moto, secret, "dirfed", stsEndpoint=sts.url + "/"),
        _s3_entry(moto, secret, "dirrole", stsEndpoint=sts.url + "/", roleArn=ROLE_ARN),
        _s3_entry(moto, secret, "dirmoto", stsEndpoint=moto.endpoint + "/"),
        _s3_entry(moto, secret, "direrr", stsEndpoint=sts_err.url + "/"),
        _s3_entry(moto, secret, "dirjunk", stsEndpoint=sts_junk.url + "/"),
        _s3_entry(moto, secret, "dirdown", stsEndpoint=down),
    ]


def _tbl(name, key, history=True, **kw):
    return {"name": name, "location": s3_root(key), "historyShared": history, **kw}


REGION_US = [{"values": [{"name": "region", "op": "EQUAL", "value": "us"}]}]

# share `dir` table name -> advertised with directory access?
S3_TABLES = {
    "fed": (_tbl("fed", "fed"), True),
    "role": (_tbl("role", "role"), True),
    "e2e": (_tbl("e2e", "e2e"), True),
    "sts_err": (_tbl("sts_err", "sts_err"), True),
    "sts_junk": (_tbl("sts_junk", "sts_junk"), True),
    "sts_down": (_tbl("sts_down", "sts_down"), True),
    "part": (_tbl("part", "part"), True),
    "nohist": (_tbl("nohist", "fed", history=False), False),
    "filtered": (_tbl("filtered", "part", partitions=REGION_US), False),
    "plain": (_tbl("plain", "plain"), False),
    "spaced": (_tbl("spaced", "spaced"), True),
}


@pytest.fixture(scope="module")
def s3srv(lakeshare_bin, moto, s3_tables, sts, sts_err, sts_junk, tmp_path_factory):
    work = tmp_path_factory.mktemp("dir-s3")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    shares = [
        {"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [t for t, _ in S3_TABLES.values()]}]},
        {"name": OTHER, "schemas": [{"name": SCHEMA, "tables": [_tbl("t", "fed")]}]},
    ]
    extra = {"storage": _s3_storage(moto, secret, sts, sts_err, sts_junk),
             "temporaryCredentialValiditySeconds": VALIDITY}
    s = D.DirServer(lakeshare_bin, work / "server", shares, extra,
                    {READER: [SHARE], ODD_READER: [SHARE], OTHER_READER: [OTHER]})
    yield s
    s.stop()


def call_sts(s, sts, table, who=READER, body=None):
    """Credentials for `table` of share `dir`; returns (response, [recorded STS requests])."""
    mark = sts.mark()
    r = s.creds((SHARE, SCHEMA, table), body=body, who=who)
    return r, sts.since(mark)


def one_request(reqs, what):
    assert len(reqs) == 1, f"{what}: expected exactly one STS request, got {len(reqs)}: {reqs}"
    return reqs[0]


# ------------------------------------------------------------------------------------ 1. S3 known answer


def test_s3_federation_token_request_is_exact(s3srv, sts):
    r, reqs = call_sts(s3srv, sts, "fed")
    creds_of(r, "fed")
    req = one_request(reqs, "fed")
    assert req.method == "POST" and urlsplit(req.path).path == "/", f"STS request line: {req.method} {req.path}"
    ctype = req.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded", ctype
    form = req.form()
    assert set(form) == {"Action", "Version", "DurationSeconds", "Name", "Policy"}, f"form fields: {sorted(form)}"
    assert form["Action"] == "GetFederationToken"
    assert form["Version"] == "2011-06-15"
    assert form["DurationSeconds"] == str(VALIDITY)
    assert form["Name"] == D.sts_session_name(READER) == "lakeshare-reader"
    assert json.loads(form["Policy"]) == D.s3_session_policy("lake", S3["fed"]), form["Policy"]


def test_s3_assume_role_request_is_exact(s3srv, sts):
    r, reqs = call_sts(s3srv, sts, "role")
    creds_of(r, "role")
    form = one_request(reqs, "role").form()
    assert set(form) == {"Action", "Version", "DurationSeconds", "RoleArn", "RoleSessionName", "Policy"}, (
        f"form fields: {sorted(form)}")
    assert form["Action"] == "AssumeRole"
    assert form["Version"] == "2011-06-15"
    assert form["RoleArn"] == ROLE_ARN
    assert form["RoleSessionName"] == "lakeshare-reader"
    assert form["DurationSeconds"] == str(VALIDITY)
    assert json.loads(form["Policy"]) == D.s3_session_policy("lake", S3["role"]), form["Policy"]


def test_s3_session_name_is_sanitized_and_bounded(s3srv, sts):
    want = D.sts_session_name(ODD_READER)
    assert len(want) == 32 and re.fullmatch(r"[\w+=,.@-]+", want), want
    r, reqs = call_sts(s3srv, sts, "fed", who=ODD_READER)
    creds_of(r, "fed (odd recipient name)")
    assert one_request(reqs, "fed").form()["Name"] == want
    r, reqs = call_sts(s3srv, sts, "role", who=ODD_READER)
    creds_of(r, "role (odd recipient name)")
    assert one_request(reqs, "role").form()["RoleSessionName"] == want


def _auth_fields(auth):
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})",
                     auth or "")
    assert m, f"Authorization is not a SigV4 header: {auth!r}"
    return m.group(1), m.group(2).split(";"), m.group(3)


@pytest.mark.parametrize("table", ["fed", "role"])
def test_s3_sts_request_sigv4_signature(s3srv, sts, table):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    r, reqs = call_sts(s3srv, sts, table)
    creds_of(r, table)
    req = one_request(reqs, table)
    credential, signed, sig = _auth_fields(req.header("Authorization"))
    amz_date = req.header("X-Amz-Date")
    assert amz_date and re.fullmatch(r"\d{8}T\d{6}Z", amz_date), f"X-Amz-Date: {amz_date!r}"
    assert credential == f"{cs.S3_ACCESS_KEY}/{amz_date[:8]}/us-east-1/sts/aws4_request", credential
    assert signed == sorted(signed) and "host" in signed and "x-amz-date" in signed, f"SignedHeaders {signed}"
    when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    assert abs(time.time() - when.replace(tzinfo=dt.timezone.utc).timestamp()) < 300, f"X-Amz-Date {amz_date} is not now"
    payload = req.header("X-Amz-Content-SHA256")
    if payload is not None:  # when sent it must be the body's digest (it is what gets signed)
        assert payload == hashlib.sha256(req.body).hexdigest(), "x-amz-content-sha256 is not the body's SHA-256"
    # botocore signs the same request (URL, body, the signed headers with their values, same date)
    headers = {}
    for name in signed:
        v = req.header(name)
        assert v is not None, f"signed header {name} was not sent"
        headers[name] = v
    aws = AWSRequest(method="POST", url=f"{sts.url}{req.path}", data=req.body, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(Credentials(cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY), "sts", "us-east-1").add_auth(aws)
    b_cred, b_signed, b_sig = _auth_fields(aws.headers["Authorization"])
    assert (b_cred, b_signed) == (credential, signed)
    assert b_sig == sig, f"SigV4 signature {sig} != botocore's {b_sig} for the same request"


@pytest.mark.parametrize("table,canned", [("fed", FED_CREDS), ("role", ROLE_CREDS)], ids=["fed", "role"])
def test_s3_answer_carries_sts_credentials(s3srv, sts, table, canned):
    c = creds_of(s3srv.creds((SHARE, SCHEMA, table)), table)
    key, secret, token, exp = canned
    assert c["awsTempCredentials"] == {"accessKeyId": key, "secretAccessKey": secret, "sessionToken": token}
    assert c["expirationTime"] == ms_of(exp), f"expirationTime {c['expirationTime']} != STS Expiration {exp}"
    same_root(c["location"], s3_root(table), table)


def test_s3_sub_location_gets_table_root_credentials(s3srv, sts):
    """A location under the root is accepted; the credentials (and policy) are the table root's."""
    for loc in (s3_root("fed") + "/_delta_log", s3_root("fed") + "/_delta_log/", s3_root("fed") + "/"):
        r, reqs = call_sts(s3srv, sts, "fed", body={"location": loc})
        c = creds_of(r, f"location {loc}")
        same_root(c["location"], s3_root("fed"), f"location {loc}")
        assert json.loads(one_request(reqs, loc).form()["Policy"]) == D.s3_session_policy("lake", S3["fed"])


def _policy_of(s, sts, table):
    r, reqs = call_sts(s, sts, table)
    creds_of(r, table)
    return json.loads(one_request(reqs, table).form()["Policy"])


def _get_allowed(policy, bucket, key):
    return D.policy_allows(policy, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")


def _list_allowed(policy, bucket, prefix):
    return D.policy_allows(policy, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix})


def test_s3_session_policy_scopes_reads_to_the_table(s3srv, sts):
    """The policy evaluated (IAM wildcard semantics): reads and listings under the table root
    only; nothing of a sibling with a common prefix, of the parent, or of another table; no writes."""
    pol = _policy_of(s3srv, sts, "fed")
    for key in ("dirfed/tbl/_delta_log/00000000000000000000.json", "dirfed/tbl/region=us/part-0.parquet"):
        assert _get_allowed(pol, "lake", key), f"GetObject {key} must be allowed"
        assert D.policy_allows(pol, "s3:GetObjectVersion", f"arn:aws:s3:::lake/{key}")
    for key in ("dirfed/tbl-x/_delta_log/00000000000000000000.json", "dirfed/tblx", "dirfed/tbl",
                "dirfed/part/_delta_log/00000000000000000000.json", "dirrole/tbl/_delta_log/00000000000000000000.json",
                "plain/tbl/_delta_log/00000000000000000000.json"):
        assert not _get_allowed(pol, "lake", key), f"GetObject {key} must not be allowed"
    assert not _get_allowed(pol, "elsewhere", "dirfed/tbl/_delta_log/00000000000000000000.json")
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:*"):
        assert not D.policy_allows(pol, action, "arn:aws:s3:::lake/dirfed/tbl/x"), f"{action} must not be allowed"
    for prefix in ("dirfed/tbl/", "dirfed/tbl/_delta_log/"):
        assert _list_allowed(pol, "lake", prefix), f"ListBucket prefix={prefix} must be allowed"
    for prefix in ("", "dirfed/", "dirfed/tbl-x/", "dirrole/tbl/", "plain/"):
        assert not _list_allowed(pol, "lake", prefix), f"ListBucket prefix={prefix!r} must not be allowed"


def test_s3_percent_encoded_root_policy_uses_object_keys(s3srv, sts):
    """A root whose URL needs percent-encoding (`my table=1`): the policy names the object keys."""
    pol = _policy_of(s3srv, sts, "spaced")
    assert pol == D.s3_session_policy("lake", S3["spaced"]), pol


def test_s3_location_spellings_of_an_encoded_root_accepted(s3srv):
    """Both the advertised (percent-encoded) spelling of the root and the spelling of the config
    are "the same as or under this table's configured storage location"."""
    items = {t["name"]: t for t in s3srv.api(READER).get(f"/shares/{SHARE}/all-tables").json()["items"]}
    advertised = items["spaced"]["location"]
    configured = s3_root("spaced")
    refused = []
    for loc in (advertised, advertised.rstrip("/") + "/_delta_log/", configured, configured + "/",
                configured + "/_delta_log/"):
        r = s3srv.creds((SHARE, SCHEMA, "spaced"), body={"location": loc})
        if r.status_code != 200:
            refused.append((loc, r.status_code, r.text[:300]))
    assert not refused, ("locations naming the table root (or under it) refused:\n  "
                         + "\n  ".join(f"{loc!r} -> {st} {body}" for loc, st, body in refused))


@pytest.fixture(scope="module")
def rootsrv(lakeshare_bin, moto, sts, tmp_path_factory):
    """A table at the root of its own bucket (`s3://dirroot`)."""
    work = tmp_path_factory.mktemp("dir-s3-root")
    bucket = "dirroot"
    client = moto.client()
    client.create_bucket(Bucket=bucket)
    local = D.write_delta_table(work / "t")
    client.upload_file(f"{local}/_delta_log/00000000000000000000.json", bucket, "_delta_log/00000000000000000000.json")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    entry = _s3_entry(moto, secret, stsEndpoint=sts.url + "/")
    entry["location"] = f"s3://{bucket}/"
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [
        {"name": "root", "location": f"s3://{bucket}", "historyShared": True}]}]}]
    s = D.DirServer(lakeshare_bin, work / "server", shares, {"storage": [entry]}, {READER: [SHARE]})
    yield s
    s.stop()


def test_s3_bucket_root_table_policy_allows_reading_the_table(rootsrv, sts):
    """A table at a bucket root is advertised with directory access, so its credentials must be able
    to read it: GetObject on its log and ListBucket of its objects (and nothing of another bucket)."""
    items = rootsrv.api(READER).get(f"/shares/{SHARE}/all-tables").json()["items"]
    assert items[0].get("accessModes") == ["url", "dir"], items
    pol = _policy_of(rootsrv, sts, "root")
    problems = []
    if not _get_allowed(pol, "dirroot", "_delta_log/00000000000000000000.json"):
        problems.append("GetObject dirroot/_delta_log/00000000000000000000.json denied")
    if not _list_allowed(pol, "dirroot", "_delta_log/"):
        problems.append("ListBucket dirroot prefix=_delta_log/ denied")
    assert not _get_allowed(pol, "lake", "_delta_log/00000000000000000000.json")
    assert not problems, f"{'; '.join(problems)} by the session policy {json.dumps(pol)}"


@pytest.mark.parametrize("table,sts_fixture", [("sts_err", "sts_err"), ("sts_junk", "sts_junk"),
                                                ("sts_down", None)],
                         ids=["error-xml-403", "junk-200", "unreachable"])
def test_s3_sts_failure_is_503_and_server_stays_up(s3srv, sts, request, table, sts_fixture):
    fake = request.getfixturevalue(sts_fixture) if sts_fixture else None
    mark = fake.mark() if fake else 0
    for _ in range(2):
        r = s3srv.creds((SHARE, SCHEMA, table))
        assert_error(r, 503, "TEMPORARILY_UNAVAILABLE", what=f"{table}: STS failure")
        assert "x-amz" not in r.text.lower() and cs.S3_SECRET_KEY not in r.text, r.text
    if fake:
        assert len(fake.since(mark)) == 2, "the server must have asked the (failing) STS each time"
    assert s3srv.server.alive(), "server died after an STS failure"
    c = creds_of(s3srv.creds((SHARE, SCHEMA, "fed")), "fed after an STS failure")
    assert c["awsTempCredentials"]["accessKeyId"] == FED_CREDS[0]


# ---- temporaryCredentialValiditySeconds: default and clamping to 900..43200


@pytest.fixture(scope="module", params=[(None, 3600), (60, 900), (50000, 43200)],
                ids=["default", "60->900", "50000->43200"])
def clamp_srv(request, lakeshare_bin, moto, s3_tables, sts, tmp_path_factory):
    validity, want = request.param
    work = tmp_path_factory.mktemp("dir-s3-clamp")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    extra = {"storage": [_s3_entry(moto, secret, "dirfed", stsEndpoint=sts.url + "/")]}
    if validity is not None:
        extra["temporaryCredentialValiditySeconds"] = validity
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [_tbl("fed", "fed")]}]}]
    s = D.DirServer(lakeshare_bin, work / "server", shares, extra, {READER: [SHARE]})
    yield s, want
    s.stop()


def test_s3_duration_seconds_from_validity(clamp_srv, sts):
    s, want = clamp_srv
    r, reqs = call_sts(s, sts, "fed")
    creds_of(r, "fed")
    assert one_request(reqs, "fed").form()["DurationSeconds"] == str(want)


# ------------------------------------------------------------------------------------ 2. S3 end to end (moto STS)


def test_s3_moto_sts_credentials_read_the_table(s3srv, moto, s3_tables):
    import boto3

    before = int(time.time() * 1000)
    c = creds_of(s3srv.creds((SHARE, SCHEMA, "e2e")), "e2e (moto STS)")
    same_root(c["location"], s3_root("e2e"), "e2e")
    aws = c["awsTempCredentials"]
    assert aws["accessKeyId"] and aws["secretAccessKey"] and aws["sessionToken"], aws
    assert aws["accessKeyId"] != cs.S3_ACCESS_KEY, "the server handed out its own access key"
    assert c["expirationTime"] > before, c
    # moto does not enforce session policies: this proves the credentials are usable, the
    # scoping itself is proven by the known-answer tests above.
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id=aws["accessKeyId"], aws_secret_access_key=aws["secretAccessKey"],
                          aws_session_token=aws["sessionToken"])
    key = f"{S3['e2e']}/_delta_log/00000000000000000000.json"
    got = client.get_object(Bucket=moto.bucket, Key=key)["Body"].read()
    with open(f"{s3_tables['e2e']}/_delta_log/00000000000000000000.json", "rb") as fh:
        assert got == fh.read()
    listed = client.list_objects_v2(Bucket=moto.bucket, Prefix=S3["e2e"] + "/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [key], listed.get("Contents")


# ------------------------------------------------------------------------------------ 5. rules (S3 server)


@pytest.mark.parametrize("path", [f"/shares/{SHARE}/all-tables", f"/shares/{SHARE}/schemas/{SCHEMA}/tables"])
def test_listing_advertises_directory_access_only_where_offered(s3srv, path):
    r = s3srv.api(READER).get(path)
    assert r.status_code == 200, r.text[:500]
    items = {t["name"]: t for t in r.json()["items"]}
    assert set(items) == set(S3_TABLES), sorted(items)
    for name, (cfg, offered) in S3_TABLES.items():
        t = items[name]
        if offered:
            assert t.get("accessModes") == ["url", "dir"], f"{name}: {t}"
            assert "location" in t, f"{name}: a table with directory access must list its location: {t}"
            same_root(t["location"], cfg["location"], name)
        else:
            assert "accessModes" not in t and "location" not in t, f"{name} must not advertise dir access: {t}"


def test_listing_location_is_the_credentials_location(s3srv):
    items = {t["name"]: t for t in s3srv.api(READER).get(f"/shares/{SHARE}/all-tables").json()["items"]}
    c = creds_of(s3srv.creds((SHARE, SCHEMA, "fed")), "fed")
    assert c["location"] == items["fed"]["location"]


def test_history_sharing_required(s3srv, sts):
    r, reqs = call_sts(s3srv, sts, "nohist")
    _, msg = assert_error(r, 400, "INVALID_PARAMETER_VALUE", what="table without history sharing")
    assert "history" in msg.lower(), msg
    assert reqs == [], "no STS request for a refused table"


def test_partition_filtered_table_refused(s3srv, sts):
    r, reqs = call_sts(s3srv, sts, "filtered")
    assert_error(r, 403, "PERMISSION_DENIED", what="table shared with a partition filter")
    assert reqs == [], "no STS request for a refused table"
    # the same partitioned table without a filter is fine
    creds_of(s3srv.creds((SHARE, SCHEMA, "part")), "part (no filter)")


def test_not_configured_storage_refused(s3srv, sts):
    r, reqs = call_sts(s3srv, sts, "plain")
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "not offered", what="storage without temporaryCredentials")
    assert reqs == []


@pytest.mark.parametrize("coords,who", [
    ((OTHER, SCHEMA, "t"), READER),            # share not granted to the reader
    ((SHARE, SCHEMA, "fed"), OTHER_READER),    # granted the other share only
    ((SHARE, SCHEMA, "nope"), READER),         # no such table
    ((SHARE, "nope", "fed"), READER),          # no such schema
    (("nope", SCHEMA, "fed"), READER),         # no such share
], ids=["ungranted-share", "other-recipient", "unknown-table", "unknown-schema", "unknown-share"])
def test_ungranted_or_unknown_is_404(s3srv, sts, coords, who):
    mark = sts.mark()
    r = s3srv.creds(coords, who=who)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", what=f"{coords} as {who}")
    assert sts.since(mark) == []


def test_other_share_table_offered_to_its_recipient(s3srv):
    c = creds_of(s3srv.creds((OTHER, SCHEMA, "t"), who=OTHER_READER), "other.s.t")
    same_root(c["location"], s3_root("fed"), "other.s.t")


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["missing", "unknown"])
def test_unauthenticated_is_401(s3srv, sts, token):
    mark = sts.mark()
    from api import Api

    api = Api(s3srv.url, token)
    r = api.post(Api.table_path(SHARE, SCHEMA, "fed", D.CREDS_SUFFIX), {})
    assert_error(r, 401, "UNAUTHENTICATED", what=f"{token or 'no'} token")
    assert sts.since(mark) == []


@pytest.mark.parametrize("raw", [b"", b"{}", b"  \n"], ids=["no-body", "empty-object", "blank"])
def test_body_is_optional(s3srv, raw):
    c = creds_of(s3srv.creds((SHARE, SCHEMA, "fed"), raw=raw), f"body {raw!r}")
    same_root(c["location"], s3_root("fed"), "fed")


def test_location_equal_to_root_accepted(s3srv):
    for loc in (s3_root("fed"), s3_root("fed") + "/"):
        c = creds_of(s3srv.creds((SHARE, SCHEMA, "fed"), body={"location": loc}), f"location {loc}")
        same_root(c["location"], s3_root("fed"), loc)


BAD_LOCATIONS = {
    "other-table": s3_root("plain"),
    "other-prefix-in-same-storage": s3_root("role"),
    "sibling-common-prefix": s3_root("fed") + "-x",
    "sibling-common-prefix-slash": s3_root("fed") + "-x/",
    "sibling-common-prefix-deeper": s3_root("fed") + "2/_delta_log/",
    "parent": "s3://lake/dirfed/",
    "bucket": "s3://lake/",
    "other-bucket": "s3://elsewhere/" + S3["fed"],
    "dotdot-out": s3_root("fed") + "/../part",
    "dotdot-back-in": s3_root("fed") + "/../tbl/_delta_log",
    "dotdot-inside": s3_root("fed") + "/_delta_log/../../part/",
}


@pytest.mark.parametrize("loc", list(BAD_LOCATIONS.values()), ids=list(BAD_LOCATIONS))
def test_location_outside_root_refused(s3srv, sts, loc):
    r, reqs = call_sts(s3srv, sts, "fed", body={"location": loc})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", ROOT_NOT_UNDER, what=f"location {loc}")
    assert reqs == [], f"no STS request for a refused location {loc}"


# ------------------------------------------------------------------------------------ 3. Azure (Azurite)

AZ_PREFIX = "dirazure/deep/tbl"       # sdd 3
AZ_HTTPS_PREFIX = "dirhttps/tbl"      # storage location without allowHttp: spr=https


@pytest.fixture(scope="module")
def azsrv(lakeshare_bin, azurite, tmp_path_factory):
    work = tmp_path_factory.mktemp("dir-az")
    tables = {}
    for name, prefix in (("deep", AZ_PREFIX), ("https", AZ_HTTPS_PREFIX)):
        local = D.write_delta_table(work / "tables" / name)
        tables[name] = (azurite.upload_dir(local, prefix), local)
    base = azurite.storage_entry()
    base["azure"]["temporaryCredentials"] = True
    strict = azurite.storage_entry()
    strict["location"] = f"az://{azurite.container}/dirhttps/"
    strict["azure"].update({"temporaryCredentials": True, "allowHttp": False})
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [
        {"name": n, "location": loc, "historyShared": True} for n, (loc, _) in tables.items()]}]}]
    # the allowHttp: false location cannot be read over Azurite's http endpoint: no self-test
    extra = {"storage": [base, strict], "storageSelfTest": False}
    s = D.DirServer(lakeshare_bin, work / "server", shares, extra, {READER: [SHARE]},
                    env={"LAKESHARE_TEST_AZURE_KEY": cs.AZURITE_KEY})
    s.tables = tables
    yield s
    s.stop()


def _sas_of(c):
    token = c["azureUserDelegationSas"]["sasToken"]
    assert not token.startswith("?"), token
    pairs = parse_qsl(token, keep_blank_values=True, strict_parsing=True)
    q = dict(pairs)
    assert len(q) == len(pairs), f"repeated SAS field: {token}"
    return token, q


RFC3339_S = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _ts(text):
    assert RFC3339_S.fullmatch(text), f"not RFC 3339 with whole seconds: {text!r}"
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp())


def test_azure_directory_sas_fields_and_signature(azsrv):
    before = time.time()
    c = creds_of(azsrv.creds((SHARE, SCHEMA, "deep")), "azure deep")
    after = time.time()
    same_root(c["location"], f"az://lake/{AZ_PREFIX}", "azure deep")
    _, q = _sas_of(c)
    assert set(q) == {"sv", "st", "se", "sr", "sp", "sdd", "sig"}, f"SAS fields {sorted(q)} (spr must be absent: allowHttp)"
    assert q["sv"] == "2022-11-02" and q["sr"] == "d" and q["sp"] == "rl", q
    assert q["sdd"] == str(len(AZ_PREFIX.split("/"))) == "3", q
    st, se = _ts(q["st"]), _ts(q["se"])
    assert st <= before + 1, f"st {q['st']} is in the future"
    assert before - 3600 <= st, f"st {q['st']} is too far back"
    # default temporaryCredentialValiditySeconds: 3600
    assert int(before) + 3600 - 2 <= se <= after + 3600 + 1, f"se {q['se']} is not now + 3600 s"
    assert c["expirationTime"] == se * 1000, f"expirationTime {c['expirationTime']} != se {q['se']}"
    sts_ = D.azure_dir_string_to_sign(cs.AZURITE_ACCOUNT, "lake", AZ_PREFIX, q["st"], q["se"], "")
    assert q["sig"] == D.azure_sig(cs.AZURITE_KEY, sts_), "SAS signature differs from the recomputed one"
    # the check is sensitive: another key, another directory or another expiry give another sig
    other_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3I="
    assert q["sig"] != D.azure_sig(other_key, sts_)
    assert q["sig"] != D.azure_sig(cs.AZURITE_KEY, D.azure_dir_string_to_sign(
        cs.AZURITE_ACCOUNT, "lake", "dirazure/deep", q["st"], q["se"], ""))
    assert q["sig"] != D.azure_sig(cs.AZURITE_KEY, D.azure_dir_string_to_sign(
        cs.AZURITE_ACCOUNT, "lake", AZ_PREFIX, q["st"], q["se"], "https"))


def test_azure_spr_https_when_http_not_allowed(azsrv):
    c = creds_of(azsrv.creds((SHARE, SCHEMA, "https")), "azure https-only")
    _, q = _sas_of(c)
    assert q.get("spr") == "https", q
    assert q["sdd"] == "2", q
    string_to_sign = D.azure_dir_string_to_sign(cs.AZURITE_ACCOUNT, "lake", AZ_HTTPS_PREFIX, q["st"], q["se"], "https")
    assert q["sig"] == D.azure_sig(cs.AZURITE_KEY, string_to_sign)


def test_azure_listing_and_location_rules(azsrv):
    items = {t["name"]: t for t in azsrv.api(READER).get(f"/shares/{SHARE}/all-tables").json()["items"]}
    for name, prefix in (("deep", AZ_PREFIX), ("https", AZ_HTTPS_PREFIX)):
        assert items[name].get("accessModes") == ["url", "dir"], items[name]
        same_root(items[name]["location"], f"az://lake/{prefix}", name)
    root = f"az://lake/{AZ_PREFIX}"
    creds_of(azsrv.creds((SHARE, SCHEMA, "deep"), body={"location": root + "/_delta_log"}), "sub-location")
    for bad in (root + "-x/", f"az://lake/{AZ_PREFIX}/../../x", f"az://lake/{AZ_HTTPS_PREFIX}"):
        r = azsrv.creds((SHARE, SCHEMA, "deep"), body={"location": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", ROOT_NOT_UNDER, what=f"location {bad}")


def test_azure_directory_sas_against_azurite(azsrv, azurite):
    """Whether Azurite honours the directory SAS (sr=d). Azurite's support for directory SAS
    (a hierarchical-namespace feature) is limited: only when it accepts the token is the answer
    checked (bytes of a blob under the directory; a forged signature refused)."""
    c = creds_of(azsrv.creds((SHARE, SCHEMA, "deep")), "azure deep")
    token, q = _sas_of(c)
    blob = f"{azurite.endpoint}/{azurite.container}/{AZ_PREFIX}/_delta_log/00000000000000000000.json"
    r = requests.get(f"{blob}?{token}", timeout=30)
    if r.status_code != 200:
        print(f"Azurite refused the directory SAS: HTTP {r.status_code} {r.text[:300]}")
        return
    with open(f"{azsrv.tables['deep'][1]}/_delta_log/00000000000000000000.json", "rb") as fh:
        assert r.content == fh.read()
    forged = token.replace("sig=", "sig=A", 1)
    assert requests.get(f"{blob}?{forged}", timeout=30).status_code == 403


# ------------------------------------------------------------------------------------ 4. GCS (fake token + STS)

GCS_PREFIX = "dirgcs/tbl"
GCS_ERR_PREFIX = "dirgcserr/tbl"
GCS_EXPIRES_IN = 1234
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class GcsFakes:
    def __init__(self):
        self.n = 0
        self.issued = []  # source tokens issued by the fake token endpoint
        self.token = D.Recorder(self._token)
        self.sts = D.Recorder(self._sts)
        self.sts_err = D.Recorder(lambda rec: (400, "application/json",
                                               json.dumps({"error": "invalid_grant", "error_description": "x"})))

    def _token(self, rec):
        self.n += 1
        tok = f"ya29.source-token-{self.n}"
        self.issued.append(tok)
        return 200, "application/json", json.dumps({"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})

    def _sts(self, rec):
        self.n += 1
        return 200, "application/json", json.dumps({
            "access_token": f"ya29.downscoped-{self.n}", "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer", "expires_in": GCS_EXPIRES_IN})

    def stop(self):
        for r in (self.token, self.sts, self.sts_err):
            r.stop()


@pytest.fixture(scope="module")
def gcs_fakes():
    f = GcsFakes()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def gcssrv(lakeshare_bin, fake_gcs, gcs_fakes, tmp_path_factory):
    work = tmp_path_factory.mktemp("dir-gcs")
    key_file = work / "sa.json"
    key, email, key_id = D.write_service_account(key_file, gcs_fakes.token.url + "/token")
    tables = {}
    for name, prefix in (("t", GCS_PREFIX), ("err", GCS_ERR_PREFIX)):
        tables[name] = fake_gcs.upload_dir(D.write_delta_table(work / "tables" / name), prefix)

    def entry(location, sts_url):
        return {"location": location, "gcs": {
            "serviceAccountKeyFile": str(key_file), "baseUrl": fake_gcs.endpoint, "allowHttp": True,
            "temporaryCredentials": True, "stsEndpoint": sts_url}}

    storage = [entry(f"gs://{fake_gcs.bucket}/", gcs_fakes.sts.url + "/v1/token"),
               entry(f"gs://{fake_gcs.bucket}/dirgcserr/", gcs_fakes.sts_err.url + "/v1/token")]
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [
        {"name": n, "location": loc, "historyShared": True} for n, loc in tables.items()]}]}]
    s = D.DirServer(lakeshare_bin, work / "server", shares, {"storage": storage}, {READER: [SHARE]})
    s.key, s.email, s.key_id = key, email, key_id
    s.token_uri = gcs_fakes.token.url + "/token"
    yield s
    s.stop()


def _gcs_call(gcssrv, f, table="t"):
    mt, ms = f.token.mark(), f.sts.mark()
    before = time.time()
    r = gcssrv.creds((SHARE, SCHEMA, table))
    after = time.time()
    grants = [q for q in f.token.since(mt) if q.form().get("grant_type") == JWT_BEARER]
    return r, grants, f.sts.since(ms), before, after


def test_gcs_jwt_bearer_grant(gcssrv, gcs_fakes):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    r, grants, _, before, after = _gcs_call(gcssrv, gcs_fakes)
    creds_of(r, "gcs")
    assert len(grants) == 1, f"expected one JWT-bearer grant at the token_uri, got {grants}"
    g = grants[0]
    assert g.method == "POST" and g.path == "/token", f"{g.method} {g.path}"
    assert (g.header("Content-Type") or "").split(";")[0].strip() == "application/x-www-form-urlencoded"
    form = g.form()
    assert set(form) == {"grant_type", "assertion"}, sorted(form)
    parts = form["assertion"].split(".")
    assert len(parts) == 3, form["assertion"][:200]
    header, claims = json.loads(D.b64url_decode(parts[0])), json.loads(D.b64url_decode(parts[1]))
    assert header["alg"] == "RS256" and header.get("typ") == "JWT", header
    assert header.get("kid") in (None, gcssrv.key_id), header
    assert set(claims) == {"iss", "scope", "aud", "iat", "exp"}, claims
    assert claims["iss"] == gcssrv.email
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["aud"] == gcssrv.token_uri
    assert int(before) - 5 <= claims["iat"] <= after + 5, claims
    assert claims["exp"] == claims["iat"] + 3600, claims
    gcssrv.key.public_key().verify(D.b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())  # raises when invalid


def test_gcs_sts_token_exchange_with_access_boundary(gcssrv, gcs_fakes):
    r, grants, exchanges, _, _ = _gcs_call(gcssrv, gcs_fakes)
    creds_of(r, "gcs")
    assert len(exchanges) == 1, f"expected one STS token exchange, got {exchanges}"
    x = exchanges[0]
    assert x.method == "POST" and x.path == "/v1/token", f"{x.method} {x.path}"
    assert (x.header("Content-Type") or "").split(";")[0].strip() == "application/x-www-form-urlencoded"
    form = x.form()
    assert set(form) == {"grant_type", "subject_token_type", "requested_token_type", "subject_token", "options"}, (
        sorted(form))
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["subject_token_type"] == ACCESS_TOKEN_TYPE
    assert form["requested_token_type"] == ACCESS_TOKEN_TYPE
    # the token obtained by the JWT grant of this very call
    assert len(grants) == 1
    assert form["subject_token"] in gcs_fakes.issued, form["subject_token"]
    assert json.loads(form["options"]) == D.gcs_access_boundary("lake", GCS_PREFIX), form["options"]


def test_gcs_answer_is_the_downscoped_token(gcssrv, gcs_fakes):
    r, _, exchanges, before, after = _gcs_call(gcssrv, gcs_fakes)
    c = creds_of(r, "gcs")
    same_root(c["location"], f"gs://lake/{GCS_PREFIX}", "gcs")
    assert c["gcpOauthToken"]["oauthToken"].startswith("ya29.downscoped-"), c
    assert len(exchanges) == 1
    exp = c["expirationTime"]
    assert int(before * 1000) + GCS_EXPIRES_IN * 1000 - 1000 <= exp <= int(after * 1000) + GCS_EXPIRES_IN * 1000 + 1000, (
        f"expirationTime {exp} is not now + expires_in ({GCS_EXPIRES_IN} s)")


def test_gcs_listing_advertises_dir(gcssrv):
    items = {t["name"]: t for t in gcssrv.api(READER).get(f"/shares/{SHARE}/schemas/{SCHEMA}/tables").json()["items"]}
    assert items["t"].get("accessModes") == ["url", "dir"], items["t"]
    same_root(items["t"]["location"], f"gs://lake/{GCS_PREFIX}", "t")


def test_gcs_sts_refusal_is_503(gcssrv, gcs_fakes):
    mark = gcs_fakes.sts_err.mark()
    r = gcssrv.creds((SHARE, SCHEMA, "err"))
    assert_error(r, 503, "TEMPORARILY_UNAVAILABLE", what="GCS STS refused the exchange")
    assert len(gcs_fakes.sts_err.since(mark)) == 1
    assert gcssrv.server.alive()
    creds_of(gcssrv.creds((SHARE, SCHEMA, "t")), "gcs after a refusal")
