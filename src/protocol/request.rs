//! Request bodies and query strings.

use serde::Deserialize;
use serde_json::Value;

/// Body of `POST .../query`. Every field is optional and unknown fields are ignored.
/// Fields are kept loosely typed here so that type errors can be reported with the
/// field's name; [`QueryRequest::from_json`] validates them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRequest {
    /// Legacy SQL hints (accepted and ignored).
    pub predicate_hints: Vec<String>,
    /// JSON predicate, as a string; empty means none.
    pub json_predicate_hints: Option<String>,
    /// Row-count hint.
    pub limit_hint: Option<i64>,
    /// Time travel by version.
    pub version: Option<i64>,
    /// Time travel by timestamp (ISO-8601).
    pub timestamp: Option<String>,
    /// Changes since a version (history feature).
    pub starting_version: Option<i64>,
    /// End of a `startingVersion` range.
    pub ending_version: Option<i64>,
    /// Page size.
    pub max_files: Option<i64>,
    /// Continuation token.
    pub page_token: Option<String>,
    /// Ask for a refresh token.
    pub include_refresh_token: Option<bool>,
    /// Refresh token of an earlier query.
    pub refresh_token: Option<String>,
    /// Async-query idempotency key (`idempotencyKey` or `idempotency_key`).
    pub idempotency_key: Option<String>,
    /// With `startingVersion` in delta format: also return protocol changes.
    pub include_historical_protocol: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQueryRequest {
    predicate_hints: Option<Value>,
    json_predicate_hints: Option<Value>,
    limit_hint: Option<Value>,
    version: Option<Value>,
    timestamp: Option<Value>,
    starting_version: Option<Value>,
    ending_version: Option<Value>,
    max_files: Option<Value>,
    page_token: Option<Value>,
    include_refresh_token: Option<Value>,
    refresh_token: Option<Value>,
    idempotency_key: Option<Value>,
    #[serde(rename = "idempotency_key")]
    idempotency_key_snake: Option<Value>,
    include_historical_protocol: Option<Value>,
}

fn long(field: &str, v: Option<Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("'{field}' must be a whole number, got {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("'{field}' must be a whole number, got \"{s}\"")),
        Some(other) => Err(format!("'{field}' must be a whole number, got {other}")),
    }
}

fn string(field: &str, v: Option<Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("'{field}' must be a string, got {other}")),
    }
}

fn boolean(field: &str, v: Option<Value>) -> Result<Option<bool>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(format!("'{field}' must be true or false, got {other}")),
    }
}

impl QueryRequest {
    /// Parses a request body. An empty body is an error (as in the reference server); `{}` is
    /// "everything at the latest version". `Err` carries a message for a 400 MALFORMED_REQUEST.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err("the request body is empty: send a JSON object such as {}".to_owned());
        }
        let raw: RawQueryRequest = serde_json::from_slice(body)
            .map_err(|e| format!("the request body is not a valid JSON object: {e}"))?;
        let predicate_hints = match raw.predicate_hints {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(format!("'predicateHints' must hold strings, got {other}")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(
                    "Expected an array for repeated field predicateHints of QueryTableRequest"
                        .to_owned(),
                );
            }
        };
        let idempotency_key = match string("idempotencyKey", raw.idempotency_key)? {
            Some(k) => Some(k),
            None => string("idempotency_key", raw.idempotency_key_snake)?,
        };
        Ok(Self {
            predicate_hints,
            json_predicate_hints: string("jsonPredicateHints", raw.json_predicate_hints)?,
            limit_hint: long("limitHint", raw.limit_hint)?,
            version: long("version", raw.version)?,
            timestamp: string("timestamp", raw.timestamp)?,
            starting_version: long("startingVersion", raw.starting_version)?,
            ending_version: long("endingVersion", raw.ending_version)?,
            max_files: long("maxFiles", raw.max_files)?,
            page_token: string("pageToken", raw.page_token)?,
            include_refresh_token: boolean("includeRefreshToken", raw.include_refresh_token)?,
            refresh_token: string("refreshToken", raw.refresh_token)?,
            idempotency_key,
            include_historical_protocol: boolean(
                "includeHistoricalProtocol",
                raw.include_historical_protocol,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_latest_snapshot() {
        assert_eq!(QueryRequest::from_json(b"{}"), Ok(QueryRequest::default()));
    }

    #[test]
    fn unknown_fields_are_ignored_and_both_key_spellings_work() {
        let q = QueryRequest::from_json(
            br#"{"predicateHints":[],"queryDeltaLog":true,"idempotency_key":"k","limitHint":3}"#,
        )
        .unwrap_or_default();
        assert_eq!(q.idempotency_key.as_deref(), Some("k"));
        assert_eq!(q.limit_hint, Some(3));
    }

    #[test]
    fn type_errors_name_the_field() {
        let err = QueryRequest::from_json(br#"{"version":"x3"}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("'version'"), "{err}");
        let err = QueryRequest::from_json(br#"{"predicateHints":"a"}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("Expected an array"), "{err}");
        assert!(QueryRequest::from_json(b"").is_err());
        assert!(QueryRequest::from_json(b"[1]").is_err());
    }
}
