//! GetLog on the pile (security whitepaper edition 2): the SecurityLog the core keeps and the
//! DiagnosticsLog of GetDiagnostics, uploaded through the upload machinery, with
//! LogStatusNotification (requestId) at each step; every frame checked against the schemas.

mod common;

use common::bench::Bench;
use common::harness::secs;
use pile::{DiagnosticsEvent, Input, Output, Upload, UploadRefusal};
use serde_json::{json, Value};

fn get_log(kind: &str, request_id: i32, log: Value) -> Value {
    json!({"logType": kind, "requestId": request_id, "log": log, "retries": 1, "retryInterval": 30})
}

/// The last upload the pile asked the host for.
fn last_upload(b: &Bench) -> Upload {
    b.p.log
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Upload(u) => Some(u.clone()),
            _ => None,
        })
        .expect("an upload")
}

fn uploads(b: &Bench) -> usize {
    b.p.log
        .iter()
        .filter(|o| matches!(o, Output::Upload(_)))
        .count()
}

/// The LogStatusNotifications since CALL `from`: (status, requestId).
fn log_statuses(b: &Bench, from: usize) -> Vec<(String, Value)> {
    b.calls[from..]
        .iter()
        .filter(|f| f[2] == "LogStatusNotification")
        .map(|f| {
            (
                f[3]["status"].as_str().unwrap().to_owned(),
                f[3]["requestId"].clone(),
            )
        })
        .collect()
}

fn report(b: &mut Bench, event: DiagnosticsEvent) {
    let out = b.p.input(Input::Diagnostics(&event));
    b.serve(out);
}

#[test]
fn the_security_log_is_uploaded_between_the_timestamps() {
    let mut b = Bench::new();
    // Two security events, two minutes apart (a chain that is no certificate).
    let refused = |b: &mut Bench, chain: &str| {
        b.status("CertificateSigned", json!({"certificateChain": chain}))
    };
    assert_eq!(refused(&mut b, "not a chain"), "Rejected");
    let out = b.p.advance(secs(120));
    b.serve(out);
    assert_eq!(refused(&mut b, "not a chain either"), "Rejected");
    let start = b.calls.len();
    let answer = b.ask(
        "GetLog",
        get_log(
            "SecurityLog",
            3,
            json!({"remoteLocation": "ftp://user:pw@192.0.2.1/logs/"}),
        ),
    );
    assert_eq!(answer["status"], "Accepted");
    let file_name = answer["filename"].as_str().unwrap().to_owned();
    assert!(
        file_name.starts_with("SN0001-SecurityLog-2026112"),
        "{file_name}"
    );
    let upload = last_upload(&b);
    assert_eq!(upload.location, "ftp://user:pw@192.0.2.1/logs/");
    assert_eq!(upload.file_name, file_name);
    let body = upload.body.expect("the core gives the security log");
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].contains("StartupOfTheDevice"), "{body}");
    let kinds: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "StartupOfTheDevice",
            "InvalidChargePointCertificate",
            "InvalidChargePointCertificate"
        ],
        "{body}"
    );
    assert_eq!(log_statuses(&b, start), [("Uploading".into(), json!(3))]);
    // ExtendedTriggerMessage: the upload under way.
    let from = b.calls.len();
    assert_eq!(
        b.status(
            "ExtendedTriggerMessage",
            json!({"requestedMessage": "LogStatusNotification"})
        ),
        "Accepted"
    );
    assert_eq!(log_statuses(&b, from), [("Uploading".into(), json!(3))]);
    let from = b.calls.len();
    report(&mut b, DiagnosticsEvent::Uploaded);
    assert_eq!(log_statuses(&b, from), [("Uploaded".into(), json!(3))]);
    let from = b.calls.len();
    b.status(
        "ExtendedTriggerMessage",
        json!({"requestedMessage": "LogStatusNotification"}),
    );
    assert_eq!(log_statuses(&b, from), [("Idle".into(), Value::Null)]);

    // Only the events from oldestTimestamp on: the two of 2 minutes later.
    let security_log: Vec<_> = b.p.cp.security_log().iter().cloned().collect();
    let last = security_log.last().unwrap();
    let second = last.timestamp;
    assert!(second.millis() - security_log[1].timestamp.millis() >= 120_000);
    b.ask(
        "GetLog",
        get_log(
            "SecurityLog",
            4,
            json!({"remoteLocation": "http://192.0.2.1/up",
                   "oldestTimestamp": second.to_string(),
                   "latestTimestamp": second.to_string()}),
        ),
    );
    let body = last_upload(&b).body.unwrap();
    assert_eq!(
        body,
        format!(
            "{second} InvalidChargePointCertificate {}\n",
            last.tech_info.as_deref().unwrap()
        )
    );
}

