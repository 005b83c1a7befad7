//! The configuration keys of the pile: the standard keys of FAQ section 3.8 (with the FAQ's
//! defaults) and those the supported profiles need, and the vendor keys.

use vendor::{WebsocketSettings, FAULT_MASK_BITS, FUNCTION_MASK_BITS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
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
    /// VendorChargeBoxId / VendorChargePointName: at most 63 characters; empty restores the
    /// default (the serial number).
    Name,
    WebsocketSettings,
    Mask {
        allowed_bits: u32,
    },
    Insight,
    /// Computed by the pile when read (OEM_NetState, GetFirmwareUpgradePercentages).
    Live,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub name: &'static str,
    pub access: Access,
    pub kind: Kind,
    /// Vendor keys are only returned when asked for by name (FAQ 3.1).
    pub vendor: bool,
}

const fn std(name: &'static str, access: Access, kind: Kind) -> KeySpec {
    KeySpec {
        name,
        access,
        kind,
        vendor: false,
    }
}

const fn vendor(name: &'static str, access: Access, kind: Kind) -> KeySpec {
    KeySpec {
        name,
        access,
        kind,
        vendor: true,
    }
}

use Access::{ReadOnly as R, ReadWrite as RW};

const DAY: i64 = 86_400;

/// Every key, standard ones in the order GetConfiguration lists them.
pub const KEYS: &[KeySpec] = &[
    std("AllowOfflineTxForUnknownId", RW, Kind::Bool),
    std("AuthorizationCacheEnabled", RW, Kind::Bool),
    std("AuthorizeRemoteTxRequests", RW, Kind::Bool),
    std(
        "ClockAlignedDataInterval",
        RW,
        Kind::Int { min: 0, max: DAY },
    ),
    std("ConnectionTimeOut", RW, Kind::Int { min: 1, max: DAY }),
    std("ConnectorPhaseRotation", R, Kind::Fixed),
    std("GetConfigurationMaxKeys", R, Kind::Fixed),
    std("HeartbeatInterval", RW, Kind::Int { min: 60, max: DAY }),
    std("LocalAuthorizeOffline", RW, Kind::Bool),
    std("LocalPreAuthorize", RW, Kind::Bool),
    std(
        "MaxEnergyOnInvalidId",
        RW,
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    std(
        "MeterValuesAlignedData",
        RW,
        Kind::Measurands {
            max_items_key: "MeterValuesAlignedDataMaxLength",
        },
    ),
    std("MeterValuesAlignedDataMaxLength", R, Kind::Fixed),
    std(
        "MeterValuesSampledData",
        RW,
        Kind::Measurands {
            max_items_key: "MeterValuesSampledDataMaxLength",
        },
    ),
    std("MeterValuesSampledDataMaxLength", R, Kind::Fixed),
    std(
        "MeterValueSampleInterval",
        RW,
        Kind::Int { min: 0, max: DAY },
    ),
    std("MinimumStatusDuration", RW, Kind::Int { min: 0, max: DAY }),
    std("NumberOfConnectors", R, Kind::Fixed),
    std("ResetRetries", RW, Kind::Int { min: 0, max: 100 }),
    std("StopTransactionOnEVSideDisconnect", RW, Kind::Bool),
    std("StopTransactionOnInvalidId", RW, Kind::Bool),
    std(
        "StopTxnAlignedData",
        RW,
        Kind::Measurands {
            max_items_key: "StopTxnAlignedDataMaxLength",
        },
    ),
    std("StopTxnAlignedDataMaxLength", R, Kind::Fixed),
    std(
        "StopTxnSampledData",
        RW,
        Kind::Measurands {
            max_items_key: "StopTxnSampledDataMaxLength",
        },
    ),
    std("StopTxnSampledDataMaxLength", R, Kind::Fixed),
    std("SupportedFeatureProfiles", R, Kind::Fixed),
    std("SupportedFeatureProfilesMaxLength", R, Kind::Fixed),
    std(
        "TransactionMessageAttempts",
        RW,
        Kind::Int { min: 1, max: 100 },
    ),
    std(
        "TransactionMessageRetryInterval",
        RW,
        Kind::Int { min: 1, max: DAY },
    ),
    std("UnlockConnectorOnEVSideDisconnect", RW, Kind::Bool),
    std("WebSocketPingInterval", RW, Kind::Int { min: 0, max: DAY }),
    std("LocalAuthListEnabled", RW, Kind::Bool),
    std("LocalAuthListMaxLength", R, Kind::Fixed),
    std("SendLocalListMaxLength", R, Kind::Fixed),
    std("ReserveConnectorZeroSupported", R, Kind::Fixed),
    std("ChargeProfileMaxStackLevel", R, Kind::Fixed),
    std("ChargingScheduleAllowedChargingRateUnit", R, Kind::Fixed),
    std("ChargingScheduleMaxPeriods", R, Kind::Fixed),
    std("ConnectorSwitch3to1PhaseSupported", R, Kind::Fixed),
    std("MaxChargingProfilesInstalled", R, Kind::Fixed),
    vendor("VendorWebsocketSettings", RW, Kind::WebsocketSettings),
    vendor("VendorChargeBoxId", RW, Kind::Name),
    vendor("VendorChargePointName", RW, Kind::Name),
    vendor("UrlHasServerToken", RW, Kind::Bool),
    vendor("VendorDirectWorkMode", RW, Kind::Bool),
    vendor("DBGEnableInsight", RW, Kind::Insight),
    vendor(
        "OEM_FaultMask",
        RW,
        Kind::Mask {
            allowed_bits: FAULT_MASK_BITS,
        },
    ),
    vendor(
        "OEM_FunctionMask",
        RW,
        Kind::Mask {
            allowed_bits: FUNCTION_MASK_BITS,
        },
    ),
    vendor("OEM_NetState", R, Kind::Live),
    vendor("GetFirmwareUpgradePercentages", R, Kind::Live),
];

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

/// The items of a measurand list (an empty value has none).
pub fn measurand_items(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').collect()
    }
}

