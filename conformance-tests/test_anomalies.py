"""Anomaly rules evaluated online (Lakeshare extension `anomalies`): probing bursts and access
outside the allowed time window raise an audit event and a webhook call; with the receiver down
the alert is retried and delivered once it is up. (The volume-spike rule against a seeded
baseline is covered by the unit tests of src/audit/anomaly.rs.)"""
import datetime as dt
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

import cloud_support as cs
import server as srv


class Receiver:
    """A webhook receiver on 127.0.0.1 that records JSON POST bodies."""

    def __init__(self, port):
        self.alerts = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("content-length", 0))
                outer.alerts.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = HTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [a for a in self.alerts if pred(a)]
            if hits:
                return hits
            time.sleep(0.05)
        return []


def _server(lakeshare_bin, tables, d, anomalies):
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": "t", "location": tables["gen-partitioned"]["path"]}]}]}]
    cfg = srv.write_config(str(d / "c.yaml"), shares, extra={"anomalies": anomalies})
    state = str(d / "state.db")
    srv.create_recipient(lakeshare_bin, state, "acme", ["s"], str(d / "acme.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    return srv.start_server(lakeshare_bin, cfg, state, ["--port", "0"]), state


def _events(lakeshare_bin, state):
    out = srv.lakeshare(lakeshare_bin, "audit", "export", "--state", state).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_probing_burst_raises_an_audited_alert(lakeshare_bin, tables, tmp_path):
    port = cs.free_port()
    rx = Receiver(port)
    s, state = _server(lakeshare_bin, tables, tmp_path, {
        "webhookUrl": f"http://127.0.0.1:{port}/alerts", "probeThreshold": 3})
    try:
        for _ in range(4):
            r = requests.get(s.url + "/shares", headers={"Authorization": "Bearer lks_wrong"}, timeout=10)
            assert r.status_code == 401
        hits = rx.wait_for(lambda a: a.get("rule") == "probing")
        assert len(hits) == 1, rx.alerts
        assert hits[0]["principal"] == "ip:127.0.0.1" and "3 denied" in hits[0]["detail"], hits[0]
        ev = [e for e in _events(lakeshare_bin, state) if e["kind"] == "anomaly"]
        assert len(ev) == 1 and ev[0]["params"]["rule"] == "probing", ev
        assert ev[0]["params"]["alert_id"] == hits[0]["alert_id"]
    finally:
        s.stop()
        rx.stop()


def _window_excluding_now():
    now = dt.datetime.now(dt.timezone.utc)
    start = (now + dt.timedelta(hours=2)).strftime("%H:%M")
    end = (now + dt.timedelta(hours=3)).strftime("%H:%M")
    return f"{start}-{end}"


def test_access_outside_the_window_is_alerted_and_retried_until_the_receiver_is_up(
        lakeshare_bin, tables, tmp_path):
    port = cs.free_port()  # nothing listens yet: the receiver is down
    s, state = _server(lakeshare_bin, tables, tmp_path, {
        "webhookUrl": f"http://127.0.0.1:{port}/alerts", "allowedWindow": _window_excluding_now()})
    rx = None
    try:
        token = json.loads((tmp_path / "acme.share").read_text())["bearerToken"]
        r = requests.get(s.url + "/shares", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, "the rule alerts, it does not block"
        # the first delivery fails and is audited
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            kinds = [e["kind"] for e in _events(lakeshare_bin, state)]
            if "alert_delivery_failed" in kinds:
                break
            time.sleep(0.1)
        assert "anomaly" in kinds and "alert_delivery_failed" in kinds, kinds
        rx = Receiver(port)
        hits = rx.wait_for(lambda a: a.get("rule") == "outside_window", timeout=40)
        assert len(hits) == 1 and hits[0]["principal"] == "acme", rx.alerts
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kinds = [e["kind"] for e in _events(lakeshare_bin, state)]
            if "alert_delivered_late" in kinds:
                break
            time.sleep(0.1)
        assert "alert_delivered_late" in kinds, kinds
    finally:
        s.stop()
        if rx:
            rx.stop()


def test_bad_window_is_refused(lakeshare_bin, tmp_path):
    cfg = srv.write_config(str(tmp_path / "c.yaml"), [], extra={"anomalies": {"allowedWindow": "25:00-06:00"}})
    r = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    assert r.returncode != 0 and "allowedWindow" in (r.stderr + r.stdout)
