//! JSON text → validated predicate tree.
//!
//! Validation is all-or-nothing: any problem anywhere in the tree (unknown op or `valueType`,
//! wrong arity, a non-leaf where a leaf is required, mismatched `valueType`s, a literal that does
//! not parse in its `valueType`, size or depth over the limits) rejects the whole predicate.

use super::HintError;
use super::eval::{Tri, fold_case};
use super::json::{self, Json};
use super::value::{Value, ValueType};

/// Maximum accepted hint text, in bytes (protocol: ≤ 1 MiB).
pub(crate) const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Maximum tree depth (protocol: ≤ 100). The root is at depth 1, so a comparison of a column with
/// a literal has depth 2.
pub(crate) const MAX_DEPTH: usize = 100;
/// JSON nesting needed for a tree of `MAX_DEPTH`: a node at tree depth d is an object at JSON
/// nesting 2d - 1 (each level adds the node object and its `children` array). A little slack
/// covers an empty `children` array on a deepest leaf; deeper JSON cannot be a valid tree.
const MAX_JSON_NESTING: usize = 2 * MAX_DEPTH + 1;

/// A column leaf. `name` is lower-cased (names match case-insensitively).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) value_type: ValueType,
}

/// Comparison operators, always read as `column <op> literal` after normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Equal,
    LessThan,
    LessThanOrEqual,
    GreaterThan,
    GreaterThanOrEqual,
}

impl CmpOp {
    fn from_name(op: &str) -> Option<CmpOp> {
        Some(match op {
            "equal" => CmpOp::Equal,
            "lessThan" => CmpOp::LessThan,
            "lessThanOrEqual" => CmpOp::LessThanOrEqual,
            "greaterThan" => CmpOp::GreaterThan,
            "greaterThanOrEqual" => CmpOp::GreaterThanOrEqual,
            _ => return None,
        })
    }

    /// The operator with its operands swapped: `lit < col` ⇔ `col > lit`.
    fn swapped(self) -> CmpOp {
        match self {
            CmpOp::Equal => CmpOp::Equal,
            CmpOp::LessThan => CmpOp::GreaterThan,
            CmpOp::LessThanOrEqual => CmpOp::GreaterThanOrEqual,
            CmpOp::GreaterThan => CmpOp::LessThan,
            CmpOp::GreaterThanOrEqual => CmpOp::LessThanOrEqual,
        }
    }

    /// Applies the operator to an ordering of `left` relative to `right`.
    pub(crate) fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Equal => ord == Equal,
            CmpOp::LessThan => ord == Less,
            CmpOp::LessThanOrEqual => ord != Greater,
            CmpOp::GreaterThan => ord == Greater,
            CmpOp::GreaterThanOrEqual => ord != Less,
        }
    }
}

/// The validated predicate tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A sub-tree whose value does not depend on the file (bool literal, literal-vs-literal).
    Const(Tri),
    /// `isNull(column)`.
    IsNull(Column),
    /// `column <op> literal` (a literal-first comparison is stored swapped). A standalone bool
    /// column is stored as `column equal true`.
    Compare {
        column: Column,
        op: CmpOp,
        literal: Value,
    },
    /// A comparison of two columns: always unknown, kept for [`Expr::columns`].
    ColumnVsColumn(Column, Column),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    /// Number of nodes: the cost of evaluating the tree against one file.
    pub(crate) fn node_count(&self) -> u64 {
        match self {
            Expr::Const(_) | Expr::IsNull(_) | Expr::Compare { .. } | Expr::ColumnVsColumn(..) => 1,
            Expr::And(children) | Expr::Or(children) => {
                1 + children.iter().map(Expr::node_count).sum::<u64>()
            }
            Expr::Not(child) => 1 + child.node_count(),
        }
    }

    /// Appends every column leaf (with its valueType), in tree order.
    pub(crate) fn collect_typed_columns<'a>(&'a self, out: &mut Vec<&'a Column>) {
        match self {
            Expr::Const(_) => {}
            Expr::IsNull(c) | Expr::Compare { column: c, .. } => out.push(c),
            Expr::ColumnVsColumn(a, b) => {
                out.push(a);
                out.push(b);
            }
            Expr::And(children) | Expr::Or(children) => {
                for child in children {
                    child.collect_typed_columns(out);
                }
            }
            Expr::Not(child) => child.collect_typed_columns(out),
        }
    }

    /// Appends the referenced (lower-cased) column names, without duplicates, in tree order.
    pub(crate) fn collect_columns(&self, out: &mut Vec<String>) {
        let mut push = |c: &Column| {
            if !out.contains(&c.name) {
                out.push(c.name.clone());
            }
        };
        match self {
            Expr::Const(_) => {}
            Expr::IsNull(c) | Expr::Compare { column: c, .. } => push(c),
            Expr::ColumnVsColumn(a, b) => {
                push(a);
                push(b);
            }
            Expr::And(children) | Expr::Or(children) => {
                for child in children {
                    child.collect_columns(out);
                }
            }
            Expr::Not(child) => child.collect_columns(out),
        }
    }
}

