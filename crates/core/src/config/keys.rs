//! Every configuration key of the pile, declared once as data: name, type, access, default,
//! validation, what changing it does, whether it needs a reboot, and where it comes from
//! (FAQ 3.8 for the standard keys with the FAQ's defaults, OCPP 1.6 chapter 9 for the keys
//! the supported profiles need, the FAQ's sections for the vendor keys). Code reads and writes
//! keys through the typed handles this file declares, never by string.

use oem::keys as vk;
use oem::{WebsocketSettings, FAULT_MASK_BITS, FUNCTION_MASK_BITS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// Written by ChangeConfiguration, never read back: GetConfiguration lists it nowhere
    /// (AuthorizationKey, security whitepaper §7.2).
    WriteOnly,
}

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A comma-separated list of measurands, each optionally with a phase (`Voltage.L1`), with
    /// at most as many items as the read-only key named here says.
    Measurands {
        max_items_key: &'static str,
    },
    /// A fixed value (read-only lists such as SupportedFeatureProfiles).
    Fixed,
    /// Free text of at most this many characters (CpoName).
    Text {
        max_len: usize,
    },
    /// A secret given as hexadecimal: an even number of hex digits for `min_bytes` to
    /// `max_bytes` bytes (AuthorizationKey). Never empty once set.
    HexKey {
        min_bytes: usize,
        max_bytes: usize,
    },
    /// VendorChargeBoxId / VendorChargePointName: at most 63 characters; empty restores the
    /// default (the serial number).
    Name,
    WebsocketSettings,
    Mask {
        allowed_bits: u32,
    },
    Insight,
    /// Computed by the pile when read.
    Live(Live),
}

/// The keys whose value the pile computes when they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// OEM_NetState (FAQ 3.14).
    NetState,
    /// GetFirmwareUpgradePercentages (FAQ 3.17.5).
    FirmwarePercent,
}

/// Where a key's factory value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    Text(&'static str),
    /// The pile's serial number.
    SerialNumber,
    /// How many connectors the pile has.
    Connectors,
    /// The factory server settings.
    FactorySettings,
    /// None: a live key.
    Computed,
}

/// What the pile does when a key's value changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    Nothing,
    /// Connect to the new server or identity and boot anew.
    Reconnect,
    /// The heartbeat interval counts from now.
    Heartbeat,
    /// The clock-aligned schedule is computed again.
    ClockAligned,
    /// The insight stream starts or stops.
    Insight,
    /// Running transactions sample at the new interval.
    SampleInterval,
    /// The statuses are assessed again (masks, timeouts).
    Statuses,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub name: &'static str,
    pub access: Access,
    pub kind: Kind,
    /// Vendor keys are only returned when asked for by name (FAQ 3.1).
    pub vendor: bool,
    pub default: Default,
    pub on_change: OnChange,
    /// A change is answered RebootRequired and takes effect at the next start.
    pub reboot_required: bool,
    /// The FAQ or specification section the key and its default come from.
    pub source: &'static str,
}

/// A key holding `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub &'static str);
/// A key holding an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub &'static str);
/// A key holding text (lists, names, settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text(pub &'static str);
/// A key holding a bit mask (stored in decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask(pub &'static str);
/// A key computed when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Computed(pub &'static str);

/// Any typed handle: its key's name.
pub trait Key: Copy {
    fn name(self) -> &'static str;
}

