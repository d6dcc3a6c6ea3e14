//! Iteration data as newman 6.2.2 reads it (`lib/run/options.js`): the text
//! is tried as JSON first, whatever the file is called, and read as CSV when
//! that fails (or gives a falsy value), with csv-parse 4.16.3 and newman's
//! options — `columns`, `escape: '"'`, `trim`, `relax`,
//! `relax_column_count`, `bom` and newman's `csvAutoParse` cast — ported
//! here byte for byte: quoted fields, `""` escapes, relaxed quotes, rows
//! with fewer or more fields than the header, numbers cast as JavaScript
//! casts them, and csv-parse's own error messages.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// One iteration's data: names and values, in JavaScript's property order.
pub type Row = Vec<(String, Value)>;

/// Why data could not be read: csv-parse's errors, with its wording, and
/// JSON this runner cannot hold.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The text ends inside a quoted field.
    #[error("Quote Not Closed: the parsing is finished with an opening quote at line {line}")]
    QuoteNotClosed {
        /// The line the parser had reached.
        line: usize,
    },
    /// A closing quote is followed by something other than a delimiter,
    /// a line break or whitespace.
    #[error("Invalid Closing Quote: found non trimable byte after quote at line {line}")]
    NonTrimmableAfterQuote {
        /// The line of the quote.
        line: usize,
    },
    /// A header field is a number (unquoted numbers are cast, headers too),
    /// which cannot name a column: quote it.
    #[error("Invalid column definition: expect a string or a literal object, got {got} at position {position}")]
    InvalidColumn {
        /// The cast value, as `JSON.stringify` writes it.
        got: String,
        /// Its index in the header row.
        position: usize,
    },
    /// A JSON array that is valid JSON but holds a number beyond a double's
    /// range (newman reads it as `Infinity`, which no JSON value holds).
    #[error("{0}")]
    Json(#[source] serde_json::Error),
}

impl DataError {
    /// The line the error is on, when csv-parse names one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::QuoteNotClosed { line } | Self::NonTrimmableAfterQuote { line } => Some(*line),
            Self::InvalidColumn { .. } => None,
            Self::Json(err) => Some(err.line()),
        }
    }
}

/// Iteration data from a data file's text: JSON when it parses to a truthy
/// value, CSV otherwise. A JSON array gives one row per element (objects
/// give their properties, arrays their indices, anything else nothing);
/// any other JSON value gives one empty row, as postman-runtime runs it.
pub fn rows(text: &str) -> Result<Vec<Row>, DataError> {
    let json = js_trim(text);
    if serde_json::from_str::<IgnoredAny>(json).is_err() {
        return parse_csv(text);
    }
    if json.starts_with('[') {
        let items: Vec<JsonRow> = serde_json::from_str(json).map_err(DataError::Json)?;
        return Ok(items.into_iter().map(|item| item.0).collect());
    }
    // Valid JSON that `Value` cannot hold is a number beyond a double's
    // range: `Infinity`, truthy.
    match serde_json::from_str::<Value>(json) {
        Ok(value) if !truthy(&value) => parse_csv(text),
        _ => Ok(vec![Row::new()]),
    }
}

/// JavaScript's truthiness of a parsed JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// One element of a JSON data array as a row, its properties in the
/// file's order: an object gives its properties, an array its indices,
/// anything else nothing.
struct JsonRow(Row);

impl<'de> Deserialize<'de> for JsonRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = JsonRow;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonRow, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(JsonRow(js_ordered(entries.into_iter())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonRow, A::Error> {
                let mut row = Row::new();
                while let Some(value) = seq.next_element::<Value>()? {
                    row.push((row.len().to_string(), value));
                }
                Ok(JsonRow(row))
            }
            fn visit_bool<E>(self, _: bool) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
            fn visit_unit<E>(self) -> Result<JsonRow, E> {
                Ok(JsonRow(Row::new()))
            }
        }
        deserializer.deserialize_any(RowVisitor)
    }
}

/// Parses CSV text as newman's csv-parse call does. `text` is the file as
/// decoded, without its byte order mark: csv-parse's `bom` option removes
/// the one newman's decoding keeps (a second one stays in the text).
pub fn parse_csv(text: &str) -> Result<Vec<Row>, DataError> {
    let mut parser = Parser::default();
    parser.run(text.as_bytes())?;
    Ok(parser.rows)
}