/// Parses and validates hint text.
pub(crate) fn parse_predicate(text: &str) -> Result<Expr, HintError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(HintError::TooLarge(text.len()));
    }
    if text.trim().is_empty() {
        return Err(HintError::Empty);
    }
    let doc = json::parse(text, MAX_JSON_NESTING)?;
    predicate(&doc, 1)
}

/// A leaf after validation.
enum Leaf {
    Column(Column),
    Literal(Value, ValueType),
}

/// The fields of one node object.
struct Node<'a> {
    op: &'a str,
    children: &'a [Json],
    members: &'a [(String, Json)],
}

impl<'a> Node<'a> {
    fn read(json: &'a Json) -> Result<Node<'a>, HintError> {
        let Json::Object(members) = json else {
            return Err(HintError::Invalid(format!(
                "a predicate node must be an object, found {}",
                json.kind()
            )));
        };
        let op = match get(members, "op") {
            Some(Json::String(op)) => op.as_str(),
            Some(other) => {
                return Err(HintError::Invalid(format!(
                    "\"op\" must be a string, found {}",
                    other.kind()
                )));
            }
            None => return Err(HintError::Invalid("missing \"op\"".into())),
        };
        let children: &[Json] = match get(members, "children") {
            Some(Json::Array(items)) => items,
            None | Some(Json::Null) => &[],
            Some(other) => {
                return Err(HintError::Invalid(format!(
                    "\"children\" must be an array, found {}",
                    other.kind()
                )));
            }
        };
        Ok(Node {
            op,
            children,
            members,
        })
    }

    fn arity(&self, ok: bool, expected: &'static str) -> Result<(), HintError> {
        if ok {
            Ok(())
        } else {
            Err(HintError::Arity {
                op: self.op.to_string(),
                expected,
                found: self.children.len(),
            })
        }
    }

    fn string_field(&self, key: &str) -> Result<&'a str, HintError> {
        match get(self.members, key) {
            Some(Json::String(s)) => Ok(s),
            Some(other) => Err(HintError::Invalid(format!(
                "{:?} of a {} leaf must be a string, found {}",
                key,
                self.op,
                other.kind()
            ))),
            None => Err(HintError::Invalid(format!(
                "{} leaf without {:?}",
                self.op, key
            ))),
        }
    }

    fn value_type(&self) -> Result<ValueType, HintError> {
        let name = self.string_field("valueType")?;
        ValueType::from_name(name).ok_or_else(|| HintError::UnknownValueType(name.to_string()))
    }
}

fn get<'a>(members: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn check_depth(depth: usize) -> Result<(), HintError> {
    if depth > MAX_DEPTH {
        Err(HintError::TooDeep)
    } else {
        Ok(())
    }
}

/// Reads a `column` or `literal` node; `Ok(None)` if the node is not a leaf op.
fn leaf(json: &Json, depth: usize) -> Result<Option<Leaf>, HintError> {
    check_depth(depth)?;
    let node = Node::read(json)?;
    match node.op {
        "column" | "literal" => {}
        _ => return Ok(None),
    }
    node.arity(node.children.is_empty(), "0")?;
    let value_type = node.value_type()?;
    if node.op == "column" {
        let name = node.string_field("name")?;
        return Ok(Some(Leaf::Column(Column {
            name: fold_case(name),
            value_type,
        })));
    }
    // The protocol says `value` is always a JSON string; a bare number or boolean is accepted
    // by its text as a harmless tolerance.
    let text = match get(node.members, "value") {
        Some(Json::String(s)) => s.as_str(),
        Some(Json::Number(n)) => n.as_str(),
        Some(Json::Bool(true)) => "true",
        Some(Json::Bool(false)) => "false",
        Some(other) => {
            return Err(HintError::Invalid(format!(
                "literal \"value\" must be a string, found {}",
                other.kind()
            )));
        }
        None => return Err(HintError::Invalid("literal without \"value\"".into())),
    };
    let value = Value::from_literal(text, value_type).ok_or_else(|| HintError::BadLiteral {
        value: text.to_string(),
        value_type: format!("{value_type:?}"),
    })?;
    Ok(Some(Leaf::Literal(value, value_type)))
}

