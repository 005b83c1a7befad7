//! The names of the vendor's configuration keys. GetConfiguration without keys never returns
//! them: they are read by name (FAQ 3.1).

/// `WS,host,port,path,protocol,user,password` (FAQ 3.3).
pub const VENDOR_WEBSOCKET_SETTINGS: &str = "VendorWebsocketSettings";
/// The pile's alias; empty restores the serial number (FAQ 3.2.1).
pub const VENDOR_CHARGE_BOX_ID: &str = "VendorChargeBoxId";
/// The pile's name, its identity on the websocket (FAQ 3.2.2).
pub const VENDOR_CHARGE_POINT_NAME: &str = "VendorChargePointName";
/// Whether the identity is left off the URL (FAQ 3.2.3).
pub const URL_HAS_SERVER_TOKEN: &str = "UrlHasServerToken";
/// Plug-and-charge (FAQ 3.4).
pub const VENDOR_DIRECT_WORK_MODE: &str = "VendorDirectWorkMode";
/// The vendor's remote log collector (FAQ 3.7).
pub const DBG_ENABLE_INSIGHT: &str = "DBGEnableInsight";
/// FAQ 3.12.
pub const OEM_FAULT_MASK: &str = "OEM_FaultMask";
/// FAQ 3.13.
pub const OEM_FUNCTION_MASK: &str = "OEM_FunctionMask";
/// The network state as JSON, read-only (FAQ 3.14).
pub const OEM_NET_STATE: &str = "OEM_NetState";
/// Download progress of a firmware upgrade, read-only (FAQ 3.17.5).
pub const GET_FIRMWARE_UPGRADE_PERCENTAGES: &str = "GetFirmwareUpgradePercentages";

/// Every vendor key, in the order the central system reads them.
pub const VENDOR_KEYS: [&str; 10] = [
    VENDOR_WEBSOCKET_SETTINGS,
    VENDOR_CHARGE_BOX_ID,
    VENDOR_CHARGE_POINT_NAME,
    URL_HAS_SERVER_TOKEN,
    VENDOR_DIRECT_WORK_MODE,
    DBG_ENABLE_INSIGHT,
    OEM_FAULT_MASK,
    OEM_FUNCTION_MASK,
    OEM_NET_STATE,
    GET_FIRMWARE_UPGRADE_PERCENTAGES,
];

/// The standard key the FAQ bounds to 60..=86400 seconds (FAQ 3.16).
pub const HEARTBEAT_INTERVAL: &str = "HeartbeatInterval";
/// FAQ 3.16: the range HeartbeatInterval accepts.
pub const HEARTBEAT_INTERVAL_RANGE: std::ops::RangeInclusive<i64> = 60..=86_400;
/// How many keys one GetConfiguration may ask for.
pub const GET_CONFIGURATION_MAX_KEYS: &str = "GetConfigurationMaxKeys";
