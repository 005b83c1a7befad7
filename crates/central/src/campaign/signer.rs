//! The firmware signing identity of signed campaigns (issue 17, the security whitepaper's
//! SignedUpdateFirmware): a signing certificate, chaining to a manufacturer root, and its
//! private key (ECDSA P-256 or RSA). The central signs an image with it: SHA-256 with ECDSA
//! (the DER signature) or RSA PKCS#1 v1.5, base64 — the `signature` of SignedUpdateFirmware,
//! whose `signingCertificate` is the certificate, PEM.
//!
//! The identity is kept in the database (the setting `firmware_signer`: the manufacturer root,
//! the signing certificate, then the private key, as PEM), so that every node signs with the
//! same: the operator's, or a demo one the central generates when asked (a root, ECDSA P-256,
//! and a signing certificate it issued). The root is what a pile is given with
//! InstallCertificate ManufacturerRootCertificate.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use x509_parser::prelude::FromDer;

use crate::store::{Millis, Repository, StoreError};

/// The setting that holds the signing identity.
const SETTING: &str = "firmware_signer";
/// How long a generated root and signing certificate are valid.
const DAYS: i64 = 20 * 365;
const DAY_MS: Millis = 86_400_000;
/// Valid from this long before they are generated (clocks apart).
const BACKDATE_MS: Millis = 5 * 60 * 1000;
/// The longest certificate SignedUpdateFirmware carries (`signingCertificate`).
const MAX_CERTIFICATE: usize = 5500;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the firmware signer: {0}")]
    Invalid(String),
    #[error("generating the firmware signer: {0}")]
    Generate(#[from] rcgen::Error),
}

fn invalid(what: impl std::fmt::Display) -> SignerError {
    SignerError::Invalid(what.to_string())
}

enum Key {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing certificate with its key, and the manufacturer root it chains to.
pub struct Signer {
    root_pem: String,
    cert_pem: String,
    key: Key,
}

/// One PEM certificate of `text`: its DER, and the rest of the text.
fn certificate_der(text: &str) -> Result<(Vec<u8>, &str), SignerError> {
    let end = "-----END CERTIFICATE-----";
    let split = text
        .find(end)
        .map(|i| i + end.len())
        .ok_or_else(|| invalid("a PEM CERTIFICATE is missing"))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(text[..split].trim().as_bytes())
        .map_err(|e| invalid(format!("a certificate is not PEM: {e}")))?;
    if pem.label != "CERTIFICATE" {
        return Err(invalid(format!("a PEM {:?}, not a CERTIFICATE", pem.label)));
    }
    Ok((pem.contents, &text[split..]))
}

impl Signer {
    /// The identity of a manufacturer root, a signing certificate it issued and the signing
    /// certificate's private key (PKCS#8), all PEM; refused when the certificate was not
    /// issued by the root, the key is not the certificate's, or it is neither ECDSA P-256 nor
    /// RSA.
    pub fn from_pem(root_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Signer, SignerError> {
        let (root_der, _) = certificate_der(root_pem)?;
        let (cert_der, _) = certificate_der(cert_pem)?;
        let (_, root) = x509_parser::certificate::X509Certificate::from_der(&root_der)
            .map_err(|e| invalid(format!("the root does not parse: {e}")))?;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&cert_der)
            .map_err(|e| invalid(format!("the signing certificate does not parse: {e}")))?;
        cert.verify_signature(Some(root.public_key()))
            .map_err(|_| invalid("the signing certificate was not issued by the root"))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| invalid(format!("the private key (PKCS#8 PEM): {e}")))?;
        let pkcs8 = key.serialize_der();
        let public = cert.public_key().subject_public_key.data.as_ref();
        let key = if let Ok(k) = EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        ) {
            if k.public_key().as_ref() != public {
                return Err(invalid("the private key is not the certificate's"));
            }
            Key::Ecdsa(k)
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(&pkcs8) {
            if k.public_key().as_ref() != public {
                return Err(invalid("the private key is not the certificate's"));
            }
            Key::Rsa(k)
        } else {
            return Err(invalid("the private key is neither ECDSA P-256 nor RSA"));
        };
        let cert_pem = crate::secrets::pem_of("CERTIFICATE", &cert_der);
        if cert_pem.len() > MAX_CERTIFICATE {
            return Err(invalid(format!(
                "the signing certificate is longer than {MAX_CERTIFICATE} characters as PEM"
            )));
        }
        Ok(Signer {
            root_pem: crate::secrets::pem_of("CERTIFICATE", &root_der),
            cert_pem,
            key,
        })
    }

