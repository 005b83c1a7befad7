//! The security extension of OCPP 1.6J on the central's side (issue 17): the central's own CA
//! ([`ca`]), the checks of the piles' CSRs ([`csr`]), SignCertificate answered and the signed
//! chain sent as CertificateSigned, and the security events (the piles' SecurityEventNotification
//! and the central's own refusals) stored once each.

pub mod ca;
pub mod csr;

use std::sync::Arc;

use ocpp::{
    Action, CertificateSignedRequest, CiString, GenericStatus, Response,
    SecurityEventNotificationRequest, SignCertificateRequest, SignCertificateResponse,
};

use crate::store::security::{FROM_CENTRAL, FROM_PILE};
use crate::store::{CertificateRow, Millis, SecurityEventRow, StoreError};
use crate::Central;

/// The type of the central's own security event: a CSR it refused (its reason in techInfo).
pub const CSR_REFUSED: &str = "SignCertificateRejected";

/// The configuration key whose value a CSR's O must be.
const CPO_NAME: &str = "CpoName";

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Stores a pile's SecurityEventNotification, unless the same event is stored (sent again
/// after a reconnect); whether it was new.
pub async fn record_event(
    central: &Central,
    pile: &str,
    event: &SecurityEventNotificationRequest,
) -> Result<bool, StoreError> {
    central
        .repo()
        .record_security_event(&SecurityEventRow {
            pile: pile.to_owned(),
            time: event.timestamp.millis(),
            kind: event.kind.as_str().to_owned(),
            tech_info: event.tech_info.as_ref().map(|t| t.as_str().to_owned()),
            source: FROM_PILE.into(),
            received_at: now_ms(),
        })
        .await
}

/// The pile's CpoName as the central last read it (none: not read, or empty).
async fn cpo_name(central: &Central, pile: &str) -> Result<Option<String>, StoreError> {
    Ok(central
        .repo()
        .configuration(pile)
        .await?
        .into_iter()
        .find(|k| k.key.eq_ignore_ascii_case(CPO_NAME))
        .and_then(|k| k.value)
        .filter(|v| !v.is_empty()))
}

/// Answers a pile's SignCertificate: a CSR that passes every check ([`csr::check`]) is signed
/// by the CA, the certificate stored, Accepted, and the chain (the leaf, then the CA) sent as
/// CertificateSigned once the answer is out; any other is Rejected, its reason recorded as a
/// security event of the central's own ([`CSR_REFUSED`]).
pub async fn sign_certificate(
    central: &Arc<Central>,
    pile: &str,
    request: &SignCertificateRequest,
) -> Result<SignCertificateResponse, StoreError> {
    let now = now_ms();
    let cpo_name = cpo_name(central, pile).await?;
    let signed = csr::check(request.csr.as_str(), pile, cpo_name.as_deref())
        .map_err(|refusal| refusal.to_string())
        .and_then(|checked| {
            central
                .ca()
                .sign(&checked, pile, now)
                .map_err(|e| e.to_string())
        });
    let signed = match signed {
        Ok(signed) => signed,
        Err(reason) => {
            tracing::warn!(pile, "SignCertificate rejected: {reason}");
            refused(central, pile, &reason, now).await?;
            return Ok(SignCertificateResponse {
                status: GenericStatus::Rejected,
            });
        }
    };
    central
        .repo()
        .put_certificate(&CertificateRow {
            serial: signed.serial.clone(),
            pile: pile.to_owned(),
            not_before: signed.not_before,
            not_after: signed.not_after,
            signed_at: now,
            certificate: signed.pem.clone(),
            delivery: None,
        })
        .await?;
    tracing::info!(pile, serial = signed.serial, "CSR signed");
    let chain = format!("{}{}", signed.pem, central.ca().certificate_pem());
    // Sent once this answer is out (the runtime holds our CALLs until then).
    tokio::spawn(send_chain(
        central.clone(),
        pile.to_owned(),
        signed.serial,
        chain,
    ));
    Ok(SignCertificateResponse {
        status: GenericStatus::Accepted,
    })
}

/// Records a refused CSR, its reason as techInfo (cut to the schema's 255 characters).
async fn refused(
    central: &Central,
    pile: &str,
    reason: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let tech_info: String = reason.chars().take(255).collect();
    central
        .repo()
        .record_security_event(&SecurityEventRow {
            pile: pile.to_owned(),
            time: now,
            kind: CSR_REFUSED.into(),
            tech_info: Some(tech_info),
            source: FROM_CENTRAL.into(),
            received_at: now,
        })
        .await
        .map(drop)
}

/// Sends the signed chain as CertificateSigned (recorded like every command), and records the
/// pile's answer with the certificate.
async fn send_chain(central: Arc<Central>, pile: String, serial: String, chain: String) {
    let request = match CiString::new(chain) {
        Ok(chain) => CertificateSignedRequest {
            certificate_chain: chain,
        },
        Err(_) => {
            tracing::error!(pile, serial, "the chain is over 10000 characters: not sent");
            record_delivery(&central, &serial, "too_long").await;
            return;
        }
    };
    let payload = ocpp::encode(&request);
    let outcome =
        crate::command_log::call_recorded(&central, &pile, Action::CertificateSigned, payload)
            .await;
    let delivery = match &outcome {
        Ok(Ok(answer)) => match &answer.value {
            Response::CertificateSigned(r) => r.status.as_str().to_owned(),
            _ => "bad_response".to_owned(),
        },
        Ok(Err(e)) => {
            let (_, kind, _) = crate::command_log::describe(&central, &pile, &Err(e.clone()));
            kind.to_owned()
        }
        Err(e) => {
            tracing::error!(pile, serial, "CertificateSigned not recorded: {e}");
            "store_failed".to_owned()
        }
    };
    tracing::info!(pile, serial, delivery, "CertificateSigned sent");
    record_delivery(&central, &serial, &delivery).await;
    central.changed(format!("pile {pile}"));
}

async fn record_delivery(central: &Central, serial: &str, delivery: &str) {
    if let Err(e) = central.repo().certificate_delivered(serial, delivery).await {
        tracing::error!(
            serial,
            "the pile's answer to CertificateSigned not stored: {e}"
        );
    }
}
