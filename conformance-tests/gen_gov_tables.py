"""Write the partitioned change-data-feed table of the governance tests (run as a subprocess:
`python gen_gov_tables.py ROOT`; prints {"path", "commit_mtimes_ms"} as JSON on the last stdout line).

Runs in its own interpreter because `deltalake` can abort the interpreter at exit (see
gen_tables.py); the script ends with os._exit(0).

gov-sales -- partitioned by `country` (string: US / FR / DE, and NULL for two rows) and `year`
(int: 2023 / 2024), `delta.enableChangeDataFeed=true`, per-file stats:
    v0 create ids 1-12 (country cycles US, FR, DE; year 2023 for odd ids, 2024 for even ids),
    v1 append ids 13-16 (US, FR, and two rows with country NULL),
    v2 UPDATE amount = amount + 100 WHERE country = 'FR' (cdc files),
    v3 DELETE WHERE id = 1 (a US row; cdc files),
    v4 append ids 20-25 (US, FR, DE),
    v5 DELETE WHERE country = 'DE' AND year = 2023 (whole files: remove actions only, no cdc),
    v6 MERGE: update id 2 (FR), insert id 30 (DE) and id 31 (US) (cdc files).

Commit-file mtimes: GOV_BASE_MS + v * GOV_STEP_MS (1 h + 1.001 s, not whole seconds).
"""
import json
import os
import sys

GOV_BASE_MS = 1748736000000  # 2025-06-01T00:00:00Z
GOV_STEP_MS = 3_601_001
CDF_ON = {"delta.enableChangeDataFeed": "true"}
PARTS = ["country", "year"]
COUNTRIES = ("US", "FR", "DE")


def _rows(ids, country_of, bump=0):
    import pyarrow as pa

    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "country": pa.array([country_of(i) for i in ids], pa.string()),
        "year": pa.array([2023 if i % 2 else 2024 for i in ids], pa.int32()),
        "amount": pa.array([i * 10 + bump for i in ids], pa.int64()),
        "label": pa.array([f"row-{i}" for i in ids], pa.string()),
    })


def make_gov_sales(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gov-sales")
    cyc = lambda i: COUNTRIES[(i - 1) % 3]  # noqa: E731
    write_deltalake(path, _rows(list(range(1, 13)), cyc), partition_by=PARTS, mode="error", configuration=CDF_ON)
    v1 = {13: "US", 14: "FR", 15: None, 16: None}
    write_deltalake(path, _rows(list(v1), v1.get), partition_by=PARTS, mode="append")
    DeltaTable(path).update(updates={"amount": "amount + 100"}, predicate="country = 'FR'")
    DeltaTable(path).delete("id = 1")
    write_deltalake(path, _rows(list(range(20, 26)), cyc), partition_by=PARTS, mode="append")
    DeltaTable(path).delete("country = 'DE' AND year = 2023")
    src = _rows([2, 30, 31], {2: "FR", 30: "DE", 31: "US"}.get, bump=1000)
    (DeltaTable(path).merge(src, predicate="t.id = s.id", source_alias="s", target_alias="t")
     .when_matched_update(updates={"amount": "s.amount"}).when_not_matched_insert_all().execute())
    assert DeltaTable(path).version() == 6, DeltaTable(path).version()
    return path, 7


def stamp(path, num_versions):
    times = {v: GOV_BASE_MS + v * GOV_STEP_MS for v in range(num_versions)}
    for v, ms in times.items():
        os.utime(os.path.join(path, "_delta_log", "%020d.json" % v), ns=(ms * 1_000_000, ms * 1_000_000))
    return times


def main(root):
    os.makedirs(root, exist_ok=True)
    path, n = make_gov_sales(root)
    times = stamp(path, n)
    sys.stdout.write(json.dumps({"path": path, "commit_mtimes_ms": times}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)
