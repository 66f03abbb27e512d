use std::collections::HashMap;

use serde_json::json;

use super::eval::{Tri, eval};
use super::parse::{MAX_DEPTH, MAX_TEXT_BYTES};
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn col(name: &str, vt: &str) -> String {
    json!({"op": "column", "name": name, "valueType": vt}).to_string()
}

fn lit(value: &str, vt: &str) -> String {
    json!({"op": "literal", "value": value, "valueType": vt}).to_string()
}

fn node(op: &str, children: &[String]) -> String {
    format!(r#"{{"op":"{op}","children":[{}]}}"#, children.join(","))
}

fn cmp(op: &str, column: &str, value: &str, vt: &str) -> String {
    node(op, &[col(column, vt), lit(value, vt)])
}

/// An owned description of one file, lent out as [`FileFacts`].
#[derive(Default, Clone)]
struct File {
    partition_columns: HashMap<String, String>,
    partition_values: HashMap<String, Option<String>>,
    stats: Option<serde_json::Value>,
    physical_names: HashMap<String, String>,
    dv: bool,
}

impl File {
    fn new() -> File {
        File::default()
    }

    fn part(mut self, logical: &str, physical: &str, value: Option<&str>) -> File {
        self.partition_columns
            .insert(logical.to_string(), physical.to_string());
        self.partition_values
            .insert(physical.to_string(), value.map(str::to_string));
        self
    }

    fn stats(mut self, stats: serde_json::Value) -> File {
        self.stats = Some(stats);
        self
    }

    fn physical(mut self, logical: &str, physical: &str) -> File {
        self.physical_names
            .insert(logical.to_string(), physical.to_string());
        self
    }

    fn dv(mut self) -> File {
        self.dv = true;
        self
    }

    fn facts(&self) -> FileFacts<'_> {
        FileFacts {
            partition_columns: &self.partition_columns,
            partition_values: &self.partition_values,
            stats: self.stats.as_ref(),
            physical_names: &self.physical_names,
            has_deletion_vector: self.dv,
        }
    }
}

/// Stats for one data column `c`.
fn col_stats(
    min: serde_json::Value,
    max: serde_json::Value,
    nulls: u64,
    records: u64,
) -> serde_json::Value {
    json!({
        "numRecords": records,
        "minValues": {"c": min},
        "maxValues": {"c": max},
        "nullCount": {"c": nulls},
    })
}

fn parsed(text: &str) -> JsonPredicate {
    match JsonPredicate::try_parse(text) {
        Ok(p) => p,
        Err(e) => panic!("expected {text} to parse, got {e}"),
    }
}

fn tri(text: &str, file: &File) -> Tri {
    eval(&parsed(text).root, &file.facts())
}

