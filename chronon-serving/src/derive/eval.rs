//! Type inference and evaluation of an [`Expr`] with Spark SQL's (non-ANSI) semantics: nulls
//! propagate, integers wrap, `/` is a double and null on a zero divisor, numbers widen to the
//! wider operand (byte < short < int < long < float < double), and the branches of CASE, IF,
//! COALESCE, GREATEST and LEAST are cast to their common type, so `COALESCE(long_sum, 0)` is a
//! long even when the sum is null.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::expr::{BinOp, Expr, Func};
use crate::stream::{DataType, Value};

fn rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Byte => 0,
        DataType::Short => 1,
        DataType::Int => 2,
        DataType::Long => 3,
        DataType::Float => 4,
        DataType::Double => 5,
        _ => return None,
    })
}

fn wider(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (rank(a), rank(b)) {
        (Some(x), Some(y)) => Some(if x >= y { a.clone() } else { b.clone() }),
        _ => None,
    }
}

/// The type of a literal's value (`NULL` has none: it fits any type).
fn value_type(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Boolean(_) => DataType::Boolean,
        Value::Byte(_) => DataType::Byte,
        Value::Short(_) => DataType::Short,
        Value::Int(_) => DataType::Int,
        Value::Long(_) => DataType::Long,
        Value::Float(_) => DataType::Float,
        Value::Double(_) => DataType::Double,
        Value::String(_) => DataType::String,
        _ => return None,
    })
}

/// The common type of branches (`None` entries are NULL literals); `Err` when they mix kinds.
fn common(types: &[Option<DataType>], what: &str) -> Result<Option<DataType>, String> {
    let mut out: Option<DataType> = None;
    for t in types.iter().flatten() {
        out = Some(match &out {
            None => t.clone(),
            Some(o) => {
                wider(o, t).ok_or_else(|| format!("{what} mixes {o} and {t}; CAST one of them"))?
            }
        });
    }
    Ok(out)
}

/// Infers the type of `e` over the input columns' `types` (`None`: only NULL), filling in the
/// common types of CASE and the functions that return one of their arguments. `Err` names an
/// unknown column or a type the operator does not take.
pub fn infer(e: &mut Expr, types: &BTreeMap<String, DataType>) -> Result<Option<DataType>, String> {
    let numeric = |t: &Option<DataType>, what: &str| match t {
        Some(t) if rank(t).is_none() => Err(format!("{what} needs numbers, got {t}")),
        _ => Ok(()),
    };
    Ok(match e {
        Expr::Column(c) => Some(types.get(c).cloned().ok_or_else(|| {
            format!(
                "unknown column {c:?} (known: {})",
                types.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?),
        Expr::Literal(v) => value_type(v),
        Expr::Neg(x) => {
            let t = infer(x, types)?;
            numeric(&t, "unary minus")?;
            t
        }
        Expr::Not(x) => {
            infer(x, types)?;
            Some(DataType::Boolean)
        }
        Expr::IsNull(x, _) => {
            infer(x, types)?;
            Some(DataType::Boolean)
        }
        Expr::InList(x, list, _) => {
            infer(x, types)?;
            for l in list {
                infer(l, types)?;
            }
            Some(DataType::Boolean)
        }
        Expr::Binary(op, a, b) => {
            let (ta, tb) = (infer(a, types)?, infer(b, types)?);
            match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Mod => {
                    numeric(&ta, "arithmetic")?;
                    numeric(&tb, "arithmetic")?;
                    common(&[ta, tb], "arithmetic")?
                }
                BinOp::Div => {
                    numeric(&ta, "division")?;
                    numeric(&tb, "division")?;
                    Some(DataType::Double)
                }
                BinOp::Concat => Some(DataType::String),
                _ => Some(DataType::Boolean),
            }
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
            ty,
        } => {
            if let Some(o) = operand {
                infer(o, types)?;
            }
            let mut results = Vec::new();
            for (w, t) in branches.iter_mut() {
                infer(w, types)?;
                results.push(infer(t, types)?);
            }
            if let Some(o) = otherwise {
                results.push(infer(o, types)?);
            }
            *ty = common(&results, "CASE")?;
            ty.clone()
        }
        Expr::Cast(x, t) => {
            infer(x, types)?;
            Some(t.clone())
        }
        Expr::Call(f, args, ty) => {
            let mut ts = Vec::new();
            for a in args.iter_mut() {
                ts.push(infer(a, types)?);
            }
            match f {
                Func::Coalesce | Func::Greatest | Func::Least => {
                    *ty = common(&ts, "the arguments")?;
                    ty.clone()
                }
                Func::If => {
                    *ty = common(&ts[1..], "IF")?;
                    ty.clone()
                }
                Func::NullIf => ts[0].clone(),
                Func::Abs => {
                    numeric(&ts[0], "abs")?;
                    ts[0].clone()
                }
                Func::Round => ts[0].clone(),
                Func::Floor | Func::Ceil | Func::Sign if ts[0] == Some(DataType::Double) => {
                    Some(if *f == Func::Sign {
                        DataType::Double
                    } else {
                        DataType::Long
                    })
                }
                Func::Floor | Func::Ceil => Some(DataType::Long),
                Func::Sqrt
                | Func::Exp
                | Func::Ln
                | Func::Log10
                | Func::Log2
                | Func::Pow
                | Func::Sign => Some(DataType::Double),
                Func::Length | Func::Size => Some(DataType::Int),
                Func::Lower
                | Func::Upper
                | Func::Concat
                | Func::ConcatWs
                | Func::Substring
                | Func::Trim
                | Func::Ltrim
                | Func::Rtrim => Some(DataType::String),
            }
        }
    })
}

/// An input map: column name → value.
pub type Row<'a> = dyn Fn(&str) -> Value + 'a;

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Byte(x) => Some(f64::from(*x)),
        Value::Short(x) => Some(f64::from(*x)),
        Value::Int(x) => Some(f64::from(*x)),
        Value::Long(x) => Some(*x as f64),
        Value::Float(x) => Some(f64::from(*x)),
        Value::Double(x) => Some(*x),
        Value::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Byte(x) => Some(i64::from(*x)),
        Value::Short(x) => Some(i64::from(*x)),
        Value::Int(x) => Some(i64::from(*x)),
        Value::Long(x) => Some(*x),
        // Java's double-to-long conversion: truncation, saturating, NaN is 0 (as Rust's `as`).
        Value::Float(x) => Some(*x as i64),
        Value::Double(x) => Some(*x as i64),
        Value::Boolean(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Java's `Double.toString`, which Spark uses to cast doubles to strings.
fn double_text(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = x.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{x:E}");
        match s.split_once('E') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            _ => s,
        }
    }
}

fn text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Double(x) => double_text(*x),
        Value::Float(x) => double_text(f64::from(*x)),
        other => other.to_json().to_string(),
    })
}

