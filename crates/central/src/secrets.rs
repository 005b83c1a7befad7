//! Stored pile passwords (Argon2id), new AuthorizationKeys, the API token, and the identity in a
//! client certificate.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// The Argon2id hash of a password, in the PHC string format.
pub fn hash_password(password: &[u8]) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches a stored hash (false for a malformed hash).
pub fn verify_password(password: &[u8], hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(password, &h).is_ok())
        .unwrap_or(false)
}

/// A new random API token (32 bytes, URL-safe base64).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// DER as PEM text of `label` (`CERTIFICATE`, ...): base64 in lines of 64.
pub fn pem_of(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new AuthorizationKey for a pile (its Basic password): 20 random bytes as 40 hex
/// digits, the most the security whitepaper allows.
pub fn new_authorization_key() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject common name of a DER certificate, read with a minimal DER walker
/// (Certificate → TBSCertificate → subject → the first commonName, OID 2.5.4.3).
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = element(der)?;
    let (tbs, _) = element(cert.content)?;
    let mut fields = tbs.content;
    let mut index = 0;
    let mut subject = None;
    while !fields.is_empty() {
        let (field, rest) = element(fields)?;
        fields = rest;
        // [0] version is optional: the subject is the 6th field, counting version when present.
        if index == 0 && field.tag == 0xA0 {
            continue;
        }
        if index == 4 {
            subject = Some(field);
            break;
        }
        index += 1;
    }
    let mut rdns = subject?.content;
    while !rdns.is_empty() {
        let (set, rest) = element(rdns)?;
        rdns = rest;
        let mut attrs = set.content;
        while !attrs.is_empty() {
            let (attr, rest) = element(attrs)?;
            attrs = rest;
            let (oid, value) = element(attr.content)?;
            if oid.tag == 0x06 && oid.content == [0x55, 0x04, 0x03] {
                let (value, _) = element(value)?;
                return String::from_utf8(value.content.to_vec()).ok();
            }
        }
    }
    None
}

struct Element<'a> {
    tag: u8,
    content: &'a [u8],
}

fn element(data: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((
        Element {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let h = hash_password(b"s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(b"s3cret", &h));
        assert!(!verify_password(b"s3creT", &h));
        assert!(!verify_password(b"s3cret", "not a hash"));
    }

    #[test]
    fn authorization_keys_are_40_hex_digits() {
        let key = new_authorization_key();
        assert_eq!(key.len(), 40);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        assert_ne!(key, new_authorization_key());
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 43);
    }
}
