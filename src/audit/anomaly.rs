//! Online anomaly rules per principal (recipient, or client address when unauthenticated):
//! a request volume far above the principal's trailing baseline, access outside the allowed
//! time window, and bursts of denied or not-found answers (probing). Each hit is reported once
//! per minute (once per hour for the time window).

use std::collections::HashMap;
use std::sync::Mutex;

/// The rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRules {
    /// A minute with more than `volume_factor` × the baseline requests (and at least
    /// `volume_min_requests`) is a spike.
    pub volume_factor: f64,
    /// See `volume_factor`.
    pub volume_min_requests: u64,
    /// Minutes of history needed before spikes are judged.
    pub baseline_minutes: u64,
    /// Allowed UTC time of day, in minutes since midnight: `[start, end)` (wrapping past
    /// midnight when start > end). `None` = any time.
    pub window: Option<(u32, u32)>,
    /// Denied or not-found answers (401, 403, 404) per minute that count as probing.
    pub probe_threshold: u64,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        Self {
            volume_factor: 10.0,
            volume_min_requests: 100,
            baseline_minutes: 10,
            window: None,
            probe_threshold: 20,
        }
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// `volume_spike`, `outside_window` or `probing`.
    pub rule: &'static str,
    /// Who.
    pub principal: String,
    /// Why, in words.
    pub detail: String,
    /// When (ms).
    pub at_ms: i64,
}

#[derive(Debug, Default, Clone)]
struct State {
    minute: i64,
    requests: u64,
    denials: u64,
    baseline: f64,
    history_minutes: u64,
    spike_reported: bool,
    probe_reported: bool,
    window_reported_hour: i64,
}

/// Per-principal state of the rules.
#[derive(Debug, Default)]
pub struct AnomalyDetector {
    rules: AnomalyRules,
    state: Mutex<HashMap<String, State>>,
}

const ALPHA: f64 = 0.2;

impl AnomalyDetector {
    /// A detector for `rules`.
    pub fn new(rules: AnomalyRules) -> Self {
        Self {
            rules,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Seeds a principal's baseline (requests per minute over `minutes` of history).
    pub fn seed_baseline(&self, principal: &str, per_minute: f64, minutes: u64, now_ms: i64) {
        let mut map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map.entry(principal.to_owned()).or_default();
        s.minute = now_ms.div_euclid(60_000);
        s.baseline = per_minute;
        s.history_minutes = minutes;
    }

    /// Observes one answered request; returns the rules it trips.
    pub fn observe(&self, principal: &str, status: u16, at_ms: i64) -> Vec<Anomaly> {
        let r = &self.rules;
        let mut out = Vec::new();
        let mut map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map.entry(principal.to_owned()).or_default();
        let minute = at_ms.div_euclid(60_000);
        if s.minute != minute {
            if s.minute != 0 {
                // Close the finished minute, and decay over idle minutes.
                s.baseline = ALPHA * s.requests as f64 + (1.0 - ALPHA) * s.baseline;
                let idle = (minute - s.minute - 1).clamp(0, 60);
                for _ in 0..idle {
                    s.baseline *= 1.0 - ALPHA;
                }
                s.history_minutes += 1 + idle as u64;
            }
            s.minute = minute;
            s.requests = 0;
            s.denials = 0;
            s.spike_reported = false;
            s.probe_reported = false;
        }
        s.requests += 1;
        if matches!(status, 401 | 403 | 404) {
            s.denials += 1;
        }
        let threshold = (r.volume_factor * s.baseline).max(r.volume_min_requests as f64);
        if !s.spike_reported
            && s.history_minutes >= r.baseline_minutes
            && s.requests as f64 > threshold
        {
            s.spike_reported = true;
            out.push(Anomaly {
                rule: "volume_spike",
                principal: principal.to_owned(),
                detail: format!(
                    "{} requests this minute, baseline {:.1} per minute",
                    s.requests, s.baseline
                ),
                at_ms,
            });
        }
        if !s.probe_reported && s.denials >= r.probe_threshold {
            s.probe_reported = true;
            out.push(Anomaly {
                rule: "probing",
                principal: principal.to_owned(),
                detail: format!("{} denied or not-found answers this minute", s.denials),
                at_ms,
            });
        }
        if let Some((start, end)) = r.window {
            let m = u32::try_from(at_ms.rem_euclid(86_400_000) / 60_000).unwrap_or(0);
            let inside = if start <= end {
                m >= start && m < end
            } else {
                m >= start || m < end
            };
            let hour = at_ms.div_euclid(3_600_000);
            if !inside && s.window_reported_hour != hour {
                s.window_reported_hour = hour;
                out.push(Anomaly {
                    rule: "outside_window",
                    principal: principal.to_owned(),
                    detail: format!(
                        "access at {:02}:{:02} UTC, allowed {:02}:{:02}-{:02}:{:02}",
                        m / 60,
                        m % 60,
                        start / 60,
                        start % 60,
                        end / 60,
                        end % 60
                    ),
                    at_ms,
                });
            }
        }
        out
    }
}

/// Parses `HH:MM-HH:MM` (UTC) into minutes since midnight.
pub fn parse_window(text: &str) -> Result<(u32, u32), String> {
    let parse = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    text.split_once('-')
        .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
        .ok_or_else(|| format!("time window '{text}': use HH:MM-HH:MM (UTC), e.g. 06:00-22:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000 * 86_400_000 + 12 * 3_600_000; // noon UTC

    #[test]
    fn a_spike_against_a_seeded_baseline_is_reported_once() {
        let d = AnomalyDetector::new(AnomalyRules {
            volume_min_requests: 5,
            ..AnomalyRules::default()
        });
        d.seed_baseline("acme", 2.0, 30, T0);
        let hits: Vec<_> = (0..40)
            .flat_map(|i| d.observe("acme", 200, T0 + i))
            .collect();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].rule, "volume_spike");
        assert!(
            hits[0].detail.starts_with("21 requests"),
            "{}",
            hits[0].detail
        );
        // Normal traffic of another recipient is not a spike; nor is anything without history.
        assert!((0..40).all(|i| d.observe("fresh", 200, T0 + i).is_empty()));
    }

    #[test]
    fn probing_and_out_of_window_access_are_reported() {
        let d = AnomalyDetector::new(AnomalyRules {
            probe_threshold: 3,
            window: Some(parse_window("06:00-11:00").unwrap_or((0, 0))),
            ..AnomalyRules::default()
        });
        let first = d.observe("ip:10.0.0.9", 404, T0);
        assert_eq!(
            first.iter().map(|a| a.rule).collect::<Vec<_>>(),
            ["outside_window"]
        );
        assert!(d.observe("ip:10.0.0.9", 401, T0 + 1).is_empty());
        let third = d.observe("ip:10.0.0.9", 403, T0 + 2);
        assert_eq!(
            third.iter().map(|a| a.rule).collect::<Vec<_>>(),
            ["probing"]
        );
        assert!(
            d.observe("ip:10.0.0.9", 404, T0 + 3).is_empty(),
            "once per minute"
        );
        let inside = T0 - 3 * 3_600_000; // 09:00
        assert!(d.observe("other", 200, inside).is_empty());
        assert!(parse_window("22:00-06:00").is_ok());
        assert!(parse_window("25:00-06:00").is_err());
    }
}
