//! The configuration registry: typed keys with access rights, defaults and validators, and the
//! GetConfiguration / ChangeConfiguration semantics of OCPP 1.6 and the vendor FAQ.

pub mod keys;

use std::collections::BTreeMap;

use ocpp::{
    CallError, CallErrorCode, CiString50, ConfigurationStatus, GetConfigurationResponse, KeyValue,
};

pub use keys::{measurand_items, spec, Access, Factory, Key, KeySpec, Kind, Live, OnChange, KEYS};
pub use oem::{
    parse_insight, parse_mask, validate_name, InvalidSetting, WebsocketSettings, FAULT_MASK_BITS,
    FUNCTION_MASK_BITS, MAX_NAME_LEN,
};

/// A frame as a log may keep it: the value of a ChangeConfiguration of a write-only key
/// (AuthorizationKey) replaced by `<redacted>`; any other frame as it is.
pub fn redacted(frame: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let write_only = KEYS.iter().filter(|k| k.access == Access::WriteOnly);
    let names_one = write_only.clone().any(|k| {
        frame
            .as_bytes()
            .windows(k.name.len())
            .any(|w| w.eq_ignore_ascii_case(k.name.as_bytes()))
    });
    if !names_one {
        return Cow::Borrowed(frame);
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(frame) else {
        return Cow::Borrowed(frame);
    };
    let Some(call) = value.as_array_mut() else {
        return Cow::Borrowed(frame);
    };
    let is_change = call.first().and_then(|t| t.as_i64()) == Some(2)
        && call.get(2).and_then(|a| a.as_str()) == Some("ChangeConfiguration");
    let Some(payload) = call.get_mut(3).filter(|_| is_change) else {
        return Cow::Borrowed(frame);
    };
    let secret = payload
        .get("key")
        .and_then(|k| k.as_str())
        .and_then(spec)
        .is_some_and(|s| s.access == Access::WriteOnly);
    if !secret {
        return Cow::Borrowed(frame);
    }
    payload["value"] = serde_json::Value::from("<redacted>");
    Cow::Owned(value.to_string())
}

/// The outcome of a ChangeConfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: ConfigurationStatus,
    /// The key's canonical name when the value changed (so the pile can act on it).
    pub changed: Option<&'static str>,
    /// Why a change was refused, for the log.
    pub reason: Option<String>,
}

/// The stored configuration of one pile: the factory's values, and only the values that differ
/// from them (a pile of a fleet holds a few bytes of configuration, not every key).
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    factory: Factory,
    /// NumberOfConnectors and VendorWebsocketSettings as the factory sets them, as text.
    factory_connectors: String,
    factory_settings: String,
    values: BTreeMap<&'static str, String>,
}

impl Configuration {
    /// The factory configuration.
    pub fn new(factory: Factory) -> Self {
        Configuration {
            factory_connectors: factory.connectors.to_string(),
            factory_settings: factory.settings.to_string(),
            factory,
            values: BTreeMap::new(),
        }
    }

    /// A key's factory value.
    fn default_of(&self, spec: &KeySpec) -> &str {
        match spec.default {
            keys::Default::Text(v) => v,
            keys::Default::SerialNumber => &self.factory.serial_number,
            keys::Default::Connectors => &self.factory_connectors,
            keys::Default::FactorySettings => &self.factory_settings,
            keys::Default::Computed => "",
        }
    }

    /// A key's current value: changed, or the factory's.
    fn current(&self, spec: &'static KeySpec) -> &str {
        match self.values.get(spec.name) {
            Some(v) => v,
            None => self.default_of(spec),
        }
    }

    /// Keeps a value, or forgets it when it is the factory's.
    fn keep(&mut self, spec: &'static KeySpec, value: String) {
        if value == self.default_of(spec) {
            self.values.remove(spec.name);
        } else {
            self.values.insert(spec.name, value);
        }
    }

    /// The factory configuration overlaid with persisted values. Values that no longer
    /// validate, and keys that are unknown or read-only, are ignored.
    pub fn restore(factory: Factory, persisted: &BTreeMap<String, String>) -> Self {
        let mut config = Configuration::new(factory);
        for (name, value) in persisted {
            if let Some(spec) = spec(name).filter(|s| s.access != Access::ReadOnly) {
                if let Ok(v) = config.validate(spec, value) {
                    config.keep(spec, v);
                }
            }
        }
        config
    }

