//! Three-valued evaluation of a predicate against what is known about one file.
//!
//! # What `True` / `False` / `Unknown` mean here
//!
//! For a sub-expression `e` and a file, SQL evaluates `e` on every (live) row of the file to
//! TRUE, FALSE or NULL. The evaluator's answers are *claims about the whole file*:
//!
//! * [`Tri::False`] — no row of the file makes `e` TRUE;
//! * [`Tri::True`]  — no row of the file makes `e` FALSE;
//! * [`Tri::Unknown`] — no claim.
//!
//! Rows where `e` is NULL contradict neither claim (a file whose rows are all NULL for `e`
//! satisfies both, and an empty file too), which is what makes NULLs easy to handle soundly.
//! These claims compose exactly like the protocol's three-valued rules:
//!
//! * `and`: if some child is `False`, no row has that child TRUE, so no row has the conjunction
//!   TRUE → `False`. If every child is `True`, a FALSE conjunction would need a FALSE child → `True`.
//! * `or`: dual of `and` (`True` if some child is `True`, `False` if all are `False`).
//! * `not`: NOT e is TRUE exactly where e is FALSE (and NULL where e is NULL), so `False` for
//!   `e` ("no row TRUE") is `True` for `not e` ("no row FALSE"), and vice versa.
//!
//! The file may be dropped only when the root is `False`, i.e. no row can make the predicate
//! TRUE — exactly the rows a `WHERE` clause keeps. Because `True` is claimed only when it really
//! holds for every row, `not` never turns an over-optimistic answer into a wrong prune.
//!
//! # Leaves
//!
//! *Partition columns* have one value for the whole file, so comparisons are exact. A NULL
//! partition value (JSON null or empty string) makes every comparison NULL on every row: no row
//! is TRUE, so `False` (no row is FALSE either, so `True` would also be a correct claim; `False`
//! prunes `col = x`, and `not(col = x)` becomes `True` and keeps the file, matching SQL where
//! `NOT (NULL = x)` is NULL but keeping is always allowed). `isNull` is `True` on a NULL partition
//! value and `False` otherwise.
//!
//! *Data columns* are described by `[minValues, maxValues]`, `nullCount` and `numRecords`.
//! min/max bound the non-null values (possibly loosely: truncated strings, deletion vectors with
//! `tightBounds: false`, timestamps truncated to milliseconds — handled by using `max + 1 ms`).
//! NULL rows make comparisons NULL, so they never matter for comparison claims: a comparison is
//! `False` when no value inside the bounds can satisfy it, `True` when every value inside the
//! bounds satisfies it, e.g. `x < 5` is `False` if `min ≥ 5` and `True` if `max < 5`; `x = 5` is
//! `True` only for the point range `min = max = 5`. When every row is NULL (`nullCount ==
//! numRecords`) every comparison is `False`.
//!
//! `isNull(x)` is `False` when `nullCount == 0` (stats that over-count nulls after deletes can only
//! be too large, so 0 is still exact), `True` when `nullCount == numRecords`, else `Unknown`.
//! The "all rows are NULL" rule is not used when the file has a deletion vector and its stats do
//! not say `tightBounds: true`: such counts describe the file before rows were deleted and may
//! over-count. (A deletion vector with no `tightBounds` key is treated as loose, too.)
//!
//! Anything missing or unparsable (no stats, column not in the stats, a stats value whose JSON
//! type does not fit the predicate's `valueType`, a NaN) gives `Unknown` for that leaf.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value as JsonValue;

use super::FileFacts;
use super::parse::{CmpOp, Column, Expr};
use super::value::{Value, ValueType};

/// A three-valued claim about a file; see the module docs for the exact meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Unknown,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

impl Tri {
    pub(crate) fn negate(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// Evaluates `expr` for one file.
pub(crate) fn eval(expr: &Expr, file: &FileFacts<'_>) -> Tri {
    match expr {
        Expr::Const(t) => *t,
        Expr::IsNull(column) => is_null(column, file),
        Expr::Compare {
            column,
            op,
            literal,
        } => compare(column, *op, literal, file),
        Expr::ColumnVsColumn(..) => Tri::Unknown,
        Expr::And(children) => {
            let mut result = Tri::True;
            for child in children {
                match eval(child, file) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::True => {}
                }
            }
            result
        }
        Expr::Or(children) => {
            let mut result = Tri::False;
            for child in children {
                match eval(child, file) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::False => {}
                }
            }
            result
        }
        Expr::Not(child) => eval(child, file).negate(),
    }
}

