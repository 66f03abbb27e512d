"""History sharing gates, startVersion, and timestamp resolution (PROTOCOL-NOTES §2.6-2.8, §13.9).

Commit times of gen-partitioned are 2025-01-01T00:00Z + v hours (v = 0..4), set by gen_tables.py.
"""
import delta_sharing
import pytest
from requests.exceptions import HTTPError

from api import assert_error, file_lines, ndjson
from conftest import iso_ms

NO_HISTORY_MSG = ("Reading table by version or timestamp is not supported because history sharing is not "
                  "enabled on table: gated.gated.no_history")
TABLE = "gen-partitioned"


def _gated(api, name, suffix):
    return api.table_path("gated", "gated", name, suffix)


# ------------------------------------------------------------------------------ historyShared: false


def test_no_history_latest_works(api):
    r = api.post(_gated(api, "no_history", "/query"), {})
    assert r.status_code == 200, r.text[:300]
    assert api.get(_gated(api, "no_history", "/version")).status_code == 200


@pytest.mark.parametrize("body", [{"version": 1}, {"timestamp": "2025-01-01T01:00:00Z"}, {"version": 0}])
def test_no_history_query_refused(api, body):
    r = api.post(_gated(api, "no_history", "/query"), body)
    assert_error(r, 400, None, NO_HISTORY_MSG, what=f"query {body} on historyShared:false table")


@pytest.mark.parametrize("params", [{"version": 1}, {"timestamp": "2025-01-01T01:00:00Z"}])
def test_no_history_metadata_refused(api, params):
    r = api.get(_gated(api, "no_history", "/metadata"), params=params)
    assert_error(r, 400, None, NO_HISTORY_MSG, what=f"metadata {params} on historyShared:false table")


def test_no_history_starting_timestamp_refused(api):
    r = api.get(_gated(api, "no_history", "/version"), params={"startingTimestamp": "2025-01-01T01:00:00Z"})
    assert_error(r, 400, None, NO_HISTORY_MSG, what="/version?startingTimestamp on historyShared:false table")


def test_no_history_client_error(env):
    url = f"{env.profile}#gated.gated.no_history"
    with pytest.raises(HTTPError) as excinfo:
        delta_sharing.load_as_pandas(url, version=1, use_delta_format=False)
    assert "history sharing is not enabled" in str(excinfo.value) or \
        "history sharing is not enabled" in excinfo.value.response.text


# ------------------------------------------------------------------------------ startVersion: 1


def test_start_version_refuses_older(api, tables):
    r = api.post(_gated(api, "start_v1", "/query"), {"version": 0})
    assert_error(r, 400, None, "You can only query table data since version 1", what="version 0 below startVersion 1")
    ts0 = iso_ms(tables["gen-checkpointed"]["commit_mtimes_ms"][0])
    r = api.post(_gated(api, "start_v1", "/query"), {"timestamp": ts0})
    assert_error(r, 400, None, "You can only query table data since version 1", what="timestamp of v0 below startVersion")


def test_start_version_allows_from_start(api):
    for v in (1, 2):
        r = api.post(_gated(api, "start_v1", "/query"), {"version": v})
        assert r.status_code == 200, f"version {v} >= startVersion: {r.status_code} {r.text[:300]}"
        assert r.headers.get("Delta-Table-Version") == str(v)
    assert api.post(_gated(api, "start_v1", "/query"), {}).status_code == 200


def test_start_version_starting_timestamp_below(api):
    r = api.get(_gated(api, "start_v1", "/version"), params={"startingTimestamp": "2020-01-01T00:00:00Z"})
    assert_error(r, 400, None, "You can only query table data since version 1",
                 what="/version?startingTimestamp resolving below startVersion")


# ------------------------------------------------------------------------------ timestamp errors


@pytest.fixture(scope="module")
def times(tables):
    return tables[TABLE]["commit_mtimes_ms"]


