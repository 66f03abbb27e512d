"""`includeendstreamaction` (PROTOCOL-NOTES §3.4): when requested, the last line of /query and
/changes is always an endStreamAction and the response capabilities header says
`includeendstreamaction=true`; never an endStreamAction when the request asked for none of: that
capability, maxFiles, includeRefreshToken, pageToken."""
import pytest

from api import ndjson
from paging import Page, changes_url, get_raw

CASES = [
    # (id, kind, table, request, fmt)
    ("query-latest", "query", "gen-partitioned", {}, "parquet"),
    ("query-version", "query", "gen-partitioned", {"version": 2}, "parquet"),
    ("query-starting-version", "query", "gen-cdf-partitioned", {"startingVersion": 1}, "parquet"),
    ("query-latest-delta", "query", "dv-partitioned-checkpoint", {}, "delta"),
    ("query-starting-version-delta", "query", "gen-cdf-unpartitioned", {"startingVersion": 2}, "delta"),
    ("query-empty-result", "query", "gen-partitioned", {"limitHint": 0}, "parquet"),
    ("changes", "changes", "gen-cdf-partitioned", "startingVersion=0", "parquet"),
    ("changes-delta", "changes", "gen-cdf-partitioned", "startingVersion=0&includeHistoricalMetadata=true", "delta"),
    ("changes-empty", "changes", "gen-cdf-unpartitioned", "startingVersion=5&endingVersion=5", "parquet"),
]
FMT_CAPS = {"parquet": "responseformat=parquet",
            "delta": "responseformat=delta;readerfeatures=deletionvectors,columnmapping,timestampntz"}


def _send(env, api, kind, table, request, caps):
    share, schema, name = env.coords(table)
    h = {"delta-sharing-capabilities": caps} if caps else {}
    if kind == "query":
        return api.query(share, schema, name, request, headers=h)
    return get_raw(api, changes_url(api, env.coords(table), request), caps=caps) if caps else \
        api.get(api.table_path(share, schema, name, "/changes") + "?" + request)


@pytest.mark.parametrize("cid,kind,table,request_,fmt", CASES, ids=[c[0] for c in CASES])
def test_end_stream_action_when_requested(env, api, cid, kind, table, request_, fmt):
    caps = FMT_CAPS[fmt] + ";includeendstreamaction=true"
    p = Page(_send(env, api, kind, table, request_, caps))
    assert p.end is not None, f"{cid}: last line must be an endStreamAction: {p.raw_lines[-1][:300]}"
    assert "nextPageToken" not in p.end, f"{cid}: no pagination asked, no nextPageToken: {p.end}"
    assert "errorMessage" not in p.end, p.end
    rc = p.caps.lower().replace(" ", "")
    assert f"responseformat={fmt}" in rc and "includeendstreamaction=true" in rc, (
        f"{cid}: response capabilities must read responseformat={fmt};includeendstreamaction=true, got {p.caps!r}")
    if p.files:
        assert isinstance(p.end.get("minUrlExpirationTimestamp"), int), p.end


@pytest.mark.parametrize("cid,kind,table,request_,fmt", CASES, ids=[c[0] for c in CASES])
def test_no_end_stream_action_unless_requested(env, api, cid, kind, table, request_, fmt):
    caps = FMT_CAPS[fmt] if fmt == "delta" else None  # parquet: no header at all, like Python
    r = _send(env, api, kind, table, request_, caps)
    assert r.status_code == 200, f"{cid}: {r.status_code} {r.text[:300]}"
    kinds = [next(iter(o)) for o in ndjson(r)]
    assert "endStreamAction" not in kinds, f"{cid}: endStreamAction sent although nothing asked for it"
    assert "includeendstreamaction=true" not in r.headers.get("delta-sharing-capabilities", "").lower()


def test_end_stream_false_means_none(env, api):
    share, schema, name = env.coords("gen-partitioned")
    r = api.query(share, schema, name, {}, headers={"delta-sharing-capabilities":
                                                    "responseformat=parquet;includeendstreamaction=false"})
    assert r.status_code == 200
    assert "endStreamAction" not in [next(iter(o)) for o in ndjson(r)]


def test_end_stream_with_pagination_and_capability(env, api):
    """With both the capability and maxFiles, every page ends with an endStreamAction."""
    from paging import walk_query

    pages = walk_query(api, env.coords("checkpoint-v1-single"), {"predicateHints": [], "maxFiles": 3},
                       caps="responseformat=parquet;includeendstreamaction=true")
    assert len(pages) >= 3 and all(p.end is not None for p in pages)
    assert all("includeendstreamaction=true" in p.caps.lower() for p in pages)


def test_metadata_never_gets_end_stream_action(env, api):
    """/metadata is exactly two lines even when the capability is sent (Spark checks it)."""
    share, schema, name = env.coords("gen-partitioned")
    r = api.metadata(share, schema, name, caps="responseformat=parquet;includeendstreamaction=true")
    assert r.status_code == 200
    assert [next(iter(o)) for o in ndjson(r)] == ["protocol", "metaData"]


def test_python_client_reads_unaffected(env):
    """The stock Python client (no capability, no tokens) still gets plain bodies."""
    import delta_sharing

    df = delta_sharing.load_table_changes_as_pandas(env.url("gen-cdf-partitioned"), starting_version=1,
                                                    ending_version=2)
    assert len(df) > 0 and set(df["_commit_version"]) <= {1, 2}
