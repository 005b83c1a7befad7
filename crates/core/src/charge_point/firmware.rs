//! Firmware upgrades (FAQ 3.10, 3.17): UpdateFirmware, the download the shell carries out, the
//! installation, FirmwareStatusNotification (Downloading → Downloaded → Installing → Installed,
//! or DownloadFailed / InstallationFailed), GetFirmwareUpgradePercentages, and the pile
//! Unavailable while it upgrades. Every failed download attempt reports DownloadFailed at once,
//! and DownloadFailed stays the status until the retry reports Downloading again; the last
//! failed attempt ends the upgrade.
//!
//! The FAQ contradicts itself on leaving Unavailable (3.10 points 4 and 6 against its
//! "Important" note); with 3.17 point 3 we read it as: after a successful upgrade the pile
//! restarts and is available again by itself if the central system answered every
//! FirmwareStatusNotification in time; otherwise it stays Unavailable until a ChangeAvailability
//! (Operative) from the central system.

use ocpp::{
    FirmwareStatus, FirmwareStatusNotificationRequest, FirmwareStatusSigned,
    SignedFirmwareStatusNotificationRequest, UpdateFirmwareRequest, UpdateFirmwareResponse,
};

use super::*;
use crate::durable::{FirmwareStage, FirmwareUpdate};

/// While an upgrade runs, the current FirmwareStatusNotification goes again after this long
/// without one (FAQ 3.17 point 4: at most 10 s apart).
pub const FIRMWARE_KEEPALIVE: Duration = Duration::from_secs(10);
/// How long installing takes.
pub const INSTALL_TIME: Duration = Duration::from_secs(5);
/// Attempts when UpdateFirmware gives no `retries`, and the wait between them without
/// `retryInterval`.
pub(super) const DEFAULT_RETRIES: u32 = 1;
pub(super) const DEFAULT_RETRY_INTERVAL: u64 = 60;

/// What the shell reports of a download.
#[derive(Debug, Clone, PartialEq)]
pub enum FirmwareEvent {
    /// This share of the image has arrived (0 to 100).
    Progress(u8),
    /// The image is on disk; `version` is the firmware version it carries, `None` when it is no
    /// valid image. `image` holds its bytes when [`Output::Download`] asked for them (a signed
    /// image, whose signature the core checks over them).
    Downloaded {
        version: Option<String>,
        image: Option<Vec<u8>>,
    },
    /// The download failed.
    Failed(String),
}

/// The core's view of the upgrade beyond what is durable.
#[derive(Debug, Clone, Default)]
pub(super) struct FirmwareRun {
    /// The download percentage (GetFirmwareUpgradePercentages).
    percent: u8,
    /// When the current status was last sent.
    last_sent: Option<Duration>,
    /// The FirmwareStatusNotification on its way.
    call: Option<Ticket>,
    /// When the installation ends, and the version it installs.
    installing: Option<(Duration, Option<String>)>,
    /// Installed was reported: restart once it is answered (or its time is up).
    restart_after: Option<Ticket>,
    /// When the next download attempt starts.
    next_attempt: Option<Duration>,
}

impl FirmwareRun {
    /// The connection is gone with the FirmwareStatusNotification on its way. `true` when that
    /// was the Installed the restart waited for: the new firmware starts anyway.
    pub fn connection_lost(&mut self) -> bool {
        self.call = None;
        self.restart_after.take().is_some()
    }
}

impl ChargePoint {
    /// The firmware version the pile runs.
    pub fn firmware_version(&self) -> &str {
        self.durable
            .installed_firmware()
            .unwrap_or(&self.settings.identity.firmware_version)
    }

