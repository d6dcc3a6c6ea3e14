//! Property tests of the loaders: whatever bytes a collection, environment
//! or data file holds, loading it never panics, and a failure names the file
//! (and, for JSON that parses, where inside it).

use collection_runner::collection::{LoadError, load_collection, load_data, load_variables};
use proptest::prelude::*;
use serde_json::{Value, json};

/// JSON values of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z{}:/ ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just(String::from("info")),
                    Just(String::from("item")),
                    Just(String::from("request")),
                    Just(String::from("url")),
                    Just(String::from("name")),
                    Just(String::from("event")),
                    Just(String::from("values")),
                    Just(String::from("auth")),
                    Just(String::from("body")),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check<T: std::fmt::Debug>(result: Result<T, LoadError>, file: &std::path::Path) {
    if let Err(err) = result {
        let text = err.to_string();
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(text.contains(name.as_ref()), "error does not name the file: {text}");
        if let LoadError::Invalid { at, .. } = &err {
            assert!(!at.is_empty(), "error does not say where: {text}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().unwrap();
        for name in ["c.postman_collection.json", "e.postman_environment.json", "d.csv", "d.json"] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            check(load_collection(&path), &path);
            check(load_variables(&path), &path);
            check(load_data(&path), &path);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let dir = tempfile::tempdir().unwrap();
        let wrapped = json!({"info": {"name": "x"}, "item": [value.clone()]});
        for (name, doc) in [("c.json", &value), ("wrapped.json", &wrapped)] {
            let path = dir.path().join(name);
            std::fs::write(&path, doc.to_string()).unwrap();
            check(load_collection(&path), &path);
            check(load_variables(&path), &path);
            check(load_data(&path), &path);
        }
    }
}

#[test]
fn a_wrong_type_deep_inside_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.postman_collection.json");
    let doc = json!({"info": {"name": "x"}, "item": [{"name": "f", "item": [{"name": "r", "request": {"url": "u", "header": [{"key": 1}]}}]}]});
    std::fs::write(&path, doc.to_string()).unwrap();
    let err = load_collection(&path).unwrap_err().to_string();
    assert!(
        err.contains("deep.postman_collection.json") && err.contains("item[0].item[0].request"),
        "{err}"
    );
}
