//! Spark SQL text to an [`Expr`], through the `sqlparser` crate's Spark dialect. Anything the
//! evaluator does not implement is an error naming the construct, so an unsupported derivation
//! fails when its definition is loaded rather than when it is fetched.

use sqlparser::ast::{
    self, BinaryOperator, CeilFloorKind, DateTimeField, FunctionArg, FunctionArgExpr,
    FunctionArguments, UnaryOperator,
};
use sqlparser::dialect::SparkSqlDialect;
use sqlparser::parser::Parser;

use super::expr::{BinOp, Expr, Func};
use crate::stream::{DataType, Value};

/// Parses one derivation expression.
pub fn parse(sql: &str) -> Result<Expr, String> {
    let dialect = SparkSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| format!("cannot parse {sql:?}: {e}"))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| format!("cannot parse {sql:?}: {e}"))?;
    let rest = parser.peek_token();
    if rest.token != sqlparser::tokenizer::Token::EOF {
        return Err(format!(
            "cannot parse {sql:?}: unexpected {} after the expression",
            rest.token
        ));
    }
    convert(&expr)
}

fn unsupported(what: impl std::fmt::Display) -> String {
    format!("{what} is not supported in derivations")
}

fn boxed(e: &ast::Expr) -> Result<Box<Expr>, String> {
    convert(e).map(Box::new)
}

fn convert(e: &ast::Expr) -> Result<Expr, String> {
    use ast::Expr as A;
    Ok(match e {
        A::Identifier(id) => Expr::Column(id.value.clone()),
        A::Nested(inner) => convert(inner)?,
        A::Value(v) => Expr::Literal(literal(&v.value)?),
        A::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => Expr::Neg(boxed(expr)?),
            UnaryOperator::Plus => convert(expr)?,
            UnaryOperator::Not | UnaryOperator::BangNot => Expr::Not(boxed(expr)?),
            other => return Err(unsupported(format!("the operator {other}"))),
        },
        A::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Plus => BinOp::Add,
                BinaryOperator::Minus => BinOp::Sub,
                BinaryOperator::Multiply => BinOp::Mul,
                BinaryOperator::Divide => BinOp::Div,
                BinaryOperator::Modulo => BinOp::Mod,
                BinaryOperator::Eq => BinOp::Eq,
                BinaryOperator::Spaceship => BinOp::NullSafeEq,
                BinaryOperator::NotEq => BinOp::NotEq,
                BinaryOperator::Lt => BinOp::Lt,
                BinaryOperator::LtEq => BinOp::LtEq,
                BinaryOperator::Gt => BinOp::Gt,
                BinaryOperator::GtEq => BinOp::GtEq,
                BinaryOperator::And => BinOp::And,
                BinaryOperator::Or => BinOp::Or,
                BinaryOperator::StringConcat => BinOp::Concat,
                other => return Err(unsupported(format!("the operator {other}"))),
            };
            Expr::Binary(op, boxed(left)?, boxed(right)?)
        }
        A::IsNull(x) => Expr::IsNull(boxed(x)?, false),
        A::IsNotNull(x) => Expr::IsNull(boxed(x)?, true),
        A::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            global: false,
        } => Expr::InList(
            boxed(expr)?,
            list.iter().map(convert).collect::<Result<_, _>>()?,
            *negated,
        ),
        A::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let x = convert(expr)?;
            let within = Expr::Binary(
                BinOp::And,
                Box::new(Expr::Binary(BinOp::GtEq, Box::new(x.clone()), boxed(low)?)),
                Box::new(Expr::Binary(BinOp::LtEq, Box::new(x), boxed(high)?)),
            );
            if *negated {
                Expr::Not(Box::new(within))
            } else {
                within
            }
        }
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => Expr::Case {
            operand: operand.as_deref().map(boxed).transpose()?,
            branches: conditions
                .iter()
                .map(|c| Ok((convert(&c.condition)?, convert(&c.result)?)))
                .collect::<Result<_, String>>()?,
            otherwise: else_result.as_deref().map(boxed).transpose()?,
            ty: None,
        },
        A::Cast {
            kind,
            expr,
            data_type,
            format,
        } => {
            if !matches!(
                kind,
                ast::CastKind::Cast | ast::CastKind::DoubleColon | ast::CastKind::TryCast
            ) || format.is_some()
            {
                return Err(unsupported(format!("{e}")));
            }
            Expr::Cast(boxed(expr)?, cast_type(data_type)?)
        }
        A::Ceil { expr, field } | A::Floor { expr, field } => {
            if !matches!(
                field,
                CeilFloorKind::DateTimeField(DateTimeField::NoDateTime)
            ) {
                return Err(unsupported(format!("{e}")));
            }
            let f = if matches!(e, A::Ceil { .. }) {
                Func::Ceil
            } else {
                Func::Floor
            };
            Expr::Call(f, vec![convert(expr)?], None)
        }
        A::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![convert(expr)?];
            match substring_from {
                Some(f) => args.push(convert(f)?),
                None => args.push(Expr::Literal(Value::Int(1))),
            }
            if let Some(f) = substring_for {
                args.push(convert(f)?);
            }
            Expr::Call(Func::Substring, args, None)
        }
        A::Trim {
            trim_where: None,
            trim_what: None,
            expr,
            trim_characters: None,
        } => Expr::Call(Func::Trim, vec![convert(expr)?], None),
        A::Function(f) => function(f)?,
        other => return Err(unsupported(format!("the expression {other}"))),
    })
}