macro_rules! handles {
    ($($t:ident),+) => { $(impl Key for $t { fn name(self) -> &'static str { self.0 } })+ };
}
handles!(Flag, Int, Text, Mask, Computed);

use Access::{ReadOnly as R, ReadWrite as RW, WriteOnly as W};

const DAY: i64 = 86_400;

macro_rules! keys {
    ($(
        $(#[$doc:meta])*
        $handle:ident: $ty:ident = $scope:ident($name:expr, $access:expr, $kind:expr,
            $default:expr, $on_change:ident, $source:literal);
    )+) => {
        $( $(#[$doc])* pub const $handle: $ty = $ty($name); )+

        /// The type of each key's handle, by name (for the tests that check the table).
        pub const HANDLE_TYPES: &[(&str, &str)] = &[$(($name, stringify!($ty)),)+];

        /// Every key, standard ones in the order GetConfiguration lists them.
        pub const KEYS: &[KeySpec] = &[$(
            KeySpec {
                name: $name,
                access: $access,
                kind: $kind,
                vendor: keys!(@vendor $scope),
                default: $default,
                on_change: OnChange::$on_change,
                reboot_required: false,
                source: $source,
            },
        )+];
    };
    (@vendor standard) => { false };
    (@vendor vendor) => { true };
}

use self::Default::{Computed as Live_, Connectors, FactorySettings, SerialNumber, Text as D};

keys! {
    ALLOW_OFFLINE_TX_FOR_UNKNOWN_ID: Flag = standard("AllowOfflineTxForUnknownId", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8, 3.5.4");
    AUTHORIZATION_CACHE_ENABLED: Flag = standard("AuthorizationCacheEnabled", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8, 3.5.3");
    AUTHORIZE_REMOTE_TX_REQUESTS: Flag = standard("AuthorizeRemoteTxRequests", RW, Kind::Bool, D("false"), Nothing, "FAQ 3.8");
    CLOCK_ALIGNED_DATA_INTERVAL: Int = standard("ClockAlignedDataInterval", RW, Kind::Int { min: 0, max: DAY }, D("1800"), ClockAligned, "FAQ 3.8");
    CONNECTION_TIME_OUT: Int = standard("ConnectionTimeOut", RW, Kind::Int { min: 1, max: DAY }, D("120"), Statuses, "FAQ 3.8");
    CONNECTOR_PHASE_ROTATION: Text = standard("ConnectorPhaseRotation", R, Kind::Fixed, D("RST"), Nothing, "FAQ 3.8");
    GET_CONFIGURATION_MAX_KEYS: Int = standard(vk::GET_CONFIGURATION_MAX_KEYS, R, Kind::Fixed, D("100"), Nothing, "FAQ 3.8");
    HEARTBEAT_INTERVAL: Int = standard(vk::HEARTBEAT_INTERVAL, RW, Kind::Int { min: 60, max: DAY }, D("900"), Heartbeat, "FAQ 3.8, 3.16");
    LOCAL_AUTHORIZE_OFFLINE: Flag = standard("LocalAuthorizeOffline", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8, 3.5.1");
    LOCAL_PRE_AUTHORIZE: Flag = standard("LocalPreAuthorize", RW, Kind::Bool, D("false"), Nothing, "FAQ 3.8, 3.5.2");
    MAX_ENERGY_ON_INVALID_ID: Int = standard("MaxEnergyOnInvalidId", RW, Kind::Int { min: 0, max: i32::MAX as i64 }, D("1000"), Nothing, "FAQ 3.8");
    METER_VALUES_ALIGNED_DATA: Text = standard("MeterValuesAlignedData", RW, Kind::Measurands { max_items_key: "MeterValuesAlignedDataMaxLength" },
        D("Current.Import,Energy.Active.Import.Interval,Power.Active.Import,Temperature,Voltage"), Nothing, "FAQ 3.8");
    METER_VALUES_ALIGNED_DATA_MAX_LENGTH: Int = standard("MeterValuesAlignedDataMaxLength", R, Kind::Fixed, D("20"), Nothing, "FAQ 3.8 (no value given; ours)");
    METER_VALUES_SAMPLED_DATA: Text = standard("MeterValuesSampledData", RW, Kind::Measurands { max_items_key: "MeterValuesSampledDataMaxLength" },
        D("Power.Offered,Current.Offered,Current.Import,Energy.Active.Import.Register,Energy.Active.Import.Interval,Power.Active.Import,Temperature,Temperature,Temperature,Voltage"),
        Nothing, "FAQ 3.8");
    METER_VALUES_SAMPLED_DATA_MAX_LENGTH: Int = standard("MeterValuesSampledDataMaxLength", R, Kind::Fixed, D("20"), Nothing, "FAQ 3.8 (no value given; ours)");
    METER_VALUE_SAMPLE_INTERVAL: Int = standard("MeterValueSampleInterval", RW, Kind::Int { min: 0, max: DAY }, D("60"), SampleInterval, "FAQ 3.8");
    MINIMUM_STATUS_DURATION: Int = standard("MinimumStatusDuration", RW, Kind::Int { min: 0, max: DAY }, D("0"), Statuses, "FAQ 3.8");
    NUMBER_OF_CONNECTORS: Int = standard("NumberOfConnectors", R, Kind::Fixed, Connectors, Nothing, "FAQ 3.8");
    RESET_RETRIES: Int = standard("ResetRetries", RW, Kind::Int { min: 0, max: 100 }, D("3"), Nothing, "FAQ 3.8");
    STOP_TRANSACTION_ON_EV_SIDE_DISCONNECT: Flag = standard("StopTransactionOnEVSideDisconnect", RW, Kind::Bool, D("false"), Nothing, "FAQ 3.8");
    STOP_TRANSACTION_ON_INVALID_ID: Flag = standard("StopTransactionOnInvalidId", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8");
    STOP_TXN_ALIGNED_DATA: Text = standard("StopTxnAlignedData", RW, Kind::Measurands { max_items_key: "StopTxnAlignedDataMaxLength" }, D(""), Nothing, "FAQ 3.8");
    STOP_TXN_ALIGNED_DATA_MAX_LENGTH: Int = standard("StopTxnAlignedDataMaxLength", R, Kind::Fixed, D("20"), Nothing, "FAQ 3.8");
    STOP_TXN_SAMPLED_DATA: Text = standard("StopTxnSampledData", RW, Kind::Measurands { max_items_key: "StopTxnSampledDataMaxLength" }, D(""), Nothing, "FAQ 3.8");
    STOP_TXN_SAMPLED_DATA_MAX_LENGTH: Int = standard("StopTxnSampledDataMaxLength", R, Kind::Fixed, D("20"), Nothing, "FAQ 3.8");
    SUPPORTED_FEATURE_PROFILES: Text = standard("SupportedFeatureProfiles", R, Kind::Fixed,
        D("Core,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"), Nothing, "FAQ 3.8");
    SUPPORTED_FEATURE_PROFILES_MAX_LENGTH: Int = standard("SupportedFeatureProfilesMaxLength", R, Kind::Fixed, D("5"), Nothing, "FAQ 3.8");
    TRANSACTION_MESSAGE_ATTEMPTS: Int = standard("TransactionMessageAttempts", RW, Kind::Int { min: 1, max: 100 }, D("3"), Nothing, "FAQ 3.8 (no value given; OCPP 1.6 9.1.38)");
    TRANSACTION_MESSAGE_RETRY_INTERVAL: Int = standard("TransactionMessageRetryInterval", RW, Kind::Int { min: 1, max: DAY }, D("60"), Nothing, "FAQ 3.8 (no value given; OCPP 1.6 9.1.39)");
    UNLOCK_CONNECTOR_ON_EV_SIDE_DISCONNECT: Flag = standard("UnlockConnectorOnEVSideDisconnect", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8");
    WEB_SOCKET_PING_INTERVAL: Int = standard("WebSocketPingInterval", RW, Kind::Int { min: 0, max: DAY }, D("60"), Nothing, "OCPP 1.6 9.1.40");
    LOCAL_AUTH_LIST_ENABLED: Flag = standard("LocalAuthListEnabled", RW, Kind::Bool, D("true"), Nothing, "FAQ 3.8, OCPP 1.6 9.2");
    LOCAL_AUTH_LIST_MAX_LENGTH: Int = standard("LocalAuthListMaxLength", R, Kind::Fixed, D("1000"), Nothing, "FAQ 3.8, OCPP 1.6 9.2");
    SEND_LOCAL_LIST_MAX_LENGTH: Int = standard("SendLocalListMaxLength", R, Kind::Fixed, D("100"), Nothing, "FAQ 3.8, OCPP 1.6 9.2");
    RESERVE_CONNECTOR_ZERO_SUPPORTED: Flag = standard("ReserveConnectorZeroSupported", R, Kind::Fixed, D("true"), Nothing, "FAQ 3.8, OCPP 1.6 9.3");
    CHARGE_PROFILE_MAX_STACK_LEVEL: Int = standard("ChargeProfileMaxStackLevel", R, Kind::Fixed, D("8"), Nothing, "FAQ 3.8, OCPP 1.6 9.4");
    CHARGING_SCHEDULE_ALLOWED_CHARGING_RATE_UNIT: Text = standard("ChargingScheduleAllowedChargingRateUnit", R, Kind::Fixed, D("Current,Power"), Nothing, "FAQ 3.8, OCPP 1.6 9.4");
    CHARGING_SCHEDULE_MAX_PERIODS: Int = standard("ChargingScheduleMaxPeriods", R, Kind::Fixed, D("604800"), Nothing, "FAQ 3.8 (7*24*3600)");
    CONNECTOR_SWITCH_3_TO_1_PHASE_SUPPORTED: Flag = standard("ConnectorSwitch3to1PhaseSupported", R, Kind::Fixed, D("false"), Nothing, "FAQ 3.8");
    MAX_CHARGING_PROFILES_INSTALLED: Int = standard("MaxChargingProfilesInstalled", R, Kind::Fixed, D("16"), Nothing, "FAQ 3.8");
    ADDITIONAL_ROOT_CERTIFICATE_CHECK: Flag = standard("AdditionalRootCertificateCheck", R, Kind::Fixed, D("false"), Nothing, "SEC 7.1");
    /// The HTTP Basic password (security profiles 1 and 2): write-only, 16 to 20 bytes as hex.
    AUTHORIZATION_KEY: Text = standard("AuthorizationKey", W, Kind::HexKey { min_bytes: 16, max_bytes: 20 }, D(""), Reconnect, "SEC 7.2, JERR 3.10");
    CERTIFICATE_SIGNED_MAX_CHAIN_SIZE: Int = standard("CertificateSignedMaxChainSize", R, Kind::Fixed, D("10000"), Nothing, "SEC 7.3");
    CERTIFICATE_STORE_MAX_LENGTH: Int = standard("CertificateStoreMaxLength", R, Kind::Fixed, D("10"), Nothing, "SEC 7.4");
    CPO_NAME: Text = standard("CpoName", RW, Kind::Text { max_len: 255 }, D(""), Nothing, "SEC 7.5");
    /// Can only be raised (the pile checks what the new profile needs before it takes it).
    SECURITY_PROFILE: Int = standard("SecurityProfile", RW, Kind::Int { min: 0, max: 3 }, D("0"), Reconnect, "SEC 7.6");
    VENDOR_WEBSOCKET_SETTINGS: Text = vendor(vk::VENDOR_WEBSOCKET_SETTINGS, RW, Kind::WebsocketSettings, FactorySettings, Reconnect, "FAQ 3.3");
    VENDOR_CHARGE_BOX_ID: Text = vendor(vk::VENDOR_CHARGE_BOX_ID, RW, Kind::Name, SerialNumber, Nothing, "FAQ 3.2.1");
    VENDOR_CHARGE_POINT_NAME: Text = vendor(vk::VENDOR_CHARGE_POINT_NAME, RW, Kind::Name, SerialNumber, Reconnect, "FAQ 3.2.2");
    URL_HAS_SERVER_TOKEN: Flag = vendor(vk::URL_HAS_SERVER_TOKEN, RW, Kind::Bool, D("false"), Reconnect, "FAQ 3.2.3");
    VENDOR_DIRECT_WORK_MODE: Flag = vendor(vk::VENDOR_DIRECT_WORK_MODE, RW, Kind::Bool, D("true"), Nothing, "FAQ 3.4");
    DBG_ENABLE_INSIGHT: Text = vendor(vk::DBG_ENABLE_INSIGHT, RW, Kind::Insight, D(""), Insight, "FAQ 3.7");
    OEM_FAULT_MASK: Mask = vendor(vk::OEM_FAULT_MASK, RW, Kind::Mask { allowed_bits: FAULT_MASK_BITS }, D("0"), Statuses, "FAQ 3.12");
    OEM_FUNCTION_MASK: Mask = vendor(vk::OEM_FUNCTION_MASK, RW, Kind::Mask { allowed_bits: FUNCTION_MASK_BITS }, D("0"), Statuses, "FAQ 3.13");
    OEM_NET_STATE: Computed = vendor(vk::OEM_NET_STATE, R, Kind::Live(Live::NetState), Live_, Nothing, "FAQ 3.14");
    GET_FIRMWARE_UPGRADE_PERCENTAGES: Computed = vendor(vk::GET_FIRMWARE_UPGRADE_PERCENTAGES, R, Kind::Live(Live::FirmwarePercent), Live_, Nothing, "FAQ 3.17.5");
}

/// Finds a key; names are CiString, so the lookup ignores case.
pub fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// What a pile is at the factory: the values its defaults come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factory {
    pub serial_number: String,
    pub connectors: u32,
    pub settings: WebsocketSettings,
    /// The offline IC cards installed at the factory: accepted without the central system
    /// while the pile keeps its factory name (FAQ 3.2.2), under the local authorization rules
    /// (FAQ 3.5).
    pub offline_cards: Vec<String>,
}

pub use crate::measurands::measurand_items;

/// Checks a value for a key and returns it in its stored form, or why it is refused.
/// (Lengths of measurand lists are checked by the store, which knows the limits.)
pub fn canonical(kind: Kind, value: &str) -> Result<String, String> {
    match kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => Ok("true".into()),
            "false" => Ok("false".into()),
            _ => Err(format!("{value:?} is not true or false")),
        },
        Kind::Int { min, max } => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{value:?} is not an integer"))?;
            if (min..=max).contains(&n) {
                Ok(n.to_string())
            } else {
                Err(format!("{n} is outside {min}..={max}"))
            }
        }
        Kind::Measurands { .. } => {
            let items = measurand_items(value);
            match items.iter().find(|i| !crate::measurands::is_supported(i)) {
                Some(bad) => Err(format!("{bad:?} is not a measurand")),
                None => Ok(items.join(",")),
            }
        }
        Kind::Name => oem::validate_name(value).map(|()| value.to_owned()),
        Kind::Text { max_len } => {
            if value.chars().count() > max_len {
                Err(format!("longer than {max_len} characters"))
            } else if value.chars().any(char::is_control) {
                Err("contains a control character".into())
            } else {
                Ok(value.to_owned())
            }
        }
        Kind::HexKey {
            min_bytes,
            max_bytes,
        } => {
            let digits = value.len();
            if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                Err("not hexadecimal".into())
            } else if digits % 2 != 0 || !(min_bytes * 2..=max_bytes * 2).contains(&digits) {
                Err(format!(
                    "{digits} hex digits, not {min_bytes} to {max_bytes} bytes"
                ))
            } else {
                Ok(value.to_owned())
            }
        }
        Kind::WebsocketSettings => value
            .parse::<WebsocketSettings>()
            .map(|s| s.to_string())
            .map_err(|e| e.to_string()),
        Kind::Mask { allowed_bits } => oem::parse_mask(value, allowed_bits).map(|m| m.to_string()),
        Kind::Insight => oem::parse_insight(value).map(|_| value.to_owned()),
        Kind::Fixed | Kind::Live(_) => Err("read-only".into()),
    }
}

/// The factory value of a key (live keys have none).
pub fn default_value(spec: &KeySpec, factory: &Factory) -> Option<String> {
    match spec.default {
        Default::Text(v) => Some(v.to_owned()),
        Default::SerialNumber => Some(factory.serial_number.clone()),
        Default::Connectors => Some(factory.connectors.to_string()),
        Default::FactorySettings => Some(factory.settings.to_string()),
        Default::Computed => None,
    }
}

/// The factory value of every stored key.
pub fn defaults(factory: &Factory) -> Vec<(&'static str, String)> {
    KEYS.iter()
        .filter_map(|k| default_value(k, factory).map(|v| (k.name, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory() -> Factory {
        Factory {
            serial_number: "SN-1".into(),
            connectors: 2,
            settings: "WS,h,80,/ocpp/,ocpp1.6,,,".parse().unwrap(),
            offline_cards: Vec::new(),
        }
    }

    #[test]
    fn every_default_passes_its_own_validation_and_fits_its_handle() {
        assert_eq!(HANDLE_TYPES.len(), KEYS.len());
        for (spec, (name, handle)) in KEYS.iter().zip(HANDLE_TYPES) {
            assert_eq!(spec.name, *name);
            assert!(spec.name.len() <= 50, "{}: a CiString50", spec.name);
            assert_eq!(
                super::spec(spec.name).map(|s| s.name),
                Some(spec.name),
                "unique"
            );
            assert!(!spec.source.is_empty());
            let default = default_value(spec, &factory());
            match (spec.kind, *handle) {
                (Kind::Live(_), "Computed") => assert_eq!(default, None, "{name}"),
                (Kind::Fixed, _) => {
                    let v = default.unwrap_or_else(|| panic!("{name} has a value"));
                    match *handle {
                        "Int" => assert!(v.parse::<i64>().is_ok(), "{name}: {v}"),
                        "Flag" => assert!(v == "true" || v == "false", "{name}: {v}"),
                        "Text" => {}
                        other => panic!("{name}: a fixed key as {other}"),
                    }
                }
                // A secret has no value until it is given one.
                (Kind::HexKey { .. }, "Text") => {
                    assert_eq!(spec.access, Access::WriteOnly, "{name}");
                    assert_eq!(default.as_deref(), Some(""), "{name}");
                }
                (kind, handle) => {
                    let v = default.unwrap_or_else(|| panic!("{name} has a default"));
                    let fits = matches!(
                        (kind, handle),
                        (Kind::Bool, "Flag")
                            | (Kind::Int { .. }, "Int")
                            | (Kind::Mask { .. }, "Mask")
                            | (
                                Kind::Measurands { .. }
                                    | Kind::Name
                                    | Kind::Text { .. }
                                    | Kind::WebsocketSettings
                                    | Kind::Insight,
                                "Text"
                            )
                    );
                    assert!(fits, "{name}: {kind:?} read as {handle}");
                    assert_eq!(canonical(kind, &v).as_deref(), Ok(v.as_str()), "{name}");
                    if let Kind::Measurands { max_items_key } = kind {
                        let max: usize = super::spec(max_items_key)
                            .and_then(|m| default_value(m, &factory()))
                            .and_then(|m| m.parse().ok())
                            .unwrap();
                        assert!(measurand_items(&v).len() <= max, "{name}");
                    }
                }
            }
        }
    }
}