def test_invalid_timestamp(env, api):
    share, schema, name = env.coords(TABLE)
    r = api.query(share, schema, name, {"timestamp": "not-a-time"})
    _, msg = assert_error(r, 400, None, "Invalid startingTimestamp:", what="unparsable timestamp")
    assert "not-a-time" in msg, "the message names the offending text"


def test_timestamp_before_first_commit(env, api, times):
    share, schema, name = env.coords(TABLE)
    r = api.query(share, schema, name, {"timestamp": iso_ms(times[0] - 3_600_000)})
    assert_error(r, 400, None, "is before the earliest available version", what="timestamp before v0")


def test_timestamp_after_last_commit(env, api, times):
    share, schema, name = env.coords(TABLE)
    r = api.query(share, schema, name, {"timestamp": iso_ms(max(times.values()) + 3_600_000)})
    assert_error(r, 400, None, "is after the latest available version", what="timestamp after latest")


@pytest.mark.parametrize("offset_ms,want", [(0, 1), (1, 1), (3_599_999, 1), (3_600_000, 2)])
def test_time_travel_resolves_last_commit_at_or_before(env, api, times, offset_ms, want):
    share, schema, name = env.coords(TABLE)
    ts = iso_ms(times[1] + offset_ms)
    r = api.query(share, schema, name, {"timestamp": ts})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Delta-Table-Version") == str(want), f"timestamp {ts} -> version {want}"
    for f in file_lines(ndjson(r)):
        assert f.get("version", 0) <= want


def test_timestamp_with_offset_zone(env, api, times):
    share, schema, name = env.coords(TABLE)
    # 2025-01-01T02:00:00Z written as 2024-12-31T18:00:00-08:00 -> version 2
    r = api.query(share, schema, name, {"timestamp": "2024-12-31T18:00:00-08:00"})
    assert r.status_code == 200 and r.headers.get("Delta-Table-Version") == "2", r.text[:300]


# ------------------------------------------------------------------------------ /version?startingTimestamp


@pytest.mark.parametrize("offset_ms,base,want", [
    (0, 0, 0), (0, 2, 2), (1, 2, 3), (-1, 2, 2), (-3_600_000, 0, 0), (-86_400_000 * 365, 0, 0), (0, 4, 4),
])
def test_version_starting_timestamp(env, api, times, offset_ms, base, want):
    """First version whose commit time >= ts; before the first commit -> 0."""
    share, schema, name = env.coords(TABLE)
    ts = iso_ms(times[base] + offset_ms)
    r = api.version(share, schema, name, params={"startingTimestamp": ts})
    assert r.status_code == 200, f"startingTimestamp {ts}: {r.status_code} {r.text[:300]}"
    assert r.headers.get("Delta-Table-Version") == str(want), f"startingTimestamp {ts} -> {want}"


def test_version_starting_timestamp_after_latest(env, api, times):
    share, schema, name = env.coords(TABLE)
    r = api.version(share, schema, name, params={"startingTimestamp": iso_ms(times[4] + 1)})
    assert_error(r, 400, None, "is after the latest available version", what="startingTimestamp after latest")


def test_version_starting_timestamp_invalid(env, api):
    share, schema, name = env.coords(TABLE)
    r = api.version(share, schema, name, params={"startingTimestamp": "yesterday"})
    assert_error(r, 400, None, "Invalid startingTimestamp:", what="invalid startingTimestamp")


def test_client_get_table_version_starting_timestamp(env, times):
    """The Python client URL-quotes the timestamp (':' -> %3A)."""
    url = env.url(TABLE)
    assert delta_sharing.get_table_version(url, starting_timestamp=iso_ms(times[3])) == 3
    assert delta_sharing.get_table_version(url, starting_timestamp="2000-01-01T00:00:00Z") == 0
    with pytest.raises(HTTPError) as excinfo:
        delta_sharing.get_table_version(url, starting_timestamp="2100-01-01T00:00:00Z")
    assert "is after the latest available version" in str(excinfo.value) or \
        "is after the latest available version" in excinfo.value.response.text
