"""Tables and shares managed through the admin API (Unity Catalog shapes, `databricks-sdk` 0.156.0),
the change log (`/api/2.1/lakeshare/changes`) and the recipient preview
(`/api/2.1/lakeshare/recipients/{name}/preview`).

One dedicated server for the module (`AdminServer`: `lakeshare serve --admin-port 0`, its own config
and state DB, admin token `conformance-admin`). Its YAML config declares one share (`configured`),
so that `serve` starts and so that the refusal to modify a config-owned share can be checked.

Table: `gov-sales` (gen_gov_tables.py, fixture `gov_sales`), partitioned by `country`
(US / FR / DE / NULL) and `year`, CDF enabled, 7 versions. It is registered by location under
several names (`lake.<schema>.<table>`) and added to API-created shares, usually with the templated
partition filter `country = <recipient property "country">`. Expected rows come from the deltalake
oracle read of the fixture filtered in Python; expected files come from the Delta log (`deltalog`).

Sections:
  * table registration: tables.create / get / list / delete and their errors;
  * shares: create, list (owner api|config), data objects ADD / UPDATE / REMOVE, one transaction per
    PATCH, partition-column checks, delete, the config-owned share;
  * the whole lifecycle driven only by the SDK (register -> share -> filter -> recipient -> grant ->
    activate -> read -> rotate -> delete), plus DE and no-property recipients;
  * change attribution (actor `admin:conformance-admin`, actions, no secrets);
  * preview (files under the recipient's filters, paths only).

Notes on the SDK: `shares.list_shares()` is the listing method; `SharedDataObject.as_dict()` drops an
empty `partitions` list, so "clear the filter" (`partitions: []`) is sent as a raw PATCH.
Time-based steps (rotate with a 2 s grace) use bounded polling; nothing sleeps for readiness.
"""
import json
import os
import time

import delta_sharing
import pytest
import requests

import admin as A
import deltalog
import frames
from api import Api
from governance import json_strings

CONFIG_SHARE = "configured"
CATALOG = "lake"
ACTOR = "admin:conformance-admin"
TABLES_PATH = "/api/2.1/unity-catalog/tables"
SHARES_PATH = "/api/2.1/unity-catalog/shares"
CHANGES_PATH = "/api/2.1/lakeshare/changes"

# every recipient bearer token and activation code handed out in this module (checked against the
# change log by test_changes_never_contain_secrets)
_SECRETS = []


@pytest.fixture(scope="module", autouse=True)
def _sdk_env():
    A.clean_sdk_env()


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def adm(lakeshare_bin, gov_sales, tmp_path_factory):
    shares = [{"name": CONFIG_SHARE, "schemas": [{"name": "s", "tables": [
        {"name": "sales", "location": gov_sales["path"], "historyShared": True}]}]}]
    a = A.AdminServer(lakeshare_bin, tmp_path_factory.mktemp("admin-objects"), shares)
    yield a
    a.stop()


@pytest.fixture(scope="module")
def w(adm):
    return adm.workspace()


@pytest.fixture(scope="module")
def sales(w, gov_sales):
    """`lake.gov.sales`: gov-sales registered once for the share tests; returns its full name."""
    info = _register(w, "gov", "sales", gov_sales["path"])
    return info.full_name


# ---------------------------------------------------------------------------------------- helpers


def _sdk():
    from databricks.sdk.service import catalog, sharing

    return catalog, sharing


def _register(w, schema, name, location, catalog=CATALOG):
    c, _ = _sdk()
    return w.tables.create(name=name, catalog_name=catalog, schema_name=schema, table_type=c.TableType.EXTERNAL,
                           data_source_format=c.DataSourceFormat.DELTA, storage_location=location)


def _country_filter():
    _, s = _sdk()
    return [s.Partition(values=[s.PartitionValue(name="country", op=s.PartitionValueOp.EQUAL,
                                                 recipient_property_key="country")])]


def _literal_filter(column, value):
    _, s = _sdk()
    return [s.Partition(values=[s.PartitionValue(name=column, op=s.PartitionValueOp.EQUAL, value=value)])]


def _obj(name, shared_as=None, history=None, start_version=None, partitions=None):
    _, s = _sdk()
    hist = None
    if history is not None:
        hist = (s.SharedDataObjectHistoryDataSharingStatus.ENABLED if history
                else s.SharedDataObjectHistoryDataSharingStatus.DISABLED)
    return s.SharedDataObject(name=name, data_object_type=s.SharedDataObjectDataObjectType.TABLE,
                              shared_as=shared_as, history_data_sharing_status=hist,
                              start_version=start_version, partitions=partitions)


def _upd(action, obj):
    _, s = _sdk()
    return s.SharedDataObjectUpdate(action=getattr(s.SharedDataObjectUpdateAction, action), data_object=obj)


def _patch(w, share, *updates):
    return w.shares.update(share, updates=list(updates))


def _objects(w, share):
    """shares.get(share).objects keyed by shared_as."""
    return {o.shared_as: o for o in (w.shares.get(share).objects or [])}


def _snapshot_of_share(w, share):
    """Comparable content of a share (comment + objects as dicts) for 'unchanged' checks."""
    info = w.shares.get(share)
    return info.comment, sorted((json.dumps(o.as_dict(), sort_keys=True) for o in info.objects or []))


def _new_share(adm, w, prefix, comment=None):
    name = adm.fresh_name(prefix)
    w.shares.create(name=name, comment=comment)
    return name


def _grant(w, share, principal, op="add"):
    _, s = _sdk()
    return w.shares.update_permissions(share, changes=[s.PermissionsChange(principal=principal, **{op: ["SELECT"]})])