/// Casts `v` to `t` as Spark's (non-ANSI) CAST does; null when it does not convert.
pub fn cast(v: Value, t: &DataType) -> Value {
    if matches!(v, Value::Null) {
        return v;
    }
    let int = |v: &Value| -> Option<i64> {
        match v {
            Value::String(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().map(|x| x as i64))
            }
            _ => as_i64(v),
        }
    };
    let out = match t {
        DataType::Byte => int(&v).map(|x| Value::Byte(x as i8)),
        DataType::Short => int(&v).map(|x| Value::Short(x as i16)),
        DataType::Int => int(&v).map(|x| Value::Int(x as i32)),
        DataType::Long => int(&v).map(Value::Long),
        DataType::Float => as_f64(&v).map(|x| Value::Float(x as f32)),
        DataType::Double => as_f64(&v).map(Value::Double),
        DataType::String => text(&v).map(Value::String),
        DataType::Boolean => match &v {
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "1" => Some(Value::Boolean(true)),
                "f" | "false" | "n" | "no" | "0" => Some(Value::Boolean(false)),
                _ => None,
            },
            Value::Boolean(b) => Some(Value::Boolean(*b)),
            other => as_f64(other).map(|x| Value::Boolean(x != 0.0)),
        },
        _ => Some(v),
    };
    out.unwrap_or(Value::Null)
}

fn type_of_value(v: &Value) -> Option<DataType> {
    value_type(v)
}

