//! Per-recipient limits: requests per minute, and files and bytes vended per day (UTC). Set
//! globally in the config and per recipient through reserved properties
//! (`limit.requestsPerMinute`, `limit.filesPerDay`, `limit.bytesPerDay`). Windows are fixed
//! (the current minute, the current UTC day); usage is kept per replica.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Limits (None = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Files whose URLs are handed out per day.
    pub files_per_day: Option<u64>,
    /// Bytes of those files per day.
    pub bytes_per_day: Option<u64>,
    /// Queries and change feeds being streamed at once.
    pub concurrent_queries: Option<u64>,
}

/// Property keys that override the global limits for one recipient.
pub const REQUESTS_PER_MINUTE: &str = "limit.requestsPerMinute";
/// See [`REQUESTS_PER_MINUTE`].
pub const FILES_PER_DAY: &str = "limit.filesPerDay";
/// See [`REQUESTS_PER_MINUTE`].
pub const BYTES_PER_DAY: &str = "limit.bytesPerDay";
/// See [`REQUESTS_PER_MINUTE`].
pub const CONCURRENT_QUERIES: &str = "limit.concurrentQueries";

impl Limits {
    /// The limits of a recipient: its properties override the global ones (`0` = unlimited).
    pub fn for_recipient(&self, properties: &BTreeMap<String, String>) -> Self {
        let get = |key: &str, global: Option<u64>| match properties
            .get(key)
            .map(|v| v.trim().parse::<u64>())
        {
            Some(Ok(0)) => None,
            Some(Ok(n)) => Some(n),
            // An unparsable override keeps the global limit (fail closed to the stricter one).
            Some(Err(_)) | None => global,
        };
        Self {
            requests_per_minute: get(REQUESTS_PER_MINUTE, self.requests_per_minute),
            files_per_day: get(FILES_PER_DAY, self.files_per_day),
            bytes_per_day: get(BYTES_PER_DAY, self.bytes_per_day),
            concurrent_queries: get(CONCURRENT_QUERIES, self.concurrent_queries),
        }
    }
}

/// Why a request was refused, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// Which limit.
    pub what: String,
    /// Seconds until the window resets.
    pub retry_after_s: u64,
}

#[derive(Debug, Default, Clone)]
struct Usage {
    minute: i64,
    requests: u64,
    day: i64,
    files: u64,
    bytes: u64,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

fn retry(now_ms: i64, window_ms: i64) -> u64 {
    let left = window_ms - now_ms.rem_euclid(window_ms);
    u64::try_from((left + 999) / 1000).unwrap_or(1).max(1)
}

/// Usage per recipient.
#[derive(Debug, Default)]
pub struct LimitTracker {
    usage: Mutex<HashMap<String, Usage>>,
    inflight: Mutex<HashMap<String, u64>>,
}

/// A query being streamed; counts against `concurrent_queries` until dropped.
#[derive(Debug)]
pub struct InFlight {
    tracker: std::sync::Arc<LimitTracker>,
    recipient: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self
            .tracker
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.recipient) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.recipient);
            }
        }
    }
}

/// Starts a query for `recipient`, refusing it beyond `concurrent_queries`.
pub fn start_query(
    tracker: &std::sync::Arc<LimitTracker>,
    recipient: &str,
    limits: &Limits,
) -> Result<InFlight, Exceeded> {
    let mut map = tracker
        .inflight
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = map.entry(recipient.to_owned()).or_default();
    if let Some(max) = limits.concurrent_queries
        && *n >= max
    {
        return Err(Exceeded {
            what: format!("{max} concurrent queries"),
            retry_after_s: 1,
        });
    }
    *n += 1;
    Ok(InFlight {
        tracker: tracker.clone(),
        recipient: recipient.to_owned(),
    })
}

impl LimitTracker {
    fn with<T>(&self, recipient: &str, now_ms: i64, f: impl FnOnce(&mut Usage) -> T) -> T {
        let mut map = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let u = map.entry(recipient.to_owned()).or_default();
        let (minute, day) = (now_ms.div_euclid(MINUTE_MS), now_ms.div_euclid(DAY_MS));
        if u.minute != minute {
            u.minute = minute;
            u.requests = 0;
        }
        if u.day != day {
            u.day = day;
            u.files = 0;
            u.bytes = 0;
        }
        f(u)
    }

