//! TLS configurations through rustls with the ring provider. Certificate verification is never
//! switched off: a client trusts exactly the CA certificates it is given.

use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TransportError;

/// A TLS protocol version rustls can speak. (TLS 1.0 and 1.1 are not implemented by rustls.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(e.to_string())
}

/// Every certificate of a PEM bundle.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    if certs.is_empty() {
        return Err(TransportError::Tls("no certificate in PEM data".into()));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(tls_err)
}

/// A client configuration trusting the CA certificates in `ca_pem`, restricted to `versions`,
/// optionally presenting a client certificate (Security Profile 3).
pub fn client_config(
    ca_pem: &[u8],
    versions: &[TlsVersion],
    client_identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(ca_pem)? {
        roots.add(cert).map_err(tls_err)?;
    }
    let versions: Vec<_> = versions.iter().map(|v| v.rustls()).collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(tls_err)?
        .with_root_certificates(roots);
    let config = match client_identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(certificates_from_pem(chain)?, private_key_from_pem(key)?)
            .map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server configuration with the certificate chain and key given; with `client_ca_pem`,
/// client certificates signed by it are requested and verified (those without one still
/// connect, and the authenticator decides).
pub fn server_config(
    chain_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(tls_err)?;
    let builder = match client_ca_pem {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates_from_pem(ca)? {
                roots.add(cert).map_err(tls_err)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(tls_err)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(
            certificates_from_pem(chain_pem)?,
            private_key_from_pem(key_pem)?,
        )
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}