    /// The status FirmwareStatusNotification reports now.
    pub fn firmware_status(&self) -> FirmwareStatus {
        match self.durable.firmware_update().map(|f| &f.stage) {
            Some(FirmwareStage::Downloading) => FirmwareStatus::Downloading,
            Some(FirmwareStage::Downloaded) => FirmwareStatus::Downloaded,
            Some(FirmwareStage::Installing) => FirmwareStatus::Installing,
            Some(FirmwareStage::Installed) => FirmwareStatus::Installed,
            // A download failed and the next attempt waits for its time.
            Some(FirmwareStage::Waiting) if self.firmware_run.next_attempt.is_some() => {
                FirmwareStatus::DownloadFailed
            }
            // Not downloading or installing: before retrieveDate, or no upgrade.
            Some(FirmwareStage::Waiting) | None => FirmwareStatus::Idle,
        }
    }

    pub fn firmware_percent(&self) -> u8 {
        self.firmware_run.percent
    }

    /// An upgrade holds the connectors Unavailable (those with a transaction once it ends).
    pub(super) fn upgrading(&self) -> bool {
        self.durable.firmware_update().is_some()
    }

    pub(super) fn update_firmware(&mut self, id: &str, r: UpdateFirmwareRequest, now: Duration) {
        self.durable.begin_firmware_update(FirmwareUpdate {
            location: r.location.as_str().to_owned(),
            retrieve_at: r.retrieve_date,
            attempts_left: r.retries.map_or(DEFAULT_RETRIES, |n| n.max(0) as u32) + 1,
            retry_interval: r
                .retry_interval
                .map_or(DEFAULT_RETRY_INTERVAL, |s| s.max(0) as u64),
            stage: FirmwareStage::Waiting,
            all_answered: true,
            signed: None,
        });
        self.reset_firmware_run();
        self.persist();
        self.respond(id, UpdateFirmwareResponse {});
        self.statuses_changed(now);
    }

    /// A new upgrade: nothing of the last one's run is left.
    pub(super) fn reset_firmware_run(&mut self) {
        self.firmware_run = FirmwareRun::default();
    }

    fn send_firmware_status(&mut self, now: Duration) {
        let status = self.firmware_status();
        let signed = self.signed_request_id();
        let verified = signed.is_some() && status == FirmwareStatus::Downloaded;
        if verified {
            // A signed image stays Downloaded only once its signature verified.
            self.notify_firmware(FirmwareStatusSigned::SignatureVerified, signed, now);
        } else {
            self.notify_firmware(to_signed(&status), signed, now);
        }
        self.firmware_run.last_sent = Some(now);
    }

    /// The current status as SignedFirmwareStatusNotification (ExtendedTriggerMessage), outside
    /// the upgrade's own reporting.
    pub(super) fn send_signed_firmware_status(&mut self, now: Duration) {
        let status = match self.firmware_status() {
            FirmwareStatus::Downloaded => FirmwareStatusSigned::SignatureVerified,
            status => to_signed(&status),
        };
        self.call(
            &SignedFirmwareStatusNotificationRequest {
                status,
                request_id: self.signed_request_id(),
            },
            now,
        );
    }

    /// The requestId of the SignedUpdateFirmware under way, if the upgrade is a signed one.
    pub(super) fn signed_request_id(&self) -> Option<i32> {
        self.durable
            .firmware_update()
            .and_then(|f| f.signed.as_ref())
            .map(|s| s.request_id)
    }

    /// Sends this status: as SignedFirmwareStatusNotification (with the `request_id`) for a
    /// signed upgrade, else as FirmwareStatusNotification (whose statuses are a subset).
    pub(super) fn notify_firmware(
        &mut self,
        status: FirmwareStatusSigned,
        request_id: Option<i32>,
        now: Duration,
    ) {
        let ticket = match request_id {
            Some(id) => self.call(
                &SignedFirmwareStatusNotificationRequest {
                    status,
                    request_id: Some(id),
                },
                now,
            ),
            None => {
                let status =
                    FirmwareStatus::from_wire(status.as_str()).unwrap_or(FirmwareStatus::Idle);
                self.call(&FirmwareStatusNotificationRequest { status }, now)
            }
        };
        self.firmware_run.call = Some(ticket);
        self.link.awaited.insert(ticket, Awaited::Firmware);
    }

