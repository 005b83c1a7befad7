//! A certificate authority for the TLS tests (rcgen): the central's server certificate and the
//! piles' client certificates.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA of the test's own, and the certificates it signs.
#[allow(dead_code)]
pub struct Pki {
    pub ca_pem: String,
    /// The CA's private key (PEM), for a central given this CA as its own.
    pub key_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

#[allow(dead_code)]
impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap();
        Pki {
            ca_pem: issuer.pem(),
            key_pem,
            issuer,
        }
    }

    /// A certificate and key signed by the CA: for names, or with a subject CN.
    pub fn issue(&self, names: &[&str], cn: Option<&str>) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The options of a central system on TLS with a server certificate of this CA for
    /// `localhost` (and the CA for the piles' certificates), in a directory of the test's own;
    /// any pile admitted, the API token `T`.
    pub fn tls_options(&self, test: &str) -> central::Options {
        let dir = super::fresh_dir(test);
        let (server_pem, server_key) = self.issue(&["localhost"], None);
        for (name, text) in [
            ("ca.pem", &self.ca_pem),
            ("server.pem", &server_pem),
            ("server.key", &server_key),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let mut options = central::Options::new(dir.join("data"));
        options.listen = "127.0.0.1:0".parse().unwrap();
        options.admission = central::Admission::Open;
        options.api_token = Some("T".into());
        options.tls_cert = Some(dir.join("server.pem"));
        options.tls_key = Some(dir.join("server.key"));
        options.client_ca = Some(dir.join("ca.pem"));
        options
    }
}
