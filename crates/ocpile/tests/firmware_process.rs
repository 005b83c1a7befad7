//! Firmware and diagnostics of the real `ocpile pile` process: an upgrade (FAQ 3.10) from an
//! image served over HTTP by the test, with its notifications and the restart on the new
//! version; and GetDiagnostics, whose log the test receives by HTTP PUT.

mod common;

use std::time::Duration;

use common::wire::{accept, server, state_until, Wire};
use common::{start_pile, start_pile_with_control, state_dir, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Serves `body` for any GET, once per connection.
async fn image_server(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_over_http_ends_on_the_new_firmware_version() {
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("firmware");
    let (_pile, control) = start_pile_with_control("FW-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    let boot = wire.wait_for("BootNotification", 1).await[0].clone();
    assert_eq!(boot.payload["firmwareVersion"], env!("CARGO_PKG_VERSION"));
    let images = image_server(vec![0x5A; 256 * 1024]).await;
    let location = format!("{images}/download/XSmart.V2.0.110(M3G31H)@7KW.EVPro.070");
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let answer = wire
        .call(
            "fw-1",
            "UpdateFirmware",
            json!({"location": location, "retrieveDate": now}),
        )
        .await;
    assert_eq!(answer, json!({}));
    // Downloading → Downloaded → Installing → Installed, then the restart.
    let statuses = |calls: &[common::wire::Call]| -> Vec<String> {
        calls
            .iter()
            .map(|c| c.payload["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = timeout(WAIT, async {
        loop {
            let calls = wire.calls("FirmwareStatusNotification");
            if statuses(&calls).contains(&"Installed".to_owned()) {
                return statuses(&calls);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Installed");
    let mut steps = seen.clone();
    steps.dedup();
    assert_eq!(
        steps,
        vec!["Downloading", "Downloaded", "Installing", "Installed"],
        "{seen:?}"
    );
    accept(&mut server, &wire).await;
    let boot = wire.wait_for("BootNotification", 2).await[1].clone();
    assert_eq!(
        boot.payload["firmwareVersion"],
        "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070"
    );
    let state = state_until(&control, "the new firmware", |s: &Value| {
        s["connectors"][0]["status"] == "Available"
    })
    .await;
    assert_eq!(
        state["firmware"],
        json!({"version": "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070", "status": "Idle", "percent": 0})
    );
}

/// Takes one HTTP PUT; hands over its path and body.
async fn upload_server() -> (String, tokio::sync::oneshot::Receiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        // Head, then Content-Length bytes of body.
        let (head, body_start, length) = loop {
            let n = stream.read(&mut buf).await.unwrap();
            data.extend_from_slice(&buf[..n]);
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                break (head, end + 4, length);
            }
        };
        while data.len() < body_start + length {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let _ = stream
            .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let body = String::from_utf8_lossy(&data[body_start..]).into_owned();
        let _ = tx.send((request_line, body));
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn get_diagnostics_uploads_the_pile_log_over_http() {
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("diagnostics");
    let _pile = start_pile("DIAG-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    wire.wait_for("BootNotification", 1).await;
    let (location, received) = upload_server().await;
    let answer = wire
        .call(
            "d-1",
            "GetDiagnostics",
            json!({"location": format!("{location}/logs/")}),
        )
        .await;
    let file = answer["fileName"].as_str().expect("a file name").to_owned();
    assert!(
        file.starts_with("DIAG-PILE-") && file.ends_with(".log"),
        "{file}"
    );
    let (request, body) = timeout(WAIT, received).await.unwrap().unwrap();
    assert_eq!(request, format!("PUT /logs/{file} HTTP/1.1"));
    // One JSON object a line: the boot the pile sent is in it.
    let records: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records
        .iter()
        .any(|r| r["kind"] == "send" && r["text"].as_str().unwrap().contains("BootNotification")));
    let statuses = timeout(WAIT, async {
        loop {
            let s: Vec<String> = wire
                .calls("DiagnosticsStatusNotification")
                .iter()
                .map(|c| c.payload["status"].as_str().unwrap().to_owned())
                .collect();
            if s.len() >= 2 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(statuses, vec!["Uploading", "Uploaded"]);
}

/// The SignedFirmwareStatusNotification statuses so far, repeats (the keepalive) dropped.
fn signed_steps(wire: &Wire) -> Vec<String> {
    let mut steps: Vec<String> = wire
        .calls("SignedFirmwareStatusNotification")
        .iter()
        .map(|c| c.payload["status"].as_str().unwrap().to_owned())
        .collect();
    steps.dedup();
    steps
}

async fn signed_steps_until(wire: &Wire, last: &str) -> Vec<String> {
    timeout(WAIT, async {
        loop {
            let steps = signed_steps(wire);
            if steps.iter().any(|s| s == last) {
                return steps;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{last}: {:?}", signed_steps(wire)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_upgrade_checks_the_image_the_host_downloaded() {
    use base64::Engine;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SigningKey};

    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("signed-firmware");
    let (_pile, control) = start_pile_with_control("SFW-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    wire.wait_for("BootNotification", 1).await;
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let answer = wire
        .call(
            "cert-1",
            "InstallCertificate",
            json!({"certificateType": "ManufacturerRootCertificate", "certificate": root.pem()}),
        )
        .await;
    assert_eq!(answer["status"], "Accepted");
    let key = KeyPair::generate().unwrap();
    let signing = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &root)
        .unwrap()
        .pem();
    let image = vec![0x5A; 128 * 1024];
    let images = image_server(image.clone()).await;
    let location = format!("{images}/download/SIGNED.V3.0.1");
    let sign = |message: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode(key.sign(message).unwrap())
    };
    let request = |id: i32, signature: String| {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        json!({"requestId": id, "firmware": {"location": location, "retrieveDateTime": now,
               "signingCertificate": signing, "signature": signature}})
    };

    // Signed over other bytes: the download, then InvalidSignature and the old firmware.
    let answer = wire
        .call("sfw-1", "SignedUpdateFirmware", request(1, sign(b"other")))
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    assert_eq!(
        signed_steps_until(&wire, "InvalidSignature").await,
        ["Downloading", "Downloaded", "InvalidSignature"]
    );
    let event = timeout(WAIT, async {
        loop {
            let events = wire.calls("SecurityEventNotification");
            if let Some(e) = events
                .iter()
                .find(|e| e.payload["type"] == "InvalidFirmwareSignature")
            {
                return e.payload.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("an InvalidFirmwareSignature event");
    assert!(event["techInfo"]
        .as_str()
        .unwrap()
        .contains("SignedUpdateFirmware 1"));
    state_until(&control, "available again", |s: &Value| {
        s["connectors"][0]["status"] == "Available"
    })
    .await;

    // Signed over the image: installed, and the pile boots on it.
    let answer = wire
        .call("sfw-2", "SignedUpdateFirmware", request(2, sign(&image)))
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    assert_eq!(
        signed_steps_until(&wire, "Installed").await[3..],
        [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed"
        ]
    );
    assert!(wire
        .calls("SignedFirmwareStatusNotification")
        .iter()
        .skip_while(|c| c.payload["requestId"] == 1)
        .all(|c| c.payload["requestId"] == 2));
    accept(&mut server, &wire).await;
    let boot = wire.wait_for("BootNotification", 2).await[1].clone();
    assert_eq!(boot.payload["firmwareVersion"], "SIGNED.V3.0.1");
    let _ = std::fs::remove_dir_all(&state);
}