    /// A demo identity: a manufacturer root (ECDSA P-256) and a signing certificate it issued
    /// (codeSigning), valid from `now`; root, certificate and key as PEM, in that order.
    pub fn generate(now: Millis) -> Result<String, SignerError> {
        let time = |ms: Millis| {
            x509_parser::time::ASN1Time::from_timestamp(ms.div_euclid(1000))
                .map(|t| t.to_datetime())
                .map_err(|e| invalid(format!("a time out of range: {e}")))
        };
        let name = |cn: &str| {
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, cn);
            name.push(DnType::OrganizationName, "ocpile demo manufacturer");
            name
        };
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut root = CertificateParams::default();
        root.distinguished_name = name("ocpile demo manufacturer root");
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = time(now - BACKDATE_MS)?;
        root.not_after = time(now + DAYS * DAY_MS)?;
        let root_cert = root.self_signed(&root_key)?;
        let issuer = Issuer::from_params(&root, &root_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name = name("ocpile demo firmware signing");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = time(now - BACKDATE_MS)?;
        leaf.not_after = time(now + DAYS * DAY_MS)?;
        let cert = leaf.signed_by(&key, &issuer)?;
        Ok(format!(
            "{}{}{}",
            root_cert.pem(),
            cert.pem(),
            key.serialize_pem()
        ))
    }

    /// The identity as the setting keeps it: root, certificate, key.
    fn from_stored(stored: &str) -> Result<Signer, SignerError> {
        let (_, rest) = certificate_der(stored)?;
        let root_len = stored.len() - rest.len();
        let (_, key) = certificate_der(rest)?;
        let cert_len = rest.len() - key.len();
        Signer::from_pem(&stored[..root_len], &rest[..cert_len], key)
    }

