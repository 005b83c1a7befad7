//! Firmware upgrades on the sans-I/O core (FAQ 3.10, 3.17): the notifications in order, the
//! pile Unavailable meanwhile, retries, failures, and what the pile is after the restart.

mod common;

use common::harness::{secs, Pile};
use pile::hardware::Pilot;
use pile::{FirmwareEvent, Input, Options, Output};
use serde_json::{json, Value};

/// Answers every CALL (or only those `answer` says yes to); returns the CALLs.
fn serve_if(p: &mut Pile, out: Vec<Output>, answer: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut queue: std::collections::VecDeque<Value> = Pile::frames(&out).into();
    let mut seen = Vec::new();
    while let Some(f) = queue.pop_front() {
        if f[0] != 2 {
            continue;
        }
        seen.push(f.clone());
        if !answer(&f) {
            continue;
        }
        let payload = match f[2].as_str().unwrap() {
            "BootNotification" => {
                json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900})
            }
            "StartTransaction" => json!({"transactionId": 1, "idTagInfo": {"status": "Accepted"}}),
            _ => json!({}),
        };
        queue.extend(Pile::frames(&p.reply(&f, payload)));
    }
    seen
}

fn serve(p: &mut Pile, out: Vec<Output>) -> Vec<Value> {
    serve_if(p, out, |_| true)
}

fn booted() -> Pile {
    let mut p = Pile::new(1);
    let out = p.input(Input::Connected);
    serve(&mut p, out);
    p
}

fn firmware_statuses(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f[2] == "FirmwareStatusNotification")
        .map(|f| f[3]["status"].as_str().unwrap().to_owned())
        .collect()
}