use Tri::{False as F, True as T, Unknown as U};

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_unusable_predicates() {
    let x = col("x", "int");
    let one = lit("1", "int");
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("blank", "  \n ".into()),
        ("bad-predicates", "bad-predicates".into()),
        ("quoted bad", "\"bad-predicates\"".into()),
        ("json null", "null".into()),
        ("array", "[]".into()),
        ("empty object", "{}".into()),
        ("op not a string", r#"{"op":1}"#.into()),
        ("unknown op", node("like", &[x.clone(), one.clone()])),
        ("op case", node("EQUAL", &[x.clone(), one.clone()])),
        ("unknown valueType", cmp("equal", "x", "1", "decimal")),
        ("equal 1 child", node("equal", std::slice::from_ref(&x))),
        (
            "equal 3 children",
            node("equal", &[x.clone(), one.clone(), one.clone()]),
        ),
        ("and 1 child", node("and", &[cmp("equal", "x", "1", "int")])),
        ("and 0 children", node("and", &[])),
        ("or 1 child", node("or", &[cmp("equal", "x", "1", "int")])),
        ("or without children", r#"{"op":"or"}"#.into()),
        (
            "not 2 children",
            node(
                "not",
                &[cmp("equal", "x", "1", "int"), cmp("equal", "x", "2", "int")],
            ),
        ),
        ("not 0 children", node("not", &[])),
        ("isNull of literal", node("isNull", std::slice::from_ref(&one))),
        ("isNull 2 children", node("isNull", &[x.clone(), x.clone()])),
        ("isNull 0 children", node("isNull", &[])),
        (
            "isNull of a comparison",
            node("isNull", &[cmp("equal", "x", "1", "int")]),
        ),
        ("mixed valueTypes", node("equal", &[x.clone(), lit("1", "long")])),
        ("int literal not a number", cmp("equal", "x", "abc", "int")),
        ("int literal out of range", cmp("equal", "x", "3000000000", "int")),
        ("long literal fraction", cmp("equal", "x", "1.5", "long")),
        ("bad bool", cmp("equal", "x", "yes", "bool")),
        ("bad date", cmp("equal", "x", "2021-13-01", "date")),
        ("short date", cmp("equal", "x", "2021-1-1", "date")),
        ("timestamp without zone", cmp("equal", "x", "2021-04-28 23:33:57", "timestamp")),
        ("bad timestamp", cmp("equal", "x", "yesterday", "timestamp")),
        ("bad double", cmp("equal", "x", "1,5", "double")),
        ("standalone int column", x.clone()),
        ("standalone int literal", one.clone()),
        (
            "comparison with non-leaf",
            node("equal", &[cmp("equal", "x", "1", "int"), one.clone()]),
        ),
        (
            "and with leaf non-bool",
            node("and", &[x.clone(), cmp("equal", "x", "1", "int")]),
        ),
        ("children not array", r#"{"op":"and","children":{}}"#.into()),
        (
            "duplicate key",
            r#"{"op":"column","name":"b","name":"c","valueType":"bool"}"#.into(),
        ),
        ("trailing garbage", format!("{} x", cmp("equal", "x", "1", "int"))),
        ("two documents", format!("{0}{0}", col("b", "bool"))),
        (
            "leaf with children",
            r#"{"op":"column","name":"b","valueType":"bool","children":[{"op":"literal","value":"true","valueType":"bool"}]}"#.into(),
        ),
        ("column without name", r#"{"op":"column","valueType":"bool"}"#.into()),
        ("column name not string", r#"{"op":"column","name":5,"valueType":"bool"}"#.into()),
        ("column without valueType", r#"{"op":"column","name":"b"}"#.into()),
        ("literal without value", r#"{"op":"literal","valueType":"bool"}"#.into()),
        (
            "literal value object",
            r#"{"op":"literal","value":{},"valueType":"bool"}"#.into(),
        ),
        ("truncated json", r#"{"op":"column","name":"b","valueType":"bool""#.into()),
        ("single quotes", "{'op':'column'}".into()),
        ("bad escape", r#"{"op":"colu\mn","name":"b","valueType":"bool"}"#.into()),
        ("lone surrogate", r#"{"op":"column","name":"\ud800","valueType":"bool"}"#.into()),
        ("leading zero", r#"{"op":"literal","value":01,"valueType":"int"}"#.into()),
    ];
    for (label, text) in cases {
        assert!(
            JsonPredicate::parse(&text).is_none(),
            "{label}: {text} should be rejected"
        );
    }
}

#[test]
fn accepts_every_op_and_value_type() {
    let cases: Vec<(&str, &str)> = vec![
        ("bool", "true"),
        ("bool", "FALSE"),
        ("int", "-2147483648"),
        ("long", "9223372036854775807"),
        ("string", ""),
        ("string", "héllo \"quoted\""),
        ("date", "2021-04-28"),
        ("float", "1.5"),
        ("float", "NaN"),
        ("double", "-Infinity"),
        ("double", "1e300"),
        ("timestamp", "2021-04-28T23:33:57.955Z"),
        ("timestamp", "2021-04-28T23:33:57+02:00"),
        ("timestamp", "2021-04-28 23:33:57.123456Z"),
    ];
    let ops = [
        "equal",
        "lessThan",
        "lessThanOrEqual",
        "greaterThan",
        "greaterThanOrEqual",
    ];
    for (vt, value) in cases {
        for op in ops {
            let text = cmp(op, "c", value, vt);
            assert!(JsonPredicate::parse(&text).is_some(), "{text}");
            let swapped = node(op, &[lit(value, vt), col("c", vt)]);
            assert!(JsonPredicate::parse(&swapped).is_some(), "{swapped}");
        }
        assert!(JsonPredicate::parse(&node("isNull", &[col("c", vt)])).is_some());
    }
    let a = cmp("equal", "a", "1", "int");
    let b = cmp("lessThan", "b", "x", "string");
    for text in [
        node("and", &[a.clone(), b.clone()]),
        node("and", &[a.clone(), b.clone(), a.clone()]),
        node("or", &[a.clone(), b.clone()]),
        node("not", std::slice::from_ref(&a)),
        node("not", &[node("isNull", &[col("a", "int")])]),
        col("flag", "bool"),
        lit("true", "bool"),
        node("not", &[col("flag", "bool")]),
        node("equal", &[col("a", "int"), col("b", "int")]),
        node("equal", &[lit("1", "int"), lit("2", "int")]),
        // Tolerated: a JSON number as literal value, explicit null/empty children on leaves,
        // unknown extra fields, whitespace around the document.
        r#"{"op":"equal","children":[{"op":"column","name":"a","valueType":"int","children":[]},{"op":"literal","value":5,"valueType":"int","children":null}]}"#.to_string(),
        format!(" \n{}\t", node("or", &[a.clone(), b.clone()])),
        r#"{"op":"not","extra":{"deep":[1,2,{"x":null}]},"children":[{"op":"column","name":"f","valueType":"BOOL"}]}"#.to_string(),
    ] {
        assert!(JsonPredicate::parse(&text).is_some(), "{text}");
    }
}

#[test]
fn rejection_reasons() {
    let cases: Vec<(String, HintError)> = vec![
        (String::new(), HintError::Empty),
        (
            cmp("equal", "x", "1", "money"),
            HintError::UnknownValueType("money".into()),
        ),
        (node("nand", &[]), HintError::UnknownOp("nand".into())),
        (
            node("and", &[col("b", "bool")]),
            HintError::Arity {
                op: "and".into(),
                expected: "at least 2",
                found: 1,
            },
        ),
        (
            cmp("equal", "x", "z", "long"),
            HintError::BadLiteral {
                value: "z".into(),
                value_type: "Long".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            JsonPredicate::try_parse(&text).err(),
            Some(expected),
            "{text}"
        );
    }
    assert!(matches!(
        JsonPredicate::try_parse("bad-predicates"),
        Err(HintError::Json(_))
    ));
}

/// `not` applied `n` times to a bool column: tree depth `n + 1`.
fn not_chain(n: usize) -> String {
    let mut text = col("b", "bool");
    for _ in 0..n {
        text = node("not", &[text]);
    }
    text
}

#[test]
fn depth_limit() {
    assert_eq!(MAX_DEPTH, 100);
    assert!(JsonPredicate::parse(&not_chain(MAX_DEPTH - 1)).is_some());
    assert_eq!(
        JsonPredicate::try_parse(&not_chain(MAX_DEPTH)).err(),
        Some(HintError::TooDeep)
    );
    // Depth counted through comparisons: 98 nots + equal + leaves = depth 100.
    let mut text = cmp("equal", "x", "1", "int");
    for _ in 0..MAX_DEPTH - 2 {
        text = node("not", &[text]);
    }
    assert!(JsonPredicate::parse(&text).is_some());
    assert!(JsonPredicate::parse(&node("not", &[text])).is_none());
    // Depth through and/or.
    let mut text = col("b", "bool");
    for _ in 0..MAX_DEPTH - 1 {
        text = node("or", &[text, col("c", "bool")]);
    }
    assert!(JsonPredicate::parse(&text).is_some());
    assert!(JsonPredicate::parse(&node("and", &[text, col("c", "bool")])).is_none());
    // Very deep garbage is rejected without blowing the stack.
    let deep = "[".repeat(200_000);
    assert!(JsonPredicate::parse(&deep).is_none());
    let deep = format!(
        "{}{}",
        r#"{"op":"not","children":["#.repeat(50_000),
        "]}".repeat(50_000)
    );
    assert!(JsonPredicate::parse(&deep).is_none());
}

#[test]
fn size_limit() {
    let base = cmp("equal", "x", "1", "int");
    let pad = MAX_TEXT_BYTES - base.len();
    let at_limit = format!("{base}{}", " ".repeat(pad));
    assert_eq!(at_limit.len(), MAX_TEXT_BYTES);
    assert!(JsonPredicate::parse(&at_limit).is_some());
    let over = format!("{at_limit} ");
    assert_eq!(
        JsonPredicate::try_parse(&over).err(),
        Some(HintError::TooLarge(MAX_TEXT_BYTES + 1))
    );
    // A hostile object with many (duplicate) keys is rejected quickly.
    let keys: Vec<String> = (0..60_000)
        .map(|i| format!("\"k{}\":0", i % 30_000))
        .collect();
    let hostile = format!(
        r#"{{"op":"column","name":"b","valueType":"bool",{}}}"#,
        keys.join(",")
    );
    assert!(hostile.len() < MAX_TEXT_BYTES);
    let started = std::time::Instant::now();
    assert!(JsonPredicate::parse(&hostile).is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A big but legal predicate: an `or` of many equalities (like a large IN list).
    let many: Vec<String> = (0..5000)
        .map(|i| cmp("equal", "x", &i.to_string(), "int"))
        .collect();
    let big = node("or", &many);
    assert!(big.len() < MAX_TEXT_BYTES);
    let p = parsed(&big);
    let file = File::new().part("x", "x", Some("4999"));
    assert!(p.may_match(&file.facts()));
    let file = File::new().part("x", "x", Some("5000"));
    assert!(!p.may_match(&file.facts()));
}

#[test]
fn columns_are_listed_lower_cased_once() {
    let text = node(
        "and",
        &[
            cmp("equal", "Day", "2021-01-01", "date"),
            node("isNull", &[col("A.B", "long")]),
            node(
                "or",
                &[
                    col("Flag", "bool"),
                    cmp("lessThan", "DAY", "2022-01-01", "date"),
                ],
            ),
            node("equal", &[col("x", "int"), col("Y", "int")]),
            lit("true", "bool"),
        ],
    );
    assert_eq!(
        parsed(&text).columns(),
        vec!["day", "a.b", "flag", "x", "y"]
    );
    assert!(parsed(&lit("true", "bool")).columns().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Constant sub-trees and three-valued logic
// ---------------------------------------------------------------------------------------------

#[test]
fn literal_comparisons_and_logic() {
    let file = File::new();
    let t = lit("true", "bool");
    let f = lit("false", "bool");
    let u = cmp("equal", "nowhere", "1", "int"); // unknown column
    let cases: Vec<(String, Tri)> = vec![
        (t.clone(), T),
        (f.clone(), F),
        (u.clone(), U),
        (node("equal", &[lit("1", "int"), lit("1", "int")]), T),
        (node("lessThan", &[lit("2", "long"), lit("1", "long")]), F),
        (
            node(
                "greaterThanOrEqual",
                &[lit("b", "string"), lit("a", "string")],
            ),
            T,
        ),
        (
            node("equal", &[lit("NaN", "double"), lit("NaN", "double")]),
            U,
        ),
        (
            node(
                "lessThan",
                &[lit("2021-01-01", "date"), lit("2021-01-02", "date")],
            ),
            T,
        ),
        (node("equal", &[col("a", "int"), col("b", "int")]), U),
        // and
        (node("and", &[t.clone(), t.clone()]), T),
        (node("and", &[t.clone(), u.clone()]), U),
        (node("and", &[u.clone(), f.clone()]), F),
        (node("and", &[f.clone(), u.clone(), t.clone()]), F),
        (node("and", &[u.clone(), u.clone()]), U),
        // or
        (node("or", &[f.clone(), f.clone()]), F),
        (node("or", &[f.clone(), u.clone()]), U),
        (node("or", &[u.clone(), t.clone()]), T),
        (node("or", &[f.clone(), f.clone(), t.clone()]), T),
        // not
        (node("not", std::slice::from_ref(&t)), F),
        (node("not", std::slice::from_ref(&f)), T),
        (node("not", std::slice::from_ref(&u)), U),
        (node("not", &[node("not", std::slice::from_ref(&f))]), F),
    ];
    for (text, expected) in cases {
        assert_eq!(tri(&text, &file), expected, "{text}");
        assert_eq!(
            parsed(&text).may_match(&file.facts()),
            expected != F,
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Partition columns
// ---------------------------------------------------------------------------------------------

#[test]
fn partition_comparisons_every_type() {
    // (valueType, partition value, op, literal, expected)
    let cases: Vec<(&str, &str, &str, &str, Tri)> = vec![
        ("int", "5", "equal", "5", T),
        ("int", "5", "equal", "6", F),
        ("int", "5", "lessThan", "6", T),
        ("int", "5", "lessThan", "5", F),
        ("int", "5", "lessThanOrEqual", "5", T),
        ("int", "5", "lessThanOrEqual", "4", F),
        ("int", "5", "greaterThan", "4", T),
        ("int", "5", "greaterThan", "5", F),
        ("int", "5", "greaterThanOrEqual", "5", T),
        ("int", "5", "greaterThanOrEqual", "6", F),
        ("int", "-7", "lessThan", "0", T),
        ("int", "abc", "equal", "5", U),
        ("long", "9223372036854775807", "greaterThan", "0", T),
        ("long", "10", "lessThan", "9", F),
        ("long", "1.0", "equal", "1", U),
        ("string", "b", "equal", "b", T),
        ("string", "b", "equal", "B", F),
        ("string", "b", "lessThan", "c", T),
        ("string", "b", "greaterThan", "ab", T),
        ("string", "é", "greaterThan", "z", T), // byte-wise order
        ("date", "2021-04-28", "equal", "2021-04-28", T),
        ("date", "2021-04-28", "lessThan", "2021-04-28", F),
        ("date", "2021-04-28", "greaterThanOrEqual", "2021-01-01", T),
        ("date", "2021-4-28", "equal", "2021-04-28", U),
        ("bool", "true", "equal", "true", T),
        ("bool", "false", "equal", "true", F),
        ("bool", "TRUE", "equal", "true", T),
        ("bool", "maybe", "equal", "true", U),
        ("float", "1.5", "equal", "1.5", T),
        ("float", "0.1", "equal", "0.1", T),
        ("float", "1.5", "greaterThan", "1.25", T),
        ("float", "Infinity", "greaterThan", "1e38", T),
        ("float", "NaN", "equal", "1", U),
        ("float", "NaN", "greaterThan", "1", U),
        ("double", "1.5", "lessThan", "1.25", F),
        ("double", "-Infinity", "lessThan", "-1e308", T),
        ("double", "NaN", "lessThan", "1", U),
        ("double", "1.5", "equal", "NaN", U),
        ("double", "x", "equal", "1", U),
        (
            "timestamp",
            "2021-04-28 23:33:57.955",
            "equal",
            "2021-04-28T23:33:57.955Z",
            T,
        ),
        (
            "timestamp",
            "2021-04-28 23:33:57",
            "equal",
            "2021-04-28T23:33:57Z",
            T,
        ),
        (
            "timestamp",
            "2021-04-28 23:33:57",
            "equal",
            "2021-04-29T01:33:57+02:00",
            T,
        ),
        (
            "timestamp",
            "2021-04-28T23:33:57.955Z",
            "equal",
            "2021-04-28T23:33:57.955Z",
            T,
        ),
        (
            "timestamp",
            "2021-04-28T23:33:57.955",
            "equal",
            "2021-04-28T23:33:57.955Z",
            T,
        ),
        (
            "timestamp",
            "2021-04-28 23:33:57.000001",
            "greaterThan",
            "2021-04-28T23:33:57Z",
            T,
        ),
        (
            "timestamp",
            "2021-04-28 23:33:57",
            "greaterThan",
            "2021-04-28T23:33:57Z",
            F,
        ),
        (
            "timestamp",
            "2021-04-28",
            "equal",
            "2021-04-28T00:00:00Z",
            U,
        ),
    ];
    for (vt, value, op, literal, expected) in cases {
        let file = File::new().part("p", "p", Some(value));
        let text = cmp(op, "p", literal, vt);
        assert_eq!(tri(&text, &file), expected, "{text} on p={value}");
        // Literal-first spelling gives the same answer.
        let swapped_op = match op {
            "lessThan" => "greaterThan",
            "lessThanOrEqual" => "greaterThanOrEqual",
            "greaterThan" => "lessThan",
            "greaterThanOrEqual" => "lessThanOrEqual",
            other => other,
        };
        let swapped = node(swapped_op, &[lit(literal, vt), col("p", vt)]);
        assert_eq!(tri(&swapped, &file), expected, "{swapped} on p={value}");
        // Partition values are exact, so `not` is exact too.
        let negated = node("not", &[text]);
        assert_eq!(tri(&negated, &file), expected.negate(), "{negated}");
        // isNull on a non-null partition value.
        assert_eq!(tri(&node("isNull", &[col("p", vt)]), &file), F);
    }
}

#[test]
fn null_partition_values() {
    for value in [None, Some("")] {
        let file = File::new().part("p", "p", value);
        let cases: Vec<(String, Tri)> = vec![
            (cmp("equal", "p", "1", "int"), F),
            (cmp("lessThan", "p", "1", "int"), F),
            (cmp("greaterThanOrEqual", "p", "a", "string"), F),
            (cmp("equal", "p", "", "string"), F),
            (col("p", "bool"), F),
            (node("isNull", &[col("p", "int")]), T),
            (node("not", &[node("isNull", &[col("p", "int")])]), F),
            // NOT(NULL = 1) is NULL in SQL: keeping the file is the safe answer.
            (node("not", &[cmp("equal", "p", "1", "int")]), T),
            (
                node(
                    "or",
                    &[
                        cmp("equal", "p", "1", "int"),
                        node("isNull", &[col("p", "int")]),
                    ],
                ),
                T,
            ),
            (
                node(
                    "and",
                    &[
                        cmp("equal", "p", "1", "int"),
                        node("isNull", &[col("p", "int")]),
                    ],
                ),
                F,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(tri(&text, &file), expected, "{text} with p={value:?}");
        }
    }
}

#[test]
fn partition_lookup_rules() {
    // Case-insensitive logical names, column mapping to physical keys.
    let file = File::new().part("Day", "col-5f2a", Some("2021-01-01"));
    assert_eq!(tri(&cmp("equal", "DAY", "2021-01-01", "date"), &file), T);
    assert_eq!(tri(&cmp("equal", "day", "2021-01-02", "date"), &file), F);
    // Partition key missing from partitionValues → unknown, not NULL.
    let mut file = File::new().part("p", "p", Some("1"));
    file.partition_values.clear();
    assert_eq!(tri(&cmp("equal", "p", "2", "int"), &file), U);
    assert_eq!(tri(&node("isNull", &[col("p", "int")]), &file), U);
    // partitionValues key differing only in case from the mapped key.
    let mut file = File::new();
    file.partition_columns.insert("p".into(), "P".into());
    file.partition_values.insert("p".into(), Some("3".into()));
    assert_eq!(tri(&cmp("equal", "p", "3", "int"), &file), T);
    // Ambiguous partition names → unknown.
    let file = File::new()
        .part("p", "p1", Some("1"))
        .part("P", "p2", Some("2"));
    assert_eq!(tri(&cmp("equal", "p", "9", "int"), &file), F); // exact key "p" wins
    assert_eq!(tri(&cmp("equal", "P", "9", "int"), &file), F);
    let file = File::new().part("Q", "q1", Some("1")).part("q ", "x", None);
    let mut file2 = file.clone();
    file2.partition_columns.insert("qQ".into(), "q2".into());
    file2.partition_columns.insert("QQ".into(), "q3".into());
    assert_eq!(tri(&cmp("equal", "qq", "9", "int"), &file2), U);
    // A partition column shadows stats with the same name.
    let file = File::new()
        .part("c", "c", Some("1"))
        .stats(col_stats(json!(5), json!(9), 0, 3));
    assert_eq!(tri(&cmp("equal", "c", "1", "int"), &file), T);
}

// ---------------------------------------------------------------------------------------------
// Data columns (stats)
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_range_comparisons() {
    // (valueType, min, max, op, literal, expected); nullCount 0 of 10 rows.
    let cases: Vec<(&str, serde_json::Value, serde_json::Value, &str, &str, Tri)> = vec![
        ("long", json!(1), json!(9), "equal", "5", U),
        ("long", json!(1), json!(9), "equal", "1", U),
        ("long", json!(1), json!(9), "equal", "0", F),
        ("long", json!(1), json!(9), "equal", "10", F),
        ("long", json!(5), json!(5), "equal", "5", T),
        ("long", json!(1), json!(9), "lessThan", "1", F),
        ("long", json!(1), json!(9), "lessThan", "2", U),
        ("long", json!(1), json!(9), "lessThan", "10", T),
        ("long", json!(1), json!(9), "lessThan", "9", U),
        ("long", json!(1), json!(9), "lessThanOrEqual", "0", F),
        ("long", json!(1), json!(9), "lessThanOrEqual", "1", U),
        ("long", json!(1), json!(9), "lessThanOrEqual", "9", T),
        ("long", json!(1), json!(9), "greaterThan", "9", F),
        ("long", json!(1), json!(9), "greaterThan", "8", U),
        ("long", json!(1), json!(9), "greaterThan", "0", T),
        ("long", json!(1), json!(9), "greaterThanOrEqual", "10", F),
        ("long", json!(1), json!(9), "greaterThanOrEqual", "9", U),
        ("long", json!(1), json!(9), "greaterThanOrEqual", "1", T),
        ("int", json!(-3), json!(-1), "greaterThan", "-1", F),
        ("int", json!(-3), json!(-1), "lessThan", "0", T),
        ("string", json!("b"), json!("d"), "equal", "a", F),
        ("string", json!("b"), json!("d"), "equal", "c", U),
        ("string", json!("b"), json!("d"), "lessThan", "b", F),
        ("string", json!("b"), json!("d"), "greaterThan", "d", F),
        ("string", json!("b"), json!("d"), "greaterThan", "a", T),
        ("string", json!(""), json!("a"), "lessThan", "", F),
        (
            "date",
            json!("2021-01-01"),
            json!("2021-12-31"),
            "equal",
            "2022-01-01",
            F,
        ),
        (
            "date",
            json!("2021-01-01"),
            json!("2021-12-31"),
            "lessThan",
            "2021-01-01",
            F,
        ),
        (
            "date",
            json!("2021-01-01"),
            json!("2021-12-31"),
            "greaterThanOrEqual",
            "2021-06-01",
            U,
        ),
        (
            "date",
            json!("2021-01-01"),
            json!("2021-01-01"),
            "equal",
            "2021-01-01",
            T,
        ),
        ("double", json!(0.5), json!(2.5), "equal", "3", F),
        ("double", json!(0.5), json!(2.5), "lessThan", "0.5", F),
        ("double", json!(0.5), json!(2.5), "greaterThan", "0.25", T),
        ("double", json!(-1), json!(1), "equal", "0", U), // integer JSON numbers are fine
        ("float", json!(0.1), json!(0.1), "equal", "0.1", T),
        (
            "float",
            json!(0.1_f32 as f64),
            json!(0.2),
            "greaterThanOrEqual",
            "0.1",
            T,
        ),
        ("float", json!(0.5), json!(2.5), "greaterThan", "2.5", F),
        ("bool", json!(false), json!(false), "equal", "true", F),
        ("bool", json!(false), json!(true), "equal", "true", U),
        ("bool", json!(true), json!(true), "equal", "true", T),
        // Unusable stats values → unknown.
        ("double", json!("NaN"), json!("NaN"), "equal", "1", U),
        ("double", json!(0.5), json!("NaN"), "greaterThan", "100", U),
        (
            "double",
            json!(0.5),
            json!("Infinity"),
            "greaterThan",
            "100",
            U,
        ),
        (
            "double",
            json!(0.5),
            json!("Infinity"),
            "lessThan",
            "0.5",
            F,
        ),
        ("double", json!(0.5), json!(1.0), "greaterThan", "NaN", U),
        ("long", json!(9), json!(1), "equal", "5", U), // inconsistent bounds
        ("long", json!(null), json!(null), "equal", "5", U),
        ("long", json!({"nested": 1}), json!(2), "lessThan", "1", U),
    ];
    for (vt, min, max, op, literal, expected) in cases {
        let file = File::new().stats(col_stats(min.clone(), max.clone(), 0, 10));
        let text = cmp(op, "c", literal, vt);
        assert_eq!(tri(&text, &file), expected, "{text} on [{min}, {max}]");
        let negated = node("not", &[text]);
        assert_eq!(tri(&negated, &file), expected.negate(), "{negated}");
    }
}

#[test]
fn stats_type_mismatch_is_unknown() {
    // (valueType of the predicate, min, max, literal)
    let cases: Vec<(&str, serde_json::Value, serde_json::Value, &str)> = vec![
        ("long", json!("1"), json!("9"), "100"), // string column compared as long
        ("int", json!(1.5), json!(2.5), "100"),  // double column compared as int
        ("date", json!(1), json!(2), "2021-01-01"), // number compared as date
        ("date", json!("2021-1-5"), json!("2021-1-9"), "2022-01-01"), // non-canonical dates
        ("string", json!(1), json!(2), "zzz"),
        ("timestamp", json!(1), json!(2), "2030-01-01T00:00:00Z"),
        ("bool", json!(0), json!(0), "true"),
        ("double", json!(true), json!(true), "5"),
    ];
    for (vt, min, max, literal) in cases {
        let file = File::new().stats(col_stats(min.clone(), max.clone(), 0, 10));
        for op in ["equal", "lessThan", "greaterThan"] {
            let text = cmp(op, "c", literal, vt);
            assert_eq!(tri(&text, &file), U, "{text} on [{min}, {max}]");
        }
    }
}

#[test]
fn missing_stats_keep_the_file() {
    let text = cmp("equal", "c", "5", "long");
    let not_null = node("not", &[node("isNull", &[col("c", "long")])]);
    let is_null = node("isNull", &[col("c", "long")]);
    let files: Vec<(&str, File)> = vec![
        ("no stats", File::new()),
        ("stats not an object", File::new().stats(json!("oops"))),
        ("empty stats", File::new().stats(json!({}))),
        (
            "only numRecords",
            File::new().stats(json!({"numRecords": 10})),
        ),
        (
            "other column only",
            File::new().stats(json!({"numRecords": 10, "minValues": {"d": 1},
                "maxValues": {"d": 1}, "nullCount": {"d": 0}})),
        ),
        (
            "min only",
            File::new().stats(json!({"numRecords": 10, "minValues": {"c": 1}})),
        ),
    ];
    for (label, file) in files {
        for t in [&text, &not_null, &is_null] {
            assert_eq!(tri(t, &file), U, "{label}: {t}");
            assert!(parsed(t).may_match(&file.facts()), "{label}: {t}");
        }
    }
    // One bound is still used when the other is missing.
    let file = File::new().stats(json!({"numRecords": 10, "minValues": {"c": 7}}));
    assert_eq!(tri(&cmp("lessThan", "c", "5", "long"), &file), F);
    assert_eq!(tri(&cmp("greaterThan", "c", "5", "long"), &file), T);
    assert_eq!(tri(&cmp("equal", "c", "9", "long"), &file), U);
    let file = File::new().stats(json!({"numRecords": 10, "maxValues": {"c": 3}}));
    assert_eq!(tri(&cmp("greaterThan", "c", "5", "long"), &file), F);
    assert_eq!(tri(&cmp("lessThan", "c", "5", "long"), &file), T);
}

#[test]
fn is_null_on_data_columns() {
    let is_null = node("isNull", &[col("c", "long")]);
    let not_null = node("not", std::slice::from_ref(&is_null));
    let eq = cmp("equal", "c", "5", "long");
    let not_eq = node("not", std::slice::from_ref(&eq));
    // (stats, has DV, isNull, not isNull, equal 5, not equal 5)
    let cases: Vec<(serde_json::Value, bool, Tri, Tri, Tri, Tri)> = vec![
        (col_stats(json!(1), json!(9), 0, 10), false, F, T, U, U),
        (col_stats(json!(1), json!(9), 3, 10), false, U, U, U, U),
        (col_stats(json!(5), json!(5), 3, 10), false, U, U, T, F),
        (col_stats(json!(6), json!(9), 3, 10), false, U, U, F, T),
        // All rows NULL: no stats bounds, but nullCount == numRecords.
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}}),
            false,
            T,
            F,
            F,
            T,
        ),
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}, "minValues": {"c": null}}),
            false,
            T,
            F,
            F,
            T,
        ),
        // Empty file.
        (
            json!({"numRecords": 0, "nullCount": {"c": 0}}),
            false,
            F,
            T,
            F,
            T,
        ),
        // nullCount missing → unknown even with min/max (the reference's unsafe rule not copied).
        (
            json!({"numRecords": 4, "minValues": {"c": 1}, "maxValues": {"c": 2}}),
            false,
            U,
            U,
            F,
            T,
        ),
        (json!({"nullCount": {"c": 4}}), false, U, U, U, U),
        // Deletion vector with loose stats: counts may over-count → no "all NULL" pruning...
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}, "tightBounds": false}),
            true,
            U,
            U,
            U,
            U,
        ),
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}}),
            true,
            U,
            U,
            U,
            U,
        ),
        // ... but a zero null count is still exact.
        (
            json!({"numRecords": 4, "nullCount": {"c": 0}, "tightBounds": false,
                "minValues": {"c": 5}, "maxValues": {"c": 5}}),
            true,
            F,
            T,
            T,
            F,
        ),
        // Deletion vector with tight stats: counts are exact.
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}, "tightBounds": true}),
            true,
            T,
            F,
            F,
            T,
        ),
        // tightBounds:false without a DV: the counts are not affected by deletes.
        (
            json!({"numRecords": 4, "nullCount": {"c": 4}, "tightBounds": false}),
            false,
            T,
            F,
            F,
            T,
        ),
    ];
    for (stats, dv, e_null, e_not_null, e_eq, e_not_eq) in cases {
        let mut file = File::new().stats(stats.clone());
        file.dv = dv;
        assert_eq!(tri(&is_null, &file), e_null, "isNull on {stats} dv={dv}");
        assert_eq!(
            tri(&not_null, &file),
            e_not_null,
            "not isNull on {stats} dv={dv}"
        );
        assert_eq!(tri(&eq, &file), e_eq, "equal on {stats} dv={dv}");
        assert_eq!(
            tri(&not_eq, &file),
            e_not_eq,
            "not equal on {stats} dv={dv}"
        );
    }
    // Loose bounds under a DV are still valid bounds for comparisons.
    let file = File::new().dv().stats(
        json!({"numRecords": 4, "nullCount": {"c": 1}, "tightBounds": false,
            "minValues": {"c": 1}, "maxValues": {"c": 3}}),
    );
    assert_eq!(tri(&cmp("greaterThan", "c", "3", "long"), &file), F);
}

