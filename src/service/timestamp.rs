//! Parsing of request timestamps.

use chrono::{DateTime, NaiveDateTime};

/// Parses an ISO-8601 timestamp with a zone (`2022-01-01T00:00:00Z`,
/// `2020-01-01T00:00:00-08:00`) or the legacy `yyyy-mm-dd hh:mm:ss[.fff]` form (UTC).
/// Returns ms since the epoch, or the parser's complaint.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "Text '{text}' could not be parsed: expected an ISO-8601 timestamp with a zone, such as \
         2022-01-01T00:00:00Z"
    ))
}

/// Formats ms as ISO-8601 UTC.
pub(crate) fn format_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01+01:00"),
            Ok(1000 - 3_600_000)
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Ok(1500));
        let err = parse_timestamp("yesterday").err().unwrap_or_default();
        assert!(err.contains("yesterday"));
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.500Z");
    }
}