fn statuses(frames: &[Value]) -> Vec<(i64, String)> {
    frames
        .iter()
        .filter(|f| f[2] == "StatusNotification")
        .map(|f| {
            (
                f[3]["connectorId"].as_i64().unwrap(),
                f[3]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const LOCATION: &str = "http://192.0.2.1/download/XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";

fn update(p: &mut Pile, extra: Value) -> Vec<Output> {
    let mut payload = json!({"location": LOCATION, "retrieveDate": "2026-11-24T12:01:00.000Z"});
    payload
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    p.central_calls("UpdateFirmware", payload)
}

fn percentages(p: &mut Pile) -> Value {
    let out = p.central_calls(
        "GetConfiguration",
        json!({"key": ["GetFirmwareUpgradePercentages"]}),
    );
    Pile::frames(&out)[0][2]["configurationKey"][0]["value"].clone()
}

#[test]
fn faq_3_10_an_upgrade_reports_each_step_and_restarts_on_the_new_version() {
    let mut p = booted();
    let out = update(&mut p, json!({}));
    assert_eq!(
        Pile::frames(&out)[0],
        json!([3, "cs-1", {}]),
        "the answer first"
    );
    // FAQ 3.10 point 2: Unavailable from the request on.
    let sent = serve(&mut p, out);
    assert_eq!(
        statuses(&sent),
        vec![(0, "Unavailable".into()), (1, "Unavailable".into())]
    );
    // No reservation, and no remote start, while it upgrades.
    let out = p.central_calls(
        "ReserveNow",
        json!({"connectorId": 1, "expiryDate": "2026-11-24T13:00:00.000Z", "idTag": "R", "reservationId": 1}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Unavailable");
    let out = p.central_calls(
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "R"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Rejected");
    // Nothing until retrieveDate; then the download and Downloading.
    assert!(!p
        .advance(secs(59))
        .iter()
        .any(|o| matches!(o, Output::Download { .. })));
    let out = p.advance(secs(1));
    assert!(out.contains(&Output::Download {
        url: LOCATION.into(),
        image: false,
    }));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloading"]);
    p.input(Input::Firmware(&FirmwareEvent::Progress(40)));
    assert_eq!(percentages(&mut p), "40");
    // FAQ 3.17 point 4: at most 10 s between notifications while it upgrades.
    let out = p.advance(secs(10));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloading"]);
    let out = p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: Some("V2.0.110".into()),
        image: None,
    }));
    assert_eq!(
        firmware_statuses(&serve(&mut p, out)),
        vec!["Downloaded", "Installing"]
    );
    assert_eq!(percentages(&mut p), "100");
    let out = p.advance(pile::INSTALL_TIME);
    assert!(!out.contains(&Output::Restart { hard: true }));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Installed"]);
    // Installed answered: the restart.
    assert_eq!(p.log.last(), Some(&Output::Restart { hard: true }));
    let durable = p.cp.durable().clone();
    assert_eq!(durable.installed_firmware(), Some("V2.0.110"));
    assert!(durable.firmware_update().is_none());
    // The restarted pile boots with the new version and is available by itself.
    let mut again = Pile::with(1, durable, Options::default());
    let out = again.input(Input::Connected);
    let sent = serve(&mut again, out);
    assert_eq!(sent[0][3]["firmwareVersion"], "V2.0.110");
    // The FirmwareUpdated security event waited for the new firmware, which sends it.
    let events: Vec<&serde_json::Value> = sent
        .iter()
        .filter(|f| f[2] == "SecurityEventNotification")
        .map(|f| &f[3]["type"])
        .collect();
    assert_eq!(events, ["FirmwareUpdated", "StartupOfTheDevice"]);
    assert_eq!(
        statuses(&sent),
        vec![(0, "Available".into()), (1, "Available".into())]
    );
    let out = again.central_calls(
        "TriggerMessage",
        json!({"requestedMessage": "FirmwareStatusNotification"}),
    );
    assert_eq!(firmware_statuses(&serve(&mut again, out)), vec!["Idle"]);
}

#[test]
fn faq_3_17_an_unanswered_notification_leaves_the_pile_unavailable_after_the_upgrade() {
    let mut p = booted();
    let out = update(&mut p, json!({"retrieveDate": "2026-11-24T11:00:00.000Z"}));
    serve(&mut p, out);
    let out = p.advance(secs(1));
    // The central does not answer Downloading.
    let sent = serve_if(&mut p, out, |f| f[2] != "FirmwareStatusNotification");
    assert_eq!(firmware_statuses(&sent), vec!["Downloading"]);
    // No answer within the call timeout; the notification goes again, answered this time.
    let out = p.advance(secs(30));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloading"]);
    let out = p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: Some("V3".into()),
        image: None,
    }));
    serve(&mut p, out);
    let out = p.advance(pile::INSTALL_TIME);
    serve(&mut p, out);
    let durable = p.cp.durable().clone();
    assert!(durable.inoperative().contains(&0));
    let mut again = Pile::with(1, durable, Options::default());
    let out = again.input(Input::Connected);
    let sent = serve(&mut again, out);
    assert_eq!(
        statuses(&sent),
        vec![(0, "Unavailable".into()), (1, "Unavailable".into())]
    );
    // Until the central sets it available (FAQ 3.10 "Important").
    let out = again.central_calls(
        "ChangeAvailability",
        json!({"connectorId": 0, "type": "Operative"}),
    );
    assert_eq!(
        statuses(&serve(&mut again, out)),
        vec![(0, "Available".into()), (1, "Available".into())]
    );
}

#[test]
fn each_failed_download_is_reported_at_once_and_the_last_one_ends_the_upgrade() {
    let mut p = booted();
    let out = update(
        &mut p,
        json!({"retrieveDate": "2026-11-24T11:00:00.000Z", "retries": 1, "retryInterval": 30}),
    );
    serve(&mut p, out);
    let out = p.advance(secs(1));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloading"]);
    let failed = FirmwareEvent::Failed("connection refused".into());
    // The first attempt fails: DownloadFailed at once (OCPP 1.6), and the pile stays
    // Unavailable while it waits to try again.
    let out = p.input(Input::Firmware(&failed));
    let sent = serve(&mut p, out);
    assert_eq!(firmware_statuses(&sent), vec!["DownloadFailed"]);
    assert_eq!(statuses(&sent), vec![], "still Unavailable");
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Unavailable);
    // Asked meanwhile, the pile says DownloadFailed, not Idle: the upgrade goes on.
    let out = p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage": "FirmwareStatusNotification"}),
    );
    assert_eq!(
        firmware_statuses(&serve(&mut p, out)),
        vec!["DownloadFailed"]
    );
    // FAQ 3.17 point 4 holds while it waits: at most 10 s between notifications.
    let out = p.advance(secs(10));
    assert!(!out.iter().any(|o| matches!(o, Output::Download { .. })));
    assert_eq!(
        firmware_statuses(&serve(&mut p, out)),
        vec!["DownloadFailed"]
    );
    let out = p.advance(secs(10));
    assert_eq!(
        firmware_statuses(&serve(&mut p, out)),
        vec!["DownloadFailed"]
    );
    let out = p.advance(secs(9));
    assert!(!out.iter().any(|o| matches!(o, Output::Download { .. })));
    serve(&mut p, out);
    // retryInterval after the failure: the second attempt, Downloading again.
    let out = p.advance(secs(1));
    assert!(out.iter().any(|o| matches!(o, Output::Download { .. })));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloading"]);
    assert_eq!(percentages(&mut p), "0");
    // The last attempt fails: DownloadFailed, and the pile is available again (FAQ 3.10
    // point 4).
    let out = p.input(Input::Firmware(&failed));
    let sent = serve(&mut p, out);
    assert_eq!(firmware_statuses(&sent), vec!["DownloadFailed"]);
    assert_eq!(
        statuses(&sent),
        vec![(0, "Available".into()), (1, "Available".into())]
    );
    assert!(p.cp.durable().firmware_update().is_none());
    // No more notifications, and Idle when asked.
    let out = p.advance(secs(60));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), Vec::<String>::new());
    let out = p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage": "FirmwareStatusNotification"}),
    );
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Idle"]);
}