    /// Counts a request, refusing it beyond the per-minute limit.
    pub fn admit_request(
        &self,
        recipient: &str,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<(), Exceeded> {
        self.with(recipient, now_ms, |u| match limits.requests_per_minute {
            Some(max) if u.requests >= max => Err(Exceeded {
                what: format!("{max} requests per minute"),
                retry_after_s: retry(now_ms, MINUTE_MS),
            }),
            _ => {
                u.requests += 1;
                Ok(())
            }
        })
    }

    /// Whether more files may be handed out today.
    pub fn check_volume(
        &self,
        recipient: &str,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<(), Exceeded> {
        self.with(recipient, now_ms, |u| {
            let day = retry(now_ms, DAY_MS);
            if let Some(max) = limits.files_per_day
                && u.files >= max
            {
                return Err(Exceeded {
                    what: format!("{max} files per day"),
                    retry_after_s: day,
                });
            }
            if let Some(max) = limits.bytes_per_day
                && u.bytes >= max
            {
                return Err(Exceeded {
                    what: format!("{max} bytes per day"),
                    retry_after_s: day,
                });
            }
            Ok(())
        })
    }

    /// Takes `files` and `bytes` from today's volume, all or nothing: a batch that would cross
    /// a daily limit is refused and nothing of it is counted (so no more than the limit is
    /// ever handed out).
    pub fn take_volume(
        &self,
        recipient: &str,
        limits: &Limits,
        files: u64,
        bytes: u64,
        now_ms: i64,
    ) -> Result<(), Exceeded> {
        self.with(recipient, now_ms, |u| {
            let (f, b) = (u.files.saturating_add(files), u.bytes.saturating_add(bytes));
            for (max, used, wanted, unit) in [
                (limits.files_per_day, u.files, files, "files"),
                (limits.bytes_per_day, u.bytes, bytes, "bytes"),
            ] {
                if let Some(max) = max
                    && used.saturating_add(wanted) > max
                {
                    return Err(Exceeded {
                        what: format!(
                            "{max} {unit} per day ({} left today, this answer needs {wanted} \
                             more)",
                            max.saturating_sub(used)
                        ),
                        retry_after_s: retry(now_ms, DAY_MS),
                    });
                }
            }
            u.files = f;
            u.bytes = b;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_minute_reset_with_the_window() {
        let t = LimitTracker::default();
        let l = Limits {
            requests_per_minute: Some(2),
            ..Limits::default()
        };
        assert!(t.admit_request("r", &l, 60_000).is_ok());
        assert!(t.admit_request("r", &l, 60_001).is_ok());
        let e = t.admit_request("r", &l, 90_000).unwrap_err();
        assert_eq!(e.retry_after_s, 30);
        assert!(
            t.admit_request("other", &l, 90_000).is_ok(),
            "per recipient"
        );
        assert!(t.admit_request("r", &l, 120_000).is_ok(), "next minute");
    }

    #[test]
    fn daily_volume_stops_and_resets_the_next_day() {
        let t = LimitTracker::default();
        let l = Limits {
            bytes_per_day: Some(100),
            ..Limits::default()
        };
        assert!(t.check_volume("r", &l, 1_000).is_ok());
        // A batch that would cross the limit is refused whole and not counted.
        let e = t.take_volume("r", &l, 3, 150, 1_000).unwrap_err();
        assert!(e.what.contains("bytes per day"), "{}", e.what);
        assert!(
            t.take_volume("r", &l, 2, 100, 1_000).is_ok(),
            "exactly the limit"
        );
        let e = t.check_volume("r", &l, 2_000).unwrap_err();
        assert!(e.what.contains("bytes per day"));
        assert_eq!(e.retry_after_s, 86_398);
        assert!(t.take_volume("r", &l, 1, 1, 2_000).is_err());
        assert!(t.check_volume("r", &l, DAY_MS + 1).is_ok());
        let files = Limits {
            files_per_day: Some(4),
            ..Limits::default()
        };
        assert!(t.take_volume("f", &files, 3, 0, 1).is_ok());
        assert!(
            t.take_volume("f", &files, 3, 0, 1).is_err(),
            "4 files, never 6"
        );
        assert!(t.take_volume("f", &files, 1, 0, 1).is_ok());
    }

    #[test]
    fn concurrent_queries_are_counted_until_they_end() {
        let t = std::sync::Arc::new(LimitTracker::default());
        let l = Limits {
            concurrent_queries: Some(2),
            ..Limits::default()
        };
        let a = start_query(&t, "r", &l).unwrap_or_else(|e| unreachable!("{e:?}"));
        let _b = start_query(&t, "r", &l).unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(start_query(&t, "r", &l).is_err());
        assert!(start_query(&t, "other", &l).is_ok());
        drop(a);
        assert!(start_query(&t, "r", &l).is_ok());
    }

    #[test]
    fn recipient_properties_override_global_limits() {
        let global = Limits {
            requests_per_minute: Some(10),
            bytes_per_day: Some(5),
            ..Limits::default()
        };
        let props: BTreeMap<String, String> = [
            (REQUESTS_PER_MINUTE.to_owned(), "100".to_owned()),
            (BYTES_PER_DAY.to_owned(), "0".to_owned()),
            (FILES_PER_DAY.to_owned(), "nonsense".to_owned()),
        ]
        .into();
        let l = global.for_recipient(&props);
        assert_eq!(l.requests_per_minute, Some(100));
        assert_eq!(l.bytes_per_day, None);
        assert_eq!(l.files_per_day, None);
    }
}
