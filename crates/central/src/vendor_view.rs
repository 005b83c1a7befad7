//! The vendor's keys as fields (FAQ 3.1-3.16): read from the stored configuration, and built
//! and validated from fields before anything is sent.

use oem::keys::*;
use oem::{Mask, NetState, WebsocketSettings, FAULT_MASK, FUNCTION_MASK};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::store::ConfigRow;

/// VendorWebsocketSettings (FAQ 3.3), never the password.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct WebsocketView {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// The `socpp1.6` protocol: wss.
    pub tls: bool,
    pub user: String,
    pub has_password: bool,
}

/// One bit of a mask.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct BitView {
    pub bit: u8,
    pub name: &'static str,
    pub meaning: &'static str,
    pub set: bool,
}

/// A mask's value and its bits by name (FAQ 3.12, 3.13).
#[derive(Debug, Serialize, PartialEq, ToSchema)]
#[schema(as = Mask)]
pub struct MaskView {
    pub value: u32,
    pub bits: Vec<BitView>,
}

/// The vendor keys as fields; null where a key was not read or does not parse.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct VendorView {
    pub websocket: Option<WebsocketView>,
    /// VendorChargeBoxId: a name for the operator (FAQ 3.2.1).
    pub alias: Option<String>,
    /// VendorChargePointName: the identity on the websocket (FAQ 3.2.2).
    pub name: Option<String>,
    /// UrlHasServerToken: the identity is not appended to the URL (FAQ 3.2.3).
    pub url_has_server_token: Option<bool>,
    /// VendorDirectWorkMode: plug-and-charge (FAQ 3.4).
    pub direct_work_mode: Option<bool>,
    /// DBGEnableInsight: `host,port` of the log collector; null when off (FAQ 3.7).
    pub insight: Option<String>,
    /// HeartbeatInterval in seconds (FAQ 3.16).
    pub heartbeat_interval: Option<i64>,
    /// OEM_FaultMask (FAQ 3.12).
    pub fault_mask: Option<MaskView>,
    /// OEM_FunctionMask (FAQ 3.13).
    pub function_mask: Option<MaskView>,
    /// OEM_NetState (FAQ 3.14).
    #[schema(schema_with = net_state_schema)]
    pub net_state: Option<NetState>,
    /// GetFirmwareUpgradePercentages: the download progress (FAQ 3.17.5).
    pub firmware_upgrade_percent: Option<i64>,
}

/// OEM_NetState as [`NetState`] serializes it.
fn net_state_schema() -> Schema {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let rssi = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int32,
            )))
            .description(Some("RSSI in dBm; -1 when the interface is absent"))
    };
    let object = ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .property(
            "connectivity",
            text().description(Some(
                "`ETH`, `WiFi` or `4G`: the interface the connection uses",
            )),
        )
        .property("wifi_rssi", rssi())
        .property("lte_rssi", rssi())
        .property("iccid", text())
        .property("imsi", text())
        .property("ip", text())
        .required("connectivity")
        .required("wifi_rssi")
        .required("lte_rssi")
        .required("iccid")
        .required("imsi")
        .required("ip");
    Schema::Object(object.build())
}

/// What PATCH takes for a mask: its value, or the names of the bits to set.
fn mask_patch_schema() -> Schema {
    let number = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u32::MAX));
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("the value as the pile's key holds it"));
    let names = ArrayBuilder::new()
        .items(RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        )))
        .description(Some("the names of the bits to set (the whole mask)"));
    Schema::OneOf(
        OneOfBuilder::new()
            .item(number)
            .item(text)
            .item(names)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

fn value<'a>(rows: &'a [ConfigRow], key: &str) -> Option<&'a str> {
    rows.iter()
        .find(|r| r.key.eq_ignore_ascii_case(key))
        .and_then(|r| r.value.as_deref())
}