#[test]
fn timestamp_stats_use_max_plus_one_millisecond() {
    let stats = col_stats(
        json!("2021-04-28T23:33:57.000Z"),
        json!("2021-04-28T23:33:57.955Z"),
        0,
        10,
    );
    let file = File::new().stats(stats);
    let cases: Vec<(&str, &str, Tri)> = vec![
        // A real value up to 23:33:57.955999 may exist.
        ("greaterThan", "2021-04-28T23:33:57.955Z", U),
        ("greaterThan", "2021-04-28T23:33:57.955500Z", U),
        ("equal", "2021-04-28T23:33:57.955999Z", U),
        ("greaterThanOrEqual", "2021-04-28T23:33:57.955999Z", U),
        ("greaterThan", "2021-04-28T23:33:57.956Z", F),
        ("equal", "2021-04-28T23:33:57.956001Z", F),
        ("greaterThanOrEqual", "2021-04-28T23:33:57.956001Z", F),
        ("greaterThan", "2021-04-29T01:33:57.956+02:00", F),
        // max + 1 ms is only an upper bound: "every value is below" needs lit > max + 1 ms.
        ("lessThan", "2021-04-28T23:33:57.955Z", U),
        // The widened max is treated as an inclusive bound (conservative by 1 µs).
        ("lessThan", "2021-04-28T23:33:57.956Z", U),
        ("lessThan", "2021-04-28T23:33:57.956001Z", T),
        ("lessThanOrEqual", "2021-04-28T23:33:57.956Z", T),
        // min is used as is.
        ("lessThan", "2021-04-28T23:33:57Z", F),
        ("lessThanOrEqual", "2021-04-28T23:33:57Z", U),
        ("lessThan", "2021-04-28T23:33:56.999999Z", F),
        ("greaterThanOrEqual", "2021-04-28T23:33:57Z", T),
        ("equal", "2021-04-28T23:33:56.999Z", F),
    ];
    for (op, literal, expected) in cases {
        let text = cmp(op, "c", literal, "timestamp");
        assert_eq!(tri(&text, &file), expected, "{text}");
    }
    // A point range of timestamp stats is never "every row equals".
    let file = File::new().stats(col_stats(
        json!("2021-04-28T23:33:57.955Z"),
        json!("2021-04-28T23:33:57.955Z"),
        0,
        10,
    ));
    assert_eq!(
        tri(
            &cmp("equal", "c", "2021-04-28T23:33:57.955Z", "timestamp"),
            &file
        ),
        U
    );
    // Zone offsets in stats and zone-less (timestamp_ntz) stats.
    let file = File::new().stats(col_stats(
        json!("2021-04-28T16:33:57.000-07:00"),
        json!("2021-04-28T23:33:58.000"),
        0,
        10,
    ));
    assert_eq!(
        tri(
            &cmp("lessThan", "c", "2021-04-28T23:33:57Z", "timestamp"),
            &file
        ),
        F
    );
    assert_eq!(
        tri(
            &cmp("greaterThan", "c", "2021-04-28T23:33:58.001Z", "timestamp"),
            &file
        ),
        F
    );
    assert_eq!(
        tri(
            &cmp("greaterThan", "c", "2021-04-28T23:33:58.0005Z", "timestamp"),
            &file
        ),
        U
    );
}

