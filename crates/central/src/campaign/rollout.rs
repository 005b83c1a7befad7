//! One pile's part in a firmware campaign, as a state machine without I/O: events and the time
//! go in, the commands to send come out. The procedure is the FAQ's (3.10, 3.17):
//!
//! 1. wait until the pile is online and not charging (3.10 point 1), and record its firmware
//!    version (the G2+ example's step 2);
//! 2. send UpdateFirmware, then follow FirmwareStatusNotification: Downloading → Downloaded →
//!    Installing → Installed, or DownloadFailed / InstallationFailed (3.10 point 5). A
//!    DownloadFailed while the pile still owes some of the `retries` the UpdateFirmware asked
//!    for is one failed attempt: the pile is expected to report Downloading again within
//!    `retryInterval`; only the failure of the last attempt fails the upgrade;
//! 3. while Downloading, read the progress from the key GetFirmwareUpgradePercentages (3.17
//!    point 5);
//! 4. when no notification came for 20 s, send TriggerMessage FirmwareStatusNotification, once
//!    per silence (3.17 point 4);
//! 5. after Installed, wait for the BootNotification and check that the pile runs a new version
//!    (the one the image reports, where known);
//! 6. then the next image of the campaign, or, after the last, ChangeAvailability Operative
//!    (3.10's "Important" note: the operator's manual step). A failed upgrade also gets it, so
//!    that early firmware does not stay Unavailable (3.10 point 4).
//!
//! Every notification is answered by the central system's handler before it reaches here.

use ocpp::FirmwareStatus;
use serde::{Deserialize, Serialize};

mod signed;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A pile silent this long while it upgrades is asked for its status (FAQ 3.17 point 4).
pub const SILENCE: Millis = 20_000;
/// How often the download progress is read while Downloading.
pub const POLL_INTERVAL: Millis = 5_000;
/// Silent this long (a TriggerMessage did not help): the upgrade has timed out.
pub const STALL: Millis = 10 * 60_000;
/// How long after Installed the pile may take to boot again.
pub const REBOOT_WAIT: Millis = 10 * 60_000;
/// How long before a command that got no answer is sent again.
pub const RETRY: Millis = 5_000;

/// What every UpdateFirmware of a campaign asks of the pile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTerms {
    /// The retrieveDate: this long after UpdateFirmware is sent.
    pub retrieve_in: Millis,
    /// `retries`: how many more attempts the pile makes after a failed download.
    #[serde(default)]
    pub retries: u32,
    /// `retryInterval`: how long the pile waits between attempts (whole seconds on the wire).
    #[serde(default)]
    pub retry_interval: Millis,
    /// Signed campaign: SignedUpdateFirmware (every step carries its signature) instead of
    /// UpdateFirmware, its `requestId` this plus the step's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_requests: Option<i32>,
}

impl UpdateTerms {
    /// The `requestId` of a step's SignedUpdateFirmware (none: the campaign is not signed).
    pub fn request_id(&self, step: usize) -> Option<i32> {
        let base = self.signed_requests?;
        Some(base.wrapping_add(i32::try_from(step).unwrap_or(i32::MAX)))
    }
}

/// What SignedUpdateFirmware carries of an image besides its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSignature {
    /// The signing certificate, PEM.
    pub signing_certificate: String,
    /// The image's signature, base64.
    pub signature: String,
}

/// One image to install: a step of the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub image: i64,
    pub name: String,
    /// Where the pile downloads it.
    pub url: String,
    /// The version the pile reports once it runs this image, when known.
    pub version: Option<String>,
    /// Its signature, in a signed campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ImageSignature>,
}

/// Where the pile is in its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started: waits for a place in the batch, for the pile to be online, or for its
    /// transaction to end.
    Waiting,
    /// UpdateFirmware is on its way.
    Sending,
    /// The pile accepted the UpdateFirmware and reports its progress.
    Upgrading,
    /// Installed: the pile restarts on the new firmware.
    Rebooting,
    /// ChangeAvailability Operative is on its way.
    Restoring,
    /// Finished, with a result.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Sending => "sending",
            Phase::Upgrading => "upgrading",
            Phase::Rebooting => "rebooting",
            Phase::Restoring => "restoring",
            Phase::Done => "done",
        }
    }
}

/// How a pile's upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
    TimedOut,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::TimedOut => "timed_out",
        }
    }
}

