//! The FTP side of firmware and diagnostics (FAQ 3.17 point 2): the real pile downloads an image
//! from, and uploads its log to, an FTP server (PyPI's pyftpdlib, which `scripts/test.sh`
//! installs beside the interop library; run with `--include-ignored`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wire::{accept, server, Wire};
use common::{start_pile, state_dir, WAIT};
use serde_json::json;
use tokio::time::timeout;

struct FtpServer(Child);

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An FTP server on 127.0.0.1 serving `dir`, user `pile` / `secret` with write access.
async fn ftp_server(dir: &std::path::Path) -> (FtpServer, u16) {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with pyftpdlib");
    // pyftpdlib on a port of its own choosing (port 0), which it prints.
    let script = "import sys\n\
from pyftpdlib.authorizers import DummyAuthorizer\n\
from pyftpdlib.handlers import FTPHandler\n\
from pyftpdlib.servers import FTPServer\n\
a = DummyAuthorizer()\n\
a.add_user('pile', 'secret', sys.argv[1], perm='elradfmwMT')\n\
FTPHandler.authorizer = a\n\
s = FTPServer(('127.0.0.1', 0), FTPHandler)\n\
print(s.address[1], flush=True)\n\
s.serve_forever()\n";
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pyftpdlib starts");
    let stdout = child.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line.trim()
            .parse::<u16>()
            .expect("the FTP server prints its port")
    });
    let port = timeout(WAIT, port)
        .await
        .expect("the FTP server listens")
        .unwrap();
    (FtpServer(child), port)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PyPI's pyftpdlib; scripts/test.sh installs it and runs this test"]
async fn firmware_over_ftp_and_diagnostics_to_ftp() {
    let root = state_dir("ftp-root");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("fw-3.0.bin"), vec![7u8; 100_000]).unwrap();
    let (_ftp, port) = ftp_server(&root).await;
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("ftp-pile");
    let _pile = start_pile("FTP-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    wire.wait_for("BootNotification", 1).await;

    // Diagnostics: the log lands in the server's directory.
    let answer = wire
        .call(
            "d-1",
            "GetDiagnostics",
            json!({"location": format!("ftp://pile:secret@127.0.0.1:{port}/logs/")}),
        )
        .await;
    let file = answer["fileName"].as_str().unwrap().to_owned();
    let uploaded = root.join("logs").join(&file);
    timeout(WAIT, async {
        loop {
            let done = wire.calls("DiagnosticsStatusNotification").iter().any(|c| {
                c.payload["status"] == "Uploaded" || c.payload["status"] == "UploadFailed"
            });
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(&uploaded).expect("the uploaded log");
    assert!(log.contains("BootNotification"), "{log}");

    // Firmware from FTP: installed, and the pile comes back on it.
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    wire.call(
        "f-1",
        "UpdateFirmware",
        json!({"location": format!("ftp://pile:secret@127.0.0.1:{port}/fw-3.0.bin"), "retrieveDate": now}),
    )
    .await;
    accept(&mut server, &wire).await;
    let boot = wire.wait_for("BootNotification", 2).await[1].clone();
    assert_eq!(boot.payload["firmwareVersion"], "fw-3.0.bin");
}