fn is_null(column: &Column, file: &FileFacts<'_>) -> Tri {
    match resolve(column, file) {
        Resolved::Unknown => Tri::Unknown,
        Resolved::Partition(value) => Tri::from(value.is_none()),
        Resolved::Data(stats) => {
            if stats.null_count == Some(0) {
                Tri::False
            } else if stats.all_null() {
                Tri::True
            } else {
                Tri::Unknown
            }
        }
    }
}

fn compare(column: &Column, op: CmpOp, literal: &Value, file: &FileFacts<'_>) -> Tri {
    if literal.is_nan() {
        return Tri::Unknown;
    }
    let vt = column.value_type;
    match resolve(column, file) {
        Resolved::Unknown => Tri::Unknown,
        // NULL partition value: every row compares as NULL, none is TRUE (see module docs).
        Resolved::Partition(None) => Tri::False,
        Resolved::Partition(Some(text)) => match Value::from_partition(text, vt) {
            // Exact value: a point range gives an exact answer.
            Some(v) => range_compare(op, Some(&v), Some(&v), literal),
            None => Tri::Unknown,
        },
        Resolved::Data(stats) => {
            if stats.all_null() {
                return Tri::False;
            }
            let min = stats.min.and_then(|j| Value::from_stats(j, vt));
            let max = stats
                .max
                .and_then(|j| Value::from_stats(j, vt))
                .and_then(|m| {
                    if vt == ValueType::Timestamp {
                        m.widen_truncated_max()
                    } else {
                        Some(m)
                    }
                });
            range_compare(op, min.as_ref(), max.as_ref(), literal)
        }
    }
}

/// `column <op> literal` for non-null column values known to lie within `[min, max]` (either bound
/// may be unknown). `False` if no value in the range satisfies the comparison, `True` if all do.
fn range_compare(op: CmpOp, min: Option<&Value>, max: Option<&Value>, lit: &Value) -> Tri {
    use Ordering::{Equal, Greater, Less};
    if let (Some(lo), Some(hi)) = (min, max) {
        // Inconsistent (or NaN) bounds: trust nothing.
        if lo.compare(hi).is_none_or(|o| o == Greater) {
            return Tri::Unknown;
        }
    }
    // Orderings of the bounds relative to the literal; `None` = unknown bound or NaN.
    let lo = min.and_then(|m| m.compare(lit));
    let hi = max.and_then(|m| m.compare(lit));
    let (never, always) = match op {
        CmpOp::Equal => (
            lo == Some(Greater) || hi == Some(Less),
            lo == Some(Equal) && hi == Some(Equal),
        ),
        CmpOp::LessThan => (matches!(lo, Some(Greater | Equal)), hi == Some(Less)),
        CmpOp::LessThanOrEqual => (lo == Some(Greater), matches!(hi, Some(Less | Equal))),
        CmpOp::GreaterThan => (matches!(hi, Some(Less | Equal)), lo == Some(Greater)),
        CmpOp::GreaterThanOrEqual => (hi == Some(Less), matches!(lo, Some(Greater | Equal))),
    };
    if never {
        Tri::False
    } else if always {
        Tri::True
    } else {
        Tri::Unknown
    }
}

/// What is known about one column in one file.
enum Resolved<'a> {
    /// A partition column: its single value (`None` = SQL NULL).
    Partition(Option<&'a str>),
    /// A data column with (some) stats.
    Data(DataStats<'a>),
    /// Unknown column, missing partition value, or no stats.
    Unknown,
}

struct DataStats<'a> {
    min: Option<&'a JsonValue>,
    max: Option<&'a JsonValue>,
    null_count: Option<u64>,
    num_records: Option<u64>,
    /// `nullCount`/`numRecords` may over-count (deletion vector without tight bounds).
    loose_counts: bool,
}