def _redeem(adm, activation_url, path):
    """retrieve_token(code) with the SDK on the recipient listener; writes a v1 profile built from the
    response to `path`; returns the profile dict."""
    code = A.activation_code(activation_url)
    _SECRETS.append(code)
    resp = adm.activation_client().recipient_activation.retrieve_token(code)
    assert resp.share_credentials_version == 1, resp.as_dict()
    assert resp.bearer_token and resp.endpoint, resp.as_dict()
    _SECRETS.append(resp.bearer_token)
    prof = {"shareCredentialsVersion": 1, "endpoint": resp.endpoint, "bearerToken": resp.bearer_token}
    with open(path, "w") as fh:
        json.dump(prof, fh)
    return prof


def _recipient(adm, w, prefix, props=None, shares=()):
    """A recipient created, activated and granted through the SDK; returns (name, profile path, profile)."""
    _, s = _sdk()
    name = adm.fresh_name(prefix)
    kw = {}
    if props is not None:
        kw["properties_kvpairs"] = s.SecurablePropertiesKvPairs(properties=dict(props))
    info = w.recipients.create(name=name, authentication_type=s.AuthenticationType.TOKEN, **kw)
    path = os.path.join(adm.dir, f"{name}.share")
    prof = _redeem(adm, A.token_entries(info)[0].activation_url, path)
    for sh in shares:
        _grant(w, sh, name)
    return name, path, prof


def _status(adm, token, path="/shares"):
    return requests.get(adm.endpoint + path, headers={"Authorization": f"Bearer {token}"},
                        timeout=A.HTTP_TIMEOUT).status_code


def _read(profile, share, shared_as):
    return delta_sharing.load_as_pandas(f"{profile}#{share}.{shared_as}")


def _expected(gov_sales, pred=None):
    snap = gov_sales["snap"][gov_sales["latest_version"]]
    return snap if pred is None else snap.filter(pred)


def _country_is(c):
    return lambda row: row["country"] == c


def _check_rows(df, expected, what):
    if not expected.rows:
        assert len(df) == 0, f"{what}: expected no rows, got {len(df)}:\n{df}"
        assert [c.lower() for c in df.columns] == [c.lower() for c in expected.columns], (
            f"{what}: columns {list(df.columns)}")
        return
    frames.assert_same_table(frames.Snapshot.from_pandas(df), expected, what)


def _log_adds(gov_sales):
    return deltalog.replay(gov_sales["path"]).adds


def _changes(adm, limit=50):
    r = adm.raw("GET", f"{CHANGES_PATH}?limit={limit}")
    assert r.status_code == 200, f"GET {CHANGES_PATH}?limit={limit}: {r.status_code} {r.text[:500]}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("changes"), list), r.text[:500]
    return body["changes"]


def _find_change(changes, action, target):
    hits = [c for c in changes if c.get("action") == action and c.get("target") == target]
    assert hits, (f"no change {action!r} on {target!r} in the log; got "
                  f"{[(c.get('seq'), c.get('action'), c.get('target')) for c in changes]}")
    return hits[0]


def _preview(adm, recipient, max_files=1000):
    return adm.raw("GET", f"/api/2.1/lakeshare/recipients/{recipient}/preview?max_files={max_files}")


# ---------------------------------------------------------------------------------------- tables


def test_register_table_by_absolute_path(adm, w, gov_sales):
    c, _ = _sdk()
    path = gov_sales["path"]
    info = _register(w, "reg", "by_path", path)
    assert info.full_name == f"{CATALOG}.reg.by_path"
    assert (info.name, info.catalog_name, info.schema_name) == ("by_path", CATALOG, "reg")
    assert info.table_type == c.TableType.EXTERNAL, info.as_dict()
    assert info.data_source_format == c.DataSourceFormat.DELTA, info.as_dict()
    want_loc = "file://" + os.path.abspath(path).rstrip("/") + "/"
    assert info.storage_location == want_loc, f"normalized location: {info.storage_location!r} != {want_loc!r}"
    got = w.tables.get(info.full_name)
    assert got.full_name == info.full_name and got.storage_location == want_loc, got.as_dict()


def test_register_table_by_file_url(adm, w, gov_sales):
    path = os.path.abspath(gov_sales["path"]).rstrip("/")
    info = _register(w, "reg", "by_url", "file://" + path)
    assert info.full_name == f"{CATALOG}.reg.by_url"
    assert info.storage_location == "file://" + path + "/", info.as_dict()


def test_register_not_a_delta_table(adm, w, tmp_path):
    from databricks.sdk.errors import InvalidParameterValue, NotFound

    empty = tmp_path / "not-delta"
    empty.mkdir()
    (empty / "data.parquet").write_bytes(b"not really parquet")
    with pytest.raises(InvalidParameterValue) as ei:
        _register(w, "reg", "not_delta", str(empty))
    assert "Delta" in str(ei.value), ei.value
    A.admin_error(adm.raw("POST", TABLES_PATH, body={
        "name": "not_delta", "catalog_name": CATALOG, "schema_name": "reg", "table_type": "EXTERNAL",
        "data_source_format": "DELTA", "storage_location": str(empty)}), 400, "INVALID_PARAMETER_VALUE",
        what="register a folder that is not a Delta table")
    with pytest.raises(NotFound):
        w.tables.get(f"{CATALOG}.reg.not_delta")


def test_register_relative_location(adm, w, gov_sales):
    from databricks.sdk.errors import InvalidParameterValue, NotFound

    rel = os.path.relpath(gov_sales["path"], adm.dir)
    assert not os.path.isabs(rel)
    with pytest.raises(InvalidParameterValue):
        _register(w, "reg", "relative", rel)
    A.admin_error(adm.raw("POST", TABLES_PATH, body={
        "name": "relative", "catalog_name": CATALOG, "schema_name": "reg", "table_type": "EXTERNAL",
        "data_source_format": "DELTA", "storage_location": "tables/gov-sales"}), 400, "INVALID_PARAMETER_VALUE",
        what="relative storage_location")
    with pytest.raises(NotFound):
        w.tables.get(f"{CATALOG}.reg.relative")