/// A header entry: csv-parse's normalised column.
#[derive(Debug)]
struct Column(String);

/// The state of csv-parse's `__parse` loop, for newman's options.
#[derive(Debug, Default)]
struct Parser {
    /// `info.lines`, for error messages.
    lines: usize,
    /// The record delimiter, once discovered (`\r\n`, `\r` or `\n`).
    record_delimiter: Option<&'static [u8]>,
    was_row_delimiter: bool,
    escaping: bool,
    quoting: bool,
    was_quoting: bool,
    field: Vec<u8>,
    record: Vec<Option<Value>>,
    /// `None` until the header row is read.
    columns: Option<Vec<Column>>,
    rows: Vec<Row>,
}

const QUOTE: u8 = b'"';
const DELIMITER: u8 = b',';

/// csv-parse's `__isCharTrimable`.
fn trimmable(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0C)
}

impl Parser {
    fn run(&mut self, buf: &[u8]) -> Result<(), DataError> {
        self.lines = 1;
        let mut pos = 0;
        while pos < buf.len() {
            if self.was_row_delimiter {
                self.lines += 1;
                self.was_row_delimiter = false;
            }
            if !self.quoting && self.record_delimiter.is_none() {
                self.discover(buf, pos);
            }
            let chr = buf[pos];
            if chr == b'\r' || chr == b'\n' {
                self.was_row_delimiter = true;
            }
            if self.escaping {
                self.escaping = false;
            } else {
                if self.quoting && chr == QUOTE && pos + 1 < buf.len() && buf[pos + 1] == QUOTE {
                    self.escaping = true;
                    pos += 1;
                    continue;
                }
                if chr == QUOTE {
                    if self.quoting {
                        let next = buf.get(pos + 1).copied();
                        // Computed first, as csv-parse does: discovery is a side effect.
                        let record_delimiter_next = match self.record_delimiter {
                            Some(rd) => buf[pos + 1..].starts_with(rd),
                            None => self.discover(buf, pos + 1) != 0,
                        };
                        let closes = match next {
                            None | Some(0) => true,
                            Some(next) => next == DELIMITER || trimmable(next) || record_delimiter_next,
                        };
                        if !closes {
                            // `relax` would keep the quote in the field's text,
                            // but `rtrim` then refuses the quote itself.
                            return Err(DataError::NonTrimmableAfterQuote { line: self.lines });
                        }
                        self.quoting = false;
                        self.was_quoting = true;
                        pos += 1;
                        continue;
                    } else if self.field.is_empty() {
                        self.quoting = true;
                        pos += 1;
                        continue;
                    }
                }
                if !self.quoting {
                    let rd_len = self
                        .record_delimiter
                        .filter(|rd| buf[pos..].starts_with(rd))
                        .map_or(0, <[u8]>::len);
                    if rd_len != 0 {
                        self.on_field();
                        self.on_record()?;
                        pos += rd_len;
                        continue;
                    }
                    if chr == DELIMITER {
                        self.on_field();
                        pos += 1;
                        continue;
                    }
                }
            }
            let lappend = self.quoting || !self.field.is_empty() || !trimmable(chr);
            let rappend = !self.was_quoting;
            if lappend && rappend {
                self.field.push(chr);
            } else if !trimmable(chr) {
                return Err(DataError::NonTrimmableAfterQuote { line: self.lines });
            }
            pos += 1;
        }
        if self.quoting {
            return Err(DataError::QuoteNotClosed { line: self.lines });
        }
        if self.was_quoting || !self.record.is_empty() || !self.field.is_empty() {
            self.on_field();
            self.on_record()?;
        }
        Ok(())
    }

