//! GetDiagnostics: the pile uploads its log (the frames it sent and received, its connections
//! and restarts, within the asked time window) to the given location and reports
//! DiagnosticsStatusNotification Uploading, then Uploaded or UploadFailed, with retries.

use ocpp::{
    CiString255, DiagnosticsStatus, DiagnosticsStatusNotificationRequest, GetDiagnosticsRequest,
    GetDiagnosticsResponse, Timestamp,
};

use super::*;

/// What the shell reports of an upload ([`Output::Upload`]).
#[derive(Debug, Clone, PartialEq)]
pub enum DiagnosticsEvent {
    Uploaded,
    Failed(String),
}

/// What the shell uploads.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub location: String,
    pub file_name: String,
    /// Only the log between these times (either end open).
    pub start: Option<Timestamp>,
    pub stop: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub(super) struct DiagnosticsRun {
    upload: Upload,
    attempts_left: u32,
    retry_interval: Duration,
    next_attempt: Option<Duration>,
}

impl ChargePoint {
    pub(super) fn diagnostics_status(&self) -> DiagnosticsStatus {
        if self.diagnostics.is_some() {
            DiagnosticsStatus::Uploading
        } else {
            DiagnosticsStatus::Idle
        }
    }

    pub(super) fn get_diagnostics(&mut self, id: &str, r: GetDiagnosticsRequest, now: Duration) {
        let stamp = self.time.clock.at(now).as_utc().format("%Y%m%dT%H%M%SZ");
        let file_name = format!("{}-{stamp}.log", self.config.factory().serial_number);
        self.respond(
            id,
            GetDiagnosticsResponse {
                file_name: Some(CiString255::truncating(&file_name)),
            },
        );
        self.diagnostics = Some(DiagnosticsRun {
            upload: Upload {
                location: r.location.as_str().to_owned(),
                file_name,
                start: r.start_time,
                stop: r.stop_time,
            },
            attempts_left: r.retries.map_or(1, |n| n.max(0) as u32) + 1,
            retry_interval: Duration::from_secs(r.retry_interval.map_or(60, |s| s.max(0) as u64)),
            next_attempt: Some(now),
        });
        self.diagnostics_tick(now);
    }

    pub(super) fn next_diagnostics_attempt(&self) -> Option<Duration> {
        self.diagnostics.as_ref().and_then(|d| d.next_attempt)
    }

    pub(super) fn diagnostics_tick(&mut self, now: Duration) {
        let Some(run) = self.diagnostics.as_mut() else {
            return;
        };
        if run.next_attempt.is_none_or(|t| now < t) {
            return;
        }
        run.next_attempt = None;
        run.attempts_left = run.attempts_left.saturating_sub(1);
        let upload = run.upload.clone();
        self.send_diagnostics_status(DiagnosticsStatus::Uploading, now);
        self.link.outputs.push(Output::Upload(upload));
    }

    fn send_diagnostics_status(&mut self, status: DiagnosticsStatus, now: Duration) {
        if self.session.online() {
            self.call(&DiagnosticsStatusNotificationRequest { status }, now);
        }
    }

    pub(super) fn on_diagnostics_event(&mut self, event: &DiagnosticsEvent, now: Duration) {
        let Some(run) = self.diagnostics.as_mut() else {
            return;
        };
        match event {
            DiagnosticsEvent::Uploaded => {
                self.diagnostics = None;
                self.send_diagnostics_status(DiagnosticsStatus::Uploaded, now);
            }
            DiagnosticsEvent::Failed(why) => {
                self.link
                    .outputs
                    .push(Output::Log(format!("diagnostics upload failed: {why}")));
                if run.attempts_left > 0 {
                    run.next_attempt = Some(now + run.retry_interval);
                } else {
                    self.diagnostics = None;
                    self.send_diagnostics_status(DiagnosticsStatus::UploadFailed, now);
                }
            }
        }
    }
}