fn boolean(v: Option<&str>) -> Option<bool> {
    match v?.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub fn mask_view(mask: &Mask, value: u32) -> MaskView {
    MaskView {
        value,
        bits: mask
            .decode(value)
            .into_iter()
            .map(|(b, set)| BitView {
                bit: b.bit,
                name: b.name,
                meaning: b.meaning,
                set,
            })
            .collect(),
    }
}

/// The current websocket settings as stored, if readable.
pub fn websocket_settings(rows: &[ConfigRow]) -> Option<WebsocketSettings> {
    value(rows, VENDOR_WEBSOCKET_SETTINGS)?.parse().ok()
}

pub fn view(rows: &[ConfigRow]) -> VendorView {
    let mask = |m: &Mask| {
        value(rows, m.key)
            .and_then(|v| m.parse(v).ok())
            .map(|v| mask_view(m, v))
    };
    VendorView {
        websocket: websocket_settings(rows).map(|s| WebsocketView {
            host: s.host,
            port: s.port,
            path: s.path,
            tls: s.secure,
            user: s.user,
            has_password: !s.password.is_empty(),
        }),
        alias: value(rows, VENDOR_CHARGE_BOX_ID).map(str::to_owned),
        name: value(rows, VENDOR_CHARGE_POINT_NAME).map(str::to_owned),
        url_has_server_token: boolean(value(rows, URL_HAS_SERVER_TOKEN)),
        direct_work_mode: boolean(value(rows, VENDOR_DIRECT_WORK_MODE)),
        insight: value(rows, DBG_ENABLE_INSIGHT)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        heartbeat_interval: value(rows, HEARTBEAT_INTERVAL).and_then(|v| v.trim().parse().ok()),
        fault_mask: mask(&FAULT_MASK),
        function_mask: mask(&FUNCTION_MASK),
        net_state: value(rows, OEM_NET_STATE).and_then(|v| NetState::from_json(v).ok()),
        firmware_upgrade_percent: value(rows, GET_FIRMWARE_UPGRADE_PERCENTAGES)
            .and_then(|v| v.trim().parse().ok()),
    }
}

/// A configuration value as the API shows it: the websocket password masked.
pub fn shown_value(key: &str, value: Option<&str>) -> Option<String> {
    let v = value?;
    if key.eq_ignore_ascii_case(VENDOR_WEBSOCKET_SETTINGS) {
        if let Ok(mut s) = v.parse::<WebsocketSettings>() {
            if !s.password.is_empty() {
                s.password = "***".into();
            }
            return Some(s.to_string());
        }
    }
    Some(v.to_owned())
}

/// The VendorWebsocketSettings fields to change; those left out keep their current values.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketPatch {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub tls: Option<bool>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// What `PATCH /api/piles/{id}/vendor` takes: any subset of the fields.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorPatch {
    /// Needs `confirm` (FAQ 3.3).
    pub websocket: Option<WebsocketPatch>,
    /// No `/` and no control characters.
    #[schema(max_length = 63, pattern = "^[^/\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub alias: Option<String>,
    /// No `/` and no control characters; needs `confirm`.
    #[schema(max_length = 63, pattern = "^[^/\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub name: Option<String>,
    pub url_has_server_token: Option<bool>,
    pub direct_work_mode: Option<bool>,
    /// `"host,port"`; empty or null switches insight off.
    #[serde(default, deserialize_with = "nullable")]
    pub insight: Option<Option<String>>,
    #[schema(minimum = 60, maximum = 86400)]
    pub heartbeat_interval: Option<i64>,
    /// A number, or the names of the bits to set (the whole mask).
    #[schema(schema_with = mask_patch_schema)]
    pub fault_mask: Option<Value>,
    #[schema(schema_with = mask_patch_schema)]
    pub function_mask: Option<Value>,
    /// Required with `websocket` or `name`: a wrong value leaves the pile unable to reach
    /// any server.
    #[serde(default)]
    pub confirm: bool,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

/// The keys to change, in the order to send them (those that move the connection last).
#[derive(Debug, PartialEq)]
pub struct Changes(pub Vec<(&'static str, String)>);

fn mask_value(mask: &Mask, v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => {
            let n = n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{}: {n} is not a 32-bit unsigned number", mask.key))?;
            mask.parse(&n.to_string())
                .map_err(|e| format!("{}: {e}", mask.key))
        }
        Value::String(s) => mask.parse(s).map_err(|e| format!("{}: {e}", mask.key)),
        Value::Array(items) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let names = names.ok_or_else(|| format!("{}: bit names must be strings", mask.key))?;
            mask.from_names(names)
        }
        _ => Err(format!("{}: a number or a list of bit names", mask.key)),
    }
}

/// Validates every field and builds the values to send; one bad field refuses them all.
pub fn changes(patch: &VendorPatch, current: &[ConfigRow]) -> Result<Changes, String> {
    let mut first = Vec::new();
    let mut last = Vec::new();
    let moves_connection = patch.websocket.is_some() || patch.name.is_some();
    if moves_connection && !patch.confirm {
        return Err(
            "changing the websocket settings or the name needs \"confirm\": true: \
                    a wrong value leaves the pile unable to reach any server, to be \
                    reconfigured on site over Bluetooth (FAQ 3.3)"
                .into(),
        );
    }
    if let Some(alias) = &patch.alias {
        oem::validate_name(alias).map_err(|e| format!("alias: {e}"))?;
        first.push((VENDOR_CHARGE_BOX_ID, alias.clone()));
    }
    if let Some(v) = patch.direct_work_mode {
        first.push((VENDOR_DIRECT_WORK_MODE, v.to_string()));
    }
    if let Some(insight) = &patch.insight {
        let v = insight.clone().unwrap_or_default();
        oem::parse_insight(&v).map_err(|e| format!("insight: {e}"))?;
        first.push((DBG_ENABLE_INSIGHT, v));
    }
    if let Some(h) = patch.heartbeat_interval {
        if !HEARTBEAT_INTERVAL_RANGE.contains(&h) {
            return Err(format!(
                "heartbeat_interval: {h} is outside {}..={} seconds (FAQ 3.16)",
                HEARTBEAT_INTERVAL_RANGE.start(),
                HEARTBEAT_INTERVAL_RANGE.end()
            ));
        }
        first.push((HEARTBEAT_INTERVAL, h.to_string()));
    }
    if let Some(v) = &patch.fault_mask {
        first.push((OEM_FAULT_MASK, mask_value(&FAULT_MASK, v)?.to_string()));
    }
    if let Some(v) = &patch.function_mask {
        first.push((
            OEM_FUNCTION_MASK,
            mask_value(&FUNCTION_MASK, v)?.to_string(),
        ));
    }
    if let Some(v) = patch.url_has_server_token {
        last.push((URL_HAS_SERVER_TOKEN, v.to_string()));
    }
    if let Some(name) = &patch.name {
        oem::validate_name(name).map_err(|e| format!("name: {e}"))?;
        last.push((VENDOR_CHARGE_POINT_NAME, name.clone()));
    }
    if let Some(ws) = &patch.websocket {
        let cur = websocket_settings(current);
        let missing = |what: &str| {
            format!("websocket.{what}: the pile's current websocket settings are not known, so every field but user and password is needed")
        };
        let settings = WebsocketSettings {
            host: match (&ws.host, &cur) {
                (Some(h), _) => h.clone(),
                (None, Some(c)) => c.host.clone(),
                (None, None) => return Err(missing("host")),
            },
            port: match (ws.port, &cur) {
                (Some(p), _) => p,
                (None, Some(c)) => c.port,
                (None, None) => return Err(missing("port")),
            },
            path: match (&ws.path, &cur) {
                (Some(p), _) => p.clone(),
                (None, Some(c)) => c.path.clone(),
                (None, None) => return Err(missing("path")),
            },
            secure: match (ws.tls, &cur) {
                (Some(t), _) => t,
                (None, Some(c)) => c.secure,
                (None, None) => return Err(missing("tls")),
            },
            user: ws
                .user
                .clone()
                .or_else(|| cur.as_ref().map(|c| c.user.clone()))
                .unwrap_or_default(),
            password: ws
                .password
                .clone()
                .or_else(|| cur.as_ref().map(|c| c.password.clone()))
                .unwrap_or_default(),
        };
        if [
            &settings.host,
            &settings.path,
            &settings.user,
            &settings.password,
        ]
        .iter()
        .any(|f| f.contains(','))
        {
            return Err("websocket: no field may contain a comma (the FAQ's format separates fields with commas)".into());
        }
        // Through the FAQ's string form, so that the pile's own checks apply here first.
        let text = settings.to_string();
        text.parse::<WebsocketSettings>()
            .map_err(|e| format!("websocket: {e}"))?;
        if text.len() > 500 {
            return Err("websocket: the settings are longer than 500 characters".into());
        }
        last.push((VENDOR_WEBSOCKET_SETTINGS, text));
    }
    first.extend(last);
    if first.is_empty() {
        return Err("nothing to change".into());
    }
    Ok(Changes(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<ConfigRow> {
        pairs
            .iter()
            .map(|(k, v)| ConfigRow {
                key: (*k).into(),
                value: Some((*v).into()),
                readonly: false,
                read_at: 0,
            })
            .collect()
    }

    fn patch(json: &str) -> VendorPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn view_decodes_the_faq_values() {
        let r = rows(&[
            (
                "VendorWebsocketSettings",
                "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,u,pw,",
            ),
            ("OEM_FaultMask", "768"),
            ("OEM_FunctionMask", "0x1"),
            (
                "OEM_NetState",
                r#"{"connectivity":"WiFi","wifi-rssi":"-43","4g-rssi":"-1","ccid":"","imsi":"","ip":"192.168.137.199"}"#,
            ),
            ("DBGEnableInsight", ""),
            ("HeartbeatInterval", "900"),
            ("UrlHasServerToken", "false"),
        ]);
        let v = view(&r);
        let ws = v.websocket.unwrap();
        assert_eq!(
            (ws.host.as_str(), ws.port, ws.tls, ws.has_password),
            ("cpam3.x-cheng.net", 443, true, true)
        );
        let fm = v.fault_mask.unwrap();
        let set: Vec<_> = fm.bits.iter().filter(|b| b.set).map(|b| b.name).collect();
        assert_eq!(
            set,
            ["ground_detection_off", "relay_sticking_detection_off"]
        );
        assert!(v.function_mask.unwrap().bits[0].set);
        assert_eq!(v.net_state.unwrap().wifi_rssi, -43);
        assert_eq!(v.insight, None);
        assert_eq!(v.heartbeat_interval, Some(900));
        assert_eq!(v.url_has_server_token, Some(false));
        assert_eq!(
            shown_value(
                "VendorWebsocketSettings",
                Some("WS,h,80,/ocpp/,ocpp1.6,u,pw,")
            )
            .unwrap(),
            "WS,h,80,/ocpp/,ocpp1.6,u,***,"
        );
    }

    #[test]
    fn changes_are_validated_and_ordered() {
        let cur = rows(&[(
            "VendorWebsocketSettings",
            "WS,old.example,80,/ocpp/,ocpp1.6,u,pw,",
        )]);
        let c = changes(
            &patch(r#"{"websocket": {"host": "cpam3.x-cheng.net", "port": 443, "tls": true}, "heartbeat_interval": 300, "fault_mask": ["ground_detection_off", "relay_sticking_detection_off"], "confirm": true}"#),
            &cur,
        )
        .unwrap();
        assert_eq!(
            c.0,
            vec![
                ("HeartbeatInterval", "300".to_string()),
                ("OEM_FaultMask", "768".to_string()),
                (
                    "VendorWebsocketSettings",
                    "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,u,pw,".to_string()
                ),
            ]
        );
        for (bad, why) in [
            (r#"{"heartbeat_interval": 59}"#, "outside"),
            (r#"{"heartbeat_interval": 86401}"#, "outside"),
            (r#"{"websocket": {"host": "h"}}"#, "confirm"),
            (r#"{"name": "x", "confirm": false}"#, "confirm"),
            (r#"{"fault_mask": 4}"#, "reserved"),
            (r#"{"function_mask": ["ignore_ground_fault"]}"#, "no bit"),
            (
                r#"{"alias": "0123456789012345678901234567890123456789012345678901234567890123"}"#,
                "63",
            ),
            (r#"{"insight": "8.209.68.26"}"#, "host,port"),
            (
                r#"{"websocket": {"path": "ocpp/"}, "confirm": true}"#,
                "path",
            ),
            (
                r#"{"websocket": {"host": "a,b"}, "confirm": true}"#,
                "comma",
            ),
            (r#"{}"#, "nothing"),
        ] {
            let e = changes(&patch(bad), &cur).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(changes(
            &patch(r#"{"websocket": {"host": "h"}, "confirm": true}"#),
            &[]
        )
        .is_err());
        assert!(serde_json::from_str::<VendorPatch>(r#"{"bogus": 1}"#).is_err());
        let off = changes(&patch(r#"{"insight": null}"#), &cur).unwrap();
        assert_eq!(off.0, vec![("DBGEnableInsight", String::new())]);
    }
}
