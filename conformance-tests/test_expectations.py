"""The expectations table covers every golden folder, and its entries are well-formed."""
import json
import os

import expectations as E

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_golden_folder_has_an_expectation():
    folders = set(E.golden_folders())
    golden_entries = {n for n, e in E.TABLES.items() if e.source == "golden"}
    missing = sorted(folders - golden_entries)
    stale = sorted(golden_entries - folders)
    assert not missing, f"golden tables without an entry in expectations.TABLES (would be silently untested): {missing}"
    assert not stale, f"expectations.TABLES names golden tables that are not in fixtures/golden: {stale}"


def test_manifest_lists_the_same_tables():
    with open(os.path.join(E.GOLDEN_DIR, "MANIFEST.json")) as fh:
        names = {t["name"] for t in json.load(fh)["tables"]}
    assert names == set(E.golden_folders()), "MANIFEST.json and the golden folders disagree"


def test_every_entry_is_well_formed():
    for name, exp in E.TABLES.items():
        for fmt in E.FORMATS:
            x = exp.expect(fmt)
            assert isinstance(x, (E.Ok, E.Err, E.ClientLimit)), f"{name}/{fmt}: bad expectation {x!r}"
            if isinstance(x, E.ClientLimit):
                assert x.reason, f"{name}/{fmt}: a client limit needs a documented reason"
        assert exp.oracle in ("to_pyarrow_table", "query_builder", "int96_dataset", "reference_rows"), name
        # a table that the oracle cannot read must not claim OK (nothing to compare with)
        if exp.oracle == "reference_rows":
            assert exp.parquet != E.OK and exp.delta != E.OK, (
                f"{name}: reference_rows oracle only supports client-limit checks")
        # single-version tables say why they have no history checks
        if not exp.history_versions and not exp.timestamp_versions:
            assert exp.no_history_reason or exp.source == "generated", (
                f"{name}: no history versions and no reason given")


def test_golden_tables_deltalake_cannot_read_are_still_listed():
    """Tables that deltalake's pyarrow path refuses or misreads have an explicit oracle method."""
    with open(os.path.join(E.GOLDEN_DIR, "MANIFEST.json")) as fh:
        manifest = {t["name"]: t for t in json.load(fh)["tables"]}
    for name, entry in manifest.items():
        read = entry["deltalake_read"]
        exp = E.TABLES[name]
        if not read.get("to_pyarrow_table_readable", True) or read.get("known_issues"):
            assert exp.oracle != "to_pyarrow_table" or name in ("partition-values-all-types", "vacuumed",
                                                                 "ict-cdf", "cdf-merge-delete-partitioned"), (
                f"{name}: deltalake to_pyarrow_table is not reliable here ({read.get('known_issues')}); "
                f"expectations must name another oracle")