#[test]
fn truncated_string_stats_are_bounds() {
    // Real values: "abcdefgh…" (long); Delta stored min = prefix, max = prefix + tie-breaker.
    let file = File::new().stats(col_stats(json!("abc"), json!("abc\u{10FFFF}"), 0, 10));
    let cases: Vec<(&str, &str, Tri)> = vec![
        ("equal", "abcdefgh", U),
        ("equal", "abc", U),
        ("equal", "abd", F),
        ("equal", "abb", F),
        ("greaterThan", "abczzzzzzzz", U),
        ("greaterThan", "abd", F),
        ("lessThan", "abd", T),
        ("lessThan", "abc", F),
        ("lessThanOrEqual", "abc", U),
        ("greaterThanOrEqual", "abc", T),
    ];
    for (op, literal, expected) in cases {
        let text = cmp(op, "c", literal, "string");
        assert_eq!(tri(&text, &file), expected, "{text}");
    }
}

#[test]
fn data_column_names_and_nesting() {
    let stats = json!({
        "numRecords": 10,
        "minValues": {"Id": 1, "a": {"B": {"c": 10}}, "x.y": 100, "col-7": {"col-8": 50}},
        "maxValues": {"Id": 5, "a": {"B": {"c": 20}}, "x.y": 200, "col-7": {"col-8": 60}},
        "nullCount": {"Id": 0, "a": {"B": {"c": 0}}, "x.y": 0, "col-7": {"col-8": 0}},
    });
    let file = File::new().stats(stats.clone());
    let cases: Vec<(String, Tri)> = vec![
        (cmp("equal", "id", "9", "long"), F),
        (cmp("equal", "ID", "3", "long"), U),
        (cmp("greaterThan", "a.b.c", "20", "long"), F),
        (cmp("greaterThan", "A.b.C", "15", "long"), U),
        (cmp("lessThan", "a.b.c", "25", "long"), T),
        (node("isNull", &[col("a.b.c", "long")]), F),
        (node("isNull", &[col("a.b", "long")]), U), // a struct: no usable nullCount
        (cmp("equal", "a.b", "1", "long"), U),
        (cmp("equal", "x.y", "1", "long"), F), // top-level name containing a dot
        (cmp("equal", "a.c", "1", "long"), U),
        (cmp("equal", "unknown", "1", "long"), U),
    ];
    for (text, expected) in &cases {
        assert_eq!(tri(text, &file), *expected, "{text}");
    }
    // Column mapping: logical → physical (dotted for nested columns).
    let file = File::new()
        .stats(stats)
        .physical("m.n", "col-7.col-8")
        .physical("p", "col-7.col-8");
    assert_eq!(tri(&cmp("equal", "M.N", "10", "long"), &file), F);
    assert_eq!(tri(&cmp("equal", "p", "55", "long"), &file), U);
    assert_eq!(tri(&cmp("equal", "p", "61", "long"), &file), F);
    // With a mapping present, unmapped names are unknown even if the stats have them.
    assert_eq!(tri(&cmp("equal", "id", "9", "long"), &file), U);
}