    /// `__autoDiscoverRecordDelimiter`: the first line break outside quotes
    /// decides the record delimiter for the whole text.
    fn discover(&mut self, buf: &[u8], pos: usize) -> usize {
        let found: &'static [u8] = match (buf.get(pos), buf.get(pos + 1)) {
            (Some(b'\r'), Some(b'\n')) => b"\r\n",
            (Some(b'\r'), _) => b"\r",
            (Some(b'\n'), _) => b"\n",
            _ => return 0,
        };
        self.record_delimiter = Some(found);
        found.len()
    }

    /// `__onField`: right-trims unquoted text and casts it; a field past
    /// the header's length is kept as `undefined`.
    fn on_field(&mut self) {
        let text = String::from_utf8_lossy(&self.field).into_owned();
        let value = match &self.columns {
            Some(columns) if columns.len() <= self.record.len() => None,
            _ if self.was_quoting => Some(Value::String(text)),
            _ => Some(auto_cast(js_trim_end(&text))),
        };
        self.record.push(value);
        self.field.clear();
        self.was_quoting = false;
    }

    /// `__onRecord`: the first record names the columns, every later one is
    /// a row; missing fields are absent and extra ones dropped.
    fn on_record(&mut self) -> Result<(), DataError> {
        let record = std::mem::take(&mut self.record);
        match &self.columns {
            None => {
                let columns = record
                    .into_iter()
                    .enumerate()
                    .map(|(position, value)| match value {
                        Some(Value::String(name)) => Ok(Column(name)),
                        other => Err(DataError::InvalidColumn {
                            got: other.as_ref().map_or_else(|| String::from("undefined"), js_json),
                            position,
                        }),
                    })
                    .collect::<Result<_, _>>()?;
                self.columns = Some(columns);
            }
            Some(columns) => {
                let named = columns
                    .iter()
                    .zip(record)
                    .filter_map(|(column, value)| Some((column.0.clone(), value?)));
                self.rows.push(js_ordered(named));
            }
        }
        Ok(())
    }
}