#[test]
fn the_diagnostics_log_goes_as_get_diagnostics_does_and_a_new_get_log_cancels_the_running_one() {
    let mut b = Bench::new();
    let answer = b.ask(
        "GetLog",
        get_log(
            "DiagnosticsLog",
            5,
            json!({"remoteLocation": "http://192.0.2.1/logs",
                   "oldestTimestamp": "2026-11-24T11:00:00.000Z",
                   "latestTimestamp": "2026-11-24T13:00:00.000Z"}),
        ),
    );
    assert_eq!(answer["status"], "Accepted");
    let upload = last_upload(&b);
    assert!(upload.file_name.starts_with("SN0001-DiagnosticsLog-"));
    // The host's log book, as for GetDiagnostics, between the times.
    assert_eq!(upload.body, None);
    assert_eq!(
        upload.start.map(|t| t.to_string()).as_deref(),
        Some("2026-11-24T11:00:00.000Z")
    );
    assert_eq!(
        upload.stop.map(|t| t.to_string()).as_deref(),
        Some("2026-11-24T13:00:00.000Z")
    );
    // GetDiagnostics knows nothing of it.
    let from = b.calls.len();
    b.status(
        "TriggerMessage",
        json!({"requestedMessage": "DiagnosticsStatusNotification"}),
    );
    assert_eq!(b.calls[from][3], json!({"status": "Idle"}));

    // Another GetLog while it runs: the first is cancelled.
    let from = b.calls.len();
    let answer = b.ask(
        "GetLog",
        get_log(
            "SecurityLog",
            6,
            json!({"remoteLocation": "http://192.0.2.1/logs"}),
        ),
    );
    assert_eq!(answer["status"], "AcceptedCanceled");
    assert_eq!(log_statuses(&b, from), [("Uploading".into(), json!(6))]);

    // A failure is retried after retryInterval; the last one is UploadFailure.
    let before = uploads(&b);
    report(&mut b, DiagnosticsEvent::Failed("connection reset".into()));
    let out = b.p.advance(secs(29));
    b.serve(out);
    assert_eq!(uploads(&b), before);
    let from = b.calls.len();
    let out = b.p.advance(secs(1));
    b.serve(out);
    assert_eq!(uploads(&b), before + 1);
    assert_eq!(log_statuses(&b, from), [("Uploading".into(), json!(6))]);
    let from = b.calls.len();
    report(&mut b, DiagnosticsEvent::Failed("connection reset".into()));
    assert_eq!(log_statuses(&b, from), [("UploadFailure".into(), json!(6))]);

    // A server that refuses the credentials: PermissionDenied at once, no retry.
    b.ask(
        "GetLog",
        get_log(
            "SecurityLog",
            7,
            json!({"remoteLocation": "http://192.0.2.1/logs"}),
        ),
    );
    let from = b.calls.len();
    let before = uploads(&b);
    report(
        &mut b,
        DiagnosticsEvent::Refused(UploadRefusal::PermissionDenied, "HTTP status 403".into()),
    );
    assert_eq!(
        log_statuses(&b, from),
        [("PermissionDenied".into(), json!(7))]
    );
    let out = b.p.advance(secs(120));
    b.serve(out);
    assert_eq!(uploads(&b), before);

    // A location the pile cannot upload to: Rejected, nothing runs.
    let answer = b.ask(
        "GetLog",
        get_log(
            "SecurityLog",
            8,
            json!({"remoteLocation": "sftp://192.0.2.1/logs"}),
        ),
    );
    assert_eq!(answer, json!({"status": "Rejected"}));
    assert_eq!(uploads(&b), before);
}