#[test]
fn standalone_bool_columns() {
    let flag = col("flag", "bool");
    let not_flag = node("not", std::slice::from_ref(&flag));
    let cases: Vec<(File, Tri)> = vec![
        (File::new().part("flag", "flag", Some("true")), T),
        (File::new().part("flag", "flag", Some("false")), F),
        (File::new().part("flag", "flag", None), F),
        (
            File::new().stats(json!({"numRecords": 2, "nullCount": {"flag": 0}})),
            U,
        ),
        (
            File::new().stats(json!({"numRecords": 2, "nullCount": {"flag": 2}})),
            F,
        ),
        (
            File::new().stats(json!({"numRecords": 2, "minValues": {"flag": false},
                "maxValues": {"flag": false}, "nullCount": {"flag": 0}})),
            F,
        ),
    ];
    for (file, expected) in cases {
        assert_eq!(tri(&flag, &file), expected);
        let neg = tri(&not_flag, &file);
        // NOT(NULL) on a NULL partition is kept (True); otherwise exact negation.
        assert_eq!(neg, expected.negate());
    }
}

#[test]
fn nan_handling() {
    let file = File::new().stats(col_stats(json!(1.0), json!(2.0), 0, 10));
    for op in [
        "equal",
        "lessThan",
        "greaterThan",
        "lessThanOrEqual",
        "greaterThanOrEqual",
    ] {
        for vt in ["float", "double"] {
            let text = cmp(op, "c", "NaN", vt);
            assert_eq!(tri(&text, &file), U, "{text}");
            assert_eq!(tri(&node("not", &[text]), &file), U);
        }
    }
    let file = File::new().part("c", "c", Some("NaN"));
    assert_eq!(tri(&cmp("equal", "c", "NaN", "double"), &file), U);
    assert_eq!(tri(&cmp("greaterThan", "c", "1", "double"), &file), U);
    assert_eq!(tri(&node("isNull", &[col("c", "double")]), &file), F);
}