    /// The manufacturer root, PEM (InstallCertificate ManufacturerRootCertificate).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The signing certificate, PEM (SignedUpdateFirmware's `signingCertificate`).
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The signature of an image: SHA-256 with the key (ECDSA: DER; RSA: PKCS#1 v1.5), base64.
    pub fn sign(&self, image: &[u8]) -> Result<String, SignerError> {
        let rng = SystemRandom::new();
        let signature = match &self.key {
            Key::Ecdsa(k) => k
                .sign(&rng, image)
                .map_err(|_| invalid("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
            Key::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, image, &mut out)
                    .map_err(|_| invalid("RSA signing failed"))?;
                out
            }
        };
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

/// The longest signature SignedUpdateFirmware carries (`signature`, base64).
const MAX_SIGNATURE: usize = 800;

/// Checks a manufacturer's signature of an image, as a pile would: the signing certificate
/// (PEM) parses and its key (ECDSA P-256 or RSA) verifies the signature (base64, SHA-256) over
/// the image; both fit SignedUpdateFirmware. The reason when not. Whether the certificate
/// chains to a root the pile trusts is the pile's to check.
pub fn verify(cert_pem: &str, image: &[u8], signature: &str) -> Result<(), String> {
    if cert_pem.len() > MAX_CERTIFICATE {
        return Err(format!(
            "the signing certificate is longer than {MAX_CERTIFICATE} characters"
        ));
    }
    if signature.len() > MAX_SIGNATURE {
        return Err(format!(
            "the signature is longer than {MAX_SIGNATURE} characters"
        ));
    }
    let (der, _) =
        certificate_der(cert_pem).map_err(|e| format!("the signing certificate: {e}"))?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|e| format!("the signing certificate does not parse: {e}"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let key = cert.public_key().subject_public_key.data.as_ref();
    let algorithms: [&dyn ring::signature::VerificationAlgorithm; 2] = [
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    ];
    if algorithms.iter().any(|alg| {
        ring::signature::UnparsedPublicKey::new(*alg, key)
            .verify(image, &raw)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(
            "the signature does not verify over the image with the signing certificate's key \
             (SHA-256 with ECDSA P-256 or RSA PKCS#1 v1.5)"
                .into(),
        )
    }
}

/// The signing identity every node shares, if the operator set one or had a demo one made.
pub async fn load(repo: &dyn Repository) -> Result<Option<Signer>, SignerError> {
    repo.setting(SETTING)
        .await?
        .map(|stored| Signer::from_stored(&stored))
        .transpose()
}

/// Makes a demo identity ([`Signer::generate`]) and keeps it in place of the stored one.
pub async fn replace_with_demo(repo: &dyn Repository, now: Millis) -> Result<Signer, SignerError> {
    let stored = Signer::generate(now)?;
    let signer = Signer::from_stored(&stored)?;
    repo.put_setting(SETTING, &stored).await?;
    Ok(signer)
}

/// Keeps the operator's signing identity in place of the stored one (every node reads it at
/// its next signed campaign); refused as [`Signer::from_pem`] refuses.
pub async fn replace(
    repo: &dyn Repository,
    root_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Signer, SignerError> {
    let signer = Signer::from_pem(root_pem, cert_pem, key_pem)?;
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| invalid(format!("the private key (PKCS#8 PEM): {e}")))?;
    let stored = format!(
        "{}{}{}",
        signer.root_pem,
        signer.cert_pem,
        key.serialize_pem()
    );
    repo.put_setting(SETTING, &stored).await?;
    Ok(signer)
}

/// The signer of the options (`--firmware-signing-cert`: the signing certificate then its
/// root, PEM; `--firmware-signing-key`), kept in place of the stored one; nothing without them.
pub async fn from_options(
    repo: &dyn Repository,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<(), SignerError> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return match (cert, key) {
            (None, None) => Ok(()),
            _ => Err(invalid(
                "--firmware-signing-cert and --firmware-signing-key go together",
            )),
        };
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| invalid(format!("{}: {e}", path.display())))
    };
    let (chain, key) = (read(cert)?, read(key)?);
    let (_, root) =
        certificate_der(&chain).map_err(|e| invalid(format!("{}: {e}", cert.display())))?;
    if certificate_der(root).is_err() {
        return Err(invalid(format!(
            "{}: the signing certificate, then the manufacturer root that issued it (PEM)",
            cert.display()
        )));
    }
    let leaf = &chain[..chain.len() - root.len()];
    replace(repo, root, leaf, &key).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies a signature with the certificate's public key, as a pile does.
    fn verifies(cert_pem: &str, image: &[u8], signature: &str) -> bool {
        let (der, _) = certificate_der(cert_pem).unwrap();
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            cert.public_key().subject_public_key.data.as_ref(),
        )
        .verify(image, &sig)
        .is_ok()
    }

    #[test]
    fn a_generated_signer_signs_what_its_certificate_verifies() {
        let stored = Signer::generate(1_800_000_000_000).unwrap();
        let signer = Signer::from_stored(&stored).unwrap();
        assert!(signer.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let signature = signer.sign(b"image bytes").unwrap();
        assert!(verifies(
            signer.certificate_pem(),
            b"image bytes",
            &signature
        ));
        assert!(!verifies(
            signer.certificate_pem(),
            b"other bytes",
            &signature
        ));
    }

    /// An RSA 2048 key (PKCS#8), the one tests/security.rs uses (ring makes no RSA keys).
    const RSA_2048_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDq7rjXNc/7kYis
SlD0eX53BdTS7PGwNcInThXFF5NGFCAqKE7rg/gYc9+rOJUmtXINy4ZW3giDATGF
pgqZ3cNNSMmbp+tzRAtvE/xOUPt+Rad2ELHvrkmBA11C79UpFHmOZpunWjiOybcH
/NaJPzH8BA7kko7PKD3V3Wt/yVapB/o7Ybl9xJaRzhpdotgmB6a7BMzMGcl5IllC
y/Gc5t2TMZiDBApcLRDLNc543SzoEQlbWQEWPX4nnMUrO0d7Bao7P/SU8RA4AbWb
4zCvhBusDFwnzYLKJIUTsszrt/EWAJepf8KGW+Qg94JUrRrut+9lDeBIGpZefnwI
RAysBREbAgMBAAECggEAVZZVgZXJqPEKlRXX61CtqWfW8ma+3/6dtlsEpFJj5WZk
l2cq5TMlOadRJ1wMPldg7zSjwtbNzAgtxe5JM2fuhCPNyubAaLQz5CooQ1HOZWCz
0tffMx3QCm+y1LVx9y7N3/pyn2PHcgF7rC3I7KQ4rgK+eDgKTd7vtA+f36R2bUpX
avdds50UAwmQ+/6k3qjx75dGhR9os1xXNv4oGE7kkevXY0NhG8BvoiGL1qPZCVQQ
UUAJF8mcTr5HtwJ9uM78iBJFC2agGAMohy9XZZdRUdCnIBZX3wU7bL6W59PbjvQR
1GQxh+kqbrmRL+AxjMk3RMFPQRFG9goWDSdshoe+pQKBgQD+F0d8xx+zKYXk4EYR
QGYkLSFxRX909RPit1yRQu4LwRrLa4EgZSMA8j+JZGKf1krk1uGcNw634l/bEp0t
PE/4l4hfOjnF7TdWP/7ofrTjxK3svYsdOoKlagdB4ceF6BBMLT8mQNoOoMxH8epO
3wcSBtnBV1qe+uWMtuIrDpT0BQKBgQDsspfibpe5sOidOMlhDE7kyp3slVdl7QsY
b9p1fEct7Vc5ArOw5OsMhdtiT/QIXlXeNUHOQ1kgYzNQJdYBjF55pEmb6MH23EzM
SHLA5yUgVbOXnv9NbTkv7LolME5Xfs9lVlPQnHqZHogdv0YsOW9tDsRFbe1Ip74N
7s1I2CUanwKBgFbFwm8VXXkE7CnegW8wy/D8zJfvQPjDHVhmgCFHdx3ig3EGtKFI
iKyxDguwkZG+T/NYgtGjZ85aa5vX/n9NQo5FyZejvckfGq/EyRvC8al7KF5Z2KFR
sv4keHgCT+4l8zLgnNlGenFWboz/S6JFvhdk6YaCe3shebUVW6WSpEG1AoGANiZR
awLkAR5AyR8hqusW7W6RHHu5596H6EpGjxQkcJRYnPlKRJDKWS4SV3Z1HKkAOfqz
GE3+CNPI/G/7epUzU97K3DkujpwtkZqNbiYzLyeME4bTX1I6gAVHPJTFh2zCY6uR
NytlPLxoZW3JzvpAzJFRQ5T3cOS3LRbRrfWM338CgYEA6KYCD9er54dzCtj1iSRV
22NqvnLV8CNOXk7nNUC7EIlpoqshzdRFivQxEzkU25NnBPcmPKxH6rirotHdvKwZ
ILlXgnfODKyd9vGm8WXxynq7RmF+3AokDEMJwD7k0qRecFwGefnsCIuUVtgexzkS
SXATsYffX8OSc1i2U1O6xPU=
-----END PRIVATE KEY-----\n";

    #[test]
    fn an_rsa_signing_key_signs_with_pkcs1_v1_5() {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut root = CertificateParams::default();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root_cert = root.self_signed(&root_key).unwrap();
        let issuer = Issuer::from_params(&root, &root_key);
        let key = KeyPair::from_pem(RSA_2048_KEY).unwrap();
        let cert = CertificateParams::default()
            .signed_by(&key, &issuer)
            .unwrap();
        let signer = Signer::from_pem(&root_cert.pem(), &cert.pem(), RSA_2048_KEY).unwrap();
        let signature = signer.sign(b"image bytes").unwrap();
        // 256 bytes of RSA 2048, base64.
        assert_eq!(signature.len(), 344);
        assert_eq!(
            verify(signer.certificate_pem(), b"image bytes", &signature),
            Ok(())
        );
        assert!(verify(signer.certificate_pem(), b"other bytes", &signature).is_err());
    }

    #[test]
    fn a_certificate_of_another_root_or_another_key_is_refused() {
        let a = Signer::generate(1_800_000_000_000).unwrap();
        let b = Signer::generate(1_800_000_000_000).unwrap();
        let split = |s: &str| {
            let (_, rest) = certificate_der(s).unwrap();
            let (_, key) = certificate_der(rest).unwrap();
            (
                s[..s.len() - rest.len()].to_owned(),
                rest[..rest.len() - key.len()].to_owned(),
                key.to_owned(),
            )
        };
        let (root_a, cert_a, key_a) = split(&a);
        let (root_b, _, key_b) = split(&b);
        assert!(Signer::from_pem(&root_a, &cert_a, &key_a).is_ok());
        let other_root = Signer::from_pem(&root_b, &cert_a, &key_a).err().unwrap();
        assert!(other_root.to_string().contains("not issued by the root"));
        let other_key = Signer::from_pem(&root_a, &cert_a, &key_b).err().unwrap();
        assert!(other_key.to_string().contains("not the certificate's"));
    }
}
