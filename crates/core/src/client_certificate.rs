//! The pile's own certificate (security whitepaper edition 2, §3.2 and use case A02/A03): a key
//! pair made by the pile (ECDSA P-256, randomness from the operating system), a certificate
//! signing request naming the pile (CN its identity, O the CpoName), and the check of the
//! chain the central system sends back in CertificateSigned before the pile uses it for TLS
//! (security profile 3).
//!
//! The whitepaper has the pile verify the certificate's validity period, its properties and
//! that it belongs to the Central System root certificate chain: here the chain must end at a
//! certificate signed by an installed CentralSystemRootCertificate (or at that root itself). Our central system signs the piles'
//! certificates with a CA of its own (`GET /api/security/ca`), which the operator installs as
//! a CentralSystemRootCertificate beside the root of its TLS certificate.

use serde::{Deserialize, Serialize};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use crate::certificates::der_base64;

/// A key pair the pile made for a CSR, waiting for its certificate (PKCS#8 DER).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingKey {
    #[serde(with = "der_base64")]
    pub pkcs8: Vec<u8>,
}

/// The pile's client certificate: the chain (leaf first, DER) and its key (PKCS#8 DER).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificate {
    #[serde(with = "chain_base64")]
    pub chain: Vec<Vec<u8>>,
    #[serde(with = "der_base64")]
    pub key: Vec<u8>,
}

impl ClientCertificate {
    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|der| pem("CERTIFICATE", der))
            .collect()
    }

    /// The key as PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.key)
    }
}

/// Why no key or CSR could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no certificate signing request: {0}")]
pub struct CsrError(String);

/// Why a CertificateSigned chain is not taken (each is the whitepaper's `Rejected` and an
/// InvalidChargePointCertificate security event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainRefusal {
    #[error("no certificate signing request is waiting for a certificate")]
    NothingPending,
    #[error("the chain is {0} characters long, CertificateSignedMaxChainSize is {1}")]
    TooLong(usize, usize),
    #[error("not a PEM certificate chain: {0}")]
    Unreadable(String),
    #[error("the certificate's key is not the key of the pile's request")]
    WrongKey,
    #[error("the certificate names {0:?}, not the pile's identity {1:?}")]
    WrongName(String, String),
    #[error("certificate {0} of the chain is not signed by the one after it (wrong order or not linking)")]
    NotLinked(usize),
    #[error("the chain does not end at an installed CentralSystemRootCertificate")]
    UnknownRoot,
    #[error("certificate {0} of the chain is not valid now (from {1} to {2})")]
    NotValidNow(usize, String, String),
}

/// A new key pair (ECDSA P-256).
pub fn new_key() -> Result<PendingKey, CsrError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CsrError(e.to_string()))?;
    Ok(PendingKey {
        pkcs8: key.serialize_der(),
    })
}

/// A PEM CSR for `key` with subject CN `identity` and, if not empty, O `organisation`.
pub fn csr(key: &PendingKey, identity: &str, organisation: &str) -> Result<String, CsrError> {
    let key = key_pair(&key.pkcs8).map_err(CsrError)?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| CsrError(e.to_string()))?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, identity);
    if !organisation.is_empty() {
        name.push(rcgen::DnType::OrganizationName, organisation);
    }
    params.distinguished_name = name;
    params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| CsrError(e.to_string()))
}

fn key_pair(pkcs8: &[u8]) -> Result<rcgen::KeyPair, String> {
    rcgen::KeyPair::try_from(pkcs8).map_err(|e| e.to_string())
}

