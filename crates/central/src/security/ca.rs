//! The central's own CA: it signs the piles' CSRs (SignCertificate), and the TLS listener
//! trusts it for the piles' client certificates (Security Profile 3). Given (`--ca-cert`,
//! `--ca-key`), or generated at the first start and kept in the database (the setting
//! `security_ca`: the certificate, then the private key, as PEM), so that every node of a
//! cluster signs with the same CA.

use std::path::Path;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

use super::csr::CheckedCsr;
use crate::store::{Millis, Repository, StoreError};
use crate::Options;

/// The setting that holds the generated CA.
const SETTING: &str = "security_ca";
/// How long a generated CA is valid.
const CA_DAYS: i64 = 20 * 365;
/// How long a pile's certificate is valid.
pub const CERTIFICATE_DAYS: i64 = 365;
/// A pile's certificate is valid from this long before it is signed (clocks apart).
const BACKDATE_MS: Millis = 5 * 60 * 1000;
const DAY_MS: Millis = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("the CA: {0}")]
    Invalid(String),
    #[error("signing: {0}")]
    Sign(#[from] rcgen::Error),
}

/// The CA: its certificate, and the issuer that signs with its key.
pub struct Ca {
    cert_pem: String,
    cert_der: Vec<u8>,
    /// The end of the CA's validity: no certificate it signs lasts longer.
    not_after: Millis,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the CA signed.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The leaf, PEM.
    pub pem: String,
    /// The serial number, hex.
    pub serial: String,
    pub not_before: Millis,
    pub not_after: Millis,
}

fn invalid(what: impl std::fmt::Display) -> CaError {
    CaError::Invalid(what.to_string())
}

impl Ca {
    /// The CA of a certificate and its key, both PEM; refused when the certificate is not a
    /// CA's or the key is not its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CaError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.trim().as_bytes())
            .map_err(|e| invalid(format!("the certificate is not PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(invalid(format!("a PEM {:?}, not a CERTIFICATE", pem.label)));
        }
        let der = pem.contents;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
            .map_err(|e| invalid(format!("the certificate does not parse: {e}")))?;
        match cert.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            _ => {
                return Err(invalid(
                    "the certificate is not a CA's (basicConstraints CA)",
                ))
            }
        }
        // Without a keyUsage extension any use is allowed; with one, it must sign certificates.
        match cert.key_usage() {
            Ok(None) => {}
            Ok(Some(ku)) if ku.value.key_cert_sign() => {}
            _ => return Err(invalid("the CA certificate's keyUsage lacks keyCertSign")),
        }
        let not_after = cert.validity().not_after.timestamp() * 1000;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| invalid(format!("the private key (PKCS#8 PEM): {e}")))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(invalid("the private key is not the certificate's"));
        }
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key)?;
        let cert_pem = crate::secrets::pem_of("CERTIFICATE", &der);
        Ok(Ca {
            cert_pem,
            cert_der: der,
            not_after,
            issuer,
        })
    }

    /// A new CA (ECDSA P-256), valid from `now` for twenty years: its certificate and key as
    /// PEM.
    pub fn generate(now: Millis) -> Result<(String, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "ocpile central CA");
        name.push(DnType::OrganizationName, "ocpile");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = time_of(now - BACKDATE_MS)?.to_datetime();
        params.not_after = time_of(now + CA_DAYS * DAY_MS)?.to_datetime();
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The CA certificate, PEM (what piles and `--client-ca` trust).
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Signs a checked CSR for the pile `identity`: CN the identity, O the CSR's, valid for a
    /// year from `now` (a few minutes back) but not past the CA's own end, for client
    /// authentication (digitalSignature and keyAgreement), a random serial. Refused once the
    /// CA has expired.
    pub fn sign(&self, csr: &CheckedCsr, identity: &str, now: Millis) -> Result<Signed, CaError> {
        if self.not_after <= now {
            return Err(invalid(format!(
                "the central's CA expired at {}",
                crate::web::time(self.not_after)
            )));
        }
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, identity);
        if let Some(o) = &csr.organization {
            name.push(DnType::OrganizationName, o.as_str());
        }
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let not_before = now - BACKDATE_MS;
        let not_after = (now + CERTIFICATE_DAYS * DAY_MS).min(self.not_after);
        params.not_before = time_of(not_before)?.to_datetime();
        params.not_after = time_of(not_after)?.to_datetime();
        let serial = serial();
        let serial_hex = serial
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>();
        params.serial_number = Some(serial);
        let cert = params.signed_by(csr, &self.issuer)?;
        Ok(Signed {
            pem: cert.pem(),
            serial: serial_hex,
            // Certificates keep whole seconds.
            not_before: not_before / 1000 * 1000,
            not_after: not_after / 1000 * 1000,
        })
    }
}

