#!/usr/bin/env python3
"""Generate the sample Delta tables used by `lakeshare demo`.

Requirements: only the `deltalake` (tested with 1.6.6) and `pyarrow` packages, e.g.

    python3 -m venv .venv && .venv/bin/pip install deltalake==1.6.6 pyarrow
    .venv/bin/python examples/make_samples.py

What it writes (under examples/tables/, next to this script):

* trips/       partitioned by `city`; v0 create, v1 append, v2 delete, v3 append.
* orders_cdf/  change data feed enabled; v0 create, v1 append, v2 update, v3 delete.

`dv_events/` (deletion vectors) is NOT generated: deltalake cannot write deletion vectors.
It is a verbatim copy of an Apache-2.0 golden table (see examples/README.md). Pass
`--dv-source DIR` to (re)copy it from a folder holding that table, e.g.
`--dv-source /work/shared/fixtures/golden/dv-partitioned-checkpoint`.

The row data is deterministic (fixed seed, fixed values). Data file names (UUIDs), commit
timestamps and `_delta_log/*.json` modification times are not: they come from the writer and
the clock. The script pauses one second between commits so the commit times are distinct,
which makes `startingTimestamp` / `timestamp` demos meaningful.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake

HERE = Path(__file__).resolve().parent
TABLES = HERE / "tables"

SEED = 20240101
CITIES = ["amsterdam", "berlin", "lisbon", "oslo"]
PAYMENTS = ["card", "cash", "wallet"]
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
PAUSE_SECONDS = 1.0
# Rewrites (delete/update) would otherwise default to zstd; keep every file snappy.
SNAPPY = WriterProperties(compression="SNAPPY")

# Timestamps carry a time zone (UTC) on purpose: a zone-less Arrow timestamp would become
# Delta `timestamp_ntz`, which needs reader feature `timestampNtz` and so could not be served
# in the parquet response format.
TRIPS_SCHEMA = pa.schema(
    [
        pa.field("trip_id", pa.int64(), nullable=False),
        pa.field("city", pa.string(), nullable=False),
        pa.field("pickup_date", pa.date32()),
        pa.field("pickup_time", pa.timestamp("us", tz="UTC")),
        pa.field("distance_km", pa.float64()),
        pa.field("fare_eur", pa.float64()),
        pa.field("passengers", pa.int32()),
        pa.field("payment", pa.string()),
    ]
)

ORDERS_SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("customer", pa.string()),
        pa.field("item", pa.string()),
        pa.field("quantity", pa.int32()),
        pa.field("amount", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("order_date", pa.date32()),
    ]
)


def trip_rows(rng: random.Random, first_id: int, count: int) -> pa.Table:
    rows = {name: [] for name in TRIPS_SCHEMA.names}
    for i in range(count):
        trip_id = first_id + i
        minutes = trip_id * 37 + rng.randrange(0, 30)
        pickup = EPOCH + dt.timedelta(minutes=minutes)
        distance = round(rng.uniform(0.3, 25.0), 2)
        rows["trip_id"].append(trip_id)
        rows["city"].append(CITIES[rng.randrange(len(CITIES))])
        rows["pickup_date"].append(pickup.date())
        rows["pickup_time"].append(pickup)
        rows["distance_km"].append(distance)
        rows["fare_eur"].append(round(3.5 + distance * 1.8 + rng.uniform(0, 4), 2))
        # A few nulls so that nullCount stats are non-trivial.
        rows["passengers"].append(None if trip_id % 29 == 0 else rng.randint(1, 4))
        rows["payment"].append(PAYMENTS[rng.randrange(len(PAYMENTS))])
    return pa.table(rows, schema=TRIPS_SCHEMA)


CUSTOMERS = ["ada", "bob", "chen", "dana", "eve", "farid", "gus", "hana"]
ITEMS = ["lamp", "chair", "desk", "mug", "rug", "shelf"]


def order_rows(rng: random.Random, first_id: int, count: int, day: dt.date) -> pa.Table:
    rows = {name: [] for name in ORDERS_SCHEMA.names}
    for i in range(count):
        qty = rng.randint(1, 5)
        rows["order_id"].append(first_id + i)
        rows["customer"].append(CUSTOMERS[rng.randrange(len(CUSTOMERS))])
        rows["item"].append(ITEMS[rng.randrange(len(ITEMS))])
        rows["quantity"].append(qty)
        rows["amount"].append(round(qty * rng.uniform(4.0, 120.0), 2))
        rows["status"].append("placed")
        rows["order_date"].append(day)
    return pa.table(rows, schema=ORDERS_SCHEMA)


def stamp_commit_mtimes(table: Path) -> None:
    """Set each `_delta_log/NNNN.json` mtime to its `commitInfo.timestamp`.

    Readers that have no in-commit timestamps take a commit's time from that mtime. Git does
    not keep mtimes, so whoever copies these tables (e.g. `lakeshare demo`) may repeat this.
    """
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            ts = action.get("commitInfo", {}).get("timestamp")
            if isinstance(ts, int):
                os.utime(commit, ns=(ts * 1_000_000, ts * 1_000_000))
                break


def pause() -> None:
    time.sleep(PAUSE_SECONDS)


def make_trips(path: Path) -> None:
    rng = random.Random(SEED)
    # v0: create, 240 rows over 4 city partitions.
    write_deltalake(
        path,
        trip_rows(rng, 1, 240),
        partition_by=["city"],
        mode="error",
        name="trips",
        description="Synthetic taxi trips, partitioned by city",
    )
    pause()
    # v1: append 120 rows.
    write_deltalake(path, trip_rows(rng, 241, 120), mode="append", writer_properties=SNAPPY)
    pause()
    # v2: delete short trips (rewrites the affected files: remove + add actions).
    DeltaTable(path).delete("distance_km < 2.0", writer_properties=SNAPPY)
    pause()
    # v3: append 80 rows.
    write_deltalake(path, trip_rows(rng, 361, 80), mode="append")


def make_orders_cdf(path: Path) -> None:
    rng = random.Random(SEED + 1)
    # v0: create with the change data feed on.
    write_deltalake(
        path,
        order_rows(rng, 1, 30, dt.date(2024, 3, 1)),
        mode="error",
        name="orders_cdf",
        description="Synthetic web-shop orders with change data feed",
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    pause()
    # v1: append (insert-only commit: no _change_data files, readers use the add actions).
    write_deltalake(path, order_rows(rng, 31, 20, dt.date(2024, 3, 2)), mode="append")
    pause()
    # v2: update (writes _change_data files with update_preimage/update_postimage rows).
    DeltaTable(path).update(
        updates={"status": "'shipped'"},
        predicate="order_id <= 15",
        writer_properties=SNAPPY,
    )
    pause()
    # v3: delete (writes _change_data files with delete rows).
    DeltaTable(path).delete("customer = 'eve'", writer_properties=SNAPPY)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=TABLES, help="output folder (default: examples/tables)"
    )
    parser.add_argument(
        "--dv-source",
        type=Path,
        default=None,
        help="copy this deletion-vector table to <out>/dv_events (optional)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    for name, builder in (("trips", make_trips), ("orders_cdf", make_orders_cdf)):
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        builder(target)
        stamp_commit_mtimes(target)
        dt_ = DeltaTable(target)
        print(f"{name}: version {dt_.version()}, {dt_.to_pyarrow_table().num_rows} rows")

    if args.dv_source is not None:
        target = out / "dv_events"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(args.dv_source, target)
        stamp_commit_mtimes(target)
        print(f"dv_events: copied from {args.dv_source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