/// Reads a node in predicate (boolean) position at tree depth `depth`.
fn predicate(json: &Json, depth: usize) -> Result<Expr, HintError> {
    check_depth(depth)?;
    if let Some(leaf) = leaf(json, depth)? {
        // A standalone leaf must be boolean: `col` means `col = true`.
        return match leaf {
            Leaf::Column(column) if column.value_type == ValueType::Bool => Ok(Expr::Compare {
                column,
                op: CmpOp::Equal,
                literal: Value::Bool(true),
            }),
            Leaf::Literal(Value::Bool(b), _) => Ok(Expr::Const(Tri::from(b))),
            _ => Err(HintError::Invalid(
                "a standalone column or literal must have valueType bool".into(),
            )),
        };
    }
    let node = Node::read(json)?;
    let children = node.children;
    match node.op {
        "and" | "or" => {
            node.arity(children.len() >= 2, "at least 2")?;
            let parsed = children
                .iter()
                .map(|c| predicate(c, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if node.op == "and" {
                Expr::And(parsed)
            } else {
                Expr::Or(parsed)
            })
        }
        "not" => {
            node.arity(children.len() == 1, "1")?;
            let [child] = children else {
                return Err(HintError::Invalid("not needs exactly 1 child".into()));
            };
            Ok(Expr::Not(Box::new(predicate(child, depth + 1)?)))
        }
        "isNull" => {
            node.arity(children.len() == 1, "1")?;
            match children.first().map(|c| leaf(c, depth + 1)).transpose()? {
                Some(Some(Leaf::Column(column))) => Ok(Expr::IsNull(column)),
                _ => Err(HintError::Invalid(
                    "the child of isNull must be a column".into(),
                )),
            }
        }
        op => {
            let Some(cmp) = CmpOp::from_name(op) else {
                return Err(HintError::UnknownOp(op.to_string()));
            };
            node.arity(children.len() == 2, "2")?;
            let mut leaves = Vec::with_capacity(2);
            for child in children {
                match leaf(child, depth + 1)? {
                    Some(l) => leaves.push(l),
                    None => {
                        return Err(HintError::Invalid(format!(
                            "the children of {op} must be column or literal leaves"
                        )));
                    }
                }
            }
            comparison(cmp, leaves)
        }
    }
}

fn leaf_type(leaf: &Leaf) -> ValueType {
    match leaf {
        Leaf::Column(c) => c.value_type,
        Leaf::Literal(_, vt) => *vt,
    }
}

fn comparison(op: CmpOp, leaves: Vec<Leaf>) -> Result<Expr, HintError> {
    let mut it = leaves.into_iter();
    let (Some(left), Some(right), None) = (it.next(), it.next(), it.next()) else {
        return Err(HintError::Invalid(
            "a comparison needs exactly 2 children".into(),
        ));
    };
    if leaf_type(&left) != leaf_type(&right) {
        return Err(HintError::Invalid(format!(
            "comparison of different valueTypes {:?} and {:?}",
            leaf_type(&left),
            leaf_type(&right)
        )));
    }
    Ok(match (left, right) {
        (Leaf::Column(column), Leaf::Literal(literal, _)) => Expr::Compare {
            column,
            op,
            literal,
        },
        (Leaf::Literal(literal, _), Leaf::Column(column)) => Expr::Compare {
            column,
            op: op.swapped(),
            literal,
        },
        (Leaf::Literal(a, _), Leaf::Literal(b, _)) => Expr::Const(
            a.compare(&b)
                .map_or(Tri::Unknown, |ord| Tri::from(op.holds(ord))),
        ),
        (Leaf::Column(a), Leaf::Column(b)) => Expr::ColumnVsColumn(a, b),
    })
}