    /// What is persisted: the writable keys whose value is not the factory's.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    pub fn factory(&self) -> &Factory {
        &self.factory
    }

    /// The stored value of a key named at run time (a ChangeConfiguration, a dump); code
    /// reads keys through the typed accessors below. Live keys have none, and write-only
    /// keys (AuthorizationKey) are never read back.
    pub fn get(&self, name: &str) -> Option<&str> {
        spec(name)
            .filter(|s| !matches!(s.kind, Kind::Live(_)) && s.access != Access::WriteOnly)
            .map(|s| self.current(s))
    }

    fn stored(&self, key: impl Key) -> &str {
        let name = key.name();
        match KEYS.iter().find(|k| k.name == name) {
            Some(spec) => self.current(spec),
            None => "",
        }
    }

    /// An integer key (every stored value was validated, so it parses).
    pub fn int(&self, key: keys::Int) -> i64 {
        self.stored(key).parse().unwrap_or(0)
    }

    /// An integer key that counts seconds.
    pub fn seconds(&self, key: keys::Int) -> std::time::Duration {
        std::time::Duration::from_secs(self.int(key).max(0) as u64)
    }

    pub fn flag(&self, key: keys::Flag) -> bool {
        self.stored(key) == "true"
    }

    pub fn text(&self, key: keys::Text) -> &str {
        self.stored(key)
    }

    /// A mask key (stored in decimal once validated).
    pub fn mask(&self, key: keys::Mask) -> u32 {
        self.stored(key).parse().unwrap_or(0)
    }

    pub fn websocket_settings(&self) -> WebsocketSettings {
        self.text(keys::VENDOR_WEBSOCKET_SETTINGS)
            .parse()
            .unwrap_or_else(|_| self.factory.settings.clone())
    }

    /// The identity used to connect: VendorChargePointName.
    pub fn identity(&self) -> &str {
        match self.text(keys::VENDOR_CHARGE_POINT_NAME) {
            "" => &self.factory.serial_number,
            name => name,
        }
    }

    /// Sets a key as the pile itself does (an accepted boot's interval, a fallback of the
    /// server settings), with the same validation as ChangeConfiguration.
    pub fn set(&mut self, key: impl Key, value: &str) -> Change {
        self.change(key.name(), value)
    }

    fn validate(&self, spec: &KeySpec, value: &str) -> Result<String, String> {
        let v = keys::canonical(spec.kind, value)?;
        match spec.kind {
            Kind::Measurands { max_items_key } => {
                let max = self
                    .get(max_items_key)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
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
                let changed = self.current(spec) != v;
                self.keep(spec, v);
                Change {
                    status: if spec.reboot_required {
                        ConfigurationStatus::RebootRequired
                    } else {
                        ConfigurationStatus::Accepted
                    },
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
    /// keys: exactly those (vendor ones included), unknown names in `unknownKey`. A write-only
    /// key (AuthorizationKey) is listed nowhere: asked for by name, it is an `unknownKey`. More keys
    /// than GetConfigurationMaxKeys is an OccurenceConstraintViolation.
    /// `live` computes the value of live keys (OEM_NetState, GetFirmwareUpgradePercentages).
    pub fn get_configuration(
        &self,
        keys: Option<&[CiString50]>,
        live: &dyn Fn(Live) -> String,
    ) -> Result<GetConfigurationResponse, CallError> {
        let entry = |spec: &'static KeySpec| {
            let value = match spec.kind {
                Kind::Live(which) => live(which),
                _ => self.current(spec).to_owned(),
            };
            KeyValue {
                key: CiString50::new(spec.name).expect("key names are short"),
                readonly: spec.access == Access::ReadOnly,
                value: Some(ocpp::CiString500::truncating(&value)),
            }
        };
        let requested = keys.filter(|k| !k.is_empty());
        let Some(requested) = requested else {
            let all = KEYS
                .iter()
                .filter(|k| !k.vendor && k.access != Access::WriteOnly)
                .map(entry)
                .collect();
            return Ok(GetConfigurationResponse {
                configuration_key: Some(all),
                unknown_key: None,
            });
        };
        let max = self.int(keys::GET_CONFIGURATION_MAX_KEYS).max(0) as usize;
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
            match spec(name).filter(|s| s.access != Access::WriteOnly) {
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