/// newman's `csvAutoParse` for an unquoted field: `util.isInt` gives
/// `parseInt`, `util.isFloat` (`value - parseFloat(value) + 1 >= 0`) gives
/// `parseFloat`, anything else stays text.
pub fn auto_cast(text: &str) -> Value {
    let is_int = {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        digits.starts_with(|c: char| matches!(c, '1'..='9')) && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if is_int {
        return number(text.parse::<f64>().unwrap_or(f64::NAN));
    }
    let whole = to_number(text);
    let prefix = parse_float(text);
    if whole - prefix + 1.0 >= 0.0 {
        number(prefix)
    } else {
        Value::String(text.to_owned())
    }
}

/// A JavaScript number as JSON: integers exactly representable as
/// integers, everything else (fractions, `-0`, beyond 2^53) as a double.
fn number(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= EXACT && !(value == 0.0 && value.is_sign_negative()) {
        Value::Number(Number::from(value as i64))
    } else {
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript's `JSON.stringify` of a cast value, for error messages.
fn js_json(value: &Value) -> String {
    match value {
        Value::Number(n) => crate::variables::js_number_text(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// JavaScript's white space and line terminators (what `trim` removes).
fn js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

/// `String.prototype.trim`.
fn js_trim(text: &str) -> &str {
    text.trim_matches(js_space)
}

/// `String.prototype.trimRight`.
fn js_trim_end(text: &str) -> &str {
    text.trim_end_matches(js_space)
}

/// The longest prefix of `text` that is a StrDecimalLiteral (sign, then
/// `Infinity` or digits with an optional fraction and exponent).
fn decimal_prefix(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    if text[end..].starts_with("Infinity") {
        return &text[..end + "Infinity".len()];
    }
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(end);
    end += whole;
    let mut mantissa = whole;
    if bytes.get(end) == Some(&b'.') {
        let fraction = digits(end + 1);
        if whole + fraction > 0 {
            end += 1 + fraction;
            mantissa += fraction;
        }
    }
    if mantissa == 0 {
        return "";
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits(end + 1 + sign);
        if exponent > 0 {
            end += 1 + sign + exponent;
        }
    }
    &text[..end]
}

/// The value of a StrDecimalLiteral.
fn decimal_value(literal: &str) -> f64 {
    match literal.trim_start_matches(['+', '-']) {
        "Infinity" if literal.starts_with('-') => f64::NEG_INFINITY,
        "Infinity" => f64::INFINITY,
        _ => literal.parse().unwrap_or(f64::NAN),
    }
}

/// `parseFloat(text)`.
fn parse_float(text: &str) -> f64 {
    let text = text.trim_start_matches(js_space);
    match decimal_prefix(text) {
        "" => f64::NAN,
        literal => decimal_value(literal),
    }
}

/// `Number(text)`: the whole trimmed text as a numeric literal (decimal,
/// or `0x`/`0o`/`0b` without a sign), `0` for blank text, `NaN` otherwise.
fn to_number(text: &str) -> f64 {
    let text = js_trim(text);
    if text.is_empty() {
        return 0.0;
    }
    let radix = match text.get(..2) {
        Some("0x" | "0X") => 16,
        Some("0o" | "0O") => 8,
        Some("0b" | "0B") => 2,
        _ => 0,
    };
    if radix != 0 {
        let digits = &text[2..];
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return f64::NAN;
        }
        return digits
            .chars()
            .filter_map(|c| c.to_digit(radix))
            .fold(0.0, |acc, d| acc * f64::from(radix) + f64::from(d));
    }
    if decimal_prefix(text).len() == text.len() {
        decimal_value(text)
    } else {
        f64::NAN
    }
}

/// Properties in the order a JavaScript object keeps them: array-index
/// names (`"0"`, `"42"`) first in numeric order, then the others in the
/// order they were first set; a name set twice keeps its first place and
/// its last value.
fn js_ordered(entries: impl Iterator<Item = (String, Value)>) -> Row {
    let mut row = Row::new();
    for (key, value) in entries {
        match row.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => row.push((key, value)),
        }
    }
    let index = |key: &str| {
        key.parse::<u32>()
            .ok()
            .filter(|n| *n != u32::MAX && n.to_string() == key)
    };
    row.sort_by_key(|(key, _)| index(key).map_or((1, 0), |n| (0, n)));
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csv(text: &str) -> Value {
        match parse_csv(text) {
            Ok(rows) => json!(
                rows.iter()
                    .map(|r| r.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            ),
            Err(err) => json!(err.to_string()),
        }
    }

    #[test]
    fn casts_as_csv_auto_parse() {
        for (text, cast) in [
            ("12", json!(12)),
            ("+7", json!(7)),
            ("007", json!(7)),
            ("0", json!(0)),
            ("1.50", json!(1.5)),
            ("1e3", json!(1000)),
            ("0x10", json!(0)),
            ("-0x10", json!("-0x10")),
            (".5", json!(0.5)),
            ("5.", json!(5)),
            ("Infinity", json!("Infinity")),
            ("1e400", json!("1e400")),
            ("12abc", json!("12abc")),
            ("", json!("")),
            ("\u{0B}5", json!(5)),
            ("abc", json!("abc")),
        ] {
            assert_eq!(auto_cast(text), cast, "{text:?}");
        }
        assert!(
            auto_cast("-0")
                .as_f64()
                .is_some_and(|f| f == 0.0 && f.is_sign_negative())
        );
    }

    #[test]
    fn relaxed_rows_quotes_and_errors() {
        assert_eq!(
            csv("a,b,a\n1,2,3\n\n4\n5,6,7,8\n"),
            json!([[["a", 3], ["b", 2]], [["a", ""]], [["a", 4]], [["a", 7], ["b", 6]]])
        );
        assert_eq!(
            csv("n,\"q\"\r\n\"Smith, J\" , \"said \"\"hi\"\"\"\r\n"),
            json!([[["n", "Smith, J"], ["q", "said \"hi\""]]])
        );
        assert_eq!(
            csv("b,10\n1,2\n"),
            json!("Invalid column definition: expect a string or a literal object, got 10 at position 1")
        );
        assert_eq!(
            csv("a\n\"x\"y\n"),
            json!("Invalid Closing Quote: found non trimable byte after quote at line 2")
        );
        assert_eq!(
            csv("a\n1\n\"x\n"),
            json!("Quote Not Closed: the parsing is finished with an opening quote at line 3")
        );
        assert_eq!(
            csv("2,a\n1,2\n"),
            json!("Invalid column definition: expect a string or a literal object, got 2 at position 0")
        );
    }

    #[test]
    fn json_first_whatever_the_name() {
        assert_eq!(
            rows("[{\"b\":1,\"a\":2}, 5, [7]]").unwrap(),
            vec![
                vec![(String::from("b"), json!(1)), (String::from("a"), json!(2))],
                vec![],
                vec![(String::from("0"), json!(7))],
            ]
        );
        assert_eq!(rows("{\"a\": 1}").unwrap(), vec![Row::new()]);
        assert!(matches!(rows("0"), Err(DataError::InvalidColumn { position: 0, .. })));
        assert_eq!(rows("1e999").unwrap(), vec![Row::new()]);
        assert!(matches!(rows("[{\"a\": 1e999}]"), Err(DataError::Json(_))));
        assert_eq!(rows("x\n1\n").unwrap(), vec![vec![(String::from("x"), json!(1))]]);
    }
}
