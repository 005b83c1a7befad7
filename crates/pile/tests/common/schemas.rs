//! The official OCPA JSON schemas, to check what the pile sends.

use std::collections::BTreeMap;

use ocpp::{Action, FeatureProfile};
use serde_json::Value;

/// A validator per message (`Action` and `ActionResponse`).
pub struct Schemas(BTreeMap<String, jsonschema::Validator>);

impl Schemas {
    pub fn load() -> Schemas {
        let mut map = BTreeMap::new();
        for &action in Action::ALL {
            let folder = if action.profile() == FeatureProfile::Security {
                "schemas-security"
            } else {
                "schemas"
            };
            for suffix in ["", "Response"] {
                let path = super::ocpp16_dir()
                    .join(folder)
                    .join(format!("{}{suffix}.json", action.as_str()));
                let schema: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap();
                map.insert(format!("{}{suffix}", action.as_str()), validator);
            }
        }
        Schemas(map)
    }

    pub fn check(&self, name: &str, payload: &Value) -> Result<(), String> {
        let errors: Vec<String> = self.0[name]
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{name} {payload}: {errors:?}"))
        }
    }
}

impl Schemas {
    /// Checks a frame the pile sent: a CALL against its request schema.
    pub fn check_call(&self, frame: &Value) -> Result<(), String> {
        match frame[0].as_i64() {
            Some(2) => self.check(frame[2].as_str().unwrap_or_default(), &frame[3]),
            _ => Ok(()),
        }
    }
}