/// Compares two non-null values: numbers numerically (strings next to numbers read as numbers),
/// strings by bytes, booleans false < true; `None` when they cannot be compared.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Boolean(x), Value::Boolean(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => {
            let integral = |v: &Value| {
                matches!(
                    v,
                    Value::Byte(_) | Value::Short(_) | Value::Int(_) | Value::Long(_)
                )
            };
            if integral(a) && integral(b) {
                Some(as_i64(a)?.cmp(&as_i64(b)?))
            } else {
                let (x, y) = (as_f64(a)?, as_f64(b)?);
                // Spark orders NaN above every other double and equal to itself.
                Some(match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => x.partial_cmp(&y)?,
                })
            }
        }
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, String> {
    let t = match (type_of_value(a), type_of_value(b)) {
        (Some(x), Some(y)) => wider(&x, &y),
        _ => None,
    }
    .filter(|t| rank(t).is_some())
    .ok_or_else(|| format!("cannot apply {op:?} to {} and {}", a.to_json(), b.to_json()))?;
    if op == BinOp::Div {
        let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
        return Ok(if y == 0.0 {
            Value::Null
        } else {
            Value::Double(x / y)
        });
    }
    if matches!(t, DataType::Float | DataType::Double) {
        let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
        let r = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            _ if y == 0.0 => return Ok(Value::Null),
            _ => x % y,
        };
        return Ok(cast(Value::Double(r), &t));
    }
    let (x, y) = (as_i64(a).unwrap_or(0), as_i64(b).unwrap_or(0));
    let r = match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        _ if y == 0 => return Ok(Value::Null),
        _ => x.wrapping_rem(y),
    };
    // Narrower integers wrap at their own width, as the JVM's do.
    Ok(cast(Value::Long(r), &t))
}

fn truth(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Boolean(b) => Ok(Some(*b)),
        other => Err(format!("{} is not a boolean", other.to_json())),
    }
}

/// Evaluates `e` over `row` (already type-inferred with [`infer`]).
pub fn eval(e: &Expr, row: &Row<'_>) -> Result<Value, String> {
    Ok(match e {
        Expr::Column(c) => row(c),
        Expr::Literal(v) => v.clone(),
        Expr::Neg(x) => match eval(x, row)? {
            Value::Null => Value::Null,
            v => arithmetic(
                BinOp::Sub,
                &cast(Value::Int(0), &type_of_value(&v).unwrap_or(DataType::Int)),
                &v,
            )?,
        },
        Expr::Not(x) => match truth(&eval(x, row)?)? {
            None => Value::Null,
            Some(b) => Value::Boolean(!b),
        },
        Expr::IsNull(x, negated) => {
            Value::Boolean(matches!(eval(x, row)?, Value::Null) != *negated)
        }
        Expr::InList(x, list, negated) => {
            let v = eval(x, row)?;
            if matches!(v, Value::Null) {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            for l in list {
                let w = eval(l, row)?;
                if matches!(w, Value::Null) {
                    saw_null = true;
                } else if compare(&v, &w) == Some(Ordering::Equal) {
                    return Ok(Value::Boolean(!negated));
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Boolean(*negated)
            }
        }
        Expr::Binary(op, a, b) => binary(*op, a, b, row)?,
        Expr::Case {
            operand,
            branches,
            otherwise,
            ty,
        } => {
            let subject = operand.as_ref().map(|o| eval(o, row)).transpose()?;
            let mut out = None;
            for (w, t) in branches {
                let hit = match &subject {
                    Some(s) => {
                        let w = eval(w, row)?;
                        !matches!(s, Value::Null)
                            && !matches!(w, Value::Null)
                            && compare(s, &w) == Some(Ordering::Equal)
                    }
                    None => truth(&eval(w, row)?)? == Some(true),
                };
                if hit {
                    out = Some(eval(t, row)?);
                    break;
                }
            }
            let v = match out {
                Some(v) => v,
                None => match otherwise {
                    Some(o) => eval(o, row)?,
                    None => Value::Null,
                },
            };
            ty.as_ref().map_or(v.clone(), |t| cast(v, t))
        }
        Expr::Cast(x, t) => cast(eval(x, row)?, t),
        Expr::Call(f, args, ty) => {
            let v = call(*f, args, row)?;
            match (f, ty) {
                (Func::Coalesce | Func::If | Func::Greatest | Func::Least, Some(t)) => cast(v, t),
                _ => v,
            }
        }
    })
}

fn binary(op: BinOp, a: &Expr, b: &Expr, row: &Row<'_>) -> Result<Value, String> {
    if matches!(op, BinOp::And | BinOp::Or) {
        let x = truth(&eval(a, row)?)?;
        let short = op == BinOp::Or;
        if x == Some(short) {
            return Ok(Value::Boolean(short));
        }
        let y = truth(&eval(b, row)?)?;
        return Ok(match (x, y) {
            (_, Some(v)) if v == short => Value::Boolean(short),
            (Some(_), Some(_)) => Value::Boolean(!short),
            _ => Value::Null,
        });
    }
    let (x, y) = (eval(a, row)?, eval(b, row)?);
    if op == BinOp::NullSafeEq {
        return Ok(Value::Boolean(match (&x, &y) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            _ => compare(&x, &y) == Some(Ordering::Equal),
        }));
    }
    if matches!(x, Value::Null) || matches!(y, Value::Null) {
        return Ok(Value::Null);
    }
    let cmp = || {
        compare(&x, &y)
            .ok_or_else(|| format!("cannot compare {} with {}", x.to_json(), y.to_json()))
    };
    Ok(match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arithmetic(op, &x, &y)?,
        BinOp::Concat => Value::String(format!(
            "{}{}",
            text(&x).unwrap_or_default(),
            text(&y).unwrap_or_default()
        )),
        BinOp::Eq => Value::Boolean(cmp()? == Ordering::Equal),
        BinOp::NotEq => Value::Boolean(cmp()? != Ordering::Equal),
        BinOp::Lt => Value::Boolean(cmp()? == Ordering::Less),
        BinOp::LtEq => Value::Boolean(cmp()? != Ordering::Greater),
        BinOp::Gt => Value::Boolean(cmp()? == Ordering::Greater),
        BinOp::GtEq => Value::Boolean(cmp()? != Ordering::Less),
        BinOp::And | BinOp::Or | BinOp::NullSafeEq => Value::Null,
    })
}

