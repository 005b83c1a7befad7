//! The vendor's own value formats (FAQ sections 3.2, 3.3, 3.7, 3.12, 3.13).

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid VendorWebsocketSettings: {0}")]
pub struct InvalidSetting(pub String);

fn bad(why: impl Into<String>) -> InvalidSetting {
    InvalidSetting(why.into())
}

fn valid_host(host: &str) -> bool {
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
    /// Reads a `ws://host:port/path` or `wss://...` URL (the `--csms` flag).
    pub fn from_url(url: &str) -> Result<Self, InvalidSetting> {
        let (secure, rest) = if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else {
            return Err(bad("the URL must start with ws:// or wss://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h, p.parse().map_err(|_| bad(format!("bad port {p:?}")))?)
            }
            _ => (authority, if secure { 443 } else { 80 }),
        };
        let settings = WebsocketSettings {
            host: host.into(),
            port,
            path: path.into(),
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

/// A mask written in decimal or `0x` hexadecimal (FAQ 3.12, 3.13).
pub fn parse_mask(value: &str, allowed_bits: u32) -> Result<u32, String> {
    let v = value.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16),
        Some(_) => return Err("empty hexadecimal value".into()),
        None => v.parse::<u32>(),
    }
    .map_err(|_| format!("{value:?} is not a 32-bit decimal or 0x hexadecimal number"))?;
    let reserved = parsed & !allowed_bits;
    if reserved != 0 {
        return Err(format!("reserved bits set: {reserved:#x}"));
    }
    Ok(parsed)
}

/// OEM_FaultMask bits (FAQ 3.12): 0 ground stop, 1 CP stop, 8..=16 detections off.
pub const FAULT_MASK_BITS: u32 = 0b1_1111_1111_0000_0011;
/// OEM_FunctionMask bits (FAQ 3.13): 0 buzzer off, 1 CC off, 2 CP diode error, 3 derating off.
pub const FUNCTION_MASK_BITS: u32 = 0b1111;

/// `DBGEnableInsight`: `host,port`, or empty to switch remote insight off (FAQ 3.7).
pub fn parse_insight(value: &str) -> Result<Option<(String, u16)>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let (host, port) = value.split_once(',').ok_or("expected host,port")?;
    if !valid_host(host) {
        return Err(format!("bad host {host:?}"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("bad port {port:?}"))?;
    Ok(Some((host.to_owned(), port)))
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
        assert!(WebsocketSettings::from_url("http://x/").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(parse_mask("768", FAULT_MASK_BITS), Ok(768));
        assert_eq!(parse_mask("0x1", FUNCTION_MASK_BITS), Ok(1));
        assert_eq!(parse_mask("0x1FF03", FAULT_MASK_BITS), Ok(0x1FF03));
        assert!(
            parse_mask("4", FAULT_MASK_BITS).is_err(),
            "bit 2 is reserved"
        );
        assert!(
            parse_mask("0x20000", FAULT_MASK_BITS).is_err(),
            "bit 17 is reserved"
        );
        assert!(
            parse_mask("16", FUNCTION_MASK_BITS).is_err(),
            "bit 4 is reserved"
        );
        assert!(parse_mask("-1", FAULT_MASK_BITS).is_err());
        assert!(parse_mask("0x", FAULT_MASK_BITS).is_err());
        assert!(parse_mask("abc", FAULT_MASK_BITS).is_err());
    }

    #[test]
    fn insight() {
        assert_eq!(
            parse_insight("8.209.68.26,8883"),
            Ok(Some(("8.209.68.26".into(), 8883)))
        );
        assert_eq!(parse_insight(""), Ok(None));
        assert!(parse_insight("8.209.68.26").is_err());
        assert!(parse_insight("h,0").is_err());
    }
}
