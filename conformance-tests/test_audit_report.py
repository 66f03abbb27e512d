"""`lakeshare audit report`: a per-partner access report whose figures match the events the test
generated (and the audit export)."""
import json
import re

import requests

import server as srv


def test_report_figures_match_the_generated_activity(lakeshare_bin, tables, tmp_path):
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": "t", "location": tables["gen-partitioned"]["path"], "historyShared": True}]}]}]
    cfg = srv.write_config(str(tmp_path / "c.yaml"), shares)
    state = str(tmp_path / "state.db")
    srv.create_recipient(lakeshare_bin, state, "acme", ["s"], str(tmp_path / "a.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    s = srv.start_server(lakeshare_bin, cfg, state, ["--port", "0"])
    try:
        h = {"Authorization": "Bearer " + json.loads((tmp_path / "a.share").read_text())["bearerToken"]}
        q = s.url + "/shares/s/schemas/d/tables/t/query"
        assert requests.post(q, json={}, headers=h, timeout=30).status_code == 200
        assert requests.post(q, json={"version": 0}, headers=h, timeout=30).status_code == 200
        assert requests.post(q, json={"version": 1}, headers=h, timeout=30).status_code == 200
        assert requests.get(s.url + "/shares/nope", headers=h, timeout=30).status_code == 404
        assert requests.get(s.url + "/shares", headers=h, timeout=30).status_code == 200
        latest = int(requests.get(s.url + "/shares/s/schemas/d/tables/t/version", headers=h,
                                  timeout=30).headers["delta-table-version"])
    finally:
        s.stop()
    md = srv.lakeshare(lakeshare_bin, "audit", "report", "--recipient", "acme", "--state", state).stdout
    assert "Requests: **6**" in md, md
    versions = ", ".join(str(v) for v in sorted({0, 1, latest}))
    m = re.search(rf"\| s\.d\.t \| 3 \| {re.escape(versions)} \| (\d+) \| (\d+) \|", md)
    assert m, md
    exported_all = [json.loads(l) for l in srv.lakeshare(lakeshare_bin, "audit", "export", "--state", state,
                                                         "--recipient", "acme").stdout.splitlines()]
    assert int(m.group(1)) == sum(e.get("files", 0) for e in exported_all if e["kind"] == "query") > 0
    assert int(m.group(2)) == sum(e.get("bytes", 0) for e in exported_all if e["kind"] == "query") > 0
    assert "| 404 | 1 |" in md and "- 127.0.0.1" in md
    html = srv.lakeshare(lakeshare_bin, "audit", "report", "--recipient", "acme", "--state", state,
                         "--format", "html").stdout
    bars = [int(n) for n in re.findall(r'data-requests="(\d+)"', html)]
    assert sum(bars) == 6 and "<svg" in html
    exported = [json.loads(l) for l in srv.lakeshare(lakeshare_bin, "audit", "export", "--state", state,
                                                     "--recipient", "acme").stdout.splitlines()]
    assert len(exported) == 6


def test_jsonl_sink_copies_every_record_and_rotates(lakeshare_bin, tables, tmp_path):
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": "t", "location": tables["gen-partitioned"]["path"]}]}]}]
    cfg = srv.write_config(str(tmp_path / "c.yaml"), shares,
                           extra={"auditJsonlFile": "audit.jsonl", "auditJsonlMaxBytes": 2000})
    state = str(tmp_path / "state.db")
    srv.create_recipient(lakeshare_bin, state, "acme", ["s"], str(tmp_path / "a.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    s = srv.start_server(lakeshare_bin, cfg, state, ["--port", "0"])
    try:
        h = {"Authorization": "Bearer " + json.loads((tmp_path / "a.share").read_text())["bearerToken"]}
        for _ in range(20):
            assert requests.get(s.url + "/shares", headers=h, timeout=30).status_code == 200
    finally:
        s.stop()
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert len(files) >= 2, f"rotation expected at 2000 bytes: {files}"
    lines = [json.loads(l) for f in files for l in f.read_text().splitlines() if l.strip()]
    exported = [json.loads(l) for l in srv.lakeshare(lakeshare_bin, "audit", "export", "--state", state
                                                     ).stdout.splitlines()]
    assert sorted(l["event"]["id"] for l in lines) == sorted(e["id"] for e in exported)
    assert all(len(l["hash"]) == 64 for l in lines)
