//! Per-table partition filters (Unity-style partition specifications).
//!
//! A spec is a list of entries; a file qualifies if it matches any entry, and an entry is a
//! conjunction of `column op value` conditions, `op` being `EQUAL` or `LIKE` and the value
//! either a literal or a recipient property. Evaluation fails closed: an entry referring to a
//! property the recipient lacks matches nothing, and a NULL partition value never matches.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Comparison of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Op {
    /// Exact string equality of the partition value.
    Equal,
    /// SQL LIKE: `%` matches any run, `_` one character.
    Like,
}

/// One `column op value` condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Partition column (logical name, case-insensitive).
    pub name: String,
    /// Comparison.
    pub op: Op,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Recipient property supplying the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_property_key: Option<String>,
}

/// One entry: all conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The conditions.
    pub values: Vec<Condition>,
}

/// A table's partition specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartitionSpec {
    /// Entries; a file qualifies if it matches any.
    pub entries: Vec<Entry>,
}

impl PartitionSpec {
    /// Checks the spec's shape and, when `partition_columns` is given, that every condition
    /// names one of them. The message names the offending column.
    pub fn validate(&self, partition_columns: Option<&[String]>) -> Result<(), String> {
        if self.entries.is_empty() {
            return Err("partitions must list at least one entry".to_owned());
        }
        for entry in &self.entries {
            if entry.values.is_empty() {
                return Err("a partitions entry needs at least one condition in 'values'".into());
            }
            for c in &entry.values {
                if c.value.is_some() == c.recipient_property_key.is_some() {
                    return Err(format!(
                        "partition condition on '{}' needs exactly one of 'value' and \
                         'recipientPropertyKey'",
                        c.name
                    ));
                }
                if let Some(cols) = partition_columns
                    && !cols.iter().any(|p| p.eq_ignore_ascii_case(&c.name))
                {
                    return Err(format!(
                        "partition filter column '{}' is not a partition column (partition \
                             columns: {cols:?})",
                        c.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves recipient properties into a filter.
    pub fn resolve(&self, properties: &BTreeMap<String, String>) -> ResolvedFilter {
        let entries = self
            .entries
            .iter()
            .filter_map(|e| {
                e.values
                    .iter()
                    .map(|c| {
                        let value = match (&c.value, &c.recipient_property_key) {
                            (Some(v), _) => Some(v.clone()),
                            (None, Some(key)) => properties.get(key).cloned(),
                            (None, None) => None,
                        }?;
                        Some((c.name.to_lowercase(), c.op, value))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        ResolvedFilter { entries }
    }
}

/// A filter with recipient properties filled in. No entries = matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFilter {
    entries: Vec<Vec<(String, Op, String)>>,
}

impl ResolvedFilter {
    /// Whether a file with these partition values qualifies. `keys` maps logical partition
    /// column names to their keys in `partition_values` (physical names under column mapping).
    pub fn matches(
        &self,
        partition_values: &BTreeMap<String, Option<String>>,
        keys: &HashMap<String, String>,
    ) -> bool {
        self.entries.iter().any(|entry| {
            entry.iter().all(|(column, op, expected)| {
                let key = keys
                    .iter()
                    .find(|(logical, _)| logical.eq_ignore_ascii_case(column))
                    .map(|(_, k)| k.as_str());
                let Some(Some(actual)) = key.and_then(|k| partition_values.get(k)) else {
                    return false;
                };
                match op {
                    Op::Equal => actual == expected,
                    Op::Like => like(actual, expected),
                }
            })
        })
    }
}

/// SQL LIKE without escapes: `%` any run of characters, `_` exactly one.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PartitionSpec {
        PartitionSpec {
            entries: vec![
                Entry {
                    values: vec![Condition {
                        name: "Country".into(),
                        op: Op::Equal,
                        value: None,
                        recipient_property_key: Some("country".into()),
                    }],
                },
                Entry {
                    values: vec![
                        Condition {
                            name: "country".into(),
                            op: Op::Like,
                            value: Some("D%".into()),
                            recipient_property_key: None,
                        },
                        Condition {
                            name: "year".into(),
                            op: Op::Equal,
                            value: Some("2024".into()),
                            recipient_property_key: None,
                        },
                    ],
                },
            ],
        }
    }

    fn pv(country: Option<&str>, year: &str) -> BTreeMap<String, Option<String>> {
        BTreeMap::from([
            ("country".to_owned(), country.map(str::to_owned)),
            ("year".to_owned(), Some(year.to_owned())),
        ])
    }

    #[test]
    fn any_entry_all_conditions_and_fail_closed() {
        let keys = HashMap::from([
            ("country".to_owned(), "country".to_owned()),
            ("year".to_owned(), "year".to_owned()),
        ]);
        let us = spec().resolve(&BTreeMap::from([("country".into(), "US".into())]));
        assert!(us.matches(&pv(Some("US"), "2023"), &keys));
        assert!(!us.matches(&pv(Some("FR"), "2023"), &keys));
        assert!(
            us.matches(&pv(Some("DE"), "2024"), &keys),
            "second entry, literal values"
        );
        assert!(!us.matches(&pv(Some("DE"), "2023"), &keys));
        assert!(!us.matches(&pv(None, "2024"), &keys), "NULL never matches");
        let nobody = spec().resolve(&BTreeMap::new());
        assert!(
            !nobody.matches(&pv(Some("US"), "2023"), &keys),
            "missing property"
        );
        assert!(
            nobody.matches(&pv(Some("DE"), "2024"), &keys),
            "literal entry still applies"
        );
    }

    #[test]
    fn like_patterns() {
        assert!(like("US", "U%"));
        assert!(like("US", "U_"));
        assert!(!like("USA", "U_"));
        assert!(like("abc", "%"));
        assert!(like("abc", "a%c"));
        assert!(!like("abd", "a%c"));
        assert!(like("", "%"));
    }

    #[test]
    fn validation_names_the_column() {
        let cols = vec!["country".to_owned()];
        let err = spec().validate(Some(&cols)).err().unwrap_or_default();
        assert!(err.contains("'year'"), "{err}");
        assert!(spec().validate(None).is_ok());
    }
}