#[test]
fn bad_predicates_keep_every_file() {
    // What the stock test suites send.
    for text in ["bad-predicates", "", "{", "{\"op\":\"equal\"}"] {
        assert!(JsonPredicate::parse(text).is_none(), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Property check: soundness against concrete rows
// ---------------------------------------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// A concrete cell value.
#[derive(Debug, Clone, PartialEq)]
enum V {
    I(i64),
    S(String),
    /// Microseconds since the epoch.
    Ts(i64),
    B(bool),
    D(f64),
}

impl V {
    fn cmp(&self, other: &V) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (V::I(a), V::I(b)) => Some(a.cmp(b)),
            (V::S(a), V::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (V::Ts(a), V::Ts(b)) => Some(a.cmp(b)),
            (V::B(a), V::B(b)) => Some(a.cmp(b)),
            (V::D(a), V::D(b)) => a.partial_cmp(b),
            _ => None,
        }
    }

    fn literal_text(&self) -> String {
        match self {
            V::I(i) => i.to_string(),
            V::S(s) => s.clone(),
            V::Ts(us) => ts_text(*us, chrono::SecondsFormat::Micros),
            V::B(b) => b.to_string(),
            V::D(d) => d.to_string(),
        }
    }
}

fn ts_text(micros: i64, format: chrono::SecondsFormat) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(format, true)
}

const BASE_TS: i64 = 1_619_652_837_955_000; // 2021-04-28T23:33:57.955Z

/// The columns of the generated table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum C {
    /// Partition column `p`, int.
    P,
    /// Data column `x`, long.
    X,
    /// Data column `s`, string (stats truncated to 2 characters).
    S,
    /// Data column `t`, timestamp (stats truncated to milliseconds).
    T,
    /// Data column `b`, bool.
    B,
    /// Nested data column `n.y`, long.
    Ny,
    /// Data column `d`, double.
    D,
}