    pub(super) fn set_stage(&mut self, stage: FirmwareStage, now: Duration) {
        if let Some(f) = self.durable.firmware_update_mut() {
            f.stage = stage;
        }
        self.persist();
        if self.session.online() {
            self.send_firmware_status(now);
        }
    }

    /// The upgrade ended without a new firmware: the pile reports why and leaves Unavailable.
    pub(super) fn firmware_failed(&mut self, status: FirmwareStatusSigned, now: Duration) {
        let signed = self.signed_request_id();
        self.durable.end_firmware_update();
        self.durable.take_downloaded_image();
        self.firmware_run.installing = None;
        self.firmware_run.next_attempt = None;
        self.persist();
        if self.session.online() {
            self.notify_firmware(status, signed, now);
        }
        self.statuses_changed(now);
    }

    /// When the download should start (monotonic).
    fn retrieve_deadline(&self) -> Option<Duration> {
        let f = self.durable.firmware_update()?;
        if f.stage != FirmwareStage::Waiting {
            return None;
        }
        if let Some(at) = self.firmware_run.next_attempt {
            return Some(at);
        }
        let wall = self.time.clock.at(self.time.now).millis();
        let wait = (f.retrieve_at.millis() - wall).max(0) as u64;
        Some(self.time.now + Duration::from_millis(wait))
    }

    /// Whether the current status goes again every [`FIRMWARE_KEEPALIVE`]: while the image
    /// downloads or installs, and between a failed download and its retry (FAQ 3.17 point 4:
    /// the whole upgrade).
    fn keeps_reporting(&self) -> bool {
        matches!(
            self.firmware_status(),
            FirmwareStatus::Downloading
                | FirmwareStatus::Downloaded
                | FirmwareStatus::Installing
                | FirmwareStatus::DownloadFailed
        )
    }

