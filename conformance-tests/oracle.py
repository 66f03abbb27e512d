"""Independent reads of the test tables with the `deltalake` package (the oracle).

The reads run in a child interpreter (`python oracle.py JOBS.json OUT.pickle`) because deltalake
can abort the interpreter at exit (fixtures/golden/README.md); the child ends with os._exit(0).
The parent (pytest) only unpickles canonical rows, so pytest never imports deltalake.

Read methods (chosen per table in expectations.py, following fixtures/golden/README.md):

* "to_pyarrow_table"  -- DeltaTable(path, version).to_pyarrow_table()
* "query_builder"     -- QueryBuilder().register("t", dt).execute("select * from t"); needed for
                          tables with reader features deltalake's pyarrow path refuses (deletion
                          vectors, v2 checkpoints) and for column mapping, where to_pyarrow_table()
                          silently returns all-null columns.
* "int96_dataset"     -- to_pyarrow_dataset(ParquetReadOptions(coerce_int96_timestamp_unit="us")),
                          the only correct deltalake read of edge-timestamps.

Besides rows, the child reports the table's metadata (id, partition columns, configuration,
schema JSON) and protocol as deltalake sees them, for the metadata/protocol tests.
"""
import json
import os
import pickle
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _read_child(job):
    import pyarrow as pa
    from deltalake import DeltaTable

    from frames import arrow_type_class, canonical_rows_from_pylist

    path, method, version = job["path"], job["method"], job.get("version")
    dt = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    if method == "to_pyarrow_table":
        tbl = dt.to_pyarrow_table()
    elif method == "query_builder":
        from deltalake import QueryBuilder

        tbl = pa.table(QueryBuilder().register("t", dt).execute("select * from t").read_all())
    elif method == "int96_dataset":
        from deltalake import ParquetReadOptions

        tbl = dt.to_pyarrow_dataset(
            parquet_read_options=ParquetReadOptions(coerce_int96_timestamp_unit="us")
        ).to_table()
    else:
        raise ValueError("unknown oracle method " + method)
    columns = list(tbl.schema.names)
    types = {f.name: arrow_type_class(f.type) for f in tbl.schema}
    rows = canonical_rows_from_pylist(columns, tbl.to_pylist())
    return {"columns": columns, "types": types, "rows": rows, "version": dt.version()}


def _meta_child(job):
    from deltalake import DeltaTable

    dt = DeltaTable(job["path"])
    md = dt.metadata()
    pr = dt.protocol()
    return {
        "version": dt.version(),
        "id": md.id,
        "name": md.name,
        "partition_columns": list(md.partition_columns),
        "configuration": dict(md.configuration),
        "schema": json.loads(dt.schema().to_json()),
        "protocol": {
            "minReaderVersion": pr.min_reader_version,
            "minWriterVersion": pr.min_writer_version,
            "readerFeatures": pr.reader_features,
            "writerFeatures": pr.writer_features,
        },
    }


def _cdf_child(job):
    """deltalake load_cdf over [starting_version, ending_version]; rows keep _change_type and
    _commit_version; _commit_timestamp is dropped (the tests take commit times from the known
    commit-file mtimes / in-commit timestamps, see cdf_expectations.py)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from frames import arrow_type_class, canonical_rows_from_pylist

    dt = DeltaTable(job["path"])
    reader = dt.load_cdf(starting_version=job["starting_version"], ending_version=job.get("ending_version"))
    tbl = pa.table(reader.read_all())
    tbl = tbl.drop_columns(["_commit_timestamp"])
    columns = list(tbl.schema.names)
    types = {f.name: arrow_type_class(f.type) for f in tbl.schema}
    rows = canonical_rows_from_pylist(columns, tbl.to_pylist())
    return {"columns": columns, "types": types, "rows": rows}


def child_main(jobs_path, out_path):
    sys.path.insert(0, HERE)
    with open(jobs_path) as fh:
        jobs = json.load(fh)
    out = {}
    for job in jobs:
        try:
            fn = {"meta": _meta_child, "read": _read_child, "cdf": _cdf_child}[job["kind"]]
            out[job["key"]] = {"ok": True, **fn(job)}
        except Exception as exc:  # recorded; the test that needs it fails with this text
            out[job["key"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    with open(out_path, "wb") as fh:
        pickle.dump(out, fh)


def run_jobs(jobs, workdir, python=sys.executable, timeout=600):
    """Run oracle jobs in a child interpreter; returns {key: result dict}."""
    jobs_path = os.path.join(workdir, "oracle-jobs.json")
    out_path = os.path.join(workdir, "oracle-out.pickle")
    with open(jobs_path, "w") as fh:
        json.dump(jobs, fh)
    proc = subprocess.run(
        [python, os.path.abspath(__file__), jobs_path, out_path],
        capture_output=True, text=True, timeout=timeout, cwd=HERE,
    )
    if proc.returncode != 0 or not os.path.exists(out_path):
        raise RuntimeError(
            f"oracle child failed (exit {proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    with open(out_path, "rb") as fh:
        return pickle.load(fh)


if __name__ == "__main__":
    try:
        child_main(sys.argv[1], sys.argv[2])
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)
