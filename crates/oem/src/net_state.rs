//! OEM_NetState (FAQ 3.14): the network as the pile sees it, and its JSON shape.

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

    /// Reads an OEM_NetState value in the FAQ's shape (every value a string; RSSIs as numbers
    /// are taken too). Missing fields keep their defaults.
    pub fn from_json(value: &str) -> Result<NetState, String> {
        let v: serde_json::Value =
            serde_json::from_str(value).map_err(|e| format!("OEM_NetState is not JSON: {e}"))?;
        let obj = v.as_object().ok_or("OEM_NetState is not a JSON object")?;
        let text = |k: &str| -> String {
            match obj.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            }
        };
        let rssi = |k: &str| -> Result<i32, String> {
            let t = text(k);
            if t.is_empty() {
                Ok(-1)
            } else {
                t.trim()
                    .parse()
                    .map_err(|_| format!("{k} {t:?} is not a number"))
            }
        };
        let mut state = NetState {
            connectivity: text("connectivity"),
            wifi_rssi: rssi("wifi-rssi")?,
            lte_rssi: rssi("4g-rssi")?,
            iccid: text("ccid"),
            imsi: text("imsi"),
            ip: text("ip"),
        };
        if state.connectivity.is_empty() {
            state.connectivity = NetState::default().connectivity;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_3_14_example_round_trip() {
        let faq = r#"{"connectivity":"WiFi","wifi-rssi":"-43","4g-rssi":"-1","ccid":"","imsi":"","ip":"192.168.137.199"}"#;
        let state = NetState::from_json(faq).unwrap();
        assert_eq!(state.connectivity, "WiFi");
        assert_eq!((state.wifi_rssi, state.lte_rssi), (-43, -1));
        assert_eq!(state.ip, "192.168.137.199");
        assert_eq!(state.to_json(), faq);
        assert!(NetState::from_json("[]").is_err());
        assert!(NetState::from_json(r#"{"wifi-rssi":"strong"}"#).is_err());
    }
}