fn literal(v: &ast::Value) -> Result<Value, String> {
    use ast::Value as V;
    Ok(match v {
        V::Number(text, _) => {
            let t = text.trim_end_matches(['L', 'l', 'D', 'd']);
            if text.ends_with(['D', 'd']) || t.contains(['.', 'e', 'E']) {
                // Spark reads 2.5 as a decimal; this evaluator has no decimals, so it is a double.
                Value::Double(t.parse().map_err(|_| format!("bad number {text}"))?)
            } else if text.ends_with(['L', 'l']) {
                Value::Long(t.parse().map_err(|_| format!("bad number {text}"))?)
            } else {
                match t.parse::<i32>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Long(t.parse().map_err(|_| format!("bad number {text}"))?),
                }
            }
        }
        V::SingleQuotedString(s) | V::DoubleQuotedString(s) => Value::String(s.clone()),
        V::Boolean(b) => Value::Boolean(*b),
        V::Null => Value::Null,
        other => return Err(unsupported(format!("the literal {other}"))),
    })
}

fn cast_type(t: &ast::DataType) -> Result<DataType, String> {
    let text = t.to_string().to_ascii_uppercase();
    Ok(match text.as_str() {
        "TINYINT" | "BYTE" => DataType::Byte,
        "SMALLINT" | "SHORT" => DataType::Short,
        "INT" | "INTEGER" => DataType::Int,
        "BIGINT" | "LONG" => DataType::Long,
        "FLOAT" | "REAL" => DataType::Float,
        "DOUBLE" => DataType::Double,
        "STRING" | "VARCHAR" | "TEXT" => DataType::String,
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        _ => return Err(unsupported(format!("CAST to {t}"))),
    })
}

fn function(f: &ast::Function) -> Result<Expr, String> {
    let name = f.name.to_string().to_ascii_lowercase();
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        return Err(unsupported(format!("the window or aggregate call {f}")));
    }
    let args: Vec<Expr> = match &f.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::List(list) => {
            if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                return Err(unsupported(format!("the call {f}")));
            }
            list.args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => convert(e),
                    other => Err(unsupported(format!("the argument {other} of {name}"))),
                })
                .collect::<Result<_, _>>()?
        }
        FunctionArguments::Subquery(_) => return Err(unsupported("a subquery")),
    };
    let func = match name.as_str() {
        "coalesce" | "nvl" | "ifnull" => Func::Coalesce,
        "if" | "iff" => Func::If,
        "nullif" => Func::NullIf,
        "abs" => Func::Abs,
        "round" => Func::Round,
        "floor" => Func::Floor,
        "ceil" | "ceiling" => Func::Ceil,
        "sqrt" => Func::Sqrt,
        "exp" => Func::Exp,
        "ln" | "log" => Func::Ln,
        "log10" => Func::Log10,
        "log2" => Func::Log2,
        "pow" | "power" => Func::Pow,
        "sign" | "signum" => Func::Sign,
        "greatest" => Func::Greatest,
        "least" => Func::Least,
        "lower" | "lcase" => Func::Lower,
        "upper" | "ucase" => Func::Upper,
        "length" | "char_length" | "character_length" => Func::Length,
        "concat" => Func::Concat,
        "concat_ws" => Func::ConcatWs,
        "substring" | "substr" => Func::Substring,
        "trim" => Func::Trim,
        "ltrim" => Func::Ltrim,
        "rtrim" => Func::Rtrim,
        "size" | "cardinality" => Func::Size,
        _ => return Err(unsupported(format!("the function {name}"))),
    };
    let (min, max) = match func {
        Func::Coalesce | Func::Greatest | Func::Least | Func::Concat => (1, usize::MAX),
        Func::ConcatWs => (2, usize::MAX),
        Func::If => (3, 3),
        Func::NullIf | Func::Pow => (2, 2),
        Func::Round | Func::Ln => (1, 2),
        Func::Substring => (2, 3),
        _ => (1, 1),
    };
    if args.len() < min || args.len() > max {
        return Err(format!(
            "{name} takes {} arguments, got {}",
            if min == max {
                min.to_string()
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            },
            args.len()
        ));
    }
    Ok(Expr::Call(func, args, None))
}
