//! The checks of a pile's certificate signing request (SignCertificate) before the CA signs it:
//! it parses, its key is strong enough (RSA of 2048 bits or more, EC on P-256 or P-384), its own
//! signature verifies with a SHA-2 digest, its subject CN is the pile's identity and its O the
//! pile's CpoName (when the central knows it). What the CA keeps of it is only its public key
//! and its organisation: every extension it asks for is ignored (the CA sets its own).

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

/// The smallest RSA modulus taken, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The kind of key a CSR carries, once the policy takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    P256,
    P384,
}

impl KeyKind {
    /// The algorithm rcgen writes the certificate's public key as.
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyKind::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A CSR that passed every check: the key to certify and the names to certify it under.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    pub kind: KeyKind,
    /// The subject public key (the BIT STRING's bytes).
    key: Vec<u8>,
    /// The subject's O, if it named one.
    pub organization: Option<String>,
}

impl rcgen::PublicKeyData for CheckedCsr {
    fn der_bytes(&self) -> &[u8] {
        &self.key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.kind.algorithm()
    }
}

/// Why a CSR is refused (the reason recorded, and shown by the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the CSR is not a PEM CERTIFICATE REQUEST: {0}")]
    NotPem(String),
    #[error("the CSR does not parse: {0}")]
    Malformed(String),
    #[error("the CSR's key is weaker than the policy: {0}")]
    WeakKey(String),
    #[error("the CSR is signed with {0}: only SHA-256, SHA-384 or SHA-512 with RSA, or ECDSA with SHA-256 or SHA-384")]
    SignatureAlgorithm(String),
    #[error("the CSR's own signature does not verify with its key")]
    BadSignature,
    #[error("the CSR's subject CN is {found:?}, not the pile's identity {identity:?}")]
    WrongCommonName {
        found: Option<String>,
        identity: String,
    },
    #[error("the CSR's subject O is {found:?}, not the pile's CpoName {cpo_name:?}")]
    WrongOrganization {
        found: Option<String>,
        cpo_name: String,
    },
}

/// The one value of a name's attribute (none when absent; a refusal when repeated or not a
/// string).
fn only(values: Vec<Option<String>>, what: &str) -> Result<Option<String>, Refusal> {
    match values.as_slice() {
        [] => Ok(None),
        [Some(v)] => Ok(Some(v.clone())),
        [None] => Err(Refusal::Malformed(format!(
            "its subject {what} is not a string"
        ))),
        _ => Err(Refusal::Malformed(format!(
            "its subject names {what} more than once"
        ))),
    }
}

fn common_name(name: &X509Name) -> Result<Option<String>, Refusal> {
    let values = name
        .iter_common_name()
        .map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    only(values, "CN")
}

fn organization(name: &X509Name) -> Result<Option<String>, Refusal> {
    let values = name
        .iter_organization()
        .map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    only(values, "O")
}

/// The bits of an RSA modulus (its big-endian bytes, leading zeros ignored).
fn modulus_bits(modulus: &[u8]) -> usize {
    let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(first) => &modulus[first..],
        None => &[],
    };
    match significant.first() {
        Some(b) => (significant.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

/// The kind of the CSR's key, if the policy takes it.
fn key_kind(csr: &X509CertificationRequest<'_>) -> Result<KeyKind, Refusal> {
    let spki = &csr.certification_request_info.subject_pki;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(Refusal::Malformed("its RSA key does not parse".into()));
        };
        let bits = modulus_bits(rsa.modulus);
        if bits < MIN_RSA_BITS {
            return Err(Refusal::WeakKey(format!(
                "RSA of {bits} bits (at least {MIN_RSA_BITS})"
            )));
        }
        return Ok(KeyKind::Rsa(bits));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve: Option<Oid<'_>> = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyKind::P256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyKind::P384),
            Some(c) => Err(Refusal::WeakKey(format!(
                "EC on the curve {c} (P-256 or P-384 only)"
            ))),
            None => Err(Refusal::WeakKey("EC without a named curve".into())),
        };
    }
    Err(Refusal::WeakKey(format!(
        "a key of the algorithm {algorithm} (RSA or EC only)"
    )))
}

/// Whether the CSR's signature algorithm fits its key and uses a SHA-2 digest.
fn signature_algorithm_fits(csr: &X509CertificationRequest<'_>, kind: KeyKind) -> bool {
    let alg = &csr.signature_algorithm.algorithm;
    match kind {
        KeyKind::Rsa(_) => [
            OID_PKCS1_SHA256WITHRSA,
            OID_PKCS1_SHA384WITHRSA,
            OID_PKCS1_SHA512WITHRSA,
        ]
        .contains(alg),
        KeyKind::P256 | KeyKind::P384 => {
            [OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384].contains(alg)
        }
    }
}

/// Checks a SignCertificate's CSR (PEM) for the pile `identity`, whose CpoName the central
/// read (none: not known, not checked).
pub fn check(pem: &str, identity: &str, cpo_name: Option<&str>) -> Result<CheckedCsr, Refusal> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .map_err(|e| Refusal::NotPem(e.to_string()))?;
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(Refusal::NotPem(format!("a PEM {:?}", pem.label)));
    }
    let (rest, csr) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Refusal::Malformed("bytes after the request".into()));
    }
    let kind = key_kind(&csr)?;
    if !signature_algorithm_fits(&csr, kind) {
        return Err(Refusal::SignatureAlgorithm(
            csr.signature_algorithm.algorithm.to_id_string(),
        ));
    }
    csr.verify_signature().map_err(|_| Refusal::BadSignature)?;
    let subject = &csr.certification_request_info.subject;
    let cn = common_name(subject)?;
    if cn.as_deref() != Some(identity) {
        return Err(Refusal::WrongCommonName {
            found: cn,
            identity: identity.to_owned(),
        });
    }
    let organization = organization(subject)?;
    if let Some(cpo_name) = cpo_name {
        if organization.as_deref() != Some(cpo_name) {
            return Err(Refusal::WrongOrganization {
                found: organization,
                cpo_name: cpo_name.to_owned(),
            });
        }
    }
    Ok(CheckedCsr {
        kind,
        key: csr
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .to_vec(),
        organization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        let mut m = vec![0u8; 257];
        m[1] = 0xc1;
        assert_eq!(modulus_bits(&m), 2048);
    }

    fn csr(cn: &str, o: Option<&str>) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if let Some(o) = o {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, o);
        }
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn names_are_checked() {
        let ok = check(&csr("CP1", Some("ACME")), "CP1", Some("ACME")).unwrap();
        assert_eq!(ok.kind, KeyKind::P256);
        assert_eq!(ok.organization.as_deref(), Some("ACME"));
        // No CpoName known: the O is not checked.
        assert!(check(&csr("CP1", None), "CP1", None).is_ok());
        assert!(matches!(
            check(&csr("CP2", Some("ACME")), "CP1", Some("ACME")),
            Err(Refusal::WrongCommonName { .. })
        ));
        assert!(matches!(
            check(&csr("CP1", Some("Other")), "CP1", Some("ACME")),
            Err(Refusal::WrongOrganization { .. })
        ));
        assert!(matches!(
            check(&csr("CP1", None), "CP1", Some("ACME")),
            Err(Refusal::WrongOrganization { found: None, .. })
        ));
        assert!(matches!(
            check("not a CSR", "CP1", None),
            Err(Refusal::NotPem(_))
        ));
    }
}
