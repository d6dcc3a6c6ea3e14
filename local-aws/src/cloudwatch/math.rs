//! The part of CloudWatch metric math an alarm's `Metrics` use for rates:
//! numbers, metric ids, `+ - * / ^`, unary `-`, parentheses, comparisons
//! (`== != < <= > >=`), `AND`/`&&`, `OR`/`||`, `IF(condition, a[, b])` and
//! `FILL(series, value)`, with the semantics the CloudWatch User Guide
//! ("Using metric math") gives them:
//!
//! - arithmetic between series is per timestamp, a value missing on one
//!   side counted as 0; a datapoint that would divide by zero is dropped;
//! - comparisons and `AND`/`OR` give 1 or 0 per timestamp, a missing value 0;
//! - `IF`: a condition of 0 is false, anything else true; a true branch
//!   missing its value gives 0; a false branch missing it (or omitted)
//!   drops the datapoint;
//! - `FILL` gives every period of the queried range a value.
//!
//! Anything else is refused with the position it starts at, as
//! `PutMetricAlarm` refuses an expression it cannot parse.

use std::collections::BTreeMap;

/// A time series: value by period start (epoch seconds).
pub type Series = BTreeMap<i64, f64>;

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A time series.
    Series(Series),
}

/// An expression CloudWatch's subset here cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric math at character {at}: {message}")]
pub struct MathError {
    /// Where (0-based, in characters).
    pub at: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<(usize, Token)>, MathError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let number = literal.parse().map_err(|_| MathError {
                at: start,
                message: format!("{literal:?} is not a number"),
            })?;
            out.push((start, Token::Number(number)));
            continue;
        }
        if c.is_ascii_alphabetic() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Token::Ident(chars[start..i].iter().collect())));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = ["<=", ">=", "==", "!=", "&&", "||"]
            .into_iter()
            .find(|op| *op == two)
            .or_else(|| {
                ["+", "-", "*", "/", "^", "<", ">"]
                    .into_iter()
                    .find(|op| op.starts_with(c))
            });
        match (c, op) {
            ('(', _) => out.push((start, Token::Open)),
            (')', _) => out.push((start, Token::Close)),
            (',', _) => out.push((start, Token::Comma)),
            (_, Some(op)) => {
                out.push((start, Token::Op(op)));
                i += op.len() - 1;
            }
            _ => {
                return Err(MathError {
                    at: start,
                    message: format!("unexpected {c:?}"),
                });
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// A metric (or another expression) by id.
    Id(String),
    /// `-x`.
    Negate(Box<Expr>),
    /// `a <op> b`.
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `IF(condition, then[, else])`.
    If(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
    /// `FILL(series, value)`.
    Fill(Box<Expr>, Box<Expr>),
}

/// CloudWatch's limit on an expression's length.
pub const MAX_EXPRESSION: usize = 2048;

/// The deepest nesting (parentheses, unary minus, `^`, function calls)
/// parsed: deeper is refused before the recursion could exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn fail<T>(&self, message: &str) -> Result<T, MathError> {
        Err(MathError {
            at: self.position(),
            message: message.to_owned(),
        })
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        if found {
            self.at += 1;
        }
        found
    }

    /// A left-associative chain of `ops` over `next`; `word` is the
    /// keyword spelling of the one operator (`AND` for `&&`), if it has one.
    fn binary(
        &mut self,
        ops: &[&'static str],
        word: Option<&str>,
        next: fn(&mut Self) -> Result<Expr, MathError>,
    ) -> Result<Expr, MathError> {
        let mut left = next(self)?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(op)) if ops.contains(op) => *op,
                Some(Token::Ident(w)) if word.is_some_and(|word| w.eq_ignore_ascii_case(word)) => ops[0],
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(next(self)?));
        }
    }

    fn or(&mut self) -> Result<Expr, MathError> {
        self.binary(&["||"], Some("OR"), Self::and)
    }

    fn and(&mut self) -> Result<Expr, MathError> {
        self.binary(&["&&"], Some("AND"), Self::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, MathError> {
        self.binary(&["==", "!=", "<", "<=", ">", ">="], None, Self::sum)
    }

    fn sum(&mut self) -> Result<Expr, MathError> {
        self.binary(&["+", "-"], None, Self::product)
    }

    fn product(&mut self) -> Result<Expr, MathError> {
        self.binary(&["*", "/"], None, Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        self.depth += 1;
        let parsed = self.unary_within();
        self.depth -= 1;
        parsed
    }

    fn unary_within(&mut self) -> Result<Expr, MathError> {
        if self.depth > MAX_DEPTH {
            return self.fail(&format!("nested more than {MAX_DEPTH} deep"));
        }
        if self.eat(&Token::Op("-")) {
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        let base = self.primary()?;
        if self.eat(&Token::Op("^")) {
            return Ok(Expr::Binary("^", Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, MathError> {
        match self.peek().cloned() {
            Some(Token::Number(n)) => {
                self.at += 1;
                Ok(Expr::Number(n))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return self.fail("expected )");
                }
                Ok(inner)
            }
            Some(Token::Ident(name)) => {
                let start = self.position();
                self.at += 1;
                if !self.eat(&Token::Open) {
                    return Ok(Expr::Id(name));
                }
                let mut args = vec![self.or()?];
                while self.eat(&Token::Comma) {
                    args.push(self.or()?);
                }
                if !self.eat(&Token::Close) {
                    return self.fail("expected , or )");
                }
                let mut args = args.into_iter().map(Box::new);
                let refused = |message: String| Err(MathError { at: start, message });
                match (name.to_ascii_uppercase().as_str(), args.len()) {
                    ("IF", 2 | 3) => Ok(Expr::If(args.next().unwrap(), args.next().unwrap(), args.next())),
                    ("FILL", 2) => Ok(Expr::Fill(args.next().unwrap(), args.next().unwrap())),
                    ("IF", _) => refused(String::from("IF takes a condition, a value and an optional value")),
                    ("FILL", _) => refused(String::from("FILL takes a series and a value")),
                    _ => refused(format!("{name} is not a function here (IF and FILL are)")),
                }
            }
            _ => self.fail("expected a number, an id, ( or a function"),
        }
    }
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Expr, MathError> {
    let end = text.chars().count();
    if end > MAX_EXPRESSION {
        return Err(MathError {
            at: MAX_EXPRESSION,
            message: format!("longer than {MAX_EXPRESSION} characters"),
        });
    }
    let mut parser = Parser {
        tokens: tokens(text)?,
        at: 0,
        end,
        depth: 0,
    };
    let expr = parser.or()?;
    if parser.at != parser.tokens.len() {
        return parser.fail("expected an operator or the end");
    }
    Ok(expr)
}

impl Expr {
    /// The ids it names.
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Expr::Number(_) => Vec::new(),
            Expr::Id(id) => vec![id.as_str()],
            Expr::Negate(x) => x.ids(),
            Expr::Binary(_, a, b) | Expr::Fill(a, b) => [a.ids(), b.ids()].concat(),
            Expr::If(c, a, b) => [c.ids(), a.ids(), b.as_ref().map(|b| b.ids()).unwrap_or_default()].concat(),
        }
    }

    /// Its value, the ids read from `series`; `periods` are the period
    /// starts of the queried range (what `FILL` fills).
    pub fn eval(&self, series: &BTreeMap<String, Series>, periods: &[i64]) -> Result<Value, String> {
        Ok(match self {
            Expr::Number(n) => Value::Scalar(*n),
            Expr::Id(id) => Value::Series(series.get(id).cloned().ok_or_else(|| format!("no metric {id}"))?),
            Expr::Negate(x) => apply("-", &Value::Scalar(0.0), &x.eval(series, periods)?),
            Expr::Binary(op, a, b) => apply(op, &a.eval(series, periods)?, &b.eval(series, periods)?),
            Expr::Fill(x, value) => {
                let Value::Scalar(fill) = value.eval(series, periods)? else {
                    return Err(String::from("FILL's value must be a number"));
                };
                match x.eval(series, periods)? {
                    Value::Scalar(s) => Value::Scalar(s),
                    Value::Series(mut s) => {
                        for t in periods {
                            s.entry(*t).or_insert(fill);
                        }
                        Value::Series(s)
                    }
                }
            }
            Expr::If(condition, then, otherwise) => {
                let then = then.eval(series, periods)?;
                let otherwise = otherwise.as_ref().map(|o| o.eval(series, periods)).transpose()?;
                match condition.eval(series, periods)? {
                    Value::Scalar(c) if c != 0.0 => then,
                    Value::Scalar(_) => otherwise.unwrap_or_else(|| Value::Series(Series::new())),
                    Value::Series(c) => {
                        let at = |v: &Value, t: i64| match v {
                            Value::Scalar(s) => Some(*s),
                            Value::Series(s) => s.get(&t).copied(),
                        };
                        Value::Series(
                            c.iter()
                                .filter_map(|(t, c)| match *c != 0.0 {
                                    true => Some((*t, at(&then, *t).unwrap_or(0.0))),
                                    false => otherwise.as_ref().and_then(|o| at(o, *t)).map(|v| (*t, v)),
                                })
                                .collect(),
                        )
                    }
                }
            }
        })
    }
}

fn scalar(op: &str, a: f64, b: f64) -> Option<f64> {
    let truth = |x: bool| if x { 1.0 } else { 0.0 };
    let value = match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" if b == 0.0 => return None,
        "/" => a / b,
        "^" => a.powf(b),
        "==" => truth(a == b),
        "!=" => truth(a != b),
        "<" => truth(a < b),
        "<=" => truth(a <= b),
        ">" => truth(a > b),
        ">=" => truth(a >= b),
        "&&" => truth(a != 0.0 && b != 0.0),
        "||" => truth(a != 0.0 || b != 0.0),
        _ => return None,
    };
    value.is_finite().then_some(value)
}

fn apply(op: &str, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Scalar(a), Value::Scalar(b)) => scalar(op, *a, *b).map_or(Value::Series(Series::new()), Value::Scalar),
        (Value::Series(s), Value::Scalar(k)) => Value::Series(
            s.iter()
                .filter_map(|(t, v)| scalar(op, *v, *k).map(|r| (*t, r)))
                .collect(),
        ),
        (Value::Scalar(k), Value::Series(s)) => Value::Series(
            s.iter()
                .filter_map(|(t, v)| scalar(op, *k, *v).map(|r| (*t, r)))
                .collect(),
        ),
        (Value::Series(a), Value::Series(b)) => Value::Series(
            a.keys()
                .chain(b.keys())
                .copied()
                .collect::<std::collections::BTreeSet<i64>>()
                .into_iter()
                .filter_map(|t| {
                    let value = |s: &Series| s.get(&t).copied().unwrap_or(0.0);
                    scalar(op, value(a), value(b)).map(|r| (t, r))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    fn run(text: &str, metrics: &[(&str, Series)], periods: &[i64]) -> Value {
        let metrics = metrics.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        parse(text).unwrap().eval(&metrics, periods).unwrap()
    }

    /// The guide's own example: metric1 = [30, 20, 0, 0], metric2 = [20, -, 20, -].
    #[test]
    fn comparisons_as_the_guide_shows_them() {
        let m1 = series(&[(0, 30.0), (60, 20.0), (120, 0.0), (180, 0.0)]);
        let m2 = series(&[(0, 20.0), (120, 20.0)]);
        let both = [("metric1", m1), ("metric2", m2)];
        let values = |v: Value| match v {
            Value::Series(s) => s.values().copied().collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(values(run("metric1 < metric2", &both, &[])), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(values(run("metric1 >= 30", &both, &[])), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            values(run("metric1 > 15 AND metric2 > 15", &both, &[])),
            [1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            values(run("metric1 > 15 && metric2 > 15", &both, &[])),
            [1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn the_error_rate_the_rollback_alarm_computes() {
        let errors = series(&[(0, 1.0), (60, 0.0)]);
        let invocations = series(&[(0, 50.0), (60, 0.0), (120, 10.0)]);
        let rate = run(
            "IF(invocations > 0, 100 * errors / invocations, 0)",
            &[("errors", errors), ("invocations", invocations)],
            &[],
        );
        // The minute with no invocations is 0, not a division by zero;
        // errors missing at 120 count as 0.
        assert_eq!(rate, Value::Series(series(&[(0, 2.0), (60, 0.0), (120, 0.0)])));
    }

    #[test]
    fn arithmetic_missing_is_zero_and_division_by_zero_is_dropped() {
        let a = series(&[(0, 4.0), (60, 6.0)]);
        let b = series(&[(0, 2.0), (120, 3.0)]);
        let both = [("a", a), ("b", b)];
        assert_eq!(
            run("a + b", &both, &[]),
            Value::Series(series(&[(0, 6.0), (60, 6.0), (120, 3.0)]))
        );
        assert_eq!(run("a / b", &both, &[]), Value::Series(series(&[(0, 2.0), (120, 0.0)])));
        assert_eq!(
            run("-a * 2 + 1", &both, &[]),
            Value::Series(series(&[(0, -7.0), (60, -11.0)]))
        );
        assert_eq!(run("2 ^ 3 * (1 + 1)", &[], &[]), Value::Scalar(16.0));
    }

    #[test]
    fn if_and_fill_as_the_guide_defines_them() {
        let c = series(&[(0, 1.0), (60, 0.0), (120, -2.0)]);
        let a = series(&[(0, 5.0)]);
        let b = series(&[(0, 9.0), (60, 7.0)]);
        let all = [("c", c), ("a", a), ("b", b)];
        // True with no value in a: 0. False with no value in b, or no b: dropped.
        assert_eq!(
            run("IF(c, a, b)", &all, &[]),
            Value::Series(series(&[(0, 5.0), (60, 7.0), (120, 0.0)]))
        );
        assert_eq!(
            run("IF(c, a)", &all, &[]),
            Value::Series(series(&[(0, 5.0), (120, 0.0)]))
        );
        assert_eq!(
            run("FILL(a, 0)", &all, &[0, 60, 120]),
            Value::Series(series(&[(0, 5.0), (60, 0.0), (120, 0.0)]))
        );
        assert_eq!(
            run("100 * FILL(a, 0) / FILL(b, 1)", &all, &[0, 60, 120]),
            Value::Series(series(&[(0, 100.0 * 5.0 / 9.0), (60, 0.0), (120, 0.0)]))
        );
    }

    #[test]
    fn what_it_cannot_take_is_refused_where_it_starts() {
        for (text, at) in [
            ("m1 +", 4),
            ("SUM([m1, m2])", 4),
            ("m1 $ m2", 3),
            ("(m1", 3),
            ("IF(m1)", 0),
            ("m1 m2", 3),
            ("ANOMALY_DETECTION_BAND(m1)", 0),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.at, at, "{text}: {err}");
        }
        assert_eq!(parse("m1 + m2 * 3").unwrap().ids(), ["m1", "m2"]);
        // Found by the attack on issue 17: deep nesting overflowed the stack.
        for deep in [
            "(".repeat(300) + "m1" + &")".repeat(300),
            "-".repeat(1000) + "m1",
            "m1^".repeat(500) + "m1",
        ] {
            let err = parse(&deep).unwrap_err();
            assert!(err.message.contains("deep") || err.message.contains("longer"), "{err}");
        }
        assert!(parse(&"m1+".repeat(700)).unwrap_err().message.contains("longer"));
        let wide = vec!["m1"; 500].join("+");
        assert_eq!(parse(&wide).unwrap().ids().len(), 500, "a long flat sum is fine");
    }
}
