//! The pile's client certificate over OCPP (security whitepaper edition 2, use case A02):
//! ExtendedTriggerMessage SignChargePointCertificate makes a key pair, kept in the durable
//! state, and sends SignCertificate with a CSR; CertificateSigned brings the chain, which is
//! checked ([`crate::client_certificate::check_chain`]) before it is kept. Under security
//! profile 3 the pile then reconnects with it.

use ocpp::{
    CertificateSignedRequest, CertificateSignedResponse, CertificateSignedStatus, GenericStatus,
    SignCertificateRequest,
};

use super::security::Event;
use super::*;
use crate::certificates::Store;
use crate::client_certificate;

impl ChargePoint {
    /// A new key pair and its CSR (CN the identity, O the CpoName), the key made durable;
    /// `None` (and a line in the log) if none could be made.
    pub(super) fn new_csr(&mut self) -> Option<String> {
        let made = client_certificate::new_key().and_then(|key| {
            let identity = self.config.identity().to_owned();
            let organisation = self.config.text(keys::CPO_NAME).to_owned();
            client_certificate::csr(&key, &identity, &organisation).map(|csr| (key, csr))
        });
        match made {
            Ok((key, csr)) => {
                self.durable.set_pending_key(key);
                self.persist();
                Some(csr)
            }
            Err(e) => {
                self.link.outputs.push(Output::Log(e.to_string()));
                None
            }
        }
    }

    /// Sends SignCertificate with this CSR.
    pub(super) fn send_sign_certificate(&mut self, csr: &str, now: Duration) {
        let ticket = self.call(
            &SignCertificateRequest {
                csr: ocpp::CiString::truncating(csr),
            },
            now,
        );
        self.link.awaited.insert(ticket, Awaited::SignCertificate);
    }

    /// The central answered SignCertificate: a refusal is logged (the key stays pending, the
    /// central may still send a certificate for it).
    pub(super) fn on_sign_certificate_reply(
        &mut self,
        outcome: Result<Decoded<Response>, CallFailure>,
    ) {
        let why = match outcome {
            Ok(Decoded {
                value: Response::SignCertificate(r),
                ..
            }) if r.status == GenericStatus::Accepted => return,
            Ok(_) => "Rejected".to_owned(),
            Err(e) => format!("{e:?}"),
        };
        self.link
            .outputs
            .push(Output::Log(format!("SignCertificate not accepted: {why}")));
    }

    /// CertificateSigned: the chain is kept if it checks, else Rejected and an
    /// InvalidChargePointCertificate security event.
    pub(super) fn certificate_signed(
        &mut self,
        id: &str,
        r: CertificateSignedRequest,
        now: Duration,
    ) {
        let roots: Vec<&[u8]> = self
            .durable
            .certificates()
            .iter()
            .filter(|c| c.store == Store::CentralSystemRoot)
            .map(|c| c.der.as_slice())
            .collect();
        let max = self
            .config
            .int(keys::CERTIFICATE_SIGNED_MAX_CHAIN_SIZE)
            .max(0) as usize;
        let checked = client_certificate::check_chain(
            r.certificate_chain.as_str(),
            max,
            self.durable.pending_key(),
            self.config.identity(),
            &roots,
            self.time.clock.at(now).millis() / 1000,
        );
        match checked {
            Ok(cert) => {
                self.durable.install_client_certificate(cert);
                self.persist();
                self.respond(
                    id,
                    CertificateSignedResponse {
                        status: CertificateSignedStatus::Accepted,
                    },
                );
                if self.config.int(keys::SECURITY_PROFILE) >= 3 {
                    // The answer first, then a connection with the new certificate.
                    self.session
                        .move_to(target_of(&self.config, &self.durable), now);
                    self.move_soon(now);
                }
            }
            Err(why) => {
                self.respond(
                    id,
                    CertificateSignedResponse {
                        status: CertificateSignedStatus::Rejected,
                    },
                );
                self.raise(Event::InvalidChargePointCertificate, why.to_string(), now);
                self.pump_security(now);
            }
        }
    }
}
