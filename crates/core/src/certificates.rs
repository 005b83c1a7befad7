//! The pile's certificate stores (security whitepaper edition 2, §4): the root certificates of
//! the central system (to check its TLS certificate) and of the manufacturer (to check signed
//! firmware). Only self-signed CA certificates are taken, so that everything installed can be
//! listed and deleted by the hashes the whitepaper defines (§2.6, CertificateHashDataType):
//! SHA-256 of the DER-encoded issuer name, SHA-256 of the issuer's public key (the contents of
//! the subjectPublicKey BIT STRING, as OCSP computes it) and the serial number in hexadecimal.

use ocpp::{CertificateHashData, CertificateUse, CiString};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

/// Which store a certificate is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Store {
    CentralSystemRoot,
    ManufacturerRoot,
}

impl Store {
    /// The store a certificateType names (`None`: a value the pile does not know).
    pub fn of(kind: &CertificateUse) -> Option<Store> {
        match kind {
            CertificateUse::CentralSystemRootCertificate => Some(Store::CentralSystemRoot),
            CertificateUse::ManufacturerRootCertificate => Some(Store::ManufacturerRoot),
            CertificateUse::Unrecognized(_) => None,
        }
    }
}

/// A root certificate installed, as DER (base64 in the state file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub store: Store,
    /// The certificate, DER-encoded.
    #[serde(with = "der_base64")]
    pub der: Vec<u8>,
}

impl Installed {
    /// The certificate's hash data (it was checked when installed, so it parses).
    pub fn hash_data(&self) -> Option<Hashes> {
        let (_, cert) = X509Certificate::from_der(&self.der).ok()?;
        Some(Hashes::of(&cert))
    }
}

/// Why a certificate is not installed (each is the whitepaper's `Rejected`: "invalid and/or
/// incorrect").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a PEM certificate, or not a valid X.509 certificate.
    #[error("not a certificate: {0}")]
    Unreadable(String),
    /// A certificate, but no root (not self-signed, or no CA).
    #[error("not a root certificate: {0}")]
    NotRoot(&'static str),
    /// A root, but expired or not yet valid at the pile's time.
    #[error("not valid now (from {0} to {1})")]
    NotValidNow(String, String),
}

/// Reads one PEM certificate and checks that it is a root valid at `at` (Unix seconds):
/// issuer and subject the same, a signature that verifies with its own key, basicConstraints
/// CA. Returns its DER.
pub fn read_root(pem: &str, at: i64) -> Result<Vec<u8>, Refusal> {
    let (rest, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .map_err(|e| Refusal::Unreadable(format!("PEM: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(Refusal::Unreadable(format!(
            "a PEM {:?} block",
            block.label
        )));
    }
    if !String::from_utf8_lossy(rest).trim().is_empty() {
        return Err(Refusal::NotRoot("more than one certificate"));
    }
    let (tail, cert) = X509Certificate::from_der(&block.contents)
        .map_err(|e| Refusal::Unreadable(format!("X.509: {e}")))?;
    if !tail.is_empty() {
        return Err(Refusal::Unreadable("bytes after the certificate".into()));
    }
    if cert.issuer().as_raw() != cert.subject().as_raw() {
        return Err(Refusal::NotRoot("its issuer is not its subject"));
    }
    if !cert.is_ca() {
        return Err(Refusal::NotRoot("no basicConstraints CA"));
    }
    if cert.verify_signature(None).is_err() {
        return Err(Refusal::NotRoot(
            "its signature does not verify with its own key",
        ));
    }
    let validity = cert.validity();
    let now = ASN1Time::from_timestamp(at).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if !validity.is_valid_at(now) {
        return Err(Refusal::NotValidNow(
            validity.not_before.to_string(),
            validity.not_after.to_string(),
        ));
    }
    Ok(block.contents)
}

/// The whitepaper's hashes of a certificate, lowercase hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub issuer_name_hash: String,
    pub issuer_key_hash: String,
    /// The serial number without leading zeros (libocpp's form; "0" for a zero serial).
    pub serial_number: String,
}

impl Hashes {
    /// A certificate's hashes. For a root, the issuer's name and key are its own.
    fn of(cert: &X509Certificate<'_>) -> Hashes {
        let key = &cert.public_key().subject_public_key.data;
        Hashes {
            issuer_name_hash: sha256_hex(cert.issuer().as_raw()),
            issuer_key_hash: sha256_hex(key.as_ref()),
            serial_number: serial_hex(cert.raw_serial()),
        }
    }

    /// As OCPP carries it.
    pub fn to_ocpp(&self) -> CertificateHashData {
        CertificateHashData {
            hash_algorithm: ocpp::HashAlgorithm::Sha256,
            issuer_name_hash: CiString::truncating(&self.issuer_name_hash),
            issuer_key_hash: CiString::truncating(&self.issuer_key_hash),
            serial_number: CiString::truncating(&self.serial_number),
        }
    }

    /// Whether OCPP's hash data names this certificate: SHA-256, the same hashes in any case,
    /// the same serial number whatever leading zeros it is given with.
    pub fn matches(&self, data: &CertificateHashData) -> bool {
        let serial = data.serial_number.as_str().trim_start_matches('0');
        let serial = if serial.is_empty() { "0" } else { serial };
        data.hash_algorithm == ocpp::HashAlgorithm::Sha256
            && data.issuer_name_hash.eq_ignore_case(&self.issuer_name_hash)
            && data.issuer_key_hash.eq_ignore_case(&self.issuer_key_hash)
            && serial.eq_ignore_ascii_case(&self.serial_number)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// A serial number's bytes (big-endian, DER) as hexadecimal without leading zeros.
fn serial_hex(raw: &[u8]) -> String {
    let digits = hex(raw);
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        "0".into()
    } else {
        digits.into()
    }
}

pub(crate) mod der_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(der))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_lose_their_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x8a, 0x01]), "8a01");
        assert_eq!(serial_hex(&[0x01]), "1");
        assert_eq!(serial_hex(&[0x00]), "0");
    }

    #[test]
    fn garbage_is_unreadable() {
        assert!(matches!(read_root("hello", 0), Err(Refusal::Unreadable(_))));
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert!(matches!(read_root(not_der, 0), Err(Refusal::Unreadable(_))));
    }
}
