//! Variable scopes and `{{name}}` resolution with newman's rules: the first
//! scope holding a name wins (local > iteration data > environment >
//! collection > globals), nested references resolve inside out, names that
//! resolve nowhere stay literal, and `{{$name}}` is a dynamic variable.

use serde_json::Value;

use crate::dynamic;

/// How many substitution passes nested references get (postman-collection uses the same bound).
const MAX_PASSES: usize = 20;

/// One scope: names in insertion order, each once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    entries: Vec<(String, Value)>,
}

impl Scope {
    /// A scope holding `entries`; a later duplicate name replaces the earlier value.
    pub fn from_pairs(entries: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut scope = Self::default();
        for (key, value) in entries {
            scope.set(key, value);
        }
        scope
    }

    /// The value of `key`, if the scope holds it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, keeping its position when it exists.
    pub fn set(&mut self, key: String, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }
}

/// A variable's value as text in a request: strings as they are, numbers as
/// JavaScript prints them, `null` as empty, objects and arrays as JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => js_number_text(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A number as JavaScript's `String(n)` writes it (ECMA-262
/// Number::toString): the shortest digits that read back as `n`, plain
/// from 1e-6 up to 1e21, exponent form (`1e+21`, `1.5e-7`) outside that;
/// `-0` is `"0"`.
pub fn js_number_text(n: f64) -> String {
    if n.is_nan() {
        return String::from("NaN");
    }
    if n == 0.0 {
        return String::from("0");
    }
    if n.is_infinite() {
        return String::from(if n > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let sign = if n < 0.0 { "-" } else { "" };
    // The fewest digits that read back as `n`; of those, the closest to `n`
    // (ties to even), as the spec picks and exact formatting rounds.
    let length = format!("{:e}", n.abs())
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let closest = format!("{:.*e}", length.saturating_sub(1), n.abs());
    let (mantissa, exponent) = closest.split_once('e').unwrap_or((&closest, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.trim_end_matches('0') {
        "" => String::from("0"),
        trimmed => trimmed.to_owned(),
    };
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let point = exponent.parse::<i64>().unwrap_or(0) + 1;
    let body = if (k..=21).contains(&point) {
        format!("{digits}{}", "0".repeat(usize::try_from(point - k).unwrap_or(0)))
    } else if (1..=21).contains(&point) {
        let (whole, fraction) = digits.split_at(usize::try_from(point).unwrap_or(0));
        format!("{whole}.{fraction}")
    } else if (-5..=0).contains(&point) {
        format!("0.{}{digits}", "0".repeat(usize::try_from(-point).unwrap_or(0)))
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = point - 1;
        format!("{first}{fraction}e{}{e}", if e < 0 { "" } else { "+" })
    };
    format!("{sign}{body}")
}

/// Resolves every `{{name}}` in `template` against `layers`, first layer first.
pub fn resolve(template: &str, layers: &[&Scope]) -> String {
    let mut text = template.to_owned();
    for _ in 0..MAX_PASSES {
        let (next, changed) = substitute_once(&text, layers);
        text = next;
        if !changed {
            break;
        }
    }
    text
}

/// One pass: replaces every innermost `{{name}}` (a name without braces) that resolves.
fn substitute_once(text: &str, layers: &[&Scope]) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let name = &after[..close];
        if let Some(inner) = name.rfind("{{") {
            // `{{a{{b}}}}`: copy up to the inner opening and try again from there.
            out.push_str(&rest[..open + 2 + inner]);
            rest = &rest[open + 2 + inner..];
            continue;
        }
        if name.contains('{') || name.contains('}') {
            out.push_str(&rest[..open + 2]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..open]);
        match lookup(name, layers) {
            Some(value) => {
                out.push_str(&value);
                changed = true;
            }
            None => {
                out.push_str("{{");
                out.push_str(name);
                out.push_str("}}");
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    (out, changed)
}

fn lookup(name: &str, layers: &[&Scope]) -> Option<String> {
    if let Some(value) = layers.iter().find_map(|scope| scope.get(name)) {
        return Some(to_text(value));
    }
    name.strip_prefix('$').and_then(dynamic::generate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(pairs: &[(&str, Value)]) -> Scope {
        Scope::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn resolution_table() {
        let local = scope(&[("who", json!("local"))]);
        let env = scope(&[
            ("who", json!("env")),
            ("host", json!("example.test")),
            ("n", json!(5)),
            ("f", json!(1.5)),
            ("whole", json!(2.0)),
            ("flag", json!(true)),
            ("nothing", Value::Null),
            ("obj", json!({"a": 1})),
            ("key_b", json!("b")),
            ("a_b", json!("nested!")),
            ("self", json!("{{self}}")),
        ]);
        let globals = scope(&[("g", json!("global")), ("who", json!("global"))]);
        let layers = [&local, &env, &globals];
        let cases = [
            ("{{who}}", "local"),
            ("https://{{host}}/x", "https://example.test/x"),
            ("{{g}}", "global"),
            ("{{n}}/{{f}}/{{whole}}/{{flag}}", "5/1.5/2/true"),
            ("[{{nothing}}]", "[]"),
            ("{{obj}}", r#"{"a":1}"#),
            ("{{missing}}", "{{missing}}"),
            ("{{a_{{key_b}}}}", "nested!"),
            ("{{ who }}", "{{ who }}"),
            ("{{", "{{"),
            ("}}{{who}}{{", "}}local{{"),
            ("{{self}}", "{{self}}"),
            ("{{$unknownDynamic}}", "{{$unknownDynamic}}"),
            ("", ""),
        ];
        for (template, expected) in cases {
            assert_eq!(resolve(template, &layers), expected, "template {template:?}");
        }
    }

    #[test]
    fn dynamic_variables_resolve_when_no_scope_defines_them() {
        let empty = Scope::default();
        let guid = resolve("{{$guid}}", &[&empty]);
        assert_eq!(guid.len(), 36, "{guid}");
        let ts: u64 = resolve("{{$timestamp}}", &[&empty]).parse().unwrap();
        assert!(ts > 1_700_000_000);
        let int: u32 = resolve("{{$randomInt}}", &[&empty]).parse().unwrap();
        assert!(int <= 1000);
        let shadowed = scope(&[("$guid", json!("fixed"))]);
        assert_eq!(resolve("{{$guid}}", &[&shadowed]), "fixed");
    }

    #[test]
    fn set_keeps_position_and_replaces_value() {
        let mut s = scope(&[("a", json!(1)), ("b", json!(2))]);
        s.set("a".into(), json!(3));
        assert_eq!(s.entries(), &[("a".to_string(), json!(3)), ("b".to_string(), json!(2))]);
    }
}