impl DataStats<'_> {
    /// Every row of the file is NULL in this column (also true for a file with no rows).
    fn all_null(&self) -> bool {
        !self.loose_counts
            && matches!((self.null_count, self.num_records), (Some(n), Some(r)) if n == r)
    }
}

fn resolve<'a>(column: &Column, file: &FileFacts<'a>) -> Resolved<'a> {
    match find_key(file.partition_columns, &column.name) {
        Lookup::Found(physical) => {
            // The key as given, else a unique case-insensitive match.
            let value = match file.partition_values.get(physical.as_str()) {
                Some(v) => Some(v),
                None => match find_key(file.partition_values, &fold_case(physical)) {
                    Lookup::Found(v) => Some(v),
                    _ => None,
                },
            };
            return match value {
                None => Resolved::Unknown,
                Some(None) => Resolved::Partition(None),
                Some(Some(text)) if text.is_empty() => Resolved::Partition(None),
                Some(Some(text)) => Resolved::Partition(Some(text)),
            };
        }
        Lookup::Ambiguous => return Resolved::Unknown,
        Lookup::Missing => {}
    }

    let Some(stats) = file.stats.filter(|s| s.is_object()) else {
        return Resolved::Unknown;
    };
    let path: &str = if file.physical_names.is_empty() {
        &column.name
    } else {
        match find_key(file.physical_names, &column.name) {
            Lookup::Found(physical) => physical,
            _ => return Resolved::Unknown,
        }
    };
    let section = |name: &str| stats.get(name).and_then(|s| lookup_path(s, path));
    let has_dv_with_loose_stats = file.has_deletion_vector
        && stats.get("tightBounds").and_then(JsonValue::as_bool) != Some(true);
    Resolved::Data(DataStats {
        min: section("minValues").filter(|v| !v.is_null()),
        max: section("maxValues").filter(|v| !v.is_null()),
        null_count: section("nullCount").and_then(JsonValue::as_u64),
        num_records: stats.get("numRecords").and_then(JsonValue::as_u64),
        loose_counts: has_dv_with_loose_stats,
    })
}

enum Lookup<'a, V> {
    Found(&'a V),
    Ambiguous,
    Missing,
}

/// Finds the entry of `map` whose key equals `lower` (already lower-cased) ignoring case; an
/// exact match wins, several case-insensitive matches are ambiguous.
fn find_key<'a, V>(map: &'a HashMap<String, V>, lower: &str) -> Lookup<'a, V> {
    if let Some(value) = map.get(lower) {
        return Lookup::Found(value);
    }
    let mut found = None;
    for (key, value) in map {
        if lower_eq(key, lower) {
            if found.is_some() {
                return Lookup::Ambiguous;
            }
            found = Some(value);
        }
    }
    found.map_or(Lookup::Missing, Lookup::Found)
}

/// Looks up a (possibly dotted, nested) column path in a stats section such as `minValues`,
/// ignoring case. A key that contains the whole remaining path wins over nesting, so a top-level
/// column literally named `a.b` is found too.
fn lookup_path<'a>(section: &'a JsonValue, path: &str) -> Option<&'a JsonValue> {
    let map = section.as_object()?;
    if let Some(v) = get_ignore_case(map, path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        if let Some(v) = get_ignore_case(map, head).and_then(|child| lookup_path(child, rest)) {
            return Some(v);
        }
    }
    None
}

fn get_ignore_case<'a>(
    map: &'a serde_json::Map<String, JsonValue>,
    name: &str,
) -> Option<&'a JsonValue> {
    if let Some(v) = map.get(name) {
        return Some(v);
    }
    let lower = fold_case(name);
    let mut matches = map.iter().filter(|(k, _)| lower_eq(k, &lower));
    match (matches.next(), matches.next()) {
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}

/// The case folding used for every name comparison (per-character lower case).
pub(crate) fn fold_case(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).collect()
}

/// `fold_case(key) == lower`, without allocating.
fn lower_eq(key: &str, lower: &str) -> bool {
    key.chars().flat_map(char::to_lowercase).eq(lower.chars())
}
