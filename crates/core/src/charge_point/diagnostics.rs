//! GetDiagnostics: the pile uploads its log (the frames it sent and received, its connections
//! and restarts, within the asked time window) to the given location and reports
//! DiagnosticsStatusNotification Uploading, then Uploaded or UploadFailed, with retries. GetLog
//! ([`super::log_upload`]) uploads through the same run, one upload at a time.

use ocpp::{
    CiString255, DiagnosticsStatus, DiagnosticsStatusNotificationRequest, GetDiagnosticsRequest,
    GetDiagnosticsResponse, LogStatusNotificationRequest, Timestamp, UploadLogStatus,
};

use super::*;

/// A step of an upload, as either notification reports it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Uploading,
    Uploaded,
    /// The last attempt failed, or the server refused the upload.
    Failed(Option<UploadRefusal>),
}

/// What the shell reports of an upload ([`Output::Upload`]).
#[derive(Debug, Clone, PartialEq)]
pub enum DiagnosticsEvent {
    Uploaded,
    /// The attempt failed (retried while attempts are left).
    Failed(String),
    /// The server refused the upload for a reason no retry changes: the upload ends.
    Refused(UploadRefusal, String),
}

/// Why a server refused an upload (GetLog reports it as such, GetDiagnostics as UploadFailed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRefusal {
    /// The server found the request malformed (HTTP 400).
    BadMessage,
    /// The server does not take uploads so (HTTP 405, 501, or a scheme the pile cannot use).
    NotSupportedOperation,
    /// The server refused the credentials (HTTP 401, 403).
    PermissionDenied,
}

/// What the shell uploads.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub location: String,
    pub file_name: String,
    /// Only the log between these times (either end open).
    pub start: Option<Timestamp>,
    pub stop: Option<Timestamp>,
    /// What to upload, when the core has it (GetLog's SecurityLog); `None`: the host's log
    /// book between `start` and `stop` (GetDiagnostics, GetLog's DiagnosticsLog).
    pub body: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct DiagnosticsRun {
    pub(super) upload: Upload,
    pub(super) attempts_left: u32,
    pub(super) retry_interval: Duration,
    pub(super) next_attempt: Option<Duration>,
    /// The requestId of the GetLog this upload is for (`None`: a GetDiagnostics).
    pub(super) log_request: Option<i32>,
}

impl ChargePoint {
    pub(super) fn diagnostics_status(&self) -> DiagnosticsStatus {
        if self
            .diagnostics
            .as_ref()
            .is_some_and(|d| d.log_request.is_none())
        {
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
                body: None,
            },
            attempts_left: r.retries.map_or(1, |n| n.max(0) as u32) + 1,
            retry_interval: Duration::from_secs(r.retry_interval.map_or(60, |s| s.max(0) as u64)),
            next_attempt: Some(now),
            log_request: None,
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
        let log = run.log_request;
        self.send_upload_status(log, Step::Uploading, now);
        self.link.outputs.push(Output::Upload(upload));
    }

    /// Reports a step of the upload: LogStatusNotification with the requestId for a GetLog,
    /// else DiagnosticsStatusNotification.
    fn send_upload_status(&mut self, log: Option<i32>, step: Step, now: Duration) {
        if !self.session.online() {
            return;
        }
        match log {
            Some(request_id) => {
                let status = match step {
                    Step::Uploading => UploadLogStatus::Uploading,
                    Step::Uploaded => UploadLogStatus::Uploaded,
                    Step::Failed(None) => UploadLogStatus::UploadFailure,
                    Step::Failed(Some(UploadRefusal::BadMessage)) => UploadLogStatus::BadMessage,
                    Step::Failed(Some(UploadRefusal::NotSupportedOperation)) => {
                        UploadLogStatus::NotSupportedOperation
                    }
                    Step::Failed(Some(UploadRefusal::PermissionDenied)) => {
                        UploadLogStatus::PermissionDenied
                    }
                };
                self.call(
                    &LogStatusNotificationRequest {
                        status,
                        request_id: Some(request_id),
                    },
                    now,
                );
            }
            None => {
                let status = match step {
                    Step::Uploading => DiagnosticsStatus::Uploading,
                    Step::Uploaded => DiagnosticsStatus::Uploaded,
                    Step::Failed(_) => DiagnosticsStatus::UploadFailed,
                };
                self.call(&DiagnosticsStatusNotificationRequest { status }, now);
            }
        }
    }

    pub(super) fn on_diagnostics_event(&mut self, event: &DiagnosticsEvent, now: Duration) {
        let Some(run) = self.diagnostics.as_mut() else {
            return;
        };
        let log = run.log_request;
        match event {
            DiagnosticsEvent::Uploaded => {
                self.diagnostics = None;
                self.send_upload_status(log, Step::Uploaded, now);
            }
            DiagnosticsEvent::Failed(why) => {
                self.link
                    .outputs
                    .push(Output::Log(format!("log upload failed: {why}")));
                if run.attempts_left > 0 {
                    run.next_attempt = Some(now + run.retry_interval);
                } else {
                    self.diagnostics = None;
                    self.send_upload_status(log, Step::Failed(None), now);
                }
            }
            DiagnosticsEvent::Refused(reason, why) => {
                self.link
                    .outputs
                    .push(Output::Log(format!("log upload refused: {why}")));
                self.diagnostics = None;
                self.send_upload_status(log, Step::Failed(Some(*reason)), now);
            }
        }
    }
}