/// A command the campaign sends to the pile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    UpdateFirmware {
        location: String,
        retrieve_date: Millis,
        retries: u32,
        retry_interval: Millis,
        /// Signed: SignedUpdateFirmware with this `requestId` and signature.
        signed: Option<(i32, ImageSignature)>,
    },
    /// TriggerMessage FirmwareStatusNotification.
    TriggerStatus,
    /// In a signed campaign: ExtendedTriggerMessage FirmwareStatusNotification (the pile
    /// answers with a SignedFirmwareStatusNotification).
    TriggerSignedStatus,
    /// GetConfiguration of GetFirmwareUpgradePercentages.
    ReadProgress,
    /// ChangeAvailability of connector 0 to Operative.
    SetOperative,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The pile answered; for ReadProgress the key's value (None: the key is unknown), for
    /// SetOperative whether it was Accepted or Scheduled.
    Ok(Option<String>),
    /// The pile answered with a CALLERROR or a refusal: the reason.
    Refused(String),
    /// No answer (not connected, timed out, connection lost).
    Lost,
}

/// What the campaign knows of the pile at a tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub connected: bool,
    pub charging: bool,
    /// The firmware version of its last BootNotification.
    pub firmware_version: Option<String>,
}

/// One pile's upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub pile: String,
    pub phase: Phase,
    /// The step being carried out (index into the campaign's images).
    pub step: usize,
    pub outcome: Option<Outcome>,
    /// What the outcome will be once the availability is restored.
    pending: Option<Outcome>,
    /// Why it failed, timed out or was skipped.
    pub error: Option<String>,
    /// The last FirmwareStatusNotification status.
    pub status: Option<String>,
    /// The download progress (GetFirmwareUpgradePercentages; 100 once Downloaded).
    pub percent: Option<u8>,
    /// The version before the current step, and the one the pile booted with after it.
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    /// The version before the first step.
    pub original_version: Option<String>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// Since when the current silence counts (the last notification, or the retrieve time).
    quiet_since: Millis,
    /// A TriggerMessage went for the current silence.
    triggered: bool,
    /// When the next progress reading is due; None once the pile showed it has no such key.
    next_poll: Option<Millis>,
    /// A command is on its way (at most one of each kind).
    in_flight: Vec<Kind>,
    /// When the current phase began.
    phase_since: Millis,
    /// When a lost command may go again.
    retry_at: Millis,
    /// A progress status (Downloading or later) was seen in this step.
    progressed: bool,
    /// Download attempts of this step the pile reported failed.
    #[serde(default)]
    pub failed_attempts: u32,
    /// After a failed attempt with retries left: by when the pile should try again (cleared
    /// by its next Downloading).
    #[serde(default)]
    retry_due: Option<Millis>,
    /// Taken up (after a restart, or by another node) while its UpdateFirmware was on its way:
    /// whether the pile got it is unknown, so it is not sent again; the pile is asked its
    /// status instead. Holds the retrieve date asked: an Idle after it tells that the pile has
    /// no upgrade (the UpdateFirmware never reached it), and only then it goes again.
    #[serde(default)]
    unconfirmed: Option<Millis>,
    /// The UpdateFirmware of the current step is a SignedUpdateFirmware.
    #[serde(default)]
    signed: bool,
    /// Its status is asked at the next tick (TriggerMessage), once.
    #[serde(default)]
    ask_status: bool,
}

/// The kind of a command, to match answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    UpdateFirmware,
    TriggerStatus,
    ReadProgress,
    SetOperative,
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Command::UpdateFirmware { .. } => Kind::UpdateFirmware,
            Command::TriggerStatus | Command::TriggerSignedStatus => Kind::TriggerStatus,
            Command::ReadProgress => Kind::ReadProgress,
            Command::SetOperative => Kind::SetOperative,
        }
    }
}

impl Rollout {
    pub fn new(pile: impl Into<String>) -> Rollout {
        Rollout {
            pile: pile.into(),
            phase: Phase::Waiting,
            step: 0,
            outcome: None,
            pending: None,
            error: None,
            status: None,
            percent: None,
            from_version: None,
            to_version: None,
            original_version: None,
            started_at: None,
            finished_at: None,
            quiet_since: 0,
            triggered: false,
            next_poll: None,
            in_flight: Vec::new(),
            phase_since: 0,
            retry_at: 0,
            progressed: false,
            failed_attempts: 0,
            retry_due: None,
            unconfirmed: None,
            ask_status: false,
            signed: false,
        }
    }

