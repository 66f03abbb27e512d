//! Typed values for the predicate `valueType`s, and their parsing from the three places values
//! come from: predicate literals, partition-value strings, and stats JSON.
//!
//! Values are always interpreted in the *predicate's* `valueType`, never in the column's physical
//! type. Anything that does not parse cleanly yields `None`, which the evaluator turns into
//! "unknown" (for stats and partition values) or into "unusable predicate" (for literals).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// The `valueType` of a `column` or `literal` leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Bool,
    Int,
    Long,
    String,
    Date,
    Float,
    Double,
    Timestamp,
}

impl ValueType {
    /// Recognizes the protocol's names (ASCII case-insensitively).
    pub(crate) fn from_name(name: &str) -> Option<ValueType> {
        const ALL: [(&str, ValueType); 8] = [
            ("bool", ValueType::Bool),
            ("int", ValueType::Int),
            ("long", ValueType::Long),
            ("string", ValueType::String),
            ("date", ValueType::Date),
            ("float", ValueType::Float),
            ("double", ValueType::Double),
            ("timestamp", ValueType::Timestamp),
        ];
        ALL.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, vt)| vt)
    }
}

/// Whether comparing a column of Spark type `spark_type` in `vt` orders values as the column's
/// own type does (so min/max stats stay valid bounds).
pub(crate) fn compatible(vt: ValueType, spark_type: &str) -> bool {
    let t = spark_type.to_ascii_lowercase();
    match vt {
        ValueType::Bool => t == "boolean",
        ValueType::Int | ValueType::Long => {
            matches!(t.as_str(), "byte" | "short" | "integer" | "long")
        }
        ValueType::String => t == "string",
        ValueType::Date => t == "date",
        ValueType::Float | ValueType::Double => matches!(t.as_str(), "float" | "double"),
        ValueType::Timestamp => t == "timestamp",
    }
}

/// A value of one `valueType`. `int` and `long` share [`Value::Int`]; `float` values are rounded
/// to `f32` precision and stored as `f64` (rounding is monotonic, so bounds stay bounds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
}

impl Value {
    /// Orders two values of the same kind. `None` for different kinds or when a NaN is involved;
    /// callers treat `None` as "unknown".
    pub(crate) fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            // Byte-wise (UTF-8) order, which is what Delta uses for string stats.
            (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Parses a predicate literal's `value` text. `None` makes the whole predicate unusable.
    pub(crate) fn from_literal(text: &str, vt: ValueType) -> Option<Value> {
        match vt {
            ValueType::Int => text
                .trim()
                .parse::<i32>()
                .ok()
                .map(|v| Value::Int(v.into())),
            ValueType::Timestamp => parse_timestamp(text, true).map(Value::Timestamp),
            _ => Value::from_text(text, vt),
        }
    }

    /// Parses a (non-null, non-empty) partition value string. Timestamps may lack a zone (UTC).
    pub(crate) fn from_partition(text: &str, vt: ValueType) -> Option<Value> {
        match vt {
            ValueType::Timestamp => parse_timestamp(text, false).map(Value::Timestamp),
            _ => Value::from_text(text, vt),
        }
    }

    fn from_text(text: &str, vt: ValueType) -> Option<Value> {
        match vt {
            ValueType::Bool => parse_bool(text).map(Value::Bool),
            ValueType::Int | ValueType::Long => text.trim().parse::<i64>().ok().map(Value::Int),
            ValueType::String => Some(Value::Str(text.to_string())),
            ValueType::Date => parse_date(text).map(Value::Date),
            ValueType::Float => parse_float(text, true).map(Value::Float),
            ValueType::Double => parse_float(text, false).map(Value::Float),
            ValueType::Timestamp => parse_timestamp(text, false).map(Value::Timestamp),
        }
    }

    /// Reads a `minValues`/`maxValues` entry. A JSON type that does not fit the `valueType`
    /// (e.g. a string where `long` is asked for) yields `None` = unknown. Numbers are *not*
    /// accepted from JSON strings: a string column's lexicographic min/max are not numeric bounds.
    pub(crate) fn from_stats(json: &serde_json::Value, vt: ValueType) -> Option<Value> {
        use serde_json::Value as J;
        match (vt, json) {
            (ValueType::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
            (ValueType::Bool, J::String(s)) => parse_bool(s).map(Value::Bool),
            (ValueType::Int | ValueType::Long, J::Number(n)) => n.as_i64().map(Value::Int),
            (ValueType::Float, J::Number(n)) => n.as_f64().map(|f| Value::Float(round_f32(f))),
            (ValueType::Double, J::Number(n)) => n.as_f64().map(Value::Float),
            // Some writers spell non-finite floats as strings.
            (ValueType::Float, J::String(s)) => parse_special_float(s).map(Value::Float),
            (ValueType::Double, J::String(s)) => parse_special_float(s).map(Value::Float),
            (ValueType::String, J::String(s)) => Some(Value::Str(s.clone())),
            (ValueType::Date, J::String(s)) => parse_date(s).map(Value::Date),
            (ValueType::Timestamp, J::String(s)) => parse_timestamp(s, false).map(Value::Timestamp),
            _ => None,
        }
    }

    /// For timestamp stats: the stored maximum is truncated to milliseconds, so the real maximum
    /// can be up to 999 µs larger; `max + 1 ms` is a safe upper bound. Other values unchanged.
    pub(crate) fn widen_truncated_max(self) -> Option<Value> {
        match self {
            Value::Timestamp(t) => t
                .checked_add_signed(TimeDelta::milliseconds(1))
                .map(Value::Timestamp),
            other => Some(other),
        }
    }

    pub(crate) fn is_nan(&self) -> bool {
        matches!(self, Value::Float(f) if f.is_nan())
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Rounds to the nearest `f32` (monotonic, saturating to ±inf), kept as `f64`.
fn round_f32(f: f64) -> f64 {
    f64::from(f as f32)
}

/// Decimal text, or `NaN` / `Infinity` / `-Infinity` / `inf` (any case).
fn parse_float(text: &str, single: bool) -> Option<f64> {
    let t = text.trim();
    if single {
        t.parse::<f32>().ok().map(f64::from)
    } else {
        t.parse::<f64>().ok()
    }
}

fn parse_special_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "nan" | "inf" | "infinity" => t.parse::<f64>().ok(),
        _ => None,
    }
}

/// Strict `yyyy-mm-dd` (exactly 4-2-2 digits). Strictness matters for stats: only canonical
/// date strings order the same way as dates.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)
}

/// ISO-8601 / RFC 3339 with a zone (`T`, `t` or space separator; `Z` or `±hh:mm`). Unless
/// `require_zone`, also `yyyy-mm-dd[ T]hh:mm:ss[.fraction]` without a zone, read as UTC (the Delta
/// partition-value form, and timestamp_ntz stats).
pub(crate) fn parse_timestamp(text: &str, require_zone: bool) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    if require_zone {
        return None;
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(t, fmt).ok())
        .map(|naive| naive.and_utc())
}
