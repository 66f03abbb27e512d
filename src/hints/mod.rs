//! Delta Sharing `jsonPredicateHints`: parsing and per-file evaluation for file pruning.
//!
//! A client may send a predicate tree (PROTOCOL-NOTES §5.1) with a query. The server may use it
//! to *omit files that cannot contain a matching row*; clients always re-apply the filter, so
//! returning extra files is harmless while omitting a file with a matching row loses data.
//!
//! # Safety invariant
//!
//! [`JsonPredicate::may_match`] returns `false` only if no row of the file can make the predicate
//! TRUE under SQL semantics (the rows a `WHERE` clause would keep). Everything this module does
//! not fully understand degrades towards "keep the file":
//!
//! * Text that is empty, over 1 MiB, not JSON (e.g. `bad-predicates`), nested deeper than 100
//!   levels, or that uses an unknown op or `valueType`, a wrong arity, mismatched `valueType`s or
//!   a literal that does not parse in its `valueType` → [`JsonPredicate::parse`] returns `None`
//!   and the caller keeps every file.
//! * At evaluation, an unknown column, missing stats, or a stats/partition value that does not
//!   parse in the predicate's `valueType` makes that comparison "unknown", which keeps the file
//!   unless another part of the predicate proves it cannot match.
//!
//! The evaluation is three-valued; the exact meaning of each value and why `and`/`or`/`not` stay
//! sound (including over NULL partition values and nullable data columns) is written down in
//! `eval.rs`.
//!
//! # Assumptions about the inputs
//!
//! * Comparisons happen in the predicate's `valueType`. The module does not see the table
//!   schema, so when a client casts a column (e.g. compares a string column as `date`) the stats
//!   are read in the cast type. Numeric `valueType`s only accept JSON numbers from stats and
//!   dates only canonical `yyyy-mm-dd` strings, which rules out most mismatches; a caller that
//!   knows the schema can skip hints whose `valueType` differs from the column type.
//! * min/max stats are valid bounds of the non-null values, as Delta writers produce them
//!   (truncated strings with a tie-breaker suffix on the max, timestamps truncated to
//!   milliseconds, float stats that account for NaN values).

mod eval;
mod json;
mod parse;
mod value;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use std::collections::HashMap;

/// Why a hint was rejected (kept for diagnostics and tests; the public API only says "no hint").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum HintError {
    #[error("the predicate text is empty")]
    Empty,
    #[error("the predicate text is {0} bytes, over the 1 MiB limit")]
    TooLarge(usize),
    #[error("the predicate tree is deeper than 100 levels")]
    TooDeep,
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("unknown valueType {0:?}")]
    UnknownValueType(String),
    #[error("{op} expects {expected} children, found {found}")]
    Arity {
        op: String,
        expected: &'static str,
        found: usize,
    },
    #[error("literal {value:?} is not a valid {value_type}")]
    BadLiteral { value: String, value_type: String },
    #[error("invalid predicate: {0}")]
    Invalid(String),
}

/// A parsed, validated predicate; `None` from `parse` means "no usable hint".
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPredicate {
    root: parse::Expr,
}

impl JsonPredicate {
    /// Parses and validates `jsonPredicateHints` text. `None` = no usable hint (keep every file).
    pub fn parse(text: &str) -> Option<JsonPredicate> {
        Self::try_parse(text).ok()
    }

    /// Like [`JsonPredicate::parse`], but hints over the protocol's limits (1 MiB of text, a
    /// tree deeper than 100 levels) are an error to report, not a hint to ignore; any other
    /// unusable hint is `Ok(None)` (keep every file).
    pub fn parse_bounded(text: &str) -> Result<Option<JsonPredicate>, String> {
        match Self::try_parse(text) {
            Ok(p) => Ok(Some(p)),
            Err(e @ (HintError::TooLarge(_) | HintError::TooDeep)) => Err(format!(
                "jsonPredicateHints: {e}; send a smaller predicate (at most 1 MiB of JSON and \
                 100 levels deep) or none"
            )),
            Err(_) => Ok(None),
        }
    }

    /// Evaluation cost against one file (tree nodes).
    pub fn cost_per_file(&self) -> u64 {
        self.root.node_count()
    }

    /// Like [`JsonPredicate::parse`], with the reason for rejecting the text.
    pub(crate) fn try_parse(text: &str) -> Result<JsonPredicate, HintError> {
        parse::parse_predicate(text).map(|root| JsonPredicate { root })
    }

    /// Evaluates against one file. `true` = keep the file (it may contain matching rows).
    pub fn may_match(&self, file: &FileFacts<'_>) -> bool {
        eval::eval(&self.root, file) != eval::Tri::False
    }

    /// Whether every column the predicate references exists in `column_types` (lower-cased,
    /// dotted paths for nested fields → Spark type name) with a type its `valueType` compares
    /// correctly. Callers drop the hint when this is false: comparing a column in another
    /// type (a client-side cast) can order values differently from the stats.
    pub fn fits_schema(&self, column_types: &HashMap<String, String>) -> bool {
        let mut columns = Vec::new();
        self.root.collect_typed_columns(&mut columns);
        columns.iter().all(|c| {
            column_types
                .get(&c.name)
                .is_some_and(|t| value::compatible(c.value_type, t))
        })
    }

    /// Lower-cased names of all columns referenced (for diagnostics).
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.root.collect_columns(&mut out);
        out
    }
}

/// What the evaluator knows about one file.
#[derive(Debug, Clone, Copy)]
pub struct FileFacts<'a> {
    /// Logical partition column names of the table (any case) → that column's key in
    /// `partition_values` (the physical name when column mapping is on, else the same name).
    /// Columns not in this map are data columns.
    pub partition_columns: &'a HashMap<String, String>,
    /// The file's partitionValues as in the Delta log (key = physical name), None = null.
    pub partition_values: &'a HashMap<String, Option<String>>,
    /// The file's parsed stats JSON object, if any.
    pub stats: Option<&'a serde_json::Value>,
    /// Logical → physical name for data columns (lower-cased logical keys; empty map = names are
    /// physical already). For a nested column the key is the dotted logical path and the value
    /// the dotted physical path.
    pub physical_names: &'a HashMap<String, String>,
    /// The file has a deletion vector.
    pub has_deletion_vector: bool,
}