    /// A pile refused up front or left out: done at once.
    pub fn skipped(pile: impl Into<String>, why: impl Into<String>, now: Millis) -> Rollout {
        let mut r = Rollout::new(pile);
        r.finish(Outcome::Skipped, Some(why.into()), now);
        r
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the pile takes a place in its batch (started and not finished).
    pub fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Waiting | Phase::Done)
    }

    /// Taken up after a restart of the central system, or by another node: answers that were
    /// awaited will not come. An UpdateFirmware that was on its way is not sent again (the
    /// pile may have it, and starts the download at its retrieve date): the pile is asked its
    /// status, and the upgrade goes on from what it tells.
    pub fn resume(&mut self, terms: &UpdateTerms, now: Millis) {
        self.in_flight.clear();
        if self.phase == Phase::Sending {
            self.unconfirmed = Some(self.phase_since + terms.retrieve_in);
            self.ask_status = true;
            self.enter(Phase::Upgrading, now);
        }
        self.quiet_since = self.quiet_since.max(now);
        self.retry_at = now;
    }

    /// Since when it is in its phase.
    pub fn phase_since(&self) -> Millis {
        self.phase_since
    }

    fn enter(&mut self, phase: Phase, now: Millis) {
        self.phase = phase;
        self.phase_since = now;
    }

    fn finish(&mut self, outcome: Outcome, error: Option<String>, now: Millis) {
        self.outcome = Some(outcome);
        if error.is_some() {
            self.error = error;
        }
        self.pending = None;
        self.finished_at = Some(now);
        self.in_flight.clear();
        self.enter(Phase::Done, now);
    }

    /// Ends the upgrade with this outcome once the pile is set Operative again.
    fn conclude(
        &mut self,
        outcome: Outcome,
        error: Option<String>,
        now: Millis,
        out: &mut Vec<Command>,
    ) {
        if error.is_some() {
            self.error = error;
        }
        self.pending = Some(outcome);
        self.enter(Phase::Restoring, now);
        self.send(Command::SetOperative, out);
    }

    fn send(&mut self, command: Command, out: &mut Vec<Command>) {
        self.in_flight.push(command.kind());
        out.push(command);
    }

    /// How the pile is asked its status: as its upgrade was sent.
    fn trigger(&self) -> Command {
        match self.signed {
            true => Command::TriggerSignedStatus,
            false => Command::TriggerStatus,
        }
    }

    fn awaits(&self, kind: Kind) -> bool {
        self.in_flight.contains(&kind)
    }

    /// The pile may start (a place in the batch is free): sends UpdateFirmware when it is
    /// online and not charging; false when it must wait.
    pub fn try_start(
        &mut self,
        steps: &[Step],
        facts: &Facts,
        terms: &UpdateTerms,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> bool {
        if self.phase != Phase::Waiting || !facts.connected || facts.charging || now < self.retry_at
        {
            return false;
        }
        let Some(step) = steps.get(self.step) else {
            self.finish(Outcome::Succeeded, None, now);
            return true;
        };
        if self.started_at.is_none() {
            self.started_at = Some(now);
            self.original_version = facts.firmware_version.clone();
        }
        if step.version.is_some() && step.version == facts.firmware_version {
            // Already on this image: the step is done.
            self.step += 1;
            if self.step >= steps.len() {
                let all_skipped = self.to_version.is_none();
                self.to_version = facts.firmware_version.clone();
                if all_skipped {
                    self.finish(
                        Outcome::Skipped,
                        Some(format!(
                            "already runs {}",
                            step.version.as_deref().unwrap_or("")
                        )),
                        now,
                    );
                } else {
                    self.finish(Outcome::Succeeded, None, now);
                }
                return true;
            }
            return self.try_start(steps, facts, terms, now, out);
        }
        self.from_version = facts.firmware_version.clone();
        self.status = None;
        self.percent = None;
        self.progressed = false;
        self.failed_attempts = 0;
        self.retry_due = None;
        self.triggered = false;
        self.quiet_since = now + terms.retrieve_in;
        self.next_poll = Some(now + terms.retrieve_in);
        self.enter(Phase::Sending, now);
        let signed = terms.request_id(self.step).zip(step.signature.clone());
        self.signed = signed.is_some();
        self.send(
            Command::UpdateFirmware {
                location: step.url.clone(),
                retrieve_date: now + terms.retrieve_in,
                retries: terms.retries,
                retry_interval: terms.retry_interval,
                signed,
            },
            out,
        );
        true
    }

    /// The answer to a command.
    pub fn on_answer(&mut self, kind: Kind, answer: Answer, now: Millis) {
        if !self.awaits(kind) {
            return;
        }
        self.in_flight.retain(|k| *k != kind);
        match (kind, answer) {
            (Kind::UpdateFirmware, Answer::Ok(_)) if self.phase == Phase::Sending => {
                self.enter(Phase::Upgrading, now);
                self.quiet_since = self.quiet_since.max(now);
            }
            (Kind::UpdateFirmware, Answer::Refused(why)) if self.phase == Phase::Sending => {
                let name = match self.signed {
                    true => "SignedUpdateFirmware",
                    false => "UpdateFirmware",
                };
                self.finish(Outcome::Failed, Some(format!("{name} refused: {why}")), now);
            }
            (Kind::UpdateFirmware, Answer::Lost) if self.phase == Phase::Sending => {
                // Sent again once the pile is back.
                self.retry_at = now + RETRY;
                self.enter(Phase::Waiting, now);
            }
            (Kind::ReadProgress, Answer::Ok(Some(value))) => {
                if let Ok(p) = value.trim().trim_end_matches('%').trim().parse::<f64>() {
                    if (0.0..=100.0).contains(&p) {
                        self.percent = Some(p.round() as u8);
                    }
                }
            }
            // The pile has no such key (early firmware, other makes): no progress bar.
            (Kind::ReadProgress, Answer::Ok(None)) | (Kind::ReadProgress, Answer::Refused(_)) => {
                self.next_poll = None;
            }
            (Kind::SetOperative, Answer::Ok(_)) if self.phase == Phase::Restoring => {
                let outcome = self.pending.unwrap_or(Outcome::Succeeded);
                self.finish(outcome, None, now);
            }
            (Kind::SetOperative, Answer::Refused(why)) if self.phase == Phase::Restoring => {
                let outcome = self.pending.unwrap_or(Outcome::Succeeded);
                if outcome == Outcome::Succeeded {
                    self.finish(
                        Outcome::Failed,
                        Some(format!(
                            "upgraded, but ChangeAvailability Operative was refused: {why}"
                        )),
                        now,
                    );
                } else {
                    self.finish(outcome, None, now);
                }
            }
            (Kind::SetOperative, Answer::Lost) => self.retry_at = now + RETRY,
            _ => {}
        }
    }

    /// A FirmwareStatusNotification from the pile (already answered).
    pub fn on_notification(
        &mut self,
        status: FirmwareStatus,
        terms: &UpdateTerms,
        now: Millis,
        out: &mut Vec<Command>,
    ) {
        if !matches!(self.phase, Phase::Sending | Phase::Upgrading) {
            return;
        }
        if let Some(retrieve_at) = self.unconfirmed {
            match status {
                FirmwareStatus::Idle if now >= retrieve_at => {
                    // Past its retrieve date and idle: the pile never got the UpdateFirmware.
                    self.unconfirmed = None;
                    self.status = Some(status.as_str().to_owned());
                    self.retry_at = now;
                    self.enter(Phase::Waiting, now);
                    return;
                }
                // Before the retrieve date a pile that has it is idle too: wait and see.
                FirmwareStatus::Idle | FirmwareStatus::Unrecognized(_) => {}
                _ => self.unconfirmed = None,
            }
        }
        self.status = Some(status.as_str().to_owned());
        self.quiet_since = self.quiet_since.max(now);
        self.triggered = false;
        match status {
            FirmwareStatus::Downloading => {
                self.progressed = true;
                self.retry_due = None;
                self.percent.get_or_insert(0);
            }
            FirmwareStatus::Downloaded | FirmwareStatus::Installing => {
                self.progressed = true;
                self.retry_due = None;
                self.percent = Some(100);
            }
            FirmwareStatus::Installed => {
                self.retry_due = None;
                self.percent = Some(100);
                self.in_flight.retain(|k| *k == Kind::UpdateFirmware);
                self.enter(Phase::Rebooting, now);
            }
            // The failure the pending retry is for, told again (asked, or the pile's 10 s
            // rule): nothing new.
            FirmwareStatus::DownloadFailed if self.retry_due.is_some() => {}
            FirmwareStatus::DownloadFailed => {
                self.progressed = true;
                self.failed_attempts += 1;
                if self.failed_attempts > terms.retries {
                    let attempts = match self.failed_attempts {
                        1 => "its only attempt".to_owned(),
                        n => format!("all {n} attempts"),
                    };
                    self.conclude(
                        Outcome::Failed,
                        Some(format!("the pile reports DownloadFailed ({attempts})")),
                        now,
                        out,
                    );
                } else {
                    // The pile tries again after retryInterval.
                    self.retry_due = Some(now + terms.retry_interval);
                    self.percent = Some(0);
                }
            }
            FirmwareStatus::InstallationFailed => {
                self.conclude(
                    Outcome::Failed,
                    Some("the pile reports InstallationFailed".into()),
                    now,
                    out,
                );
            }
            // Between a failed attempt and its retry (a pile that calls that Idle).
            FirmwareStatus::Idle if self.retry_due.is_some_and(|due| now < due) => {}
            FirmwareStatus::Idle if self.retry_due.is_some() => {
                self.conclude(
                    Outcome::Failed,
                    Some(format!(
                        "the pile reports DownloadFailed and did not try again within {} s",
                        terms.retry_interval / 1000
                    )),
                    now,
                    out,
                );
            }
            FirmwareStatus::Idle if self.progressed => {
                self.conclude(
                    Outcome::Failed,
                    Some("the pile reports Idle: the upgrade stopped".into()),
                    now,
                    out,
                );
            }
            // Idle before any progress (the retrieve date has not come), or a status this
            // version of OCPP does not name: nothing to do.
            FirmwareStatus::Idle | FirmwareStatus::Unrecognized(_) => {}
        }
    }

    /// A BootNotification from the pile, with the version it now runs.
    pub fn on_boot(
        &mut self,
        version: Option<&str>,
        steps: &[Step],
        terms: &UpdateTerms,
        now: Millis,
        out: &mut Vec<Command>,
    ) {
        let Some(step) = steps.get(self.step) else {
            return;
        };
        let changed = version.is_some() && version != self.from_version.as_deref();
        let expected = step.version.as_deref().is_none_or(|v| Some(v) == version);
        match self.phase {
            Phase::Rebooting => {}
            // Restarted before it reported Installed: done only when it runs the image.
            Phase::Upgrading if changed && step.version.is_some() && expected => {}
            Phase::Upgrading | Phase::Sending => {
                // The pile resumes (or forgot) its upgrade; the silence rule asks it.
                self.quiet_since = now;
                self.triggered = false;
                return;
            }
            _ => return,
        }
        self.to_version = version.map(str::to_owned);
        if !changed {
            self.conclude(
                Outcome::Failed,
                Some(format!(
                    "rebooted on the old version {}",
                    version.unwrap_or("(none reported)")
                )),
                now,
                out,
            );
            return;
        }
        if !expected {
            self.conclude(
                Outcome::Failed,
                Some(format!(
                    "booted on {}, not the image's {}",
                    version.unwrap_or(""),
                    step.version.as_deref().unwrap_or("")
                )),
                now,
                out,
            );
            return;
        }
        self.step += 1;
        if self.step < steps.len() {
            // The next image at once: the pile is online, idle, and keeps its place.
            let facts = Facts {
                connected: true,
                charging: false,
                firmware_version: version.map(str::to_owned),
            };
            self.enter(Phase::Waiting, now);
            self.retry_at = now;
            self.try_start(steps, &facts, terms, now, out);
        } else {
            self.conclude(Outcome::Succeeded, None, now, out);
        }
    }

    /// The time moved on.
    pub fn on_tick(&mut self, facts: &Facts, now: Millis, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Upgrading => {
                if self.ask_status && facts.connected && !self.awaits(Kind::TriggerStatus) {
                    self.ask_status = false;
                    self.triggered = true;
                    self.send(self.trigger(), out);
                }
                let silent = now - self.quiet_since;
                if silent >= STALL {
                    self.conclude(
                        Outcome::TimedOut,
                        Some(format!(
                            "no FirmwareStatusNotification for {} s",
                            silent / 1000
                        )),
                        now,
                        out,
                    );
                    return;
                }
                if silent >= SILENCE
                    && !self.triggered
                    && facts.connected
                    && !self.awaits(Kind::TriggerStatus)
                {
                    self.triggered = true;
                    self.send(self.trigger(), out);
                }
                let downloading = self.status.as_deref() == Some("Downloading");
                if downloading
                    && facts.connected
                    && self.next_poll.is_some_and(|t| now >= t)
                    && !self.awaits(Kind::ReadProgress)
                {
                    self.next_poll = Some(now + POLL_INTERVAL);
                    self.send(Command::ReadProgress, out);
                }
            }
            Phase::Rebooting if now - self.phase_since >= REBOOT_WAIT => {
                self.conclude(
                    Outcome::TimedOut,
                    Some(format!(
                        "no BootNotification within {} s of Installed",
                        REBOOT_WAIT / 1000
                    )),
                    now,
                    out,
                );
            }
            Phase::Restoring
                if facts.connected && !self.awaits(Kind::SetOperative) && now >= self.retry_at =>
            {
                self.send(Command::SetOperative, out);
            }
            _ => {}
        }
    }

    /// The campaign's deadline passed, or it was cancelled before this pile started.
    pub fn stop(&mut self, outcome: Outcome, why: &str, now: Millis) {
        if self.phase != Phase::Done {
            self.finish(outcome, Some(why.to_owned()), now);
        }
    }
}
