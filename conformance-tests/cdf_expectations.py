"""The change-data-feed expectations table: what `load_table_changes_as_pandas` must give for every
CDF table x response format (PROTOCOL-NOTES §2.9, §6, §14).

* "parquet" = `load_table_changes_as_pandas(url, ..., use_delta_format=False)`: GET /changes without
  a capabilities header; the client reads `add`/`cdf`/`remove` files with pyarrow and adds
  `_change_type`, `_commit_version` (line `version`) and `_commit_timestamp` (line `timestamp`, ms).
* "delta"   = `use_delta_format=True`: GET /changes with `responseformat=delta;readerfeatures=
  deletionvectors,columnmapping` and `includeHistoricalMetadata=True`; the client replays the actions
  into a temp log (one file per version, mtime = timestamp // 1000 s) and runs delta-kernel-rs
  TableChanges, so `_commit_timestamp` comes back truncated to whole seconds (PROTOCOL-NOTES §14).

Each entry says OK / Err(status, code, msg) / ClientLimit(reason) as in expectations.py.

Oracle (per README of fixtures/golden): deltalake `load_cdf` where it is right; the manifest's
`reference_cdf` for cdf-merge-delete-partitioned (load_cdf does not decode `%25` in cdc paths) and
cdf-column-mapping-name (load_cdf refuses column mapping). `_commit_timestamp` is never taken from
the oracle: deltalake reports commitInfo.timestamp (or 1970 for dv-inline-cdf); the expected value is
the commit time the server must use (PROTOCOL-NOTES §6): the restored commit-file mtime, or the
in-commit timestamp for ict-cdf.

Decisions:
* Tables with deletion vectors or column mapping: parquet -> 400 UNSUPPORTED_OPERATION "Unsupported
  Delta Table Properties" (same rule as snapshot queries, PROTOCOL-NOTES §3.3).
* ict-cdf, delta format: client limit (PROTOCOL-NOTES §14). The client writes the actions without
  commitInfo, and delta-kernel-rs 0.22 then fails with "In-commit timestamp is enabled but not found
  in commit at version". The tests assert that the server answers 200 with ICT timestamps on every
  file line and that the client fails with exactly that message.
* gen-cdf-unpartitioned v5 is a zero-row MERGE (hand-written Spark-style commit): PROTOCOL-NOTES §6
  says such a commit emits no change rows. deltalake's load_cdf does not apply that rule (it reports
  the rewritten file as 5 deletes + 5 inserts), so the oracle drops version 5 (`oracle_drops`).
* Ranges that include a version before CDF was enabled are refused with 400 "change data was not
  recorded for version" (cdf-column-mapping-name from v0, gen-cdf-late before v2, any table without
  CDF); those are covered by test_history_errors.py and by the `Err` rows below.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from expectations import OK, UNSUPPORTED_PROPS, ClientLimit, Err

NOT_RECORDED = Err(400, "INVALID_PARAMETER_VALUE", "change data was not recorded for version")

ICT_LIMIT = ClientLimit(
    "PROTOCOL-NOTES §14: tables with in-commit timestamps cannot be read through the delta-format "
    "change-feed path of delta-sharing 1.4.2: it writes the actions into a temp log without "
    "commitInfo and delta-kernel-rs fails with 'In-commit timestamp is enabled but not found in "
    "commit at version'."
)
ICT_LIMIT_MESSAGE = "In-commit timestamp is enabled but not found in commit at version"


@dataclass
class CdfExp:
    source: str                 # golden / generated
    oracle: str                 # load_cdf / reference_cdf / none (refused everywhere)
    parquet: object
    delta: object
    version_ranges: List[Tuple[int, Optional[int]]] = field(default_factory=list)  # (start, end|None)
    timestamp_ranges: List[Tuple[int, int]] = field(default_factory=list)  # versions whose commit times are used
    times: str = "mtime"        # mtime / ict
    oracle_drops: Tuple[int, ...] = ()
    cdf_since: int = 0
    notes: str = ""

    def expect(self, fmt):
        return {"parquet": self.parquet, "delta": self.delta}[fmt]


CDF_TABLES = {
    # ------------------------------------------------------------------------------------ golden
    "cdf-partitioned": CdfExp(
        "golden", "load_cdf", OK, OK, [(0, None), (1, 2), (3, 3)], [(1, 3)],
        notes="date partition; v1/v2 UPDATE and v3 DELETE have cdc files (23 rows from v0)."),
    "cdf-non-partitioned": CdfExp(
        "golden", "load_cdf", OK, OK, [(0, None), (2, 4)], [(0, 2)],
        notes="cdc files at v1-v3; v4 plain append (add lines)."),
    "cdf-merge-delete-partitioned": CdfExp(
        "golden", "reference_cdf", OK, OK, [(0, None), (1, 2), (2, 2)], [(1, 2)],
        notes="v1 MERGE with cdc files; v2 DELETE of a partition = remove lines only; %25 in cdc paths."),
    "cdf-with-dvs": CdfExp(
        "golden", "load_cdf", UNSUPPORTED_PROPS, OK, [(0, None), (9, 12)], [(18, 25)],
        notes="DVs; OPTIMIZE commits (dataChange=false) produce nothing."),
    "dv-inline-cdf": CdfExp(
        "golden", "load_cdf", UNSUPPORTED_PROPS, OK, [(0, None), (3, 5)], [(1, 4)],
        notes="inline DVs, no commitInfo: commit times are the synthetic mtimes."),
    "cdf-column-mapping-name": CdfExp(
        "golden", "reference_cdf", UNSUPPORTED_PROPS, OK, [(1, None), (2, 3)], [(2, 4)], cdf_since=1,
        notes="CDF from v1 only; column mapping name with physical names in cdc files."),
    "ict-cdf": CdfExp(
        "golden", "load_cdf", OK, ICT_LIMIT, [(0, None), (2, 3)], [], times="ict",
        notes="in-commit timestamps (not monotonic: v1 edited), so no timestamp ranges."),
    # CDF not enabled: refused in both formats
    "checkpoint-v1-single": CdfExp(
        "golden", "none", NOT_RECORDED, NOT_RECORDED, [(0, None)], [],
        notes="no delta.enableChangeDataFeed"),
    # --------------------------------------------------------------------------------- generated
    "gen-cdf-partitioned": CdfExp(
        "generated", "load_cdf", OK, OK, [(0, None), (2, 3), (2, 4), (5, 5)], [(1, 3), (0, 5)],
        notes="see gen_cdf_tables.py"),
    "gen-cdf-unpartitioned": CdfExp(
        "generated", "load_cdf", OK, OK, [(0, None), (3, 6), (5, 5)], [(2, 6)], oracle_drops=(5,),
        notes="v5 zero-row MERGE -> no rows"),
    "gen-cdf-late": CdfExp(
        "generated", "load_cdf", OK, OK, [(2, None), (3, 4)], [(2, 4)], cdf_since=2,
        notes="CDF enabled at v2"),
}


def cdf_cases(kind="version_ranges"):
    """(table, fmt, start, end) for every entry x format x range."""
    out = []
    for t, e in CDF_TABLES.items():
        for fmt in ("parquet", "delta"):
            for start, end in getattr(e, kind):
                out.append((t, fmt, start, end))
    return out


def oracle_ranges():
    """(table, start, end) oracle reads needed by the version and timestamp cases."""
    need = set()
    for t, e in CDF_TABLES.items():
        if e.oracle == "none":
            continue
        for s, en in e.version_ranges:
            need.add((t, s, en))
        for s, en in e.timestamp_ranges:
            need.add((t, s, en))
    return sorted(need, key=lambda x: (x[0], x[1], -1 if x[2] is None else x[2]))