/// Checks a CertificateSigned chain (PEM, leaf first) for the pending `key`: at most
/// `max_len` characters, every certificate readable and valid at `at` (Unix seconds), the
/// leaf's key the pending key and its CN the `identity`, each certificate signed by the next,
/// and the last one an installed root or signed by one (`roots`, DER). Returns the client
/// certificate to keep.
pub fn check_chain(
    chain_pem: &str,
    max_len: usize,
    key: Option<&PendingKey>,
    identity: &str,
    roots: &[&[u8]],
    at: i64,
) -> Result<ClientCertificate, ChainRefusal> {
    let key = key.ok_or(ChainRefusal::NothingPending)?;
    if chain_pem.len() > max_len {
        return Err(ChainRefusal::TooLong(chain_pem.len(), max_len));
    }
    let ders = read_pem_chain(chain_pem)?;
    let certs = ders
        .iter()
        .map(|der| match X509Certificate::from_der(der) {
            Ok(([], cert)) => Ok(cert),
            Ok(_) => Err(ChainRefusal::Unreadable("bytes after a certificate".into())),
            Err(e) => Err(ChainRefusal::Unreadable(format!("X.509: {e}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = &certs[0];
    let pair = key_pair(&key.pkcs8).map_err(ChainRefusal::Unreadable)?;
    if leaf.public_key().subject_public_key.data.as_ref() != pair.public_key_raw() {
        return Err(ChainRefusal::WrongKey);
    }
    let cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    if cn != identity {
        return Err(ChainRefusal::WrongName(cn, identity.to_owned()));
    }
    for (i, pair) in certs.windows(2).enumerate() {
        if !signed_by(&pair[0], &pair[1]) {
            return Err(ChainRefusal::NotLinked(i));
        }
    }
    let last_der = ders.last().map(Vec::as_slice).unwrap_or_default();
    let last = certs.last().unwrap_or(leaf);
    let anchored = roots.iter().any(|root| {
        *root == last_der
            || X509Certificate::from_der(root).is_ok_and(|(_, root)| signed_by(last, &root))
    });
    if !anchored {
        return Err(ChainRefusal::UnknownRoot);
    }
    let now = ASN1Time::from_timestamp(at).map_err(|e| ChainRefusal::Unreadable(e.to_string()))?;
    for (i, cert) in certs.iter().enumerate() {
        let validity = cert.validity();
        if !validity.is_valid_at(now) {
            return Err(ChainRefusal::NotValidNow(
                i,
                validity.not_before.to_string(),
                validity.not_after.to_string(),
            ));
        }
    }
    Ok(ClientCertificate {
        chain: ders,
        key: key.pkcs8.clone(),
    })
}

/// `cert` names `issuer` as its issuer and its signature verifies with the issuer's key.
fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// The DER of each PEM CERTIFICATE block, in order (at least one; nothing else allowed).
fn read_pem_chain(text: &str) -> Result<Vec<Vec<u8>>, ChainRefusal> {
    let mut ders = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(text.trim().as_bytes()) {
        let block = block.map_err(|e| ChainRefusal::Unreadable(format!("PEM: {e}")))?;
        if block.label != "CERTIFICATE" {
            return Err(ChainRefusal::Unreadable(format!(
                "a PEM {:?} block",
                block.label
            )));
        }
        ders.push(block.contents);
    }
    if ders.is_empty() {
        return Err(ChainRefusal::Unreadable("no certificate".into()));
    }
    Ok(ders)
}

/// DER as a PEM block.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

mod chain_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(chain: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = chain
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect();
        texts.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_is_made_and_pem_round_trips() {
        let key = new_key().unwrap();
        let text = csr(&key, "CP-1", "Example CPO").unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let der = x509_parser::pem::parse_x509_pem(pem("X", &key.pkcs8).as_bytes())
            .unwrap()
            .1
            .contents;
        assert_eq!(der, key.pkcs8);
    }

    #[test]
    fn no_pending_key_or_garbage_is_refused() {
        assert_eq!(
            check_chain("x", 10, None, "CP", &[], 0),
            Err(ChainRefusal::NothingPending)
        );
        let key = new_key().unwrap();
        assert!(matches!(
            check_chain("hello", 100, Some(&key), "CP", &[], 0),
            Err(ChainRefusal::Unreadable(_))
        ));
        assert_eq!(
            check_chain("hello", 2, Some(&key), "CP", &[], 0),
            Err(ChainRefusal::TooLong(5, 2))
        );
    }
}