/// A time of milliseconds since the epoch, as certificates keep it (whole seconds).
fn time_of(ms: Millis) -> Result<ASN1Time, CaError> {
    ASN1Time::from_timestamp(ms.div_euclid(1000))
        .map_err(|e| invalid(format!("a time out of range: {e}")))
}

/// A random positive serial number of 16 bytes.
fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Positive, and of 16 bytes in DER.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::Io(path.display().to_string(), e))
}

/// The CA a start uses: the one given (`--ca-cert` and `--ca-key`, PEM files), else the one
/// every node of the database shares (generated by the first start, kept as the setting
/// `security_ca`).
pub async fn load(options: &Options, repo: &dyn Repository, now: Millis) -> Result<Ca, CaError> {
    match (&options.ca_cert, &options.ca_key) {
        (Some(cert), Some(key)) => return Ca::from_pem(&read(cert)?, &read(key)?),
        (None, None) => {}
        _ => return Err(invalid("--ca-cert and --ca-key go together")),
    }
    let stored = match repo.setting(SETTING).await? {
        Some(stored) => stored,
        None => {
            let (cert, key) = Ca::generate(now)?;
            // Nodes starting at once each offer one; all take the one stored first.
            repo.init_setting(SETTING, &format!("{cert}{key}")).await?
        }
    };
    let end = "-----END CERTIFICATE-----";
    let split = stored
        .find(end)
        .map(|i| i + end.len())
        .ok_or_else(|| invalid("the stored CA has no certificate"))?;
    Ca::from_pem(&stored[..split], &stored[split..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    /// A CA certificate valid until `until`, with these key usages (none: no extension), and
    /// its key, both PEM.
    fn ca_until(until: Millis, usages: Vec<KeyUsagePurpose>, is_ca: bool) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = if is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = usages;
        params.not_before = time_of(NOW - 10 * DAY_MS).unwrap().to_datetime();
        params.not_after = time_of(until).unwrap().to_datetime();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn checked(identity: &str) -> CheckedCsr {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, identity);
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        super::super::csr::check(&pem, identity, None).unwrap()
    }

    #[test]
    fn a_generated_ca_signs_for_a_year() {
        let (cert, key) = Ca::generate(NOW).unwrap();
        let ca = Ca::from_pem(&cert, &key).unwrap();
        let signed = ca.sign(&checked("CP1"), "CP1", NOW).unwrap();
        assert_eq!(signed.not_after, NOW + CERTIFICATE_DAYS * DAY_MS);
        assert_eq!(signed.not_before, NOW - BACKDATE_MS);
        assert_eq!(signed.serial.len(), 32);
    }

    #[test]
    fn no_certificate_outlasts_its_ca_and_an_expired_ca_signs_none() {
        let until = NOW + 10 * DAY_MS;
        let (cert, key) = ca_until(until, vec![], true);
        let ca = Ca::from_pem(&cert, &key).unwrap();
        assert_eq!(
            ca.sign(&checked("CP1"), "CP1", NOW).unwrap().not_after,
            until
        );
        let err = ca.sign(&checked("CP1"), "CP1", until).err().unwrap();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn a_ca_must_be_one_and_hold_its_key() {
        let (cert, key) = ca_until(NOW + DAY_MS, vec![], false);
        let err = Ca::from_pem(&cert, &key).err().unwrap();
        assert!(err.to_string().contains("not a CA's"), "{err}");
        let (cert, key) = ca_until(NOW + DAY_MS, vec![KeyUsagePurpose::DigitalSignature], true);
        let err = Ca::from_pem(&cert, &key).err().unwrap();
        assert!(err.to_string().contains("keyCertSign"), "{err}");
        let (cert, _) = ca_until(NOW + DAY_MS, vec![KeyUsagePurpose::KeyCertSign], true);
        let (_, other_key) = ca_until(NOW + DAY_MS, vec![], true);
        let err = Ca::from_pem(&cert, &other_key).err().unwrap();
        assert!(err.to_string().contains("not the certificate's"), "{err}");
        assert!(Ca::from_pem("junk", &other_key).is_err());
    }
}
