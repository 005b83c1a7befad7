//! The network as the pile sees it.

/// The network as the pile sees it (OEM_NetState, FAQ 3.14; BootNotification's ICCID/IMSI).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetState {
    /// `ETH`, `WiFi` or `4G`: the interface the connection uses.
    pub connectivity: String,
    /// RSSI in dBm; -1 when the interface is absent.
    pub wifi_rssi: i32,
    pub lte_rssi: i32,
    pub iccid: String,
    pub imsi: String,
    pub ip: String,
}

impl Default for NetState {
    fn default() -> Self {
        NetState {
            connectivity: "ETH".into(),
            wifi_rssi: -1,
            lte_rssi: -1,
            iccid: String::new(),
            imsi: String::new(),
            ip: String::new(),
        }
    }
}

impl NetState {
    /// The OEM_NetState value, in the FAQ's shape and key order.
    pub fn to_json(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).expect("a str serializes");
        format!(
            r#"{{"connectivity":{},"wifi-rssi":{},"4g-rssi":{},"ccid":{},"imsi":{},"ip":{}}}"#,
            s(&self.connectivity),
            s(&self.wifi_rssi.to_string()),
            s(&self.lte_rssi.to_string()),
            s(&self.iccid),
            s(&self.imsi),
            s(&self.ip)
        )
    }
}
