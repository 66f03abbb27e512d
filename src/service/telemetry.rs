//! Request telemetry for Prometheus: per-route request counts by status, latency histograms,
//! token authentications by outcome, URLs signed and bytes vended. Labels are route templates,
//! methods, status codes and outcomes only (bounded cardinality: no per-file or per-token
//! labels).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Histogram bucket upper bounds, seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Telemetry {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    auth: Mutex<BTreeMap<&'static str, u64>>,
    /// Pre-signed URLs handed out.
    pub urls_signed: AtomicU64,
    /// Bytes of the files whose URLs were handed out.
    pub bytes_vended: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Telemetry {
    /// Counts one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let mut lat = lock(&self.latency);
        let h = lat.entry(route.to_owned()).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Histogram::default()
        });
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Counts a token authentication outcome.
    pub fn auth(&self, outcome: &'static str) {
        *lock(&self.auth).entry(outcome).or_default() += 1;
    }

    /// Appends the Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP lakeshare_http_requests_total Requests by route, method and status."
        );
        let _ = writeln!(out, "# TYPE lakeshare_http_requests_total counter");
        for ((route, method, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "lakeshare_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP lakeshare_http_request_duration_seconds Time to the response head, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE lakeshare_http_request_duration_seconds histogram"
        );
        for (route, h) in lock(&self.latency).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lakeshare_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "lakeshare_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "lakeshare_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "lakeshare_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP lakeshare_token_authentications_total Bearer token checks by outcome."
        );
        let _ = writeln!(out, "# TYPE lakeshare_token_authentications_total counter");
        for (outcome, n) in lock(&self.auth).iter() {
            let _ = writeln!(
                out,
                "lakeshare_token_authentications_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        for (name, help, v) in [
            (
                "lakeshare_urls_signed_total",
                "Pre-signed URLs handed out.",
                &self.urls_signed,
            ),
            (
                "lakeshare_bytes_vended_total",
                "Bytes of the files whose URLs were handed out.",
                &self.bytes_vended,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let t = Telemetry::default();
        t.observe("GET", "/shares", 200, 0.003);
        t.observe("GET", "/shares", 200, 0.2);
        t.auth("ok");
        t.urls_signed.fetch_add(3, Ordering::Relaxed);
        let mut out = String::new();
        t.render(&mut out);
        assert!(out.contains(
            "lakeshare_http_requests_total{route=\"/shares\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(out.contains(
            "lakeshare_http_request_duration_seconds_bucket{route=\"/shares\",le=\"0.005\"} 1"
        ));
        assert!(out.contains(
            "lakeshare_http_request_duration_seconds_bucket{route=\"/shares\",le=\"+Inf\"} 2"
        ));
        assert!(out.contains("lakeshare_token_authentications_total{outcome=\"ok\"} 1"));
        assert!(out.contains("lakeshare_urls_signed_total 3"));
    }
}