const COLUMNS: [C; 7] = [C::P, C::X, C::S, C::T, C::B, C::Ny, C::D];

impl C {
    fn name(self) -> &'static str {
        match self {
            C::P => "p",
            C::X => "x",
            C::S => "s",
            C::T => "t",
            C::B => "b",
            C::Ny => "n.y",
            C::D => "d",
        }
    }
    fn value_type(self, rng: &mut Rng) -> &'static str {
        match self {
            C::P | C::X | C::Ny => rng.pick(&["int", "long"]),
            C::S => "string",
            C::T => "timestamp",
            C::B => "bool",
            C::D => "double",
        }
    }
    /// A random value of this column (also used for literals, with a wider range).
    fn random(self, rng: &mut Rng, literal: bool) -> V {
        let spread = if literal { 2 } else { 0 };
        match self {
            C::P | C::X | C::Ny => V::I(rng.below(5 + 2 * spread) as i64 - 2 - spread as i64),
            C::S => V::S(
                rng.pick(&["", "a", "ab", "abc", "abd", "b", "ba", "bzz", "c"])
                    .to_string(),
            ),
            C::T => V::Ts(BASE_TS + 250 * (rng.below(10 + 2 * spread) as i64 - spread as i64)),
            C::B => V::B(rng.chance(50)),
            C::D => V::D(rng.pick(&[-1.5, 0.0, 0.25, 2.0, 3.5])),
        }
    }
    /// Upper/lower-case variant of the name for the predicate.
    fn spelled(self, rng: &mut Rng) -> String {
        if rng.chance(30) {
            self.name().to_uppercase()
        } else {
            self.name().to_string()
        }
    }
}

/// Generated predicate.
#[derive(Debug, Clone)]
enum P {
    Lit(bool),
    BoolCol(String),
    IsNull(C, String),
    Cmp {
        op: &'static str,
        column: C,
        spelled: String,
        value_type: &'static str,
        literal: V,
        literal_first: bool,
    },
    ColCol(C, C),
    And(Vec<P>),
    Or(Vec<P>),
    Not(Box<P>),
}

const OPS: [&str; 5] = [
    "equal",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
];

fn gen_pred(rng: &mut Rng, depth: usize) -> P {
    let leaf = depth >= 4 || rng.chance(40);
    if leaf {
        return match rng.below(20) {
            0 => P::Lit(rng.chance(50)),
            1 => P::BoolCol(C::B.spelled(rng)),
            2 => P::ColCol(C::X, C::Ny),
            3..=5 => {
                let c = rng.pick(&COLUMNS);
                P::IsNull(c, c.spelled(rng))
            }
            _ => {
                let column = rng.pick(&COLUMNS);
                P::Cmp {
                    op: rng.pick(&OPS),
                    column,
                    spelled: column.spelled(rng),
                    value_type: column.value_type(rng),
                    literal: column.random(rng, true),
                    literal_first: rng.chance(30),
                }
            }
        };
    }
    match rng.below(3) {
        0 => P::Not(Box::new(gen_pred(rng, depth + 1))),
        k => {
            let n = 2 + rng.below(2);
            let children = (0..n).map(|_| gen_pred(rng, depth + 1)).collect();
            if k == 1 {
                P::And(children)
            } else {
                P::Or(children)
            }
        }
    }
}

fn render(p: &P) -> String {
    match p {
        P::Lit(b) => lit(&b.to_string(), "bool"),
        P::BoolCol(name) => col(name, "bool"),
        P::IsNull(c, name) => node("isNull", &[col(name, c.value_type(&mut Rng(1)))]),
        P::Cmp {
            op,
            spelled,
            value_type,
            literal,
            literal_first,
            ..
        } => {
            let c = col(spelled, value_type);
            let l = lit(&literal.literal_text(), value_type);
            if *literal_first {
                let swapped = match *op {
                    "lessThan" => "greaterThan",
                    "lessThanOrEqual" => "greaterThanOrEqual",
                    "greaterThan" => "lessThan",
                    "greaterThanOrEqual" => "lessThanOrEqual",
                    other => other,
                };
                node(swapped, &[l, c])
            } else {
                node(op, &[c, l])
            }
        }
        P::ColCol(a, b) => node("lessThan", &[col(a.name(), "long"), col(b.name(), "long")]),
        P::And(children) => node("and", &children.iter().map(render).collect::<Vec<_>>()),
        P::Or(children) => node("or", &children.iter().map(render).collect::<Vec<_>>()),
        P::Not(child) => node("not", &[render(child)]),
    }
}

type Row = HashMap<&'static str, Option<V>>;

