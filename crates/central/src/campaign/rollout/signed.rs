//! A signed campaign's pile: its SignedFirmwareStatusNotification (the security whitepaper's
//! statuses) into the same steps as a FirmwareStatusNotification; those of another request
//! ignored.

use ocpp::{FirmwareStatus, FirmwareStatusSigned};

use super::{Command, Outcome, Phase, Rollout, UpdateTerms};
use crate::campaign::Millis;

impl Rollout {
    /// A SignedFirmwareStatusNotification from the pile (already answered). Only a signed
    /// campaign follows it, and only with the `requestId` of the current step's
    /// SignedUpdateFirmware (or none). SignatureVerified and InstallScheduled count as
    /// Downloaded, InstallRebooting as Installing, DownloadScheduled and DownloadPaused are
    /// noted; InvalidSignature and InstallVerificationFailed fail the upgrade.
    pub fn on_signed_notification(
        &mut self,
        status: &FirmwareStatusSigned,
        request_id: Option<i32>,
        terms: &UpdateTerms,
        now: Millis,
        out: &mut Vec<Command>,
    ) {
        let Some(expected) = terms.request_id(self.step) else {
            return;
        };
        if request_id.is_some_and(|id| id != expected)
            || !matches!(self.phase, Phase::Sending | Phase::Upgrading)
        {
            return;
        }
        let plain = match status {
            FirmwareStatusSigned::Downloading => FirmwareStatus::Downloading,
            FirmwareStatusSigned::Downloaded
            | FirmwareStatusSigned::SignatureVerified
            | FirmwareStatusSigned::InstallScheduled => FirmwareStatus::Downloaded,
            FirmwareStatusSigned::Installing | FirmwareStatusSigned::InstallRebooting => {
                FirmwareStatus::Installing
            }
            FirmwareStatusSigned::Installed => FirmwareStatus::Installed,
            FirmwareStatusSigned::DownloadFailed => FirmwareStatus::DownloadFailed,
            FirmwareStatusSigned::InstallationFailed => FirmwareStatus::InstallationFailed,
            FirmwareStatusSigned::Idle => FirmwareStatus::Idle,
            FirmwareStatusSigned::DownloadScheduled | FirmwareStatusSigned::DownloadPaused => {
                self.unconfirmed = None;
                self.noted(status, now);
                return;
            }
            FirmwareStatusSigned::InvalidSignature
            | FirmwareStatusSigned::InstallVerificationFailed => {
                self.unconfirmed = None;
                self.noted(status, now);
                self.conclude(
                    Outcome::Failed,
                    Some(format!("the pile reports {}", status.as_str())),
                    now,
                    out,
                );
                return;
            }
            FirmwareStatusSigned::Unrecognized(_) => return,
        };
        self.on_notification(plain, terms, now, out);
        self.status = Some(status.as_str().to_owned());
    }

    /// A status that tells the pile is at it: the silence starts again.
    fn noted(&mut self, status: &FirmwareStatusSigned, now: Millis) {
        self.status = Some(status.as_str().to_owned());
        self.quiet_since = self.quiet_since.max(now);
        self.triggered = false;
    }
}
