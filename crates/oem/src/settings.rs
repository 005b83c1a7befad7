//! `VendorWebsocketSettings` (FAQ 3.3) and the names of FAQ 3.2.

use std::fmt;
use std::str::FromStr;

/// The longest VendorChargeBoxId / VendorChargePointName (FAQ 3.2).
pub const MAX_NAME_LEN: usize = 63;

/// `VendorWebsocketSettings`: `WS,host,port,path,protocol,user,password` (FAQ 3.3), where
/// protocol `ocpp1.6` means `ws://` and `socpp1.6` means `wss://`. Read with or without the
/// trailing comma; written in the FAQ's canonical form, which has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsocketSettings {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub secure: bool,
    pub user: String,
    pub password: String,
}

/// Checks a VendorChargeBoxId / VendorChargePointName: at most 63 characters, no `/` (the name
/// ends the websocket URL) and no control character. Empty restores the serial number.
pub fn validate_name(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_NAME_LEN {
        Err(format!("longer than {MAX_NAME_LEN} characters"))
    } else if value.chars().any(|c| c == '/' || c.is_control()) {
        Err("contains '/' or a control character".into())
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid VendorWebsocketSettings: {0}")]
pub struct InvalidSetting(pub String);

fn bad(why: impl Into<String>) -> InvalidSetting {
    InvalidSetting(why.into())
}

pub(crate) fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

impl FromStr for WebsocketSettings {
    type Err = InvalidSetting;
    fn from_str(s: &str) -> Result<Self, InvalidSetting> {
        let mut fields: Vec<&str> = s.split(',').collect();
        if fields.len() == 8 && fields[7].is_empty() {
            fields.pop();
        }
        if fields.len() != 7 {
            return Err(bad(format!(
                "{} fields, 7 expected (WS,host,port,path,protocol,user,password)",
                fields.len()
            )));
        }
        if fields[0] != "WS" {
            return Err(bad("the first field must be WS"));
        }
        let host = fields[1];
        if !valid_host(host) {
            return Err(bad(format!("bad host {host:?}")));
        }
        let port: u16 = fields[2]
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("bad port {:?}", fields[2])))?;
        let path = fields[3];
        if !path.starts_with('/')
            || path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
        {
            return Err(bad(format!("bad path {path:?} (it must start with /)")));
        }
        let secure = match fields[4] {
            "ocpp1.6" => false,
            "socpp1.6" => true,
            other => {
                return Err(bad(format!(
                    "protocol {other:?} is neither ocpp1.6 (ws) nor socpp1.6 (wss)"
                )))
            }
        };
        if fields[5..].iter().any(|f| f.chars().any(char::is_control)) {
            return Err(bad("control characters in the credentials"));
        }
        Ok(WebsocketSettings {
            host: host.into(),
            port,
            path: path.into(),
            secure,
            user: fields[5].into(),
            password: fields[6].into(),
        })
    }
}

impl fmt::Display for WebsocketSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = if self.secure { "socpp1.6" } else { "ocpp1.6" };
        write!(
            f,
            "WS,{},{},{},{},{},{},",
            self.host, self.port, self.path, protocol, self.user, self.password
        )
    }
}

impl WebsocketSettings {
    /// Reads a `ws://host:port/path` or `wss://...` URL (the `--csms` flag); IPv6 hosts in
    /// brackets (`wss://[::1]/ocpp/`).
    pub fn from_url(url: &str) -> Result<Self, InvalidSetting> {
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("{url:?}: {e}")))?;
        let secure = match parsed.scheme() {
            "ws" => false,
            "wss" => true,
            _ => return Err(bad("the URL must start with ws:// or wss://")),
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => return Err(bad("the URL has no host")),
        };
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("the URL must have no query or fragment"));
        }
        let settings = WebsocketSettings {
            host,
            port: parsed
                .port_or_known_default()
                .unwrap_or(if secure { 443 } else { 80 }),
            path: parsed.path().to_owned(),
            secure,
            user: String::new(),
            password: String::new(),
        };
        // Through the string form, so that the same checks apply.
        settings.to_string().parse()
    }

    /// The server URL without the identity.
    pub fn base_url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_settings_faq_examples() {
        let s: WebsocketSettings = "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,"
            .parse()
            .unwrap();
        assert!(s.secure);
        assert_eq!(s.base_url(), "wss://cpam3.x-cheng.net:443/ocpp/");
        assert_eq!(s.to_string(), "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,");
        let s: WebsocketSettings = "WS,cpam3.x-cheng.net,80,/ocpp/,ocpp1.6,,,".parse().unwrap();
        assert_eq!(s.base_url(), "ws://cpam3.x-cheng.net:80/ocpp/");
        // Without the trailing comma, reported canonically.
        let s: WebsocketSettings = "WS,h,80,/ocpp/,ocpp1.6,user,pw".parse().unwrap();
        assert_eq!((s.user.as_str(), s.password.as_str()), ("user", "pw"));
        assert_eq!(s.to_string(), "WS,h,80,/ocpp/,ocpp1.6,user,pw,");
        let s: WebsocketSettings = "WS,h,80,/ocpp/,ocpp1.6,,".parse().unwrap();
        assert_eq!(s.to_string(), "WS,h,80,/ocpp/,ocpp1.6,,,");
        for bad in [
            "",
            "WS,h,80,/ocpp/,ocpp1.6,",
            "WS,h,80,/ocpp/,ocpp1.6,,,,",
            "XX,h,80,/ocpp/,ocpp1.6,,,",
            "WS,,80,/ocpp/,ocpp1.6,,,",
            "WS,h h,80,/ocpp/,ocpp1.6,,,",
            "WS,h,0,/ocpp/,ocpp1.6,,,",
            "WS,h,65536,/ocpp/,ocpp1.6,,,",
            "WS,h,80,ocpp/,ocpp1.6,,,",
            "WS,h,80,/ocpp/,ocpp2.0,,,",
            "WS,h,80,/ocpp/,wss,,,",
        ] {
            assert!(bad.parse::<WebsocketSettings>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_from_url() {
        let s = WebsocketSettings::from_url("ws://127.0.0.1:9000/ocpp/").unwrap();
        assert_eq!(s.to_string(), "WS,127.0.0.1,9000,/ocpp/,ocpp1.6,,,");
        let s = WebsocketSettings::from_url("wss://example.com/ocpp").unwrap();
        assert_eq!(s.to_string(), "WS,example.com,443,/ocpp,socpp1.6,,,");
        let s = WebsocketSettings::from_url("wss://[::1]/ocpp/").unwrap();
        assert_eq!(s.to_string(), "WS,[::1],443,/ocpp/,socpp1.6,,,");
        assert_eq!(s.base_url(), "wss://[::1]:443/ocpp/");
        let s = WebsocketSettings::from_url("ws://[2001:db8::7]:9000/ocpp/").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("[2001:db8::7]", 9000));
        assert!(WebsocketSettings::from_url("ws://h:99999/").is_err());
        assert!(WebsocketSettings::from_url("ws://").is_err());
        assert!(WebsocketSettings::from_url("ws://h/ocpp?x=1").is_err());
        assert!(WebsocketSettings::from_url("http://x/").is_err());
    }
}
