//! SignedUpdateFirmware (security whitepaper edition 2, use case L01): the signing certificate
//! is checked against the ManufacturerRootCertificates first (InvalidCertificate and an
//! InvalidFirmwareSigningCertificate security event when it does not chain to one or is not
//! valid now; the pile keeps no revocation list, so RevokedCertificate is never answered),
//! Rejected while another upgrade runs or when the signature is no base64, else Accepted. The
//! upgrade then runs as UpdateFirmware's ([`super::firmware`]: retrieveDateTime, retries,
//! retryInterval, the install and restart), reported by SignedFirmwareStatusNotification with
//! the requestId. The host hands the downloaded image's bytes over with
//! [`FirmwareEvent::Downloaded`] (the download asked for them), and the core checks the
//! signature over them: Downloaded, then SignatureVerified and the install, or InvalidSignature,
//! an InvalidFirmwareSignature security event, and the old firmware stays.

use ocpp::{
    FirmwareStatusSigned, SignedUpdateFirmwareRequest, SignedUpdateFirmwareResponse,
    UpdateFirmwareStatus,
};

use super::firmware::{DEFAULT_RETRIES, DEFAULT_RETRY_INTERVAL};
use super::security::Event;
use super::*;
use crate::certificates::Store;
use crate::durable::{FirmwareStage, FirmwareUpdate, SignedFirmware};
use crate::firmware_signature::{check_signing_certificate, decode_signature, verify_image};

impl ChargePoint {
    pub(super) fn signed_update_firmware(
        &mut self,
        id: &str,
        r: SignedUpdateFirmwareRequest,
        now: Duration,
    ) {
        let roots: Vec<&[u8]> = self
            .durable
            .certificates()
            .iter()
            .filter(|c| c.store == Store::ManufacturerRoot)
            .map(|c| c.der.as_slice())
            .collect();
        let at = self.time.clock.at(now).millis() / 1000;
        let checked =
            check_signing_certificate(r.firmware.signing_certificate.as_str(), &roots, at);
        let certificate = match checked {
            Ok(der) => der,
            Err(why) => {
                self.respond(
                    id,
                    SignedUpdateFirmwareResponse {
                        status: UpdateFirmwareStatus::InvalidCertificate,
                    },
                );
                self.raise(
                    Event::InvalidFirmwareSigningCertificate,
                    format!("SignedUpdateFirmware {}: {why}", r.request_id),
                    now,
                );
                self.pump_security(now);
                return;
            }
        };
        let signature = match decode_signature(r.firmware.signature.as_str()) {
            Ok(signature) if !self.upgrading() => signature,
            outcome => {
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "another firmware upgrade runs".to_owned(),
                };
                self.link
                    .outputs
                    .push(Output::Log(format!("SignedUpdateFirmware rejected: {why}")));
                self.respond(
                    id,
                    SignedUpdateFirmwareResponse {
                        status: UpdateFirmwareStatus::Rejected,
                    },
                );
                return;
            }
        };
        self.durable.begin_firmware_update(FirmwareUpdate {
            location: r.firmware.location.as_str().to_owned(),
            retrieve_at: r.firmware.retrieve_date_time,
            attempts_left: r.retries.map_or(DEFAULT_RETRIES, |n| n.max(0) as u32) + 1,
            retry_interval: r
                .retry_interval
                .map_or(DEFAULT_RETRY_INTERVAL, |s| s.max(0) as u64),
            stage: FirmwareStage::Waiting,
            all_answered: true,
            signed: Some(SignedFirmware {
                request_id: r.request_id,
                certificate,
                signature,
            }),
        });
        self.reset_firmware_run();
        self.persist();
        self.respond(
            id,
            SignedUpdateFirmwareResponse {
                status: UpdateFirmwareStatus::Accepted,
            },
        );
        self.statuses_changed(now);
    }

    /// A signed image is whole: Downloaded, then its signature checked over its bytes.
    pub(super) fn signed_image_downloaded(
        &mut self,
        version: Option<String>,
        image: Option<&[u8]>,
        now: Duration,
    ) {
        let request_id = self.signed_request_id();
        if self.session.online() {
            self.notify_firmware(FirmwareStatusSigned::Downloaded, request_id, now);
        }
        let Some(signed) = self
            .durable
            .firmware_update()
            .and_then(|f| f.signed.clone())
        else {
            return;
        };
        let verified = match image {
            Some(bytes) => verify_image(&signed.certificate, &signed.signature, bytes)
                .map_err(|e| e.to_string()),
            None => Err("the host gave no image bytes to check".to_owned()),
        };
        match verified {
            Ok(()) => {
                self.durable.keep_downloaded_image(version);
                // Downloaded with a verified signature: reported as SignatureVerified.
                self.set_stage(FirmwareStage::Downloaded, now);
                self.install_when_idle(now);
            }
            Err(why) => {
                self.raise(
                    Event::InvalidFirmwareSignature,
                    format!("SignedUpdateFirmware {}: {why}", signed.request_id),
                    now,
                );
                self.firmware_failed(FirmwareStatusSigned::InvalidSignature, now);
                self.pump_security(now);
            }
        }
    }
}
