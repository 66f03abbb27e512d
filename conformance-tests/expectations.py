"""The expectations table: what a client must get for every test table x response format.

Every folder under fixtures/golden/ has an entry (test_expectations.py enforces it), plus the two
tables the suite writes itself (gen_tables.py). For each table and each format

* "parquet" = `load_as_pandas(url, use_delta_format=False)`: POST /query without a capabilities
  header -> the server must answer in parquet format;
* "delta"   = `load_as_pandas(url, use_delta_format=True)`: POST /query with
  `responseformat=delta;readerfeatures=deletionvectors,columnmapping,timestampntz`;

the expectation is one of

* OK                     -- the read succeeds and equals the deltalake oracle (oracle.py);
* Err(status, code, msg) -- the server must refuse with that HTTP status, `errorCode` and a
                            message containing `msg` (None = any message);
* ClientLimit(reason)    -- a documented limit of the stock Python client (PROTOCOL-NOTES §14) that
                            no server can fix; the tests then assert the server side is right (200,
                            right files) and that the client shows exactly the documented symptom.

"auto" (use_delta_format=None, the client's own format resolution through /metadata with
`responseformat=delta,parquet`) is derived: ClientLimit where both formats are limited, else OK.

Resolved ambiguity -- tables that need the reader feature `timestampNtz` (timestamp-ntz,
all-primitive-types) in *parquet* format: PROTOCOL-NOTES §3.3 says the reference server silently
downgrades the protocol and serves parquet, which the Python parquet converter cannot read
("Could not parse datatype: timestamp_ntz"), and that "a stricter server should require delta
format (or refuse)"; the contract asks for §3.3 behaviour with refusal for unreadable tables. The
suite expects the refusal: 400 UNSUPPORTED_OPERATION (message not pinned).

`v2Checkpoint` (checkpoint-v2-databricks) is transparent to sharing (the server replays the log),
so parquet is expected to work there.
"""
import os
from dataclasses import dataclass, field
from typing import Callable, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "fixtures", "golden")


@dataclass(frozen=True)
class Ok:
    kind: str = "ok"


@dataclass(frozen=True)
class Err:
    status: int
    code: str
    message: Optional[str]
    kind: str = "error"


@dataclass(frozen=True)
class ClientLimit:
    reason: str
    kind: str = "client_limit"


OK = Ok()
UNSUPPORTED_PROPS = Err(400, "UNSUPPORTED_OPERATION", "Unsupported Delta Table Properties")
NEEDS_READER_FEATURE = Err(400, "UNSUPPORTED_OPERATION", None)
EDGE_TS_LIMIT = ClientLimit(
    "PROTOCOL-NOTES §14: timestamps near year 9999 overflow in both client paths (INT96 values "
    "are read as timestamp[ns]; 9999-12-31 does not fit and wraps to 1816). The server must still "
    "answer 200 with both files; the client then silently returns BIG_DATE as 1816-03-28/29 "
    "(observed on the parquet and the delta path of delta-sharing 1.4.2)."
)


@dataclass
class Hint:
    """A JSON predicate hint (PROTOCOL-NOTES §5.1) with the same filter as a Python predicate."""

    name: str
    tree: dict
    predicate: Callable[[dict], bool]  # on a row dict of canonical values (frames.canon)
    prunes: bool  # partitions or stats allow the server to drop at least one file


@dataclass
class TableExp:
    source: str  # "golden" or "generated"
    oracle: str  # oracle.py read method, or "reference_rows" (MANIFEST.json)
    parquet: object
    delta: object
    history_versions: List[int] = field(default_factory=list)  # time travel compared with oracle
    timestamp_versions: List[int] = field(default_factory=list)  # time travel by commit time
    no_history_reason: Optional[str] = None
    hints: List[Hint] = field(default_factory=list)
    notes: str = ""

    @property
    def auto(self):
        if isinstance(self.parquet, ClientLimit) and isinstance(self.delta, ClientLimit):
            return self.parquet
        return OK

    def expect(self, fmt):
        return {"parquet": self.parquet, "delta": self.delta, "auto": self.auto}[fmt]

    @property
    def ok_format(self):
        """A response format the client reads correctly (for hint/limit tests), or None."""
        if self.parquet == OK:
            return "parquet"
        if self.delta == OK:
            return "delta"
        return None


def col(name, vt):
    return {"op": "column", "name": name, "valueType": vt}


def lit(value, vt):
    return {"op": "literal", "value": str(value), "valueType": vt}


def op(name, *children):
    return {"op": name, "children": list(children)}


def _date(s):
    return "date:" + s


