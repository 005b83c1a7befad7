//! HAProxy with the shipped `deploy/haproxy.cfg` (its ports and servers made the test's) in
//! front of two `ocpile central` processes: a pile connects through it and boots; when its
//! central gets SIGKILL, the health check takes that one out and the pile reconnects through
//! HAProxy to the other.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::central::{start_central, CentralProcess};
use common::wire::state_until;
use common::{start_pile_with_control, state_dir, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// HAProxy: `OCPILE_HAPROXY`, else `haproxy` on the PATH, else Debian's place for it.
fn haproxy_binary() -> String {
    if let Ok(bin) = std::env::var("OCPILE_HAPROXY") {
        return bin;
    }
    let on_path = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if on_path {
        "haproxy".into()
    } else {
        "/usr/sbin/haproxy".into()
    }
}

/// A port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shipped configuration with the test's ports and the two centrals as its servers; each
/// change is asserted to apply, so that the test follows the file.
fn config(front: u16, stats: u16, servers: &[&str]) -> String {
    let shipped = include_str!("../../../deploy/haproxy.cfg");
    let mut out = Vec::new();
    let (mut binds, mut server_lines) = (0, 0);
    for line in shipped.lines() {
        match line.trim() {
            "bind *:8180" => {
                out.push(format!("    bind 127.0.0.1:{front}"));
                binds += 1;
            }
            "bind 127.0.0.1:8404" => {
                out.push(format!("    bind 127.0.0.1:{stats}"));
                binds += 1;
            }
            l if l.starts_with("server ") => {
                if server_lines == 0 {
                    for (i, addr) in servers.iter().enumerate() {
                        out.push(format!("    server node{} {addr}", i + 1));
                    }
                }
                server_lines += 1;
            }
            _ => out.push(line.to_owned()),
        }
    }
    assert_eq!(binds, 2, "the frontend's and the statistics' bind lines");
    assert!(server_lines > 0, "the backend's server lines");
    out.join("\n") + "\n"
}

struct HaProxy(Child);

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A chunked HTTP body, whole.
fn dechunk(mut body: &str) -> Option<String> {
    let mut whole = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(whole);
        }
        whole.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// Each server's status on the statistics page (`UP`, `DOWN`, `UP 1/2`...), in order.
async fn statuses(stats: u16) -> Option<Vec<(String, String)>> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", stats))
        .await
        .ok()?;
    let request = "GET /stats;csv HTTP/1.1\r\nHost: stats\r\nConnection: close\r\n\r\n";
    s.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let csv = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, status) = (column("pxname")?, column("svname")?, column("status")?);
    Some(
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[px] == "centrals" && f[sv].starts_with("node"))
            .map(|f| (f[sv].to_owned(), f[status].to_owned()))
            .collect(),
    )
}

async fn until_statuses(stats: u16, what: &str, done: impl Fn(&[(String, String)]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = statuses(stats).await;
        if now.as_deref().is_some_and(&done) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never showed {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connected(central: &CentralProcess, id: &str) -> bool {
    let (code, pile) = central.api("GET", &format!("/api/piles/{id}"), None).await;
    code == 200 && pile["connected"] == true
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs haproxy; scripts/test.sh installs it and runs this test"]
async fn haproxy_takes_a_killed_node_out_and_the_pile_reconnects_to_the_other() {
    let open = ["--admission", "open"];
    let mut centrals = [
        start_central(&state_dir("haproxy-central-1"), None, &open),
        start_central(&state_dir("haproxy-central-2"), None, &open),
    ];
    let (front, stats) = (free_port(), free_port());
    let servers = [centrals[0].addr.as_str(), centrals[1].addr.as_str()];
    let dir = state_dir("haproxy");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config(front, stats, &servers)).unwrap();
    let _haproxy = HaProxy(
        Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts (apt-get install haproxy, or set OCPILE_HAPROXY)"),
    );
    until_statuses(stats, "both centrals up", |s| {
        s.len() == 2 && s.iter().all(|(_, status)| status == "UP")
    })
    .await;

    let id = "HAPROXY-1";
    let csms = format!("ws://127.0.0.1:{front}/ocpp/");
    let (_pile, control) = start_pile_with_control(id, &csms, &state_dir("haproxy-pile"), &[]);
    state_until(&control, "booted through HAProxy", |s| {
        s["connection"]["accepted"] == true
    })
    .await;
    let deadline = Instant::now() + WAIT;
    let serving = loop {
        if connected(&centrals[0], id).await {
            break 0;
        }
        if connected(&centrals[1], id).await {
            break 1;
        }
        assert!(Instant::now() < deadline, "no central shows the pile");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let other = 1 - serving;

    centrals[serving].kill();
    let killed = format!("node{}", serving + 1);
    until_statuses(stats, "the killed central down", |s| {
        s.iter()
            .any(|(name, status)| *name == killed && status == "DOWN")
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while !connected(&centrals[other], id).await {
        assert!(
            Instant::now() < deadline,
            "the pile never reached the other central"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    state_until(&control, "connected again", |s| {
        s["connection"]["connected"] == true && s["connection"]["accepted"] == true
    })
    .await;
    let (code, body) = centrals[other]
        .api("GET", &format!("/api/piles/{id}/events"), None)
        .await;
    assert_eq!(code, 200);
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "Connected"),
        "{body}"
    );
}
