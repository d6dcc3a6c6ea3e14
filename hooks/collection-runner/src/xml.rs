//! `xml2Json` for scripts, shaped like Postman's (xml2js with
//! `explicitArray: false`, `trim: true`): an element without attributes or
//! children is its text; otherwise an object with attributes under `$`, text
//! under `_`, and children by name (repeated names become arrays).

use quick_xml::events::Event;
use serde_json::{Map, Value};

struct Element {
    name: String,
    attributes: Map<String, Value>,
    children: Map<String, Value>,
    text: String,
}

impl Element {
    fn new(name: String, attributes: Map<String, Value>) -> Self {
        Self {
            name,
            attributes,
            children: Map::new(),
            text: String::new(),
        }
    }

    fn into_value(self) -> Value {
        let text = self.text.trim().to_owned();
        if self.attributes.is_empty() && self.children.is_empty() {
            return Value::String(text);
        }
        let mut out = Map::new();
        if !self.attributes.is_empty() {
            out.insert(String::from("$"), Value::Object(self.attributes));
        }
        if !text.is_empty() {
            out.insert(String::from("_"), Value::String(text));
        }
        out.extend(self.children);
        Value::Object(out)
    }

    fn add_child(&mut self, name: String, value: Value) {
        match self.children.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.children.insert(name, value);
            }
        }
    }
}

/// Converts XML text to JSON text; `null` when the XML is malformed.
pub fn to_json(xml: &str) -> String {
    convert(xml)
        .map(|v| v.to_string())
        .unwrap_or_else(|| String::from("null"))
}

fn convert(xml: &str) -> Option<Value> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::new(String::new(), Map::new())];
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                let element = open(&start)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open(&start)?;
                let name = element.name.clone();
                stack.last_mut()?.add_child(name, element.into_value());
            }
            Event::End(_) => {
                let element = stack.pop()?;
                let name = element.name.clone();
                stack.last_mut()?.add_child(name, element.into_value());
            }
            Event::Text(text) => {
                let decoded = text.decode().ok()?;
                let unescaped = quick_xml::escape::unescape(&decoded).ok()?;
                stack.last_mut()?.text.push_str(&unescaped);
            }
            Event::CData(data) => stack.last_mut()?.text.push_str(std::str::from_utf8(&data).ok()?),
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return None;
    }
    let root = stack.pop()?;
    Some(Value::Object(root.children))
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Option<Element> {
    let name = String::from_utf8(start.name().as_ref().to_vec()).ok()?;
    let mut attributes = Map::new();
    for attribute in start.attributes() {
        let attribute = attribute.ok()?;
        let key = String::from_utf8(attribute.key.as_ref().to_vec()).ok()?;
        let value = attribute.unescape_value().ok()?.into_owned();
        attributes.insert(key, Value::String(value));
    }
    Some(Element::new(name, attributes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_like_xml2js() {
        let xml = r#"<?xml version="1.0"?><order id="7"><item>a</item><item>b</item><total currency="EUR">12</total><note/></order>"#;
        let value: Value = serde_json::from_str(&to_json(xml)).unwrap();
        assert_eq!(
            value,
            json!({"order": {"$": {"id": "7"}, "item": ["a", "b"], "total": {"$": {"currency": "EUR"}, "_": "12"}, "note": ""}})
        );
        assert_eq!(to_json("<a><b></a>"), "null");
    }
}
