//! Every message type, generated with every optional field and enum value, encodes to a
//! document that validates against its official schema and decodes back to an equal value.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

use ocpp::action::strategies;
use ocpp::{Action, FeatureProfile, Policy, Request, Response};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

const CASES: u32 = 512;

fn schema_path(action: Action, response: bool) -> PathBuf {
    let folder = if action.profile() == FeatureProfile::Security {
        "schemas-security"
    } else {
        "schemas"
    };
    let suffix = if response { "Response" } else { "" };
    common::ocpp16_dir()
        .join(folder)
        .join(format!("{}{suffix}.json", action.as_str()))
}

/// Every property path and every (path, enum value) a schema allows.
#[derive(Default)]
struct Shape {
    paths: BTreeSet<String>,
    enums: BTreeSet<(String, String)>,
}

fn walk_schema(schema: &Value, root: &Value, path: &str, shape: &mut Shape) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return walk_schema(&root["definitions"][name], root, path, shape);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        for v in values {
            shape
                .enums
                .insert((path.to_owned(), v.as_str().unwrap().to_owned()));
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = format!("{path}.{k}");
            shape.paths.insert(p.clone());
            walk_schema(v, root, &p, shape);
        }
    }
    if let Some(items) = schema.get("items") {
        walk_schema(items, root, &format!("{path}[]"), shape);
    }
}

fn walk_doc(doc: &Value, path: &str, enum_paths: &BTreeSet<String>, seen: &mut Shape) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                seen.paths.insert(p.clone());
                walk_doc(v, &p, enum_paths, seen);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| walk_doc(v, &format!("{path}[]"), enum_paths, seen)),
        Value::String(s) if enum_paths.contains(path) => {
            seen.enums.insert((path.to_owned(), s.clone()));
        }
        _ => {}
    }
}

/// Enumeration values the schemas allow that we never send, and why.
fn never_sent(file: &str, path: &str, value: &str) -> bool {
    // MeterValues lists both spellings; Charge Points send `Celsius` (OCA's advice).
    file == "MeterValues.json" && path == ".meterValue[].sampledValue[].unit" && value == "Celcius"
}

fn exercise(action: Action, response: bool) -> String {
    let path = schema_path(action, response);
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let mut shape = Shape::default();
    walk_schema(&schema, &schema, "", &mut shape);
    let enum_paths: BTreeSet<String> = shape.enums.iter().map(|(p, _)| p.clone()).collect();
    let seen = RefCell::new(Shape::default());

    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let check = |json: String| {
        let doc: Value = serde_json::from_str(&json).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(proptest::test_runner::TestCaseError::fail(format!(
                "{file}: {json} is invalid: {errors:?}"
            )));
        }
        walk_doc(&doc, "", &enum_paths, &mut seen.borrow_mut());
        Ok(json)
    };
    let result = if response {
        runner
            .run(&strategies::response(action), |value| {
                let json = check(value.to_json())?;
                let back = Response::decode(action, &json, Policy::Strict).map_err(|e| {
                    proptest::test_runner::TestCaseError::fail(format!("{file}: {json}: {e}"))
                })?;
                proptest::prop_assert_eq!(back.value, value);
                Ok(())
            })
            .map_err(|e| e.to_string())
    } else {
        runner
            .run(&strategies::request(action), |value| {
                let json = check(value.to_json())?;
                let back = Request::decode(action, &json, Policy::Strict).map_err(|e| {
                    proptest::test_runner::TestCaseError::fail(format!("{file}: {json}: {e}"))
                })?;
                proptest::prop_assert_eq!(back.value, value);
                Ok(())
            })
            .map_err(|e| e.to_string())
    };
    if let Err(e) = result {
        panic!("{file}: {e}");
    }

    let seen = seen.into_inner();
    let missing_paths: Vec<_> = shape.paths.difference(&seen.paths).collect();
    assert!(
        missing_paths.is_empty(),
        "{file}: fields never generated: {missing_paths:?}"
    );
    let missing_enums: Vec<_> = shape
        .enums
        .difference(&seen.enums)
        .filter(|(p, v)| !never_sent(&file, p, v))
        .collect();
    assert!(
        missing_enums.is_empty(),
        "{file}: enum values never generated: {missing_enums:?}"
    );
    file
}

#[test]
fn every_schema_file_is_exercised() {
    let mut exercised = BTreeSet::new();
    for &action in Action::ALL {
        exercised.insert(exercise(action, false));
        exercised.insert(exercise(action, true));
    }
    let on_disk: usize = ["schemas", "schemas-security"]
        .iter()
        .map(|d| {
            std::fs::read_dir(common::ocpp16_dir().join(d))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "json")
                })
                .count()
        })
        .sum();
    println!(
        "schema conformance: {}/{} files exercised",
        exercised.len(),
        on_disk
    );
    assert_eq!(on_disk, 78);
    assert_eq!(exercised.len(), 78, "files exercised: {exercised:?}");
}
