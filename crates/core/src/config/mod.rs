//! The configuration registry: typed keys with access rights, defaults and validators, and the
//! GetConfiguration / ChangeConfiguration semantics of OCPP 1.6 and the vendor FAQ.

mod keys;

use std::collections::BTreeMap;

use ocpp::{
    CallError, CallErrorCode, CiString50, ConfigurationStatus, GetConfigurationResponse, KeyValue,
};

pub use keys::{measurand_items, spec, Access, Factory, KeySpec, Kind, KEYS};
pub use vendor::{
    parse_insight, parse_mask, validate_name, InvalidSetting, WebsocketSettings, FAULT_MASK_BITS,
    FUNCTION_MASK_BITS, MAX_NAME_LEN,
};

/// The outcome of a ChangeConfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: ConfigurationStatus,
    /// The key's canonical name when the value changed (so the pile can act on it).
    pub changed: Option<&'static str>,
    /// Why a change was refused, for the log.
    pub reason: Option<String>,
}

/// The stored configuration of one pile.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    factory: Factory,
    values: BTreeMap<&'static str, String>,
}

impl Configuration {
    /// The factory configuration.
    pub fn new(factory: Factory) -> Self {
        let values = keys::defaults(&factory).into_iter().collect();
        Configuration { factory, values }
    }

    /// The factory configuration overlaid with persisted values. Values that no longer
    /// validate, and keys that are unknown or read-only, are ignored.
    pub fn restore(factory: Factory, persisted: &BTreeMap<String, String>) -> Self {
        let mut config = Configuration::new(factory);
        for (name, value) in persisted {
            if let Some(spec) = spec(name).filter(|s| s.access == Access::ReadWrite) {
                if let Ok(v) = config.validate(spec, value) {
                    config.values.insert(spec.name, v);
                }
            }
        }
        config
    }

    /// What is persisted: every writable key.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        KEYS.iter()
            .filter(|k| k.access == Access::ReadWrite)
            .filter_map(|k| {
                self.values
                    .get(k.name)
                    .map(|v| (k.name.to_owned(), v.clone()))
            })
            .collect()
    }

    pub fn factory(&self) -> &Factory {
        &self.factory
    }

    /// The stored value of a key (live keys have none).
    pub fn get(&self, name: &str) -> Option<&str> {
        spec(name)
            .and_then(|s| self.values.get(s.name))
            .map(String::as_str)
    }

    pub fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    pub fn websocket_settings(&self) -> WebsocketSettings {
        self.get("VendorWebsocketSettings")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.factory.settings.clone())
    }

    /// The identity used to connect: VendorChargePointName.
    pub fn identity(&self) -> &str {
        self.get("VendorChargePointName")
            .unwrap_or(&self.factory.serial_number)
    }

    fn validate(&self, spec: &KeySpec, value: &str) -> Result<String, String> {
        let v = keys::canonical(spec.kind, value)?;
        match spec.kind {
            Kind::Measurands { max_items_key } => {
                let max = self.int(max_items_key).max(0) as usize;
                let n = measurand_items(&v).len();
                if n > max {
                    return Err(format!("{n} items, at most {max}"));
                }
                Ok(v)
            }
            Kind::Name if v.is_empty() => Ok(self.factory.serial_number.clone()),
            _ => Ok(v),
        }
    }

    /// ChangeConfiguration: unknown key NotSupported, read-only or invalid value Rejected.
    pub fn change(&mut self, key: &str, value: &str) -> Change {
        let refuse = |status, reason: String| Change {
            status,
            changed: None,
            reason: Some(reason),
        };
        let Some(spec) = spec(key) else {
            return refuse(
                ConfigurationStatus::NotSupported,
                format!("unknown key {key:?}"),
            );
        };
        if spec.access == Access::ReadOnly {
            return refuse(
                ConfigurationStatus::Rejected,
                format!("{} is read-only", spec.name),
            );
        }
        match self.validate(spec, value) {
            Ok(v) => {
                let changed = self.values.get(spec.name) != Some(&v);
                self.values.insert(spec.name, v);
                Change {
                    status: ConfigurationStatus::Accepted,
                    changed: changed.then_some(spec.name),
                    reason: None,
                }
            }
            Err(why) => refuse(
                ConfigurationStatus::Rejected,
                format!("{}: {why}", spec.name),
            ),
        }
    }

    /// GetConfiguration. Without keys: every standard key, never a vendor one (FAQ 3.1). With
    /// keys: exactly those (vendor ones included), unknown names in `unknownKey`. More keys
    /// than GetConfigurationMaxKeys is an OccurenceConstraintViolation.
    /// `live` computes the value of live keys (OEM_NetState, GetFirmwareUpgradePercentages).
    pub fn get_configuration(
        &self,
        keys: Option<&[CiString50]>,
        live: &dyn Fn(&str) -> String,
    ) -> Result<GetConfigurationResponse, CallError> {
        let entry = |spec: &KeySpec| {
            let value = match spec.kind {
                Kind::Live => live(spec.name),
                _ => self.values.get(spec.name).cloned().unwrap_or_default(),
            };
            KeyValue {
                key: CiString50::new(spec.name).expect("key names are short"),
                readonly: spec.access == Access::ReadOnly,
                value: Some(ocpp::CiString500::truncating(&value)),
            }
        };
        let requested = keys.filter(|k| !k.is_empty());
        let Some(requested) = requested else {
            let all = KEYS.iter().filter(|k| !k.vendor).map(entry).collect();
            return Ok(GetConfigurationResponse {
                configuration_key: Some(all),
                unknown_key: None,
            });
        };
        let max = self.int("GetConfigurationMaxKeys").max(0) as usize;
        if requested.len() > max {
            return Err(CallError::new(
                CallErrorCode::OccurenceConstraintViolation,
                format!(
                    "{} keys requested, GetConfigurationMaxKeys is {max}",
                    requested.len()
                ),
            ));
        }
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for name in requested {
            match spec(name) {
                Some(s) => known.push(entry(s)),
                None => unknown.push(name.clone()),
            }
        }
        Ok(GetConfigurationResponse {
            configuration_key: (!known.is_empty()).then_some(known),
            unknown_key: (!unknown.is_empty()).then_some(unknown),
        })
    }
}
