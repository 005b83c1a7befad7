//! The charge point identity: the last segment of the websocket URL path (OCPP-J 3.1).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// The longest identity accepted in a URL. (The vendor's ChargePointName alone may be 63.)
pub const MAX_IDENTITY_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the URL path has no identity (empty last segment)")]
    Empty,
    #[error("the identity is not valid UTF-8 once percent-decoded")]
    NotUtf8,
    #[error("the identity contains '/' or a control character")]
    BadCharacter,
    #[error("the identity is longer than {MAX_IDENTITY_LEN} characters")]
    TooLong,
}

/// Extracts and checks the identity from a request path (query string ignored).
pub fn identity_from_path(path: &str) -> Result<String, IdentityError> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segment = path.rsplit('/').next().unwrap_or_default();
    if segment.is_empty() {
        return Err(IdentityError::Empty);
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| IdentityError::NotUtf8)?;
    validate(&decoded)?;
    Ok(decoded.into_owned())
}

/// Checks an identity: not empty, no `/` or control characters, at most 255 characters.
pub fn validate(identity: &str) -> Result<(), IdentityError> {
    if identity.is_empty() {
        return Err(IdentityError::Empty);
    }
    if identity.chars().any(|c| c == '/' || c.is_control()) {
        return Err(IdentityError::BadCharacter);
    }
    if identity.chars().count() > MAX_IDENTITY_LEN {
        return Err(IdentityError::TooLong);
    }
    Ok(())
}

/// What is escaped when an identity goes into a URL path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `base` (e.g. `ws://host:port/ocpp/`) with the percent-encoded identity appended.
pub fn url_with_identity(base: &str, identity: &str) -> String {
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}{}", encode_segment(identity))
}

/// An identity percent-encoded as one URL path segment.
pub fn encode_segment(identity: &str) -> String {
    utf8_percent_encode(identity, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(identity_from_path("/ocpp/CP001").unwrap(), "CP001");
        assert_eq!(identity_from_path("/ocpp/CP%20001?x=1").unwrap(), "CP 001");
        assert_eq!(
            identity_from_path("/ocpp/").unwrap_err(),
            IdentityError::Empty
        );
        assert_eq!(
            identity_from_path("/ocpp/a%2Fb").unwrap_err(),
            IdentityError::BadCharacter
        );
        assert_eq!(
            identity_from_path("/ocpp/a%0Ab").unwrap_err(),
            IdentityError::BadCharacter
        );
        assert_eq!(
            identity_from_path("/ocpp/%FF").unwrap_err(),
            IdentityError::NotUtf8
        );
        assert!(identity_from_path(&format!("/{}", "x".repeat(255))).is_ok());
        assert_eq!(
            identity_from_path(&format!("/{}", "x".repeat(256))).unwrap_err(),
            IdentityError::TooLong
        );
        let url = url_with_identity("ws://h/ocpp/", "CP 1/2");
        assert_eq!(url, "ws://h/ocpp/CP%201%2F2");
        assert_eq!(
            identity_from_path("/ocpp/CP%201%2F2").unwrap_err(),
            IdentityError::BadCharacter
        );
        assert_eq!(url_with_identity("ws://h/ocpp", "A"), "ws://h/ocpp/A");
    }
}
