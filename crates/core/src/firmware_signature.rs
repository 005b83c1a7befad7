//! Signed firmware (security whitepaper edition 2, use case A03/L01): the signing certificate of
//! a SignedUpdateFirmware is checked against the installed ManufacturerRootCertificates, and
//! the downloaded image against its signature.
//!
//! The signature is base64 of a signature over the image's bytes with SHA-256 and the signing
//! certificate's key: ECDSA P-256 (ASN.1 DER, ring's `ECDSA_P256_SHA256_ASN1`) or RSA PKCS#1
//! v1.5 (`RSA_PKCS1_2048_8192_SHA256`). ring verifies over the message, so the check takes the
//! image's bytes (the host hands them over with the finished download).

use base64::Engine;
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Why a signing certificate is refused (the answer InvalidCertificate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRefusal {
    #[error("not a certificate: {0}")]
    Unreadable(String),
    #[error("certificate {0} of the chain is not signed by the next one")]
    NotLinked(usize),
    #[error("it does not chain to an installed ManufacturerRootCertificate")]
    UnknownRoot,
    #[error("certificate {0} of the chain is not valid now (from {1} to {2})")]
    NotValidNow(usize, String, String),
    #[error("its key is neither ECDSA P-256 nor RSA")]
    UnsupportedKey,
}

/// Why an image does not verify (InvalidSignature).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    #[error("the signature is no base64: {0}")]
    NotBase64(String),
    #[error("the signing certificate: {0}")]
    Certificate(String),
    #[error("the signature does not verify over the image")]
    Mismatch,
}

/// Decodes the request's `signature` (base64, standard alphabet, padding optional).
pub fn decode_signature(text: &str) -> Result<Vec<u8>, SignatureRefusal> {
    let text = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|e| SignatureRefusal::NotBase64(e.to_string()))
}

/// Checks a signingCertificate (PEM, the signing certificate first, then any intermediates):
/// each certificate signed by the next, the last an installed root or signed by one (`roots`,
/// DER), all valid at `at` (Unix seconds), the leaf's key ECDSA P-256 or RSA. Returns the
/// signing certificate's DER.
pub fn check_signing_certificate(
    pem: &str,
    roots: &[&[u8]],
    at: i64,
) -> Result<Vec<u8>, CertificateRefusal> {
    let mut ders = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.trim().as_bytes()) {
        let block = block.map_err(|e| CertificateRefusal::Unreadable(format!("PEM: {e}")))?;
        if block.label != "CERTIFICATE" {
            return Err(CertificateRefusal::Unreadable(format!(
                "a PEM {:?} block",
                block.label
            )));
        }
        ders.push(block.contents);
    }
    if ders.is_empty() {
        return Err(CertificateRefusal::Unreadable("no certificate".into()));
    }
    let certs = ders
        .iter()
        .map(|der| match X509Certificate::from_der(der) {
            Ok(([], cert)) => Ok(cert),
            Ok(_) => Err(CertificateRefusal::Unreadable(
                "bytes after a certificate".into(),
            )),
            Err(e) => Err(CertificateRefusal::Unreadable(format!("X.509: {e}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, pair) in certs.windows(2).enumerate() {
        if !signed_by(&pair[0], &pair[1]) {
            return Err(CertificateRefusal::NotLinked(i));
        }
    }
    let last_der = ders.last().map(Vec::as_slice).unwrap_or_default();
    let last = &certs[certs.len() - 1];
    let anchored = roots.iter().any(|root| {
        *root == last_der
            || X509Certificate::from_der(root).is_ok_and(|(_, root)| signed_by(last, &root))
    });
    if !anchored {
        return Err(CertificateRefusal::UnknownRoot);
    }
    let now =
        ASN1Time::from_timestamp(at).map_err(|e| CertificateRefusal::Unreadable(e.to_string()))?;
    for (i, cert) in certs.iter().enumerate() {
        let validity = cert.validity();
        if !validity.is_valid_at(now) {
            return Err(CertificateRefusal::NotValidNow(
                i,
                validity.not_before.to_string(),
                validity.not_after.to_string(),
            ));
        }
    }
    key_algorithm(&certs[0])?;
    Ok(ders.swap_remove(0))
}

/// Verifies `signature` over `image` with the key of the signing certificate `cert_der`.
pub fn verify_image(
    cert_der: &[u8],
    signature: &[u8],
    image: &[u8],
) -> Result<(), SignatureRefusal> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| SignatureRefusal::Certificate(e.to_string()))?;
    let algorithm =
        key_algorithm(&cert).map_err(|e| SignatureRefusal::Certificate(e.to_string()))?;
    let key = cert.public_key().subject_public_key.data.as_ref();
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(image, signature)
        .map_err(|_| SignatureRefusal::Mismatch)
}

fn key_algorithm(
    cert: &X509Certificate<'_>,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, CertificateRefusal> {
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match (oid.as_str(), curve.as_deref()) {
        (EC_PUBLIC_KEY, Some(P256)) => Ok(&ring::signature::ECDSA_P256_SHA256_ASN1),
        (RSA_ENCRYPTION, _) => Ok(&ring::signature::RSA_PKCS1_2048_8192_SHA256),
        _ => Err(CertificateRefusal::UnsupportedKey),
    }
}

fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RSA-2048 root, a signing certificate it signed (both from 2026-12-08 for a century),
    // and `openssl dgst -sha256 -sign` of IMAGE with the signing key, base64.
    const ROOT: &str = include_str!("../testdata/rsa-firmware/root.pem");
    const SIGNING: &str = include_str!("../testdata/rsa-firmware/sign.pem");
    const SIGNATURE: &str = include_str!("../testdata/rsa-firmware/image.sig.b64");
    const IMAGE: &[u8] = b"the bytes of an RSA-signed image";
    /// 2027-01-01T00:00:00Z.
    const AT: i64 = 1_798_761_600;

    fn root_der() -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(ROOT.as_bytes())
            .unwrap()
            .1
            .contents
    }

    #[test]
    fn an_rsa_pkcs1_sha256_signature_verifies_over_the_image_only() {
        let root = root_der();
        let cert = check_signing_certificate(SIGNING, &[&root], AT).unwrap();
        let signature = decode_signature(SIGNATURE).unwrap();
        assert_eq!(verify_image(&cert, &signature, IMAGE), Ok(()));
        assert_eq!(
            verify_image(&cert, &signature, b"another image"),
            Err(SignatureRefusal::Mismatch)
        );
    }

    #[test]
    fn the_signing_certificate_needs_its_root_and_its_time() {
        let root = root_der();
        assert_eq!(
            check_signing_certificate(SIGNING, &[], AT),
            Err(CertificateRefusal::UnknownRoot)
        );
        // 2026-01-01: before it was made.
        assert!(matches!(
            check_signing_certificate(SIGNING, &[&root], 1_767_225_600),
            Err(CertificateRefusal::NotValidNow(0, _, _))
        ));
        // The root itself as the chain's last certificate is accepted too.
        let chain = format!("{SIGNING}{ROOT}");
        assert!(check_signing_certificate(&chain, &[&root], AT).is_ok());
        assert!(matches!(
            check_signing_certificate("garbage", &[&root], AT),
            Err(CertificateRefusal::Unreadable(_))
        ));
        assert!(decode_signature("not base64 !").is_err());
    }
}