/// Spark's `round`: half up (away from zero) at `d` decimal places.
fn round_half_up(x: f64, d: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let p = 10f64.powi(d);
    let scaled = x * p;
    // Correct the binary representation (2.675 is 2.67499..): round the scaled text first.
    let scaled: f64 = format!("{scaled:.9}").parse().unwrap_or(scaled);
    scaled.round() / p
}

fn call(f: Func, args: &[Expr], row: &Row<'_>) -> Result<Value, String> {
    let vals = |row: &Row<'_>| {
        args.iter()
            .map(|a| eval(a, row))
            .collect::<Result<Vec<_>, _>>()
    };
    let num1 = |v: &Value, g: &dyn Fn(f64) -> Option<f64>| -> Value {
        as_f64(v)
            .filter(|_| !matches!(v, Value::Null))
            .and_then(g)
            .map_or(Value::Null, Value::Double)
    };
    Ok(match f {
        Func::Coalesce => {
            for a in args {
                let v = eval(a, row)?;
                if !matches!(v, Value::Null) {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Func::If => match truth(&eval(&args[0], row)?)? {
            Some(true) => eval(&args[1], row)?,
            _ => eval(&args[2], row)?,
        },
        Func::NullIf => {
            let v = vals(row)?;
            match compare(&v[0], &v[1]) {
                Some(Ordering::Equal) => Value::Null,
                _ => v[0].clone(),
            }
        }
        Func::Greatest | Func::Least => {
            let want = if f == Func::Greatest {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            let mut best: Option<Value> = None;
            for v in vals(row)? {
                if matches!(v, Value::Null) {
                    continue;
                }
                if best.as_ref().is_none_or(|b| compare(&v, b) == Some(want)) {
                    best = Some(v);
                }
            }
            best.unwrap_or(Value::Null)
        }
        Func::Abs => match eval(&args[0], row)? {
            Value::Byte(x) => Value::Byte(x.wrapping_abs()),
            Value::Short(x) => Value::Short(x.wrapping_abs()),
            Value::Int(x) => Value::Int(x.wrapping_abs()),
            Value::Long(x) => Value::Long(x.wrapping_abs()),
            Value::Float(x) => Value::Float(x.abs()),
            Value::Double(x) => Value::Double(x.abs()),
            _ => Value::Null,
        },
        Func::Round => {
            let v = vals(row)?;
            let d = match v.get(1) {
                None => 0,
                Some(x) => match as_i64(x) {
                    Some(d) => d.clamp(-30, 30) as i32,
                    None => return Ok(Value::Null),
                },
            };
            match &v[0] {
                Value::Double(x) => Value::Double(round_half_up(*x, d)),
                Value::Float(x) => Value::Float(round_half_up(f64::from(*x), d) as f32),
                Value::Null => Value::Null,
                other if d >= 0 => other.clone(),
                other => {
                    let p = 10i64.pow(d.unsigned_abs().min(18));
                    let x = as_i64(other).unwrap_or(0);
                    let r = (x + x.signum() * p / 2) / p * p;
                    cast(
                        Value::Long(r),
                        &type_of_value(other).unwrap_or(DataType::Long),
                    )
                }
            }
        }
        Func::Floor | Func::Ceil => match eval(&args[0], row)? {
            Value::Null => Value::Null,
            v @ (Value::Double(_) | Value::Float(_)) => {
                let x = as_f64(&v).unwrap_or(0.0);
                Value::Long(if f == Func::Floor {
                    x.floor()
                } else {
                    x.ceil()
                } as i64)
            }
            v => cast(v, &DataType::Long),
        },
        Func::Sign => num1(&eval(&args[0], row)?, &|x| {
            Some(if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            })
        }),
        Func::Sqrt => num1(&eval(&args[0], row)?, &|x| Some(x.sqrt())),
        Func::Exp => num1(&eval(&args[0], row)?, &|x| Some(x.exp())),
        Func::Ln if args.len() == 2 => {
            let v = vals(row)?;
            match (as_f64(&v[0]), as_f64(&v[1])) {
                (Some(b), Some(x)) if b > 0.0 && x > 0.0 && !v.contains(&Value::Null) => {
                    Value::Double(x.ln() / b.ln())
                }
                _ => Value::Null,
            }
        }
        Func::Ln => num1(&eval(&args[0], row)?, &|x| (x > 0.0).then(|| x.ln())),
        Func::Log10 => num1(&eval(&args[0], row)?, &|x| (x > 0.0).then(|| x.log10())),
        Func::Log2 => num1(&eval(&args[0], row)?, &|x| (x > 0.0).then(|| x.log2())),
        Func::Pow => {
            let v = vals(row)?;
            match (&v[0], &v[1]) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (a, b) => match (as_f64(a), as_f64(b)) {
                    (Some(x), Some(y)) => Value::Double(x.powf(y)),
                    _ => Value::Null,
                },
            }
        }
        Func::Lower | Func::Upper | Func::Trim | Func::Ltrim | Func::Rtrim | Func::Length => {
            let Some(s) = text(&eval(&args[0], row)?) else {
                return Ok(Value::Null);
            };
            match f {
                Func::Lower => Value::String(s.to_lowercase()),
                Func::Upper => Value::String(s.to_uppercase()),
                Func::Trim => Value::String(s.trim_matches(' ').to_string()),
                Func::Ltrim => Value::String(s.trim_start_matches(' ').to_string()),
                Func::Rtrim => Value::String(s.trim_end_matches(' ').to_string()),
                _ => Value::Int(s.chars().count() as i32),
            }
        }
        Func::Concat => {
            let mut out = String::new();
            for v in vals(row)? {
                match text(&v) {
                    Some(s) => out.push_str(&s),
                    None => return Ok(Value::Null),
                }
            }
            Value::String(out)
        }
        Func::ConcatWs => {
            let v = vals(row)?;
            let Some(sep) = text(&v[0]) else {
                return Ok(Value::Null);
            };
            Value::String(
                v[1..]
                    .iter()
                    .filter_map(text)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )
        }
        Func::Substring => {
            let v = vals(row)?;
            let Some(s) = text(&v[0]) else {
                return Ok(Value::Null);
            };
            let (Some(pos), len) = (as_i64(&v[1]), v.get(2).map(as_i64)) else {
                return Ok(Value::Null);
            };
            let len = match len {
                None => i64::MAX,
                Some(None) => return Ok(Value::Null),
                Some(Some(l)) => l,
            };
            let chars: Vec<char> = s.chars().collect();
            let n = chars.len() as i64;
            // Spark's UTF8String.substringSQL: 1-based, 0 reads as 1, negative counts from the end.
            let start = if pos > 0 {
                pos - 1
            } else if pos < 0 {
                n + pos
            } else {
                0
            };
            let end = if len <= 0 {
                start
            } else {
                start.saturating_add(len)
            };
            let (start, end) = (start.clamp(0, n), end.clamp(0, n));
            Value::String(if start < end {
                chars[start as usize..end as usize].iter().collect()
            } else {
                String::new()
            })
        }
        Func::Size => match eval(&args[0], row)? {
            Value::List(xs) => Value::Int(xs.len() as i32),
            Value::Map(xs) => Value::Int(xs.len() as i32),
            Value::Null => Value::Int(-1),
            other => return Err(format!("size of {}", other.to_json())),
        },
    })
}
