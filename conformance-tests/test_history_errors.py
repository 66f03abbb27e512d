"""Every history error of PROTOCOL-NOTES §2.6-2.9 and §6 for /changes and startingVersion queries:
one parametrized table of (request, status, errorCode, message substring).

Tables: gen-cdf-partitioned (latest 5, CDF from v0), gen-cdf-late (CDF from v2, latest 6),
cdf-column-mapping-name (CDF from v1), checkpoint-v1-single (no CDF), and in share `gated`:
no_history / cdf_no_history (historyShared: false) and cdf_start_v2 (gen-cdf-partitioned with
startVersion 2).  Commit times of gen-cdf-partitioned: gen_cdf_tables.CDF_BASE_MS + v * CDF_STEP_MS.
"""
from dataclasses import dataclass
from typing import Optional

import pytest

import gen_cdf_tables as G
from api import assert_error
from conftest import iso_ms

IPV = "INVALID_PARAMETER_VALUE"
CDF_DELTA_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
PART = ("conformance", "generated", "gen_cdf_partitioned")
LATE = ("conformance", "generated", "gen_cdf_late")
CM = ("conformance", "golden", "cdf_column_mapping_name")
NOCDF = ("conformance", "golden", "checkpoint_v1_single")
NO_HIST = ("gated", "gated", "cdf_no_history")
START2 = ("gated", "gated", "cdf_start_v2")


def _t(v):
    return G.CDF_BASE_MS["gen-cdf-partitioned"] + v * G.CDF_STEP_MS


@dataclass
class Case:
    id: str
    kind: str            # "changes" (query string) or "query" (JSON body)
    table: tuple
    request: object      # query string or body
    status: int
    code: Optional[str]
    message: Optional[str]
    caps: Optional[str] = None