#[test]
fn an_invalid_image_fails_the_installation() {
    let mut p = booted();
    let out = update(&mut p, json!({"retrieveDate": "2026-11-24T11:00:00.000Z"}));
    serve(&mut p, out);
    let out = p.advance(secs(1));
    serve(&mut p, out);
    let out = p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: None,
        image: None,
    }));
    serve(&mut p, out);
    let out = p.advance(pile::INSTALL_TIME);
    assert!(!out.iter().any(|o| matches!(o, Output::Restart { .. })));
    let sent = serve(&mut p, out);
    assert_eq!(firmware_statuses(&sent), vec!["InstallationFailed"]);
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Available);
    assert_eq!(p.cp.firmware_version(), "1.0.0");
}

#[test]
fn installation_waits_for_the_transaction_to_end() {
    let mut p = booted();
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: true,
    });
    serve(&mut p, out);
    let out = p.input(Input::Pilot {
        connector: 1,
        state: Pilot::C,
    });
    serve(&mut p, out);
    let out = update(&mut p, json!({"retrieveDate": "2026-11-24T11:00:00.000Z"}));
    let sent = serve(&mut p, out);
    assert_eq!(
        statuses(&sent),
        vec![(0, "Unavailable".into())],
        "connector 1 charges on"
    );
    let out = p.advance(secs(1));
    serve(&mut p, out);
    let out = p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: Some("V4".into()),
        image: None,
    }));
    assert_eq!(firmware_statuses(&serve(&mut p, out)), vec!["Downloaded"]);
    // A card stops the transaction: now Unavailable, and the installation begins.
    let out = p.input(Input::Card {
        connector: Some(1),
        id_tag: "SN0001",
    });
    let sent = serve(&mut p, out);
    assert!(sent.iter().any(|f| f[2] == "StopTransaction"));
    let out = p.advance(secs(1));
    let sent = serve(&mut p, out);
    assert_eq!(firmware_statuses(&sent), vec!["Installing"]);
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Unavailable);
}

#[test]
fn a_restart_during_the_download_starts_it_again() {
    let mut p = booted();
    let out = update(&mut p, json!({"retrieveDate": "2026-11-24T11:00:00.000Z"}));
    serve(&mut p, out);
    let out = p.advance(secs(1));
    serve(&mut p, out);
    let again = Pile::with(1, p.cp.durable().clone(), Options::default());
    assert!(again.log.contains(&Output::Download {
        url: LOCATION.into(),
        image: false,
    }));
}

fn diagnostics_statuses(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f[2] == "DiagnosticsStatusNotification")
        .map(|f| f[3]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn get_diagnostics_uploads_with_retries_and_reports_each_step() {
    let mut p = booted();
    let out = p.central_calls(
        "GetDiagnostics",
        json!({"location": "ftp://user:pw@192.0.2.1/logs/", "retries": 1, "retryInterval": 20,
               "startTime": "2026-11-24T11:00:00.000Z"}),
    );
    let frames = Pile::frames(&out);
    assert_eq!(
        frames[0],
        json!([3, "cs-1", {"fileName": "SN0001-20261124T120000Z.log"}]),
        "the answer first, with the file name"
    );
    let upload = out
        .iter()
        .find_map(|o| match o {
            Output::Upload(u) => Some(u.clone()),
            _ => None,
        })
        .expect("an upload");
    assert_eq!(upload.location, "ftp://user:pw@192.0.2.1/logs/");
    assert_eq!(upload.file_name, "SN0001-20261124T120000Z.log");
    assert_eq!(
        upload.start.map(|t| t.to_string()).as_deref(),
        Some("2026-11-24T11:00:00.000Z")
    );
    assert_eq!(diagnostics_statuses(&serve(&mut p, out)), vec!["Uploading"]);
    let out = p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage": "DiagnosticsStatusNotification"}),
    );
    assert_eq!(diagnostics_statuses(&serve(&mut p, out)), vec!["Uploading"]);
    // A failure: again after retryInterval; the second failure is the last.
    let failed = pile::DiagnosticsEvent::Failed("550".into());
    p.input(Input::Diagnostics(&failed));
    assert!(!p
        .advance(secs(19))
        .iter()
        .any(|o| matches!(o, Output::Upload(_))));
    let out = p.advance(secs(1));
    assert!(out.iter().any(|o| matches!(o, Output::Upload(_))));
    serve(&mut p, out);
    let out = p.input(Input::Diagnostics(&failed));
    assert_eq!(
        diagnostics_statuses(&serve(&mut p, out)),
        vec!["UploadFailed"]
    );
    // Another request succeeds.
    let out = p.central_calls("GetDiagnostics", json!({"location": "http://192.0.2.1/up"}));
    serve(&mut p, out);
    let out = p.input(Input::Diagnostics(&pile::DiagnosticsEvent::Uploaded));
    assert_eq!(diagnostics_statuses(&serve(&mut p, out)), vec!["Uploaded"]);
    let out = p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage": "DiagnosticsStatusNotification"}),
    );
    assert_eq!(diagnostics_statuses(&serve(&mut p, out)), vec!["Idle"]);
}
