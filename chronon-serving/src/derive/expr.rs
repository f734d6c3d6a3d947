//! The expression tree a derivation compiles to: the subset of Spark SQL that derivations are
//! written in, with the type each node has once its inputs' types are known.

use crate::stream::{DataType, Value};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (always a double, null when dividing by zero, as Spark's `Divide`)
    Div,
    /// `%` (null when dividing by zero)
    Mod,
    /// `=` / `==`
    Eq,
    /// `<=>` (null-safe equality)
    NullSafeEq,
    /// `!=` / `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (three-valued)
    And,
    /// `OR` (three-valued)
    Or,
    /// `||` (string concatenation)
    Concat,
}

/// A function call the evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `coalesce(a, b, ...)`, also `nvl` and `ifnull`.
    Coalesce,
    /// `if(cond, a, b)`
    If,
    /// `nullif(a, b)`
    NullIf,
    /// `abs(x)`
    Abs,
    /// `round(x[, d])`, half up like Spark.
    Round,
    /// `floor(x)` (a long)
    Floor,
    /// `ceil(x)` / `ceiling(x)` (a long)
    Ceil,
    /// `sqrt(x)`
    Sqrt,
    /// `exp(x)`
    Exp,
    /// `ln(x)` / `log(x)` (null for x <= 0); `log(b, x)` with a base
    Ln,
    /// `log10(x)`
    Log10,
    /// `log2(x)`
    Log2,
    /// `pow(x, y)` / `power(x, y)`
    Pow,
    /// `sign(x)` / `signum(x)`
    Sign,
    /// `greatest(a, b, ...)` (nulls skipped)
    Greatest,
    /// `least(a, b, ...)` (nulls skipped)
    Least,
    /// `lower(s)` / `lcase(s)`
    Lower,
    /// `upper(s)` / `ucase(s)`
    Upper,
    /// `length(s)` / `char_length(s)` (characters)
    Length,
    /// `concat(a, b, ...)` (null if any is null)
    Concat,
    /// `concat_ws(sep, a, b, ...)` (nulls skipped)
    ConcatWs,
    /// `substring(s, pos[, len])` / `substr`, 1-based, negative pos from the end
    Substring,
    /// `trim(s)`
    Trim,
    /// `ltrim(s)`
    Ltrim,
    /// `rtrim(s)`
    Rtrim,
    /// `size(list or map)` (-1 for null, Spark's legacy default)
    Size,
}

/// A node of a compiled derivation expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input map (a feature, a key, `ts` or `ds`).
    Column(String),
    /// A literal.
    Literal(Value),
    /// `-x`
    Neg(Box<Expr>),
    /// `NOT x`
    Not(Box<Expr>),
    /// `a op b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x IS NULL` (`negated`: `IS NOT NULL`)
    IsNull(Box<Expr>, bool),
    /// `x [NOT] IN (a, b, ...)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`, the result cast to `ty`.
    Case {
        /// The operand of a simple CASE.
        operand: Option<Box<Expr>>,
        /// `(when, then)` pairs.
        branches: Vec<(Expr, Expr)>,
        /// The ELSE result (null when absent).
        otherwise: Option<Box<Expr>>,
        /// The common type of the results (filled in by type inference).
        ty: Option<DataType>,
    },
    /// `CAST(x AS type)`
    Cast(Box<Expr>, DataType),
    /// A function call; `ty` is the common type of the arguments where the function returns one
    /// of them (coalesce, if, greatest, least), filled in by type inference.
    Call(Func, Vec<Expr>, Option<DataType>),
}
