//! A firmware upgrade of the real `ocpile pile` process (FAQ 3.10): the image served over HTTP
//! by the test, the notifications on the wire, the restart on the new version.

mod common;

use std::time::Duration;

use common::wire::{accept, server, state_until, Wire};
use common::{free_port, start_pile, state_dir, WAIT};
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
    let control = format!("127.0.0.1:{}", free_port());
    let state = state_dir("firmware");
    let _pile = start_pile("FW-PILE", &url, &state, &["--control", &control]);
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
