"""Normalisation and comparison of table contents (no deltalake import here).

Both sides of a comparison are reduced to *canonical rows*: tuples of plain, hashable, comparable
Python values, one per column, in a fixed column order. Then the rows are sorted (order-insensitive
comparison: sorted by all columns) and compared as lists.

Normalisations, and why they are legitimate:

* timestamps -> ISO text in UTC without zone, microsecond precision. The parquet path of the
  Python client returns naive `datetime64[ns]` (pyarrow reads Spark's INT96/INT64 values as UTC
  instants without a zone, and partition values through `pd.Timestamp(text)`), the delta path and
  `deltalake` return `timestamp[us, tz=UTC]`. Same instant, different representation.
  timestamp_ntz values are naive on every path and are kept as-is.
* integers: numpy/pandas integer scalars -> int; a float that is integral -> int, because the
  client turns integer partition columns that contain a null into float64 (np.nan) -- pandas cannot
  hold a null in an int64 column.
* floats -> 7 significant digits (float32 columns are widened to float64 differently by the
  parquet converter `np.float32(text)` and by pyarrow; the textual value is the same).
* decimals -> normalised `Decimal` text (a partition converter builds `Decimal("1.0")`, pyarrow
  builds `Decimal("1.000")` with the column scale).
* None / NaN / NaT -> None (all are "null").
* dates -> ISO text; bytes -> hex text; lists/arrays -> tuples; structs -> sorted (key, value)
  tuples; maps (lists of 2-tuples from pyarrow) -> tuples of (key, value).
"""
import datetime as _dt
import math
from decimal import Decimal

import numpy as np
import pandas as pd

NULL = None


def canon(v):
    """Canonical, hashable form of one cell value."""
    if v is None:
        return NULL
    if v is pd.NaT:
        return NULL
    if isinstance(v, (pd.Timestamp, _dt.datetime)):
        if isinstance(v, pd.Timestamp) and pd.isna(v):
            return NULL
        if v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        if isinstance(v, pd.Timestamp):
            return "ts:" + v.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return "ts:" + v.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(v, np.datetime64):
        if np.isnat(v):
            return NULL
        return canon(pd.Timestamp(v))
    if isinstance(v, _dt.date):
        return "date:" + v.isoformat()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return NULL
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f.is_integer() and abs(f) < 2**53:
            return int(f)
        return float("%.7g" % f)
    if isinstance(v, Decimal):
        if v.is_nan():
            return NULL
        n = v.normalize()
        return "dec:" + format(n, "f")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bin:" + bytes(v).hex()
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return ("struct",) + tuple(sorted((str(k), canon(x)) for k, x in v.items()))
    if isinstance(v, np.ndarray):
        return tuple(canon(x) for x in v.tolist())
    if isinstance(v, (list, tuple)):
        return tuple(canon(x) for x in v)
    try:
        if pd.isna(v):
            return NULL
    except (TypeError, ValueError):
        pass
    return repr(v)


def _sort_key(row):
    return repr(row)


def canonical_rows_from_pandas(df):
    cols = list(df.columns)
    rows = []
    for rec in df.itertuples(index=False, name=None):
        rows.append(tuple(canon(x) for x in rec))
    rows.sort(key=_sort_key)
    return cols, rows


def canonical_rows_from_pylist(columns, pylist):
    rows = [tuple(canon(r.get(c)) for c in columns) for r in pylist]
    rows.sort(key=_sort_key)
    return rows


# ---- coarse type classes ------------------------------------------------------------------------


def arrow_type_class(t):
    """Coarse class of a pyarrow DataType (used for the oracle side)."""
    import pyarrow as pa

    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return "str"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or str(t) == "binary_view" or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_map(t):
        return "map"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or str(t).startswith("list_view") or pa.types.is_fixed_size_list(t):
        return "list"
    if pa.types.is_struct(t):
        return "struct"
    return str(t)