TABLES = {
    # ---------------------------------------------------------------- golden: plain reader-1 tables
    "plain-unpartitioned": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0], timestamp_versions=[0],
        hints=[Hint("value>=3 (stats)", op("greaterThanOrEqual", col("value", "int"), lit(3, "int")),
                    lambda r: r["value"] is not None and r["value"] >= 3, prunes=False)],
        notes="v1 DELETE removes a file; v0 has 5 rows, latest 4.",
    ),
    "partition-values-all-types": TableExp(
        "golden", "to_pyarrow_table", OK, OK,
        no_history_reason="single version (0)",
        hints=[
            Hint("as_int=0 (partition)", op("equal", col("as_int", "int"), lit(0, "int")),
                 lambda r: r["as_int"] == 0, prunes=True),
            Hint("isNull(as_long) (null partition)", op("isNull", col("as_long", "long")),
                 lambda r: r["as_long"] is None, prunes=True),
            Hint("as_string_lit_null='null' (literal text, not null)",
                 op("equal", col("as_string_lit_null", "string"), lit("null", "string")),
                 lambda r: r["as_string_lit_null"] == "null", prunes=False),
        ],
        notes="Timestamp partition value is read as UTC by every reader.",
    ),
    "edge-timestamps": TableExp(
        "golden", "reference_rows", EDGE_TS_LIMIT, EDGE_TS_LIMIT,
        no_history_reason="single version (0)",
        hints=[Hint("BIG_DATE > 9999-12-30T12:00Z (stats)",
                    op("greaterThan", col("BIG_DATE", "timestamp"), lit("9999-12-30T12:00:00Z", "timestamp")),
                    lambda r: r["SOME_VALUE"] == 1, prunes=True)],
        notes="deltalake itself only reads it right with INT96 coerced to us; oracle = MANIFEST reference_rows.",
    ),
    "checkpoint-v1-single": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 10, 12], timestamp_versions=[5, 12],
        hints=[Hint("id<5 (stats)", op("lessThan", col("id", "long"), lit(5, "long")),
                    lambda r: r["id"] < 5, prunes=True)],
    ),
    "checkpoint-v2-databricks": TableExp(
        "golden", "query_builder", OK, OK, history_versions=[8], timestamp_versions=[8],
        notes="Reader feature v2Checkpoint only: transparent to sharing, parquet allowed.",
    ),
    "cdf-partitioned": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 2], timestamp_versions=[1],
        hints=[Hint("birthday=2023-12-23 (date partition)",
                    op("equal", col("birthday", "date"), lit("2023-12-23", "date")),
                    lambda r: r["birthday"] == _date("2023-12-23"), prunes=True)],
    ),
    "cdf-non-partitioned": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 3], timestamp_versions=[2],
    ),
    "cdf-merge-delete-partitioned": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 1], timestamp_versions=[1],
        notes="Writer-only features (protocol 1/7): parquet allowed. Literal % in file names.",
    ),
    "ict-cdf": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 2], timestamp_versions=[],
        notes="No timestamp time travel: in-commit timestamps are not monotonic (v1 edited), so "
              "which version a timestamp selects is not well defined.",
    ),
    "vacuumed": TableExp(
        "golden", "to_pyarrow_table", OK, OK,
        no_history_reason="files of versions < 5 were vacuumed; only the latest snapshot is readable",
    ),
    "schema-evolution": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0], timestamp_versions=[0],
        notes="v0 has 1 column, v1 adds `part`; old files lack it (null).",
    ),
    "nested-maps": TableExp("golden", "to_pyarrow_table", OK, OK, no_history_reason="single version (0)"),
    "escaped-chars-partition": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 1], timestamp_versions=[1],
        hints=[Hint("_2='bar+%21' (escaped partition)", op("equal", col("_2", "string"), lit("bar+%21", "string")),
                    lambda r: r["_2"] == "bar+%21", prunes=True)],
    ),
    "stats-optional": TableExp(
        "golden", "to_pyarrow_table", OK, OK, history_versions=[0, 1], timestamp_versions=[1],
        hints=[Hint("integer>1000000 (one file has no stats)",
                    op("greaterThan", col("integer", "int"), lit(1000000, "int")),
                    lambda r: r["integer"] is not None and r["integer"] > 1000000, prunes=False)],
        notes="A file without stats must never be pruned.",
    ),
    "decimal-precision": TableExp("golden", "to_pyarrow_table", OK, OK, no_history_reason="single version (0)"),
    # ------------------------------------------------- golden: reader-feature tables (delta format)
    "checkpoint-v1-multipart": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[4], timestamp_versions=[4],
        notes="delta.enableDeletionVectors=true (no DV used) -> property check refuses parquet.",
    ),
    "checkpoint-v2-sidecars-parquet": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[4], timestamp_versions=[4],
    ),
    "dv-partitioned-checkpoint": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[0, 14], timestamp_versions=[14],
        hints=[Hint("part=0 (partition, DV table)", op("equal", col("part", "int"), lit(0, "int")),
                    lambda r: r["part"] == 0, prunes=True)],
    ),
    "dv-inline-cdf": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[0, 5], timestamp_versions=[5],
        notes="Inline (i) deletion vectors; commit times are synthetic mtimes.",
    ),
    "dv-column-mapping": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[0, 14], timestamp_versions=[14],
    ),
    "cdf-with-dvs": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[0, 24], timestamp_versions=[24],
    ),
    "column-mapping-name": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, no_history_reason="single version (0)",
        notes="deltalake's to_pyarrow_table returns all-null columns here; QueryBuilder is right.",
    ),
    "column-mapping-id": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, no_history_reason="single version (0)",
    ),
    "cdf-column-mapping-name": TableExp(
        "golden", "query_builder", UNSUPPORTED_PROPS, OK, history_versions=[0, 3], timestamp_versions=[3],
    ),
    "timestamp-ntz": TableExp(
        "golden", "to_pyarrow_table", NEEDS_READER_FEATURE, OK, history_versions=[0], timestamp_versions=[0],
        notes="Reader feature timestampNtz: parquet clients cannot read timestamp_ntz -> refused.",
    ),
    "all-primitive-types": TableExp(
        "golden", "to_pyarrow_table", NEEDS_READER_FEATURE, OK, no_history_reason="single version (0)",
        notes="Has a timestamp_ntz column (reader feature timestampNtz).",
    ),
    # ---------------------------------------------------------------- generated by gen_tables.py
    "gen-partitioned": TableExp(
        "generated", "to_pyarrow_table", OK, OK, history_versions=[0, 2, 3], timestamp_versions=[0, 3],
        hints=[
            Hint("region='us' (partition)", op("equal", col("region", "string"), lit("us", "string")),
                 lambda r: r["region"] == "us", prunes=True),
            Hint("id>12 (stats)", op("greaterThan", col("id", "long"), lit(12, "long")),
                 lambda r: r["id"] > 12, prunes=True),
            Hint("region='eu' and id<5", op("and", op("equal", col("region", "string"), lit("eu", "string")),
                                             op("lessThan", col("id", "long"), lit(5, "long"))),
                 lambda r: r["region"] == "eu" and r["id"] < 5, prunes=True),
            Hint("region='ap' or region='sa'", op("or", op("equal", col("region", "string"), lit("ap", "string")),
                                                   op("equal", col("region", "string"), lit("sa", "string"))),
                 lambda r: r["region"] in ("ap", "sa"), prunes=True),
            Hint("not(region='eu')", op("not", op("equal", col("region", "string"), lit("eu", "string"))),
                 lambda r: r["region"] != "eu", prunes=True),
            Hint("day<=2024-01-04 (date stats)", op("lessThanOrEqual", col("day", "date"), lit("2024-01-04", "date")),
                 lambda r: r["day"] <= _date("2024-01-04"), prunes=True),
        ],
        notes="v0 create ids 1-6, v1 +7-9, v2 +10-12, v3 DELETE id=3, v4 +13-15 (region sa).",
    ),
    "gen-checkpointed": TableExp(
        "generated", "to_pyarrow_table", OK, OK, history_versions=[2, 4, 5], timestamp_versions=[4, 6],
        hints=[
            Hint("id>=110 (stats)", op("greaterThanOrEqual", col("id", "long"), lit(110, "long")),
                 lambda r: r["id"] >= 110, prunes=True),
            Hint("isNull(name) (nullCount stats)", op("isNull", col("name", "string")),
                 lambda r: r["name"] is None, prunes=False),
        ],
        notes="v0..v4 appends of 10 rows, checkpoint at v4, v5 overwrite (5 rows), v6 append (10 rows).",
    ),
    # ------------------------------------------- generated change-data-feed tables (gen_cdf_tables.py)
    "gen-cdf-partitioned": TableExp(
        "generated", "to_pyarrow_table", OK, OK, history_versions=[2, 4], timestamp_versions=[3],
        notes="CDF on; UPDATE/DELETE/MERGE with cdc files, v5 whole-partition DELETE (removes only).",
    ),
    "gen-cdf-unpartitioned": TableExp(
        "generated", "to_pyarrow_table", OK, OK, history_versions=[4, 5], timestamp_versions=[5],
        notes="CDF on; v5 is a hand-written zero-row MERGE that rewrites one file.",
    ),
    "gen-cdf-late": TableExp(
        "generated", "to_pyarrow_table", OK, OK, history_versions=[1, 3], timestamp_versions=[2],
        notes="CDF enabled by SET TBLPROPERTIES at v2.",
    ),
}

FORMATS = ("parquet", "delta")
ALL_FORMATS = ("parquet", "delta", "auto")


def golden_folders():
    return sorted(
        d for d in os.listdir(GOLDEN_DIR) if os.path.isdir(os.path.join(GOLDEN_DIR, d))
    )


def share_table_name(folder):
    """Table name used in the generated config (underscores; hyphens are legal but awkward)."""
    return folder.replace("-", "_")


def schema_of(folder):
    return "golden" if TABLES[folder].source == "golden" else "generated"