def test_register_twice_is_conflict(adm, w, gov_sales):
    from databricks.sdk.errors import ResourceAlreadyExists

    first = _register(w, "reg", "twice", gov_sales["path"])
    with pytest.raises(ResourceAlreadyExists):
        _register(w, "reg", "twice", gov_sales["path"])
    A.admin_error(adm.raw("POST", TABLES_PATH, body={
        "name": "twice", "catalog_name": CATALOG, "schema_name": "reg", "table_type": "EXTERNAL",
        "data_source_format": "DELTA", "storage_location": gov_sales["path"]}), 409, "RESOURCE_ALREADY_EXISTS")
    assert w.tables.get(first.full_name).created_at == first.created_at, "the first registration stays"


def test_register_managed_is_refused(adm, w, gov_sales):
    from databricks.sdk.errors import InvalidParameterValue, NotFound

    c, _ = _sdk()
    with pytest.raises(InvalidParameterValue):
        w.tables.create(name="managed", catalog_name=CATALOG, schema_name="reg", table_type=c.TableType.MANAGED,
                        data_source_format=c.DataSourceFormat.DELTA, storage_location=gov_sales["path"])
    A.admin_error(adm.raw("POST", TABLES_PATH, body={
        "name": "managed", "catalog_name": CATALOG, "schema_name": "reg", "table_type": "MANAGED",
        "data_source_format": "DELTA", "storage_location": gov_sales["path"]}), 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(NotFound):
        w.tables.get(f"{CATALOG}.reg.managed")


def test_list_tables_by_catalog_and_schema(adm, w, gov_sales):
    for n in ("t_one", "t_two"):
        _register(w, "listed", n, gov_sales["path"])
    _register(w, "other_schema", "t_three", gov_sales["path"])
    got = sorted(t.full_name for t in w.tables.list(catalog_name=CATALOG, schema_name="listed"))
    assert got == [f"{CATALOG}.listed.t_one", f"{CATALOG}.listed.t_two"]
    r = adm.raw("GET", f"{TABLES_PATH}?catalog_name={CATALOG}&schema_name=listed")
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert set(body) >= {"tables"}, body
    rows = {t["full_name"]: t for t in body["tables"]}
    assert sorted(rows) == got
    for t in rows.values():
        assert t["table_type"] == "EXTERNAL" and t["data_source_format"] == "DELTA", t
        assert t["storage_location"].startswith("file:///") and t["storage_location"].endswith("/"), t


def test_delete_table(adm, w, gov_sales):
    from databricks.sdk.errors import NotFound

    info = _register(w, "deleted", "gone", gov_sales["path"])
    w.tables.delete(info.full_name)
    with pytest.raises(NotFound):
        w.tables.get(info.full_name)
    assert info.full_name not in [t.full_name for t in w.tables.list(catalog_name=CATALOG, schema_name="deleted")]
    A.admin_error(adm.raw("GET", f"{TABLES_PATH}/{info.full_name}"), 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(NotFound):
        w.tables.delete(info.full_name)
    # the name is free again
    again = _register(w, "deleted", "gone", gov_sales["path"])
    assert again.full_name == info.full_name


# ---------------------------------------------------------------------------------------- shares


def test_create_share(adm, w):
    name = adm.fresh_name("made")
    info = w.shares.create(name=name, comment="made through the SDK")
    assert info.name == name and info.comment == "made through the SDK"
    assert info.owner == "api", f"an API-created share has owner 'api': {info.as_dict()}"
    got = w.shares.get(name)
    assert got.name == name and got.comment == "made through the SDK" and not got.objects, got.as_dict()


def test_create_share_duplicate(adm, w):
    from databricks.sdk.errors import ResourceAlreadyExists

    name = _new_share(adm, w, "dupshare", comment="first")
    with pytest.raises(ResourceAlreadyExists):
        w.shares.create(name=name, comment="second")
    A.admin_error(adm.raw("POST", SHARES_PATH, body={"name": name}), 409, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(ResourceAlreadyExists):
        w.shares.create(name=CONFIG_SHARE)
    assert w.shares.get(name).comment == "first", "the refused create changed nothing"


def test_list_shares_with_owner(adm, w):
    name = _new_share(adm, w, "listedshare")
    owners = {s.name: s.owner for s in w.shares.list_shares()}
    assert owners.get(name) == "api", owners
    assert owners.get(CONFIG_SHARE) == "config", owners
    r = adm.raw("GET", SHARES_PATH)
    assert r.status_code == 200, r.text[:500]
    raw = {s["name"]: s.get("owner") for s in r.json()["shares"]}
    assert raw.get(name) == "api" and raw.get(CONFIG_SHARE) == "config", raw


def test_add_table_default_alias(adm, w, sales):
    share = _new_share(adm, w, "addshare")
    info = _patch(w, share, _upd("ADD", _obj(sales, history=True, partitions=_country_filter())))
    assert [o.shared_as for o in info.objects or []] == ["gov.sales"], "PATCH answers with the share's objects"
    o = _objects(w, share)["gov.sales"]
    assert o.name == sales, o.as_dict()
    assert o.data_object_type.value == "TABLE"
    assert o.history_data_sharing_status.value == "ENABLED"
    assert o.cdf_enabled is True, f"history shared on a CDF table: cdf_enabled {o.as_dict()}"
    assert o.start_version in (None, 0), o.as_dict()
    assert o.status is not None and o.status.value == "ACTIVE", o.as_dict()
    assert [[(v.name, v.op.value, v.recipient_property_key, v.value) for v in p.values] for p in o.partitions] == [
        [("country", "EQUAL", "country", None)]], o.as_dict()


def test_add_table_with_alias_and_options(adm, w, sales):
    share = _new_share(adm, w, "aliasshare")
    _patch(w, share, _upd("ADD", _obj(sales, shared_as="eu.orders", history=False, start_version=2)))
    objs = _objects(w, share)
    assert sorted(objs) == ["eu.orders"], sorted(objs)
    o = objs["eu.orders"]
    assert o.name == sales
    assert o.history_data_sharing_status.value == "DISABLED" and o.cdf_enabled is False, o.as_dict()
    assert o.start_version == 2, o.as_dict()
    assert not o.partitions, o.as_dict()
    # raw shape of the same share
    r = adm.raw("GET", f"{SHARES_PATH}/{share}")
    assert r.status_code == 200, r.text[:500]
    raw = r.json()["objects"]
    assert len(raw) == 1 and raw[0]["shared_as"] == "eu.orders" and raw[0]["name"] == sales, raw
    assert raw[0]["status"] == "ACTIVE" and raw[0]["start_version"] == 2, raw


def test_add_same_alias_twice_is_conflict(adm, w, sales):
    from databricks.sdk.errors import ResourceAlreadyExists

    share = _new_share(adm, w, "twiceshare")
    _patch(w, share, _upd("ADD", _obj(sales)))
    before = _snapshot_of_share(w, share)
    with pytest.raises(ResourceAlreadyExists):
        _patch(w, share, _upd("ADD", _obj(sales, history=True)))
    assert _snapshot_of_share(w, share) == before


def test_add_invalid_shared_as(adm, w, sales):
    from databricks.sdk.errors import InvalidParameterValue

    share = _new_share(adm, w, "badalias")
    with pytest.raises(InvalidParameterValue) as ei:
        _patch(w, share, _upd("ADD", _obj(sales, shared_as="no_schema_part")))
    assert "no_schema_part" in str(ei.value), ei.value
    assert not w.shares.get(share).objects


@pytest.mark.parametrize("column", ["label", "no_such_column"])
def test_partition_column_must_be_a_partition_column(adm, w, sales, column):
    from databricks.sdk.errors import InvalidParameterValue

    share = _new_share(adm, w, "badpart")
    with pytest.raises(InvalidParameterValue) as ei:
        _patch(w, share, _upd("ADD", _obj(sales, partitions=_literal_filter(column, "x"))))
    assert f"'{column}'" in str(ei.value), f"the error must name the column {column!r}: {ei.value}"
    assert not w.shares.get(share).objects, "nothing was added"
    # also on UPDATE of an existing object
    _patch(w, share, _upd("ADD", _obj(sales, partitions=_country_filter())))
    before = _snapshot_of_share(w, share)
    with pytest.raises(InvalidParameterValue) as ei:
        _patch(w, share, _upd("UPDATE", _obj(sales, partitions=_literal_filter(column, "x"))))
    assert f"'{column}'" in str(ei.value), ei.value
    assert _snapshot_of_share(w, share) == before


def test_patch_is_one_transaction_unregistered_table(adm, w, sales):
    """A valid ADD followed by an ADD of an unregistered table: 404, and the share is unchanged (also
    the comment sent in the same PATCH); nothing is recorded in the change log."""
    from databricks.sdk.errors import NotFound

    share = _new_share(adm, w, "atomic", comment="before")
    _patch(w, share, _upd("ADD", _obj(sales, shared_as="keep.me")))
    before = _snapshot_of_share(w, share)
    seq_before = _changes(adm, limit=1)[0]["seq"]
    with pytest.raises(NotFound):
        w.shares.update(share, comment="after", updates=[
            _upd("ADD", _obj(sales, shared_as="new.one")),
            _upd("ADD", _obj(f"{CATALOG}.gov.never_registered", shared_as="new.two")),
        ])
    assert _snapshot_of_share(w, share) == before, "a failed PATCH must leave the share as it was"
    assert [c for c in _changes(adm) if c["seq"] > seq_before and share in str(c.get("target"))] == [], (
        "a rolled-back PATCH must not be in the change log")
    # raw: same thing with the Unity error shape
    A.admin_error(adm.raw("PATCH", f"{SHARES_PATH}/{share}", body={"updates": [
        {"action": "ADD", "data_object": {"name": sales, "data_object_type": "TABLE", "shared_as": "new.one"}},
        {"action": "ADD", "data_object": {"name": f"{CATALOG}.gov.never_registered",
                                          "data_object_type": "TABLE", "shared_as": "new.two"}}]}),
        404, "RESOURCE_DOES_NOT_EXIST", what="PATCH with an unregistered table")
    assert _snapshot_of_share(w, share) == before


def test_patch_is_one_transaction_update_then_bad_remove(adm, w, sales):
    from databricks.sdk.errors import NotFound

    share = _new_share(adm, w, "atomic")
    _patch(w, share, _upd("ADD", _obj(sales, history=True, partitions=_country_filter())))
    before = _snapshot_of_share(w, share)
    with pytest.raises(NotFound):
        _patch(w, share,
               _upd("UPDATE", _obj(sales, shared_as="gov.sales", history=False, start_version=3)),
               _upd("REMOVE", _obj(sales, shared_as="gov.not_in_share")))
    assert _snapshot_of_share(w, share) == before, "the UPDATE of the failed PATCH must be rolled back"


def test_update_and_remove_take_effect_on_reads(adm, w, sales, gov_sales):
    """UPDATE changes the filter (templated -> literal -> cleared with `partitions: []`), the history
    settings and start_version; REMOVE takes the table away. Each change applies to the next request."""
    share = _new_share(adm, w, "upd")
    _patch(w, share, _upd("ADD", _obj(sales, history=True, partitions=_country_filter())))
    _, profile, prof = _recipient(adm, w, "upd_fr", props={"country": "FR"}, shares=[share])
    _check_rows(_read(profile, share, "gov.sales"), _expected(gov_sales, _country_is("FR")), "templated filter")

    # UPDATE found by the registered name: a literal filter on year
    _patch(w, share, _upd("UPDATE", _obj(sales, history=True, partitions=_literal_filter("year", "2024"))))
    _check_rows(_read(profile, share, "gov.sales"), _expected(gov_sales, lambda r: r["year"] == 2024),
                "literal year filter")

    # `partitions: []` clears the filter (raw: the SDK drops an empty list)
    r = adm.raw("PATCH", f"{SHARES_PATH}/{share}", body={"updates": [{"action": "UPDATE", "data_object": {
        "name": sales, "shared_as": "gov.sales", "partitions": []}}]})
    assert r.status_code == 200, r.text[:500]
    assert not _objects(w, share)["gov.sales"].partitions
    _check_rows(_read(profile, share, "gov.sales"), _expected(gov_sales), "filter cleared")

    # history and start_version
    api = Api(prof["endpoint"], prof["bearerToken"])
    changes = Api.table_path(share, "gov", "sales", "/changes")
    assert api.get(changes, params={"startingVersion": 0}).status_code == 200
    _patch(w, share, _upd("UPDATE", _obj(sales, shared_as="gov.sales", history=True, start_version=3)))
    o = _objects(w, share)["gov.sales"]
    assert o.start_version == 3 and o.history_data_sharing_status.value == "ENABLED", o.as_dict()
    r = api.get(changes, params={"startingVersion": 1})
    assert r.status_code == 400, f"startingVersion 1 below start_version 3: {r.status_code} {r.text[:300]}"
    assert api.get(changes, params={"startingVersion": 3}).status_code == 200
    _patch(w, share, _upd("UPDATE", _obj(sales, shared_as="gov.sales", history=False)))
    o = _objects(w, share)["gov.sales"]
    assert o.history_data_sharing_status.value == "DISABLED" and o.cdf_enabled is False, o.as_dict()
    r = api.get(changes, params={"startingVersion": 3})
    assert r.status_code == 400 and "cdf is not enabled" in r.text, f"history disabled: {r.status_code} {r.text[:300]}"

    # REMOVE
    _patch(w, share, _upd("REMOVE", _obj(sales, shared_as="gov.sales")))
    assert not w.shares.get(share).objects
    with pytest.raises(Exception) as ei:
        _read(profile, share, "gov.sales")
    assert "404" in str(ei.value), f"a removed table reads like an unknown one: {ei.value}"
    assert delta_sharing.SharingClient(profile).list_all_tables() == []


def test_update_finds_object_by_shared_as(adm, w, sales):
    share = _new_share(adm, w, "byalias")
    _patch(w, share, _upd("ADD", _obj(sales, shared_as="x.first")), _upd("ADD", _obj(sales, shared_as="x.second")))
    _patch(w, share, _upd("UPDATE", _obj(sales, shared_as="x.second", start_version=4)))
    objs = _objects(w, share)
    assert objs["x.second"].start_version == 4, objs["x.second"].as_dict()
    assert objs["x.first"].start_version in (None, 0), "only the object named by shared_as changes"
    _patch(w, share, _upd("REMOVE", _obj(sales, shared_as="x.first")))
    assert sorted(_objects(w, share)) == ["x.second"]


def test_update_by_name_of_a_table_shared_twice_is_ambiguous(adm, w, sales):
    from databricks.sdk.errors import BadRequest

    share = _new_share(adm, w, "twice")
    _patch(w, share, _upd("ADD", _obj(sales, shared_as="x.first")), _upd("ADD", _obj(sales, shared_as="x.second")))
    before = _snapshot_of_share(w, share)
    with pytest.raises(BadRequest) as e:
        _patch(w, share, _upd("UPDATE", _obj(sales, start_version=2)))
    assert "shared_as" in str(e.value), str(e.value)
    assert _snapshot_of_share(w, share) == before, "an ambiguous update changes nothing"


def test_unknown_share_and_object(adm, w, sales):
    from databricks.sdk.errors import NotFound

    with pytest.raises(NotFound):
        _patch(w, "no_such_share", _upd("ADD", _obj(sales)))
    with pytest.raises(NotFound):
        w.shares.delete("no_such_share")
    share = _new_share(adm, w, "noobj")
    with pytest.raises(NotFound):
        _patch(w, share, _upd("UPDATE", _obj(sales, start_version=1)))
    with pytest.raises(NotFound):
        _patch(w, share, _upd("REMOVE", _obj(sales)))


def test_unregistering_keeps_shared_tables(adm, w, gov_sales):
    """tables.delete unregisters the name; a share keeps what it holds (and the recipient still reads)."""
    from databricks.sdk.errors import NotFound

    info = _register(w, "keep", "held", gov_sales["path"])
    share = _new_share(adm, w, "holder")
    _patch(w, share, _upd("ADD", _obj(info.full_name)))
    _, profile, _ = _recipient(adm, w, "holder_r", shares=[share])
    w.tables.delete(info.full_name)
    with pytest.raises(NotFound):
        w.tables.get(info.full_name)
    assert sorted(_objects(w, share)) == ["keep.held"]
    _check_rows(_read(profile, share, "keep.held"), _expected(gov_sales), "after unregistering")


def test_delete_share_removes_tables_and_grants(adm, w, sales, gov_sales):
    from databricks.sdk.errors import NotFound

    share = _new_share(adm, w, "doomed")
    _patch(w, share, _upd("ADD", _obj(sales)))
    name, profile, _ = _recipient(adm, w, "doomed_r", shares=[share])
    _check_rows(_read(profile, share, "gov.sales"), _expected(gov_sales), "before delete")
    w.shares.delete(share)
    with pytest.raises(NotFound):
        w.shares.get(share)
    assert share not in [s.name for s in w.shares.list_shares()]
    client = delta_sharing.SharingClient(profile)
    assert client.list_shares() == [], "the recipient's share listing is empty after the delete"
    with pytest.raises(Exception) as ei:
        _read(profile, share, "gov.sales")
    assert "404" in str(ei.value), f"a deleted share reads like an unknown one: {ei.value}"
    perms = w.recipients.share_permissions(name)
    assert [p.share_name for p in perms.permissions_out or []] == [], "the grant went with the share"
    # a new share of the same name starts empty and ungranted
    w.shares.create(name=share)
    assert not w.shares.get(share).objects, "the deleted share's tables must not come back"
    _patch(w, share, _upd("ADD", _obj(sales)))
    assert client.list_shares() == [], "the deleted share's grant must not come back"


def test_config_share_cannot_be_modified(adm, w, sales):
    from databricks.sdk.errors import InvalidParameterValue

    before = _snapshot_of_share(w, CONFIG_SHARE)
    assert [o.name for o in w.shares.get(CONFIG_SHARE).objects or []] == [f"{CONFIG_SHARE}.s.sales"]
    attempts = [
        ("update comment", lambda: w.shares.update(CONFIG_SHARE, comment="changed")),
        ("update ADD", lambda: _patch(w, CONFIG_SHARE, _upd("ADD", _obj(sales, shared_as="x.y")))),
        ("update REMOVE", lambda: _patch(w, CONFIG_SHARE, _upd("REMOVE", _obj(f"{CONFIG_SHARE}.s.sales",
                                                                              shared_as="s.sales")))),
        ("delete", lambda: w.shares.delete(CONFIG_SHARE)),
    ]
    for what, call in attempts:
        with pytest.raises(InvalidParameterValue) as ei:
            call()
        assert "config file" in str(ei.value), f"{what}: the message must say the config file owns it: {ei.value}"
    body = A.admin_error(adm.raw("DELETE", f"{SHARES_PATH}/{CONFIG_SHARE}"), 400, "INVALID_PARAMETER_VALUE")
    assert "config file" in body["message"], body
    assert _snapshot_of_share(w, CONFIG_SHARE) == before, "the config-owned share is unchanged"
    assert {s.name: s.owner for s in w.shares.list_shares()}.get(CONFIG_SHARE) == "config"


# ---------------------------------------------------------------------------------------- SDK lifecycle


def test_lifecycle_sdk_only(adm, w, gov_sales):
    """Acceptance: register -> share -> templated filter -> recipient (country=FR) -> grant -> activate
    -> read exactly the FR rows -> code is single-use -> rotate with a 2 s grace -> delete. Every
    management step is a databricks-sdk call; reads use the stock delta-sharing connector."""
    from databricks.sdk.errors import NotFound

    c, s = _sdk()
    # 1. register the table by location
    tbl = w.tables.create(name="life", catalog_name=CATALOG, schema_name="lc", table_type=c.TableType.EXTERNAL,
                          data_source_format=c.DataSourceFormat.DELTA, storage_location=gov_sales["path"])
    assert tbl.full_name == f"{CATALOG}.lc.life"
    # 2. a share, 3. the table under an alias with a templated partition filter
    share = adm.fresh_name("life")
    assert w.shares.create(name=share, comment="lifecycle").owner == "api"
    w.shares.update(share, updates=[s.SharedDataObjectUpdate(
        action=s.SharedDataObjectUpdateAction.ADD,
        data_object=s.SharedDataObject(
            name=tbl.full_name, data_object_type=s.SharedDataObjectDataObjectType.TABLE, shared_as="eu.sales",
            history_data_sharing_status=s.SharedDataObjectHistoryDataSharingStatus.ENABLED, start_version=0,
            partitions=[s.Partition(values=[s.PartitionValue(name="country", op=s.PartitionValueOp.EQUAL,
                                                             recipient_property_key="country")])]))])
    # 4. a recipient with country=FR, 5. granted SELECT
    rname = adm.fresh_name("life_fr")
    info = w.recipients.create(name=rname, authentication_type=s.AuthenticationType.TOKEN,
                               properties_kvpairs=s.SecurablePropertiesKvPairs(properties={"country": "FR"}))
    w.shares.update_permissions(share, changes=[s.PermissionsChange(principal=rname, add=["SELECT"])])
    # 6. activation: the link's code gives the profile once
    url = A.token_entries(info)[0].activation_url
    profile = os.path.join(adm.dir, f"{rname}.share")
    prof = _redeem(adm, url, profile)
    assert prof["endpoint"].rstrip("/") == adm.endpoint
    # 7. exactly the FR rows
    fr = _expected(gov_sales, _country_is("FR"))
    assert fr.rows, "the fixture has FR rows"
    _check_rows(_read(profile, share, "eu.sales"), fr, "lifecycle: FR recipient")
    # 8. the code is single-use
    with pytest.raises(NotFound):
        adm.activation_client().recipient_activation.retrieve_token(A.activation_code(url))
    # 9. rotate with a 2 s grace
    tok0 = prof["bearerToken"]
    before = w.recipients.get(rname)
    t0 = time.monotonic()
    after = w.recipients.rotate_token(rname, existing_token_expire_in_seconds=2)
    assert _status(adm, tok0) == 200, "the old token works right after rotate_token(..., 2)"
    _check_rows(_read(profile, share, "eu.sales"), fr, "lifecycle: old profile during the grace period")
    old_ids = {t.id for t in A.token_entries(before)}
    new = [t for t in A.token_entries(after) if t.id not in old_ids]
    assert len(new) == 1 and new[0].activation_url, [t.as_dict() for t in A.token_entries(after)]
    profile1 = os.path.join(adm.dir, f"{rname}-rotated.share")
    prof1 = _redeem(adm, new[0].activation_url, profile1)
    assert prof1["bearerToken"] != tok0
    _check_rows(_read(profile1, share, "eu.sales"), fr, "lifecycle: rotated profile")
    ok, _ = A.wait_status(lambda: _status(adm, tok0), 401, timeout=max(0.0, t0 + 3.5 - time.monotonic()))
    elapsed = time.monotonic() - t0
    assert ok, "the old token must get 401 within ~3.5 s of rotate_token(existing_token_expire_in_seconds=2)"
    assert elapsed >= 0.9, f"the old token was refused after {elapsed:.2f}s, before its 2 s grace was over"
    assert _status(adm, prof1["bearerToken"]) == 200, "the new token still works"
    # 10. delete the recipient: its next request is 401
    w.recipients.delete(rname)
    assert _status(adm, prof1["bearerToken"]) == 401
    with pytest.raises(Exception) as ei:
        _read(profile1, share, "eu.sales")
    assert "401" in str(ei.value), f"a deleted recipient's profile: {ei.value}"


@pytest.fixture(scope="module")
def filtered_share(adm, w, sales):
    """An API share holding lake.gov.sales as `gov.sales` with the templated country filter."""
    share = _new_share(adm, w, "filtered")
    _patch(w, share, _upd("ADD", _obj(sales, history=True, partitions=_country_filter())))
    return share


@pytest.mark.parametrize("country", ["DE", "US"])
def test_other_country_sees_only_its_rows(adm, w, gov_sales, filtered_share, country):
    _, profile, _ = _recipient(adm, w, f"c_{country.lower()}", props={"country": country}, shares=[filtered_share])
    want = _expected(gov_sales, _country_is(country))
    assert want.rows
    _check_rows(_read(profile, filtered_share, "gov.sales"), want, f"recipient with country={country}")


def test_recipient_without_country_sees_nothing(adm, w, gov_sales, filtered_share):
    """Fail closed: no `country` property -> no row (not all rows, not an error)."""
    _, profile, _ = _recipient(adm, w, "noprop", props={"tier": "gold"}, shares=[filtered_share])
    _check_rows(_read(profile, filtered_share, "gov.sales"), _expected(gov_sales, lambda r: False),
                "recipient without a country property")


# ---------------------------------------------------------------------------------------- change log


def test_changes_shape_and_order(adm, w):
    _new_share(adm, w, "shape")
    changes = _changes(adm, limit=50)
    assert 1 <= len(changes) <= 50
    for c in changes:
        assert set(c) >= {"seq", "at", "actor", "action", "target", "details"}, c
        assert isinstance(c["seq"], int) and isinstance(c["at"], int), c
        assert isinstance(c["actor"], str) and isinstance(c["action"], str), c
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs), f"newest first: {seqs}"
    # times follow the same order for what this admin did (startup entries written by the CLI before
    # `serve` are left out: their `at` is when each command began, not when its entry was committed)
    ats = [c["at"] for c in changes if c["actor"] == ACTOR]
    assert ats and ats == sorted(ats, reverse=True), f"times newest first: {ats}"
    now_ms = int(time.time() * 1000)
    assert now_ms - 600_000 <= changes[0]["at"] <= now_ms + 60_000, changes[0]
    two = _changes(adm, limit=2)
    assert two == changes[:2], "limit=2 gives the two newest entries"


def test_changes_attribute_api_actions(adm, w, gov_sales):
    """register -> share.create -> ADD (two aliases in one schema) -> REMOVE one -> share.delete, each
    recorded with actor admin:conformance-admin, in order."""
    tname = adm.fresh_name("attr")
    tbl = _register(w, "attr", tname, gov_sales["path"])
    share = _new_share(adm, w, "attrshare")
    _patch(w, share, _upd("ADD", _obj(tbl.full_name, shared_as="a.one")),
           _upd("ADD", _obj(tbl.full_name, shared_as="a.two")))
    _patch(w, share, _upd("REMOVE", _obj(tbl.full_name, shared_as="a.one")))
    w.shares.delete(share)
    changes = _changes(adm, limit=50)
    steps = [("table.register", tbl.full_name), ("share.create", share), ("table.create", f"{share}.a.one"),
             ("table.create", f"{share}.a.two"), ("table.delete", f"{share}.a.one"), ("share.delete", share)]
    found = [_find_change(changes, action, target) for action, target in steps]
    for (action, target), c in zip(steps, found):
        assert c["actor"] == ACTOR, f"{action} {target}: actor {c['actor']!r} != {ACTOR!r}"
    seq = {st: c["seq"] for st, c in zip(steps, found)}
    assert seq[steps[0]] < seq[steps[1]] < min(seq[steps[2]], seq[steps[3]]) <= max(seq[steps[2]], seq[steps[3]]) \
        < seq[steps[4]] < seq[steps[5]], f"order of the recorded changes: {seq}"


def test_remove_of_last_table_in_schema_is_recorded_as_table_delete(adm, w, sales):
    """REMOVE of a table that is the only one under its alias schema is still a `table.delete` of that
    table (the change log must say which table was removed, by whom)."""
    share = _new_share(adm, w, "lastone")
    _patch(w, share, _upd("ADD", _obj(sales, shared_as="solo.t")))
    _patch(w, share, _upd("REMOVE", _obj(sales, shared_as="solo.t")))
    c = _find_change(_changes(adm, limit=50), "table.delete", f"{share}.solo.t")
    assert c["actor"] == ACTOR, c


def test_changes_record_cli_actor(adm):
    """The bootstrap recipient was created with the CLI before the server started: actor `cli:<user>`."""
    r = adm.raw("GET", f"{CHANGES_PATH}?limit=100000")
    assert r.status_code == 200, r.text[:300]
    c = _find_change(r.json()["changes"], "recipient.create", "bootstrap")
    assert c["actor"].startswith("cli:") and len(c["actor"]) > len("cli:"), c


def test_changes_never_contain_secrets(adm, w, filtered_share):
    """No change (any field, details included) contains a recipient bearer token, an activation code or
    the admin token -- after create, activate, grant, update, rotate and delete."""
    _, s = _sdk()
    name, _, prof = _recipient(adm, w, "secret", props={"country": "US"}, shares=[filtered_share])
    w.recipients.update(name, properties_kvpairs=s.SecurablePropertiesKvPairs(properties={"country": "DE"}))
    before = w.recipients.get(name)
    after = w.recipients.rotate_token(name, existing_token_expire_in_seconds=0)
    old = {t.id for t in A.token_entries(before)}
    new_url = [t.activation_url for t in A.token_entries(after) if t.id not in old][0]
    _redeem(adm, new_url, os.path.join(adm.dir, f"{name}-rot.share"))
    w.recipients.delete(name)
    r = adm.raw("GET", f"{CHANGES_PATH}?limit=100000")
    assert r.status_code == 200, r.text[:300]
    changes = r.json()["changes"]
    assert any(c["action"] == "recipient.create" and c["target"] == name for c in changes)
    secrets = [x for x in _SECRETS if x] + [adm.admin_token]
    assert prof["bearerToken"] in secrets and len(secrets) >= 5
    for c in changes:
        strings = json_strings(c)
        for sec in secrets:
            leaked = [x for x in strings if sec in x]
            assert not leaked, f"change {c['seq']} ({c['action']} {c['target']}) contains a secret: {c}"
    for sec in secrets:
        assert sec not in r.text, "a secret appears in the change log"


@pytest.mark.parametrize("path", [CHANGES_PATH + "?limit=5", "/api/2.1/lakeshare/recipients/bootstrap/preview"])
def test_extensions_need_admin_token(adm, path):
    A.admin_error(adm.raw("GET", path, auth=False), 401, "UNAUTHENTICATED", what="no token")
    A.admin_error(adm.raw("GET", path, token="not-an-admin-token"), 401, "UNAUTHENTICATED", what="bad token")


@pytest.mark.parametrize("path", [CHANGES_PATH + "?limit=abc",
                                  "/api/2.1/lakeshare/recipients/bootstrap/preview?max_files=abc"])
def test_malformed_query_parameter_is_unity_error(adm, path):
    """Errors of the admin API are `{"error_code","message"}`: a non-numeric limit/max_files is
    400 INVALID_PARAMETER_VALUE naming the parameter."""
    body = A.admin_error(adm.raw("GET", path), 400, "INVALID_PARAMETER_VALUE", what=f"GET {path}")
    param = path.split("?")[1].split("=")[0]
    assert param in body["message"], body


# ---------------------------------------------------------------------------------------- preview


def test_preview_follows_partition_filter(adm, w, gov_sales, filtered_share):
    name, _, _ = _recipient(adm, w, "prev_fr", props={"country": "FR"}, shares=[filtered_share])
    r = _preview(adm, name)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["recipient"] == name
    assert filtered_share in body["shares"], body["shares"]
    tables = [t for t in body["tables"] if t["share"] == filtered_share]
    assert len(tables) == 1, body["tables"]
    t = tables[0]
    assert (t["schema"], t["name"]) == ("gov", "sales"), t
    assert t["version"] == gov_sales["latest_version"], t
    adds = _log_adds(gov_sales)
    assert t["total_files"] == len(adds), f"total_files {t['total_files']} != {len(adds)} files in the table"
    want = {a["path"]: a for a in adds if (a.get("partitionValues") or {}).get("country") == "FR"}
    assert want, "the table has FR files"
    got = {f["path"]: f for f in t["files"]}
    assert len(got) == len(t["files"]), "no file listed twice"
    assert set(got) == set(want), f"preview files {sorted(got)} != FR files of the log {sorted(want)}"
    for p, f in got.items():
        assert f["partition_values"].get("country") == "FR", f
        assert f["size"] == want[p]["size"], (f, want[p]["size"])
    assert [[v.get("name"), v.get("recipient_property_key")] for e in t["partitions"] for v in e["values"]] == [
        ["country", "country"]], t["partitions"]
    leaked = [x for x in json_strings(body) if "http" in x.lower()]
    assert not leaked, f"the preview must show paths, never URLs: {leaked[:3]}"


def test_preview_without_property_lists_no_files(adm, w, gov_sales, filtered_share):
    name, _, _ = _recipient(adm, w, "prev_none", shares=[filtered_share])
    r = _preview(adm, name)
    assert r.status_code == 200, r.text[:500]
    t = [t for t in r.json()["tables"] if t["share"] == filtered_share]
    assert len(t) == 1 and t[0]["files"] == [], t
    assert t[0]["total_files"] == len(_log_adds(gov_sales)), t


def test_preview_max_files(adm, w, gov_sales, filtered_share):
    name, _, _ = _recipient(adm, w, "prev_max", props={"country": "US"}, shares=[filtered_share])
    r = _preview(adm, name, max_files=1)
    assert r.status_code == 200, r.text[:500]
    t = [t for t in r.json()["tables"] if t["share"] == filtered_share][0]
    assert len(t["files"]) == 1 and t["files"][0]["partition_values"]["country"] == "US", t
    assert t["total_files"] == len(_log_adds(gov_sales)), t


def test_preview_ungranted_and_unknown(adm, w):
    _, s = _sdk()
    name = adm.fresh_name("prev_nogrant")
    w.recipients.create(name=name, authentication_type=s.AuthenticationType.TOKEN)
    r = _preview(adm, name)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["shares"] == [] and r.json()["tables"] == [], r.json()
    A.admin_error(_preview(adm, "no_such_recipient"), 404, "RESOURCE_DOES_NOT_EXIST", what="unknown recipient")


def test_share_url_lifetime_extension(adm):
    """`url_ttl_seconds` (Lakeshare extension) on create and update; 0 in an update restores the
    server default; non-positive values on create are refused."""
    name = adm.fresh_name("ttl")
    r = adm.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": name, "url_ttl_seconds": 1200})
    assert r.status_code == 200 and r.json().get("url_ttl_seconds") == 1200, r.text
    assert adm.raw("GET", f"/api/2.1/unity-catalog/shares/{name}").json().get("url_ttl_seconds") == 1200
    r = adm.raw("PATCH", f"/api/2.1/unity-catalog/shares/{name}", body={"url_ttl_seconds": 0})
    assert r.status_code == 200 and "url_ttl_seconds" not in r.json(), r.text
    r = adm.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": name + "x", "url_ttl_seconds": -5})
    A.admin_error(r, 400, "INVALID_PARAMETER_VALUE", "negative url_ttl_seconds")