def pandas_type_class(series):
    """Coarse class of a pandas column (client side); object columns are classified by value."""
    kind = series.dtype.kind
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind == "b":
        return "bool"
    if kind == "M":
        return "datetime"
    for v in series:
        if v is None or (not isinstance(v, (list, tuple, dict, np.ndarray)) and pd.isna(v)):
            continue
        if isinstance(v, (bool, np.bool_)):
            return "bool"
        if isinstance(v, (int, np.integer)):
            return "int"
        if isinstance(v, (float, np.floating)):
            return "float"
        if isinstance(v, (pd.Timestamp, _dt.datetime)):
            return "datetime"
        if isinstance(v, _dt.date):
            return "date"
        if isinstance(v, Decimal):
            return "decimal"
        if isinstance(v, str):
            return "str"
        if isinstance(v, (bytes, bytearray)):
            return "bytes"
        if isinstance(v, dict):
            return "struct"
        if isinstance(v, (list, np.ndarray)):
            items = list(v)
            if items and all(isinstance(x, tuple) and len(x) == 2 for x in items):
                return "map"
            return "list"
        return type(v).__name__
    return "null"


def types_compatible(client_cls, oracle_cls, column_has_null):
    if client_cls == oracle_cls or client_cls == "null":
        return True
    # a null forces pandas to widen ints to float64 (np.nan) in partition-value converters
    if {client_cls, oracle_cls} == {"int", "float"} and column_has_null:
        return True
    # an empty map/list has no element to tell maps from lists by value
    if {client_cls, oracle_cls} == {"list", "map"}:
        return True
    return False


# ---- comparison -------------------------------------------------------------------------------


class Snapshot:
    """Canonical content of a table read: columns, coarse types, sorted rows."""

    def __init__(self, columns, types, rows, source):
        self.columns = list(columns)
        self.types = dict(types)
        self.rows = list(rows)
        self.source = source

    @classmethod
    def from_pandas(cls, df, source="client"):
        cols, rows = canonical_rows_from_pandas(df)
        types = {c: pandas_type_class(df[c]) for c in cols}
        return cls(cols, types, rows, source)

    def project(self, columns):
        idx = [self.columns.index(c) for c in columns]
        rows = sorted((tuple(r[i] for i in idx) for r in self.rows), key=_sort_key)
        return Snapshot(columns, {c: self.types[c] for c in columns}, rows, self.source)

    def filter(self, pred):
        """Keep rows for which pred(dict(column -> canonical value)) is true."""
        rows = [r for r in self.rows if pred(dict(zip(self.columns, r)))]
        return Snapshot(self.columns, self.types, rows, self.source)


def _fmt_row(cols, row):
    return "{" + ", ".join(f"{c}={v!r}" for c, v in zip(cols, row)) + "}"


def assert_same_table(client, oracle, what, check_types=True):
    """Assert two Snapshots hold the same columns (same order), types and multiset of rows."""
    assert [c.lower() for c in client.columns] == [c.lower() for c in oracle.columns], (
        f"{what}: columns differ\n  client: {client.columns}\n  oracle: {oracle.columns}"
    )
    if client.columns != oracle.columns:
        client = Snapshot(oracle.columns, {o: client.types[c] for c, o in zip(client.columns, oracle.columns)},
                          client.rows, client.source)
    if check_types:
        bad = []
        for i, c in enumerate(oracle.columns):
            has_null = any(r[i] is None for r in oracle.rows) or any(r[i] is None for r in client.rows)
            if not types_compatible(client.types[c], oracle.types[c], has_null):
                bad.append(f"{c}: client {client.types[c]} vs oracle {oracle.types[c]}")
        assert not bad, f"{what}: column types differ: " + "; ".join(bad)
    if client.rows == oracle.rows:
        return
    from collections import Counter

    cc, oc = Counter(client.rows), Counter(oracle.rows)
    extra = list((cc - oc).elements())
    missing = list((oc - cc).elements())
    msg = [f"{what}: rows differ (client {len(client.rows)} rows, oracle {len(oracle.rows)} rows)"]
    for r in missing[:5]:
        msg.append("  missing in client: " + _fmt_row(oracle.columns, r))
    for r in extra[:5]:
        msg.append("  unexpected in client: " + _fmt_row(oracle.columns, r))
    raise AssertionError("\n".join(msg))
