//! GetLog (security whitepaper edition 2, use case N01): the pile uploads its DiagnosticsLog
//! (what GetDiagnostics uploads: the host's log book) or its SecurityLog (the security events
//! the core keeps), between oldestTimestamp and latestTimestamp, to remoteLocation, through
//! the upload GetDiagnostics uses ([`Output::Upload`], retries and retryInterval), and reports
//! LogStatusNotification with the requestId: Uploading, then Uploaded, UploadFailure after the
//! last failed attempt, or BadMessage / NotSupportedOperation / PermissionDenied when the
//! server refuses the upload so. One upload runs at a time: a GetLog while another upload runs
//! cancels it (AcceptedCanceled). Rejected: a logType or a remoteLocation the pile cannot use
//! (http, https and ftp only).

use ocpp::{
    CiString255, GetLogRequest, GetLogResponse, LogStatus, LogStatusNotificationRequest, LogType,
    Timestamp, UploadLogStatus,
};

use super::diagnostics::DiagnosticsRun;
use super::*;
use crate::durable::SecurityEvent;

impl ChargePoint {
    pub(super) fn get_log(&mut self, id: &str, r: GetLogRequest, now: Duration) {
        let location = r.log.remote_location.as_str().to_owned();
        let scheme = location
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let usable = matches!(scheme.as_deref(), Some("http" | "https" | "ftp"));
        let kind = match &r.log_type {
            LogType::DiagnosticsLog => Some("DiagnosticsLog"),
            LogType::SecurityLog => Some("SecurityLog"),
            LogType::Unrecognized(_) => None,
        };
        let Some(kind) = kind.filter(|_| usable) else {
            self.respond(
                id,
                GetLogResponse {
                    status: LogStatus::Rejected,
                    filename: None,
                },
            );
            return;
        };
        let (start, stop) = (r.log.oldest_timestamp, r.log.latest_timestamp);
        let body = (r.log_type == LogType::SecurityLog)
            .then(|| render_security_log(self.durable.security_log().iter(), start, stop));
        let stamp = self.time.clock.at(now).as_utc().format("%Y%m%dT%H%M%SZ");
        let file_name = format!("{}-{kind}-{stamp}.log", self.config.factory().serial_number);
        let status = if self.diagnostics.is_some() {
            LogStatus::AcceptedCanceled
        } else {
            LogStatus::Accepted
        };
        self.respond(
            id,
            GetLogResponse {
                status,
                filename: Some(CiString255::truncating(&file_name)),
            },
        );
        // The upload under way is abandoned (the host drops it when the next one starts).
        self.diagnostics = Some(DiagnosticsRun {
            upload: Upload {
                location,
                file_name,
                start,
                stop,
                body,
            },
            attempts_left: r.retries.map_or(1, |n| n.max(0) as u32) + 1,
            retry_interval: Duration::from_secs(r.retry_interval.map_or(60, |s| s.max(0) as u64)),
            next_attempt: Some(now),
            log_request: Some(r.request_id),
        });
        self.diagnostics_tick(now);
    }

    /// LogStatusNotification now (ExtendedTriggerMessage): Uploading with the requestId while a
    /// GetLog upload runs, else Idle.
    pub(super) fn send_log_status(&mut self, now: Duration) {
        let request = match self.diagnostics.as_ref().and_then(|d| d.log_request) {
            Some(id) => LogStatusNotificationRequest {
                status: UploadLogStatus::Uploading,
                request_id: Some(id),
            },
            None => LogStatusNotificationRequest {
                status: UploadLogStatus::Idle,
                request_id: None,
            },
        };
        self.call(&request, now);
    }
}

/// The security log as text, a line per event between `start` and `stop` (either end open):
/// its time, its type and its technical information.
fn render_security_log<'a>(
    events: impl Iterator<Item = &'a SecurityEvent>,
    start: Option<Timestamp>,
    stop: Option<Timestamp>,
) -> String {
    let mut out = String::new();
    for e in events {
        let at = e.timestamp.millis();
        if start.is_some_and(|s| at < s.millis()) || stop.is_some_and(|s| at > s.millis()) {
            continue;
        }
        out.push_str(&format!("{} {}", e.timestamp, e.kind));
        if let Some(info) = &e.tech_info {
            out.push_str(&format!(" {info}"));
        }
        out.push('\n');
    }
    out
}
