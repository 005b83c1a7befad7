//! HTTP Basic authentication (OCPP Security Profile 1) and the server's authentication hook.

use std::collections::HashMap;
use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustls_pki_types::CertificateDer;

/// The `Authorization` header value for `user:password`.
pub fn basic_header(user: &str, password: &[u8]) -> String {
    let mut raw = Vec::with_capacity(user.len() + 1 + password.len());
    raw.extend_from_slice(user.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password);
    format!("Basic {}", STANDARD.encode(raw))
}

/// Decodes a Basic `Authorization` header into user and password bytes.
pub fn parse_basic(header: &str) -> Option<(String, Vec<u8>)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(value.trim()).ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

/// What the server knows of a connecting charge point when it decides.
#[derive(Debug)]
pub struct Handshake<'a> {
    pub identity: &'a str,
    pub remote: SocketAddr,
    /// The Basic credentials, if the client sent any.
    pub basic: Option<(&'a str, &'a [u8])>,
    /// The client certificate chain (TLS with client authentication).
    pub client_certificates: &'a [CertificateDer<'static>],
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Accept,
    /// Answered with HTTP 401 and a `WWW-Authenticate: Basic` challenge.
    Unauthorized(String),
    /// Answered with HTTP 403 (for instance an unknown charge point).
    Forbidden(String),
}

/// Decides who may connect.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, handshake: &Handshake<'_>) -> AuthDecision;
}

/// Accepts every identity without credentials (Security Profile 0; for tests and closed networks).
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _: &Handshake<'_>) -> AuthDecision {
        AuthDecision::Accept
    }
}

/// A fixed table of identities and Basic passwords (Security Profile 1).
#[derive(Default)]
pub struct StaticPasswords {
    passwords: HashMap<String, Vec<u8>>,
}

impl StaticPasswords {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, identity: impl Into<String>, password: impl Into<Vec<u8>>) -> Self {
        self.passwords.insert(identity.into(), password.into());
        self
    }
}

/// Compares without an early exit, so timing tells nothing about the password.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator for StaticPasswords {
    fn authenticate(&self, h: &Handshake<'_>) -> AuthDecision {
        let Some(expected) = self.passwords.get(h.identity) else {
            return AuthDecision::Forbidden(format!("unknown charge point {:?}", h.identity));
        };
        match h.basic {
            None => AuthDecision::Unauthorized("no credentials".into()),
            Some((user, _)) if user != h.identity => {
                AuthDecision::Unauthorized(format!("user {user:?} is not the identity"))
            }
            Some((_, password)) if constant_time_eq(password, expected) => AuthDecision::Accept,
            Some(_) => AuthDecision::Unauthorized("wrong password".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_round_trip() {
        let h = basic_header("CP1", b"s3cr:et");
        assert_eq!(parse_basic(&h), Some(("CP1".into(), b"s3cr:et".to_vec())));
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