CASES = [
    # ------------------------------------------------------------------------------ /changes
    Case("changes-no-start", "changes", PART, "endingVersion=3", 400, IPV,
         "No startingVersion or startingTimestamp provided for CDF read."),
    Case("changes-empty-query", "changes", PART, "", 400, IPV,
         "No startingVersion or startingTimestamp provided for CDF read."),
    Case("changes-two-starts", "changes", PART, f"startingVersion=1&startingTimestamp={iso_ms(_t(1))}", 400, IPV,
         "Multiple starting arguments provided for CDF read. Please provide one of either startingTimestamp or "
         "startingVersion."),
    Case("changes-two-ends", "changes", PART, f"startingVersion=1&endingVersion=2&endingTimestamp={iso_ms(_t(2))}",
         400, IPV, "Multiple ending arguments provided for CDF read. Please provide one of either endingTimestamp "
                   "or endingVersion."),
    Case("changes-start-not-number", "changes", PART, "startingVersion=abc", 400, IPV,
         "startingVersion is not a valid number."),
    Case("changes-end-not-number", "changes", PART, "startingVersion=0&endingVersion=x3", 400, IPV,
         "endingVersion is not a valid number."),
    Case("changes-start-after-latest", "changes", PART, "startingVersion=99", 400, IPV,
         "Provided Start version(99) for reading change data is invalid. Start version cannot be greater than the "
         "latest version of the table(5)."),
    Case("changes-end-before-start", "changes", PART, "startingVersion=3&endingVersion=1", 400, IPV,
         "CDF range from start 3 to end 1 was invalid. End cannot be before start."),
    Case("changes-start-ts-before-first", "changes", PART, f"startingTimestamp={iso_ms(_t(0) - 86_400_000)}", 400,
         IPV, "Please use a timestamp greater than or equal to"),
    Case("changes-start-ts-after-last", "changes", PART, f"startingTimestamp={iso_ms(_t(5) + 1)}", 400, IPV,
         "Please use a timestamp less than or equal to"),
    Case("changes-end-ts-after-last", "changes", PART,
         f"startingVersion=0&endingTimestamp={iso_ms(_t(5) + 86_400_000)}", 400, IPV,
         "Please use a timestamp less than or equal to"),
    Case("changes-start-ts-invalid", "changes", PART, "startingTimestamp=not-a-time", 400, IPV,
         "Invalid startingTimestamp:"),
    Case("changes-end-ts-invalid", "changes", PART, "startingVersion=0&endingTimestamp=yesterday", 400, IPV,
         "Invalid endingTimestamp:"),
    Case("changes-history-not-shared", "changes", NO_HIST, "startingVersion=0", 400, IPV,
         "cdf is not enabled on table gated.gated.cdf_no_history"),
    Case("changes-history-not-shared-noncdf", "changes", ("gated", "gated", "no_history"), "startingVersion=0", 400,
         IPV, "cdf is not enabled on table gated.gated.no_history"),
    Case("changes-table-without-cdf", "changes", NOCDF, "startingVersion=0", 400, IPV,
         "change data was not recorded for version"),
    Case("changes-cdf-enabled-later", "changes", LATE, "startingVersion=0", 400, IPV,
         "Error getting change data for range [0, 6] as change data was not recorded for version [0]"),
    Case("changes-cdf-enabled-later-v1", "changes", LATE, "startingVersion=1&endingVersion=3", 400, IPV,
         "change data was not recorded for version [1]"),
    Case("changes-column-mapping-from-v0", "changes", CM, "startingVersion=0", 400, IPV,
         "change data was not recorded for version", caps=CDF_DELTA_CAPS),
    Case("changes-below-start-version", "changes", START2, "startingVersion=1", 400, IPV,
         "You can only query table changes since version 2."),
    Case("changes-ts-below-start-version", "changes", START2, f"startingTimestamp={iso_ms(_t(0))}", 400, IPV,
         "You can only query table changes since version 2."),
    Case("changes-maxfiles-zero", "changes", PART, "startingVersion=0&maxFiles=0", 400, IPV,
         "maxFiles must be positive."),
    # ------------------------------------------------------------------ /query with startingVersion
    Case("query-start-negative", "query", PART, {"startingVersion": -1}, 400, IPV,
         "startingVersion cannot be negative."),
    Case("query-start-after-end", "query", PART, {"startingVersion": 3, "endingVersion": 2}, 400, IPV,
         "startingVersion(3) must be smaller than or equal to endingVersion(2)."),
    Case("query-start-after-latest", "query", PART, {"startingVersion": 99}, 400, None, None),
    Case("query-end-after-latest", "query", PART, {"startingVersion": 1, "endingVersion": 99}, 400, IPV,
         "Provided end version(99) is invalid. End version cannot be greater than the latest version of the "
         "table(5)."),
    Case("query-start-history-not-shared", "query", NO_HIST, {"startingVersion": 0}, 400, IPV,
         "Reading table by version or timestamp is not supported because history sharing is not enabled on table: "
         "gated.gated.cdf_no_history"),
    Case("query-start-below-start-version", "query", START2, {"startingVersion": 1}, 400, IPV,
         "You can only query table data since version 2."),
    Case("query-version-and-start", "query", PART, {"version": 1, "startingVersion": 1}, 400, None,
         "Please only provide one of: version,timestamp,startingVersion"),
    Case("query-timestamp-and-start", "query", PART, {"timestamp": iso_ms(_t(1)), "startingVersion": 1}, 400, None,
         "Please only provide one of: version,timestamp,startingVersion"),
    Case("query-maxfiles-zero", "query", PART, {"maxFiles": 0}, 400, IPV, "maxFiles must be positive."),
    Case("query-maxfiles-negative", "query", PART, {"maxFiles": -3, "startingVersion": 0}, 400, IPV,
         "maxFiles must be positive."),
    Case("query-refresh-with-version", "query", PART, {"includeRefreshToken": True, "version": 1}, 400, IPV,
         "includeRefreshToken cannot be used when querying a specific version."),
    Case("query-refresh-with-start", "query", PART, {"includeRefreshToken": True, "startingVersion": 1}, 400, IPV,
         "includeRefreshToken cannot be used when querying a specific version."),
    Case("query-refresh-with-timestamp", "query", PART, {"includeRefreshToken": True, "timestamp": iso_ms(_t(2))},
         400, IPV, "includeRefreshToken cannot be used when querying a specific version."),
    Case("query-refreshtoken-with-version", "query", PART, {"refreshToken": "abc", "version": 1}, 400, IPV,
         "refreshToken cannot be used when querying a specific version."),
    Case("query-refreshtoken-with-start", "query", PART, {"refreshToken": "abc", "startingVersion": 0}, 400, IPV,
         "refreshToken cannot be used when querying a specific version."),
    Case("query-async-without-key", "query-async", PART, {}, 400, IPV,
         "idempotency_key is required for async query."),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_history_error(api, case):
    share, schema, name = case.table
    if case.kind == "changes":
        path = api.table_path(share, schema, name, "/changes") + "?" + case.request
        r = api.get(path, headers={"delta-sharing-capabilities": case.caps} if case.caps else None)
        what = f"GET {path}"
    else:
        caps = "responseformat=parquet;asyncquery=true" if case.kind == "query-async" else case.caps
        r = api.query(share, schema, name, case.request, caps=caps)
        what = f"POST .../{name}/query {case.request}"
    assert_error(r, case.status, case.code, case.message, what=what)


def test_error_table_is_large_enough():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


def test_cdf_from_enabling_version_is_allowed(api):
    """Counterpart of the refusals: gen-cdf-late from v2 and cdf-column-mapping-name from v1 work."""
    for (share, schema, name), q in ((LATE, "startingVersion=2"), (CM, "startingVersion=1")):
        r = api.get(api.table_path(share, schema, name, "/changes") + "?" + q,
                    headers={"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors,columnmapping"})
        assert r.status_code == 200, f"{name} {q}: {r.status_code} {r.text[:400]}"
        assert r.headers.get("Delta-Table-Version") == q.split("=")[1]


def test_start_version_gate_allows_from_start(api):
    share, schema, name = START2
    r = api.get(api.table_path(share, schema, name, "/changes") + "?startingVersion=2")
    assert r.status_code == 200, r.text[:400]
    r = api.query(share, schema, name, {"startingVersion": 2})
    assert r.status_code == 200, r.text[:400]
    assert r.headers.get("Delta-Table-Version") == "2"
