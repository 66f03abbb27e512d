"""Runs last (file order): the session's main server has served the whole conformance run, so its
Prometheus metrics must show the families we publish with the values the run implies."""
import re

import requests


def _value(text, name, labels=None):
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(\{.*\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        if labels and not all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            continue
        found = True
        total += float(m.group(3))
    assert found, f"metric {name} {labels or ''} missing"
    return total


def test_metrics_after_the_conformance_run(env):
    text = requests.get(env.server.metrics_url, timeout=30).text
    for family in ("lakeshare_http_requests_total", "lakeshare_http_request_duration_seconds",
                   "lakeshare_token_authentications_total", "lakeshare_urls_signed_total",
                   "lakeshare_bytes_vended_total", "lakeshare_log_replays_total",
                   "lakeshare_snapshot_cache_hits_total", "lakeshare_snapshot_cache_misses_total",
                   "lakeshare_log_replay_microseconds_total", "lakeshare_async_queries_running"):
        assert f"# TYPE {family} " in text, f"{family} missing"
    queries = _value(text, "lakeshare_http_requests_total",
                     {"route": "/shares/{share}/schemas/{schema}/tables/{table}/query", "status": "200"})
    assert queries > 10, queries
    assert _value(text, "lakeshare_urls_signed_total") > queries, "every query signed URLs"
    assert _value(text, "lakeshare_bytes_vended_total") > 0
    assert _value(text, "lakeshare_snapshot_cache_hits_total") > 0
    assert _value(text, "lakeshare_snapshot_cache_misses_total") > 0
    assert _value(text, "lakeshare_log_replay_microseconds_total") > 0
    assert _value(text, "lakeshare_token_authentications_total", {"outcome": "ok"}) >= queries
    # latency histogram: the +Inf bucket equals the count
    q = "/shares/{share}/schemas/{schema}/tables/{table}/query"
    inf = _value(text, "lakeshare_http_request_duration_seconds_bucket", {"route": q, "le": "+Inf"})
    count = _value(text, "lakeshare_http_request_duration_seconds_count", {"route": q})
    assert inf == count > 0
    # bounded cardinality: no token or file material in any label
    assert "lks_" not in text and ".parquet" not in text
