//! Helpers for the tests that run the real `ocpile` binary: the process, its state directory,
//! its control port.

#![allow(dead_code)]

pub mod central;
pub mod cluster;
pub mod fleet;
pub mod haproxy;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(30);

/// A running `ocpile pile`; killed (SIGKILL) when dropped.
pub struct PileProcess(pub Child);

impl PileProcess {
    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for PileProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh state directory for a test.
pub fn state_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts a pile whose control port listens on a port of its own choosing (port 0); the
/// address it prints.
pub fn start_pile_with_control(
    id: &str,
    csms: &str,
    state: &Path,
    extra: &[&str],
) -> (PileProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(["pile", "--id", id, "--csms", csms, "--state"])
        .arg(state)
        .args(["--control", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpile starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("control port listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(WAIT)
        .expect("the pile prints its control port");
    (PileProcess(child), addr)
}

/// Starts a pile and hands over what it logs (warnings and above), line by line.
pub fn start_pile_logged(
    id: &str,
    csms: &str,
    state: &Path,
    extra: &[&str],
) -> (PileProcess, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(["pile", "--id", id, "--csms", csms, "--state"])
        .arg(state)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpile starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (PileProcess(child), rx)
}

/// Waits for a logged line that contains `text`.
pub async fn logged(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    text: &str,
) -> String {
    timeout(WAIT, async {
        while let Some(line) = lines.recv().await {
            if line.contains(text) {
                return line;
            }
        }
        panic!("the pile ended without logging {text:?}")
    })
    .await
    .unwrap_or_else(|_| panic!("the pile never logged {text:?}"))
}

pub fn start_pile(id: &str, csms: &str, state: &Path, extra: &[&str]) -> PileProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(["pile", "--id", id, "--csms", csms, "--state"])
        .arg(state)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpile starts");
    PileProcess(child)
}

/// One HTTP request to a control port (retried until the port answers); the status and the
/// JSON body.
pub async fn http(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    http_with(addr, method, path, body, "").await
}

/// The same, with extra header lines (each ending in `\r\n`).
pub async fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &str,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = timeout(WAIT, async {
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the control port answers");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: pile\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    parse_response(&response)
}

/// An HTTP/1.1 response as read: its status and its JSON body (null when it has none).
pub fn parse_response(response: &str) -> (u16, Value) {
    let status: u16 = response[9..12].parse().unwrap();
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, json)
}