/// SQL semantics of `p` on one row: `None` = NULL.
fn sql(p: &P, row: &Row) -> Option<bool> {
    let get = |c: C| row.get(c.name()).cloned().flatten();
    match p {
        P::Lit(b) => Some(*b),
        P::BoolCol(_) => match get(C::B) {
            Some(V::B(b)) => Some(b),
            _ => None,
        },
        P::IsNull(c, _) => Some(get(*c).is_none()),
        P::Cmp {
            op,
            column,
            literal,
            ..
        } => {
            let v = get(*column)?;
            let ord = v.cmp(literal)?;
            Some(match *op {
                "equal" => ord.is_eq(),
                "lessThan" => ord.is_lt(),
                "lessThanOrEqual" => ord.is_le(),
                "greaterThan" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        P::ColCol(a, b) => Some(get(*a)?.cmp(&get(*b)?)?.is_lt()),
        P::And(children) => {
            let vals: Vec<Option<bool>> = children.iter().map(|c| sql(c, row)).collect();
            if vals.contains(&Some(false)) {
                Some(false)
            } else if vals.contains(&None) {
                None
            } else {
                Some(true)
            }
        }
        P::Or(children) => {
            let vals: Vec<Option<bool>> = children.iter().map(|c| sql(c, row)).collect();
            if vals.contains(&Some(true)) {
                Some(true)
            } else if vals.contains(&None) {
                None
            } else {
                Some(false)
            }
        }
        P::Not(child) => sql(child, row).map(|b| !b),
    }
}

fn stats_json(v: &V, is_max: bool) -> serde_json::Value {
    match v {
        V::I(i) => json!(i),
        V::B(b) => json!(b),
        V::D(d) => json!(d),
        // Delta truncates timestamp stats to milliseconds (floor).
        V::Ts(us) => json!(ts_text(
            us.div_euclid(1000) * 1000,
            chrono::SecondsFormat::Millis
        )),
        V::S(s) => {
            // Truncate to 2 characters; the max gets a tie-breaker when truncated.
            let prefix: String = s.chars().take(2).collect();
            if is_max && prefix.len() < s.len() {
                json!(format!("{prefix}\u{10FFFF}"))
            } else {
                json!(prefix)
            }
        }
    }
}

/// Computes Delta-style stats from rows, then randomly degrades them.
fn make_stats(rng: &mut Rng, rows: &[Row]) -> serde_json::Value {
    let mut min = serde_json::Map::new();
    let mut max = serde_json::Map::new();
    let mut nulls = serde_json::Map::new();
    let mut nested = [
        serde_json::Map::new(),
        serde_json::Map::new(),
        serde_json::Map::new(),
    ];
    for c in COLUMNS {
        if c == C::P {
            continue;
        }
        let values: Vec<V> = rows
            .iter()
            .filter_map(|r| r.get(c.name()).cloned().flatten())
            .collect();
        let null_count = (rows.len() - values.len()) as u64;
        let mut lo: Option<V> = None;
        let mut hi: Option<V> = None;
        for v in &values {
            if lo
                .as_ref()
                .is_none_or(|l| v.cmp(l).is_some_and(|o| o.is_lt()))
            {
                lo = Some(v.clone());
            }
            if hi
                .as_ref()
                .is_none_or(|h| v.cmp(h).is_some_and(|o| o.is_gt()))
            {
                hi = Some(v.clone());
            }
        }
        let entries = [
            lo.map(|v| stats_json(&v, false)),
            hi.map(|v| stats_json(&v, true)),
            Some(json!(null_count)),
        ];
        for (i, (entry, target)) in entries
            .into_iter()
            .zip([&mut min, &mut max, &mut nulls])
            .enumerate()
        {
            // Randomly leave a statistic out.
            let Some(entry) = entry.filter(|_| !rng.chance(10)) else {
                continue;
            };
            if c == C::Ny {
                nested[i].insert("y".into(), entry);
            } else {
                target.insert(c.name().into(), entry);
            }
        }
    }
    for (i, target) in [&mut min, &mut max, &mut nulls].into_iter().enumerate() {
        let n = std::mem::take(&mut nested[i]);
        if !n.is_empty() {
            target.insert("N".into(), serde_json::Value::Object(n));
        }
    }
    let mut stats = serde_json::Map::new();
    if !rng.chance(5) {
        stats.insert("numRecords".into(), json!(rows.len()));
    }
    stats.insert("minValues".into(), serde_json::Value::Object(min));
    stats.insert("maxValues".into(), serde_json::Value::Object(max));
    stats.insert("nullCount".into(), serde_json::Value::Object(nulls));
    serde_json::Value::Object(stats)
}

#[test]
fn randomized_soundness() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut pruned = 0usize;
    let mut claimed_true = 0usize;
    let files = 400;
    let preds_per_file = 60;
    let preds: Vec<P> = (0..500).map(|_| gen_pred(&mut rng, 0)).collect();
    for _ in 0..files {
        // One partition value for the file: a number, JSON null or empty string (= NULL).
        let p_text = match rng.below(6) {
            0 => None,
            1 => Some(String::new()),
            _ => Some((rng.below(5) as i64 - 2).to_string()),
        };
        let p_value = p_text
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse::<i64>().ok())
            .map(V::I);
        let n_rows = rng.below(5);
        let physical: Vec<Row> = (0..n_rows)
            .map(|_| {
                let mut row: Row = HashMap::new();
                row.insert("p", p_value.clone());
                for c in COLUMNS {
                    if c != C::P {
                        let v = (!rng.chance(25)).then(|| c.random(&mut rng, false));
                        row.insert(c.name(), v);
                    }
                }
                row
            })
            .collect();
        // Deletion vectors: some rows deleted; stats either recomputed (tight) or not.
        let dv = n_rows > 0 && rng.chance(25);
        let live: Vec<Row> = if dv {
            physical
                .iter()
                .filter(|_| rng.chance(60))
                .cloned()
                .collect()
        } else {
            physical.clone()
        };
        let tight = match rng.below(3) {
            0 => Some(true),
            1 => Some(false),
            _ => None,
        };
        let mut file = File::new();
        file.partition_columns.insert("P".into(), "p".into());
        file.partition_values.insert("p".into(), p_text.clone());
        file.dv = dv;
        if !rng.chance(10) {
            let tight_stats = dv && tight == Some(true);
            let mut stats = make_stats(&mut rng, if tight_stats { &live } else { &physical });
            if let (Some(t), Some(obj)) = (tight, stats.as_object_mut()) {
                obj.insert("tightBounds".into(), json!(t));
            }
            file.stats = Some(stats);
        }
        for _ in 0..preds_per_file {
            let p = &rng.pick(&preds);
            let text = render(p);
            let predicate = parsed(&text);
            let got = eval(&predicate.root, &file.facts());
            let any_true = live.iter().any(|r| sql(p, r) == Some(true));
            let any_false = live.iter().any(|r| sql(p, r) == Some(false));
            if got == F {
                pruned += 1;
                assert!(
                    !any_true,
                    "unsound False: {text}\nrows {live:?}\nstats {:?} dv={dv}",
                    file.stats
                );
            }
            if got == T {
                claimed_true += 1;
                assert!(
                    !any_false,
                    "unsound True: {text}\nrows {live:?}\nstats {:?} dv={dv}",
                    file.stats
                );
            }
            assert_eq!(predicate.may_match(&file.facts()), got != F);
        }
    }
    // The evaluator must not be trivially conservative.
    let total = files * preds_per_file;
    assert!(pruned * 10 > total, "only {pruned} of {total} pruned");
    assert!(
        claimed_true * 10 > total,
        "only {claimed_true} of {total} claimed true"
    );
}

#[test]
fn json_reader_edge_cases() {
    use super::json::{Json, parse};
    assert_eq!(
        parse(
            r#" {"a": [1, -2.5e3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]} "#,
            10
        ),
        Ok(Json::Object(vec![(
            "a".into(),
            Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-2.5e3".into()),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::String("x\"\\/\u{8}\u{c}\n\r\té😀".into()),
            ])
        )]))
    );
    for bad in [
        "",
        "nul",
        "tru",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "01",
        "1.",
        "-",
        "1e",
        "\"\u{1}\"",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\udc00\"",
        "{1:2}",
        "[",
        "]",
    ] {
        assert!(parse(bad, 10).is_err(), "{bad:?}");
    }
    assert_eq!(parse("[[[]]]", 3).map(|_| ()), Ok(()));
    assert_eq!(parse("[[[[]]]]", 3), Err(HintError::TooDeep));
    // Non-ASCII text is kept intact around escapes.
    assert_eq!(parse("\"é\\n€\"", 1), Ok(Json::String("é\n€".into())));
}