    pub(super) fn next_firmware_deadline(&self) -> Option<Duration> {
        let keepalive = (self.keeps_reporting()
            && self.session.connected()
            && self.is_accepted()
            && self.firmware_run.call.is_none())
        .then(|| {
            self.firmware_run
                .last_sent
                .map_or(self.time.now, |t| t + FIRMWARE_KEEPALIVE)
        });
        [
            self.retrieve_deadline(),
            keepalive,
            self.firmware_run.installing.as_ref().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn firmware_tick(&mut self, now: Duration) {
        if self.retrieve_deadline().is_some_and(|t| now >= t) {
            self.firmware_run.next_attempt = None;
            self.firmware_run.percent = 0;
            if let Some(f) = self.durable.firmware_update_mut() {
                f.attempts_left = f.attempts_left.saturating_sub(1);
            }
            let url = self
                .durable
                .firmware_update()
                .map(|f| f.location.clone())
                .unwrap_or_default();
            let image = self.signed_request_id().is_some();
            self.set_stage(FirmwareStage::Downloading, now);
            self.link.outputs.push(Output::Download { url, image });
        }
        if let Some((done, version)) = self.firmware_run.installing.clone() {
            if now >= done {
                self.firmware_run.installing = None;
                match version {
                    Some(version) => {
                        self.firmware_updated_event(&version, now);
                        self.durable.record_installed_firmware(version);
                        self.set_stage(FirmwareStage::Installed, now);
                        self.firmware_run.restart_after = self.firmware_run.call;
                        if self.firmware_run.restart_after.is_none() {
                            // Not connected: nothing to wait for.
                            self.restart_after_upgrade();
                        }
                    }
                    None => self.firmware_failed(FirmwareStatusSigned::InstallationFailed, now),
                }
            }
        }
        self.install_when_idle(now);
        let keepalive_due = self.next_firmware_deadline().is_some_and(|t| now >= t)
            && self.firmware_run.call.is_none()
            && self.keeps_reporting();
        if keepalive_due && self.session.online() {
            self.send_firmware_status(now);
        }
    }

    /// A downloaded image is installed once no transaction runs.
    pub(super) fn install_when_idle(&mut self, now: Duration) {
        let downloaded = self
            .durable
            .firmware_update()
            .is_some_and(|f| f.stage == FirmwareStage::Downloaded);
        if downloaded && !self.any_transaction() && self.firmware_run.installing.is_none() {
            let version = self.durable.take_downloaded_image();
            self.firmware_run.installing = Some((now + INSTALL_TIME, version));
            self.set_stage(FirmwareStage::Installing, now);
        }
    }

    pub(super) fn on_firmware_event(&mut self, event: &FirmwareEvent, now: Duration) {
        let Some(stage) = self.durable.firmware_update().map(|f| f.stage.clone()) else {
            return;
        };
        if stage != FirmwareStage::Downloading {
            return;
        }
        match event {
            FirmwareEvent::Progress(p) => self.firmware_run.percent = (*p).min(100),
            FirmwareEvent::Downloaded { version, image } => {
                self.firmware_run.percent = 100;
                if self.signed_request_id().is_some() {
                    self.signed_image_downloaded(version.clone(), image.as_deref(), now);
                    return;
                }
                self.durable.keep_downloaded_image(version.clone());
                self.set_stage(FirmwareStage::Downloaded, now);
                self.install_when_idle(now);
            }
            FirmwareEvent::Failed(why) => {
                self.link
                    .outputs
                    .push(Output::Log(format!("firmware download failed: {why}")));
                let left = self
                    .durable
                    .firmware_update()
                    .map_or(0, |f| f.attempts_left);
                if left > 0 {
                    // This attempt failed: the central hears it now (OCPP 1.6: DownloadFailed
                    // when a download fails), and Downloading again with the next attempt.
                    let interval = self
                        .durable
                        .firmware_update()
                        .map_or(DEFAULT_RETRY_INTERVAL, |f| f.retry_interval);
                    self.firmware_run.next_attempt = Some(now + Duration::from_secs(interval));
                    self.firmware_run.percent = 0;
                    self.set_stage(FirmwareStage::Waiting, now);
                } else {
                    self.firmware_failed(FirmwareStatusSigned::DownloadFailed, now);
                }
            }
        }
    }

    /// The answer (or none) to a FirmwareStatusNotification.
    pub(super) fn on_firmware_reply(&mut self, ticket: Ticket, answered: bool) {
        if self.firmware_run.call == Some(ticket) {
            self.firmware_run.call = None;
        }
        if !answered {
            if let Some(f) = self.durable.firmware_update_mut() {
                if f.all_answered {
                    f.all_answered = false;
                    self.persist();
                }
            }
        }
        if self.firmware_run.restart_after == Some(ticket) {
            self.firmware_run.restart_after = None;
            self.restart_after_upgrade();
        }
    }

    /// The new firmware runs after a restart. Unless a FirmwareStatusNotification went
    /// unanswered, the pile is available again by itself (FAQ 3.17 point 3).
    pub(super) fn restart_after_upgrade(&mut self) {
        let answered = self
            .durable
            .firmware_update()
            .is_none_or(|f| f.all_answered);
        self.durable.end_firmware_update();
        if !answered {
            self.make_pile_inoperative();
        }
        self.persist();
        self.reset.restart();
        self.drain_transmit();
        self.link.outputs.push(Output::Restart { hard: true });
    }

    /// At start: an upgrade cut off by a restart begins its download again.
    pub(super) fn resume_firmware(&mut self) {
        if let Some(f) = self.durable.firmware_update_mut() {
            if matches!(
                f.stage,
                FirmwareStage::Downloading | FirmwareStage::Downloaded | FirmwareStage::Installing
            ) {
                f.stage = FirmwareStage::Waiting;
                f.attempts_left = f.attempts_left.max(1);
            }
        }
    }
}

/// A status of OCPP 1.6's FirmwareStatusNotification as the signed notification's status.
fn to_signed(status: &FirmwareStatus) -> FirmwareStatusSigned {
    FirmwareStatusSigned::from_wire(status.as_str()).unwrap_or(FirmwareStatusSigned::Idle)
}