/// A measurand the meter provides, optionally with a phase.
fn valid_measurand(item: &str) -> bool {
    crate::meter::parse_item(item).is_some_and(|(m, _)| crate::meter::SUPPORTED.contains(&m))
}

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
            match items.iter().find(|i| !valid_measurand(i)) {
                Some(bad) => Err(format!("{bad:?} is not a measurand")),
                None => Ok(items.join(",")),
            }
        }
        Kind::Name => vendor::validate_name(value).map(|()| value.to_owned()),
        Kind::WebsocketSettings => value
            .parse::<WebsocketSettings>()
            .map(|s| s.to_string())
            .map_err(|e| e.to_string()),
        Kind::Mask { allowed_bits } => {
            vendor::parse_mask(value, allowed_bits).map(|m| m.to_string())
        }
        Kind::Insight => vendor::parse_insight(value).map(|_| value.to_owned()),
        Kind::Fixed | Kind::Live => Err("read-only".into()),
    }
}

/// The factory value of every stored key.
pub fn defaults(factory: &Factory) -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_owned();
    vec![
        ("AllowOfflineTxForUnknownId", s("true")),
        ("AuthorizationCacheEnabled", s("true")),
        ("AuthorizeRemoteTxRequests", s("false")),
        ("ClockAlignedDataInterval", s("1800")),
        ("ConnectionTimeOut", s("120")),
        ("ConnectorPhaseRotation", s("RST")),
        ("GetConfigurationMaxKeys", s("100")),
        ("HeartbeatInterval", s("900")),
        ("LocalAuthorizeOffline", s("true")),
        ("LocalPreAuthorize", s("false")),
        ("MaxEnergyOnInvalidId", s("1000")),
        ("MeterValuesAlignedData", s("Current.Import,Energy.Active.Import.Interval,Power.Active.Import,Temperature,Voltage")),
        ("MeterValuesAlignedDataMaxLength", s("20")),
        (
            "MeterValuesSampledData",
            s("Power.Offered,Current.Offered,Current.Import,Energy.Active.Import.Register,Energy.Active.Import.Interval,Power.Active.Import,Temperature,Temperature,Temperature,Voltage"),
        ),
        ("MeterValuesSampledDataMaxLength", s("20")),
        ("MeterValueSampleInterval", s("60")),
        ("MinimumStatusDuration", s("0")),
        ("NumberOfConnectors", factory.connectors.to_string()),
        ("ResetRetries", s("3")),
        ("StopTransactionOnEVSideDisconnect", s("false")),
        ("StopTransactionOnInvalidId", s("true")),
        ("StopTxnAlignedData", s("")),
        ("StopTxnAlignedDataMaxLength", s("20")),
        ("StopTxnSampledData", s("")),
        ("StopTxnSampledDataMaxLength", s("20")),
        ("SupportedFeatureProfiles", s("Core,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger")),
        ("SupportedFeatureProfilesMaxLength", s("5")),
        ("TransactionMessageAttempts", s("3")),
        ("TransactionMessageRetryInterval", s("60")),
        ("UnlockConnectorOnEVSideDisconnect", s("true")),
        ("WebSocketPingInterval", s("60")),
        ("LocalAuthListEnabled", s("true")),
        ("LocalAuthListMaxLength", s("1000")),
        ("SendLocalListMaxLength", s("100")),
        ("ReserveConnectorZeroSupported", s("true")),
        ("ChargeProfileMaxStackLevel", s("8")),
        ("ChargingScheduleAllowedChargingRateUnit", s("Current,Power")),
        ("ChargingScheduleMaxPeriods", (7 * 24 * 3600).to_string()),
        ("ConnectorSwitch3to1PhaseSupported", s("false")),
        ("MaxChargingProfilesInstalled", s("16")),
        ("VendorWebsocketSettings", factory.settings.to_string()),
        ("VendorChargeBoxId", factory.serial_number.clone()),
        ("VendorChargePointName", factory.serial_number.clone()),
        ("UrlHasServerToken", s("false")),
        ("VendorDirectWorkMode", s("true")),
        ("DBGEnableInsight", s("")),
        ("OEM_FaultMask", s("0")),
        ("OEM_FunctionMask", s("0")),
    ]
}
