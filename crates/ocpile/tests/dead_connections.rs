//! `ocpile central` (the real binary) and connections that stop talking: a pile whose network
//! freezes is found dead by the central's pings and shown offline; sockets that never finish
//! their handshake are closed at the handshake timeout, counted and listed (summed up), while
//! a pile connects and boots at once; an address with too many handshakes in progress is
//! turned away.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::central::{start_central, CentralProcess};
use common::{start_pile_with_control, state_dir, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

/// A TCP proxy between the pile and the central that can freeze: from then on it forwards
/// nothing either way, and holds every socket open (the pile's network dropped, no FIN, no
/// RST). It counts the websocket pings the central sends through it.
struct FreezingProxy {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    pings: Arc<AtomicUsize>,
}

impl FreezingProxy {
    async fn start(upstream: SocketAddr) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let pings = Arc::new(AtomicUsize::new(0));
        let (f, p) = (frozen.clone(), pings.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (pile_side, _) = listener.accept().await.unwrap();
                if f.load(Ordering::SeqCst) {
                    held.push(pile_side);
                    continue;
                }
                let central_side = TcpStream::connect(upstream).await.unwrap();
                let (pile_read, pile_write) = pile_side.into_split();
                let (central_read, central_write) = central_side.into_split();
                tokio::spawn(pump(pile_read, central_write, f.clone(), None));
                tokio::spawn(pump(central_read, pile_write, f.clone(), Some(p.clone())));
            }
        });
        FreezingProxy {
            addr,
            frozen,
            pings,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
    pings: Option<Arc<AtomicUsize>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            // Hold both sockets, forward nothing, ever.
            std::future::pending::<()>().await;
        }
        if let Some(pings) = &pings {
            // A server's ping without payload: FIN + opcode 9, unmasked, length 0.
            let seen = buf[..n].windows(2).filter(|w| w == &[0x89, 0x00]).count();
            pings.fetch_add(seen, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `GET path` without a token, as text (for `/metrics`).
async fn get_text(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: central\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    response
}

/// A value in `/metrics` (0 when the series is not there yet).
async fn metric(central: &CentralProcess, series: &str) -> f64 {
    let text = get_text(&central.addr, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until a series of `/metrics` reaches `value`.
async fn until_metric(central: &CentralProcess, series: &str, value: f64) {
    let reached = timeout(WAIT, async {
        loop {
            if metric(central, series).await >= value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let now = metric(central, series).await;
    assert!(reached.is_ok(), "{series} stays at {now}, not {value}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_whose_traffic_freezes_is_shown_offline_within_interval_plus_timeout() {
    let data = state_dir("dead-link");
    let central = start_central(
        &data,
        None,
        &[
            "--node",
            "dc",
            "--admission",
            "open",
            "--ping-interval",
            "1",
            "--ping-timeout",
            "2",
        ],
    );
    let proxy = FreezingProxy::start(central.addr.parse().unwrap()).await;
    let state = state_dir("dead-link-pile");
    let url = format!("ws://{}/ocpp/", proxy.addr);
    let (_pile, _control) = start_pile_with_control("FROZEN-PILE", &url, &state, &[]);
    let path = "/api/piles/FROZEN-PILE";
    central
        .until(path, "the pile booted and online", |p| {
            p["connected"] == true && p["last_boot"].is_string()
        })
        .await;

    // While the link works, the central pings and the pile answers: it stays online, for more
    // than the ping interval and timeout together.
    let pings_before = proxy.pings.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        proxy.pings.load(Ordering::SeqCst) >= pings_before + 2,
        "the central pings every second"
    );
    assert_eq!(central.ok("GET", path, None).await["connected"], true);
    let events = central.ok("GET", &format!("{path}/events"), None).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "Disconnected"),
        "{events}"
    );

    // The network freezes: no FIN, no RST, nothing. Shown offline within interval + timeout.
    proxy.freeze();
    let frozen_at = Instant::now();
    central
        .until(path, "the pile offline", |p| p["connected"] == false)
        .await;
    let took = frozen_at.elapsed();
    assert!(
        took <= Duration::from_millis(3000 + 1500),
        "offline after {took:?}, more than 1 s + 2 s (and the polling)"
    );
    // The close is recorded (its event is written just after the pile is shown offline).
    let events = central
        .until(&format!("{path}/events"), "the Disconnected event", |e| {
            e.as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "Disconnected")
        })
        .await;
    let disconnected = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "Disconnected")
        .collect::<Vec<_>>();
    assert_eq!(disconnected.len(), 1, "{events}");
    let detail = disconnected[0]["detail"].as_str().unwrap();
    assert!(detail.contains("no answer to a ping"), "{detail}");
    let series = "ocpile_disconnections_total{node=\"dc\",reason=\"ping_timeout\"}";
    until_metric(&central, series, 1.0).await;
    assert_eq!(metric(&central, series).await, 1.0);
}

/// Raises this process's open-file limit to `needed` (the hard limit allowing).
fn raise_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "this test needs {needed} open files; the hard limit is {}",
        limit.rlim_max
    );
}

/// A connection to the central from a loopback address of its own (127.0.0.0/8 is all local).
async fn connect_from(ip: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the central closes the socket; how long after `opened` that was, and what it
/// sent before.
async fn until_closed(
    mut s: TcpStream,
    opened: Instant,
    closed: Arc<AtomicUsize>,
) -> (Duration, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    closed.fetch_add(1, Ordering::SeqCst);
    (opened.elapsed(), got)
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_partial_handshakes_are_closed_in_time_while_a_pile_connects() {
    const SILENT: usize = 2000;
    const PARTIAL: usize = 500;
    const PER_ADDRESS: usize = 250;
    let handshake_timeout = Duration::from_secs(8);
    raise_open_files(4096);
    let data = state_dir("handshake-flood");
    let central = start_central(
        &data,
        None,
        &[
            "--node",
            "dc",
            "--admission",
            "open",
            "--handshake-timeout",
            "8",
            "--max-handshakes-per-address",
            "250",
        ],
    );
    let target: SocketAddr = central.addr.parse().unwrap();
    let closed = Arc::new(AtomicUsize::new(0));

    // A connection kept alive after a complete request is closed too, unnoticed as refused.
    let mut kept_alive = TcpStream::connect(target).await.unwrap();
    kept_alive
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: central\r\n\r\n")
        .await
        .unwrap();
    let kept_alive = tokio::spawn(until_closed(
        kept_alive,
        Instant::now(),
        Arc::new(AtomicUsize::new(0)),
    ));

    // 2,000 silent sockets and 500 partial requests (half websocket upgrades, half API
    // requests), 250 from each of ten addresses: at the bound, none past it.
    let mut held = Vec::new();
    for i in 0..SILENT + PARTIAL {
        let ip = Ipv4Addr::new(127, 0, 0, 2 + (i / PER_ADDRESS) as u8);
        let mut s = connect_from(ip, target).await;
        if i >= SILENT {
            let partial = if i % 2 == 0 {
                format!("GET /ocpp/FLOOD-{i} HTTP/1.1\r\nHost: central\r\nUpgrade: websocket\r\n")
            } else {
                "GET /api/piles HTTP/1.1\r\nHost: central\r\nAuthoriz".to_owned()
            };
            s.write_all(partial.as_bytes()).await.unwrap();
        }
        held.push(tokio::spawn(until_closed(
            s,
            Instant::now(),
            closed.clone(),
        )));
    }

    // A pile connects and boots while they are all held open.
    let state = state_dir("handshake-flood-pile");
    let (_pile, _control) =
        start_pile_with_control("STEADY-PILE", &central.ocpp_url(), &state, &[]);
    central
        .until("/api/piles/STEADY-PILE", "the pile booted", |p| {
            p["connected"] == true && p["last_boot"].is_string()
        })
        .await;
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "the pile booted while every held socket was still open"
    );

    // Every one is closed at the handshake timeout, none before; the central sent nothing.
    for h in held {
        let (after, sent) = timeout(WAIT, h).await.expect("closed").unwrap();
        assert!(
            after >= handshake_timeout - Duration::from_millis(500)
                && after <= handshake_timeout + Duration::from_secs(3),
            "closed after {after:?}"
        );
        assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    }
    let (after, sent) = timeout(WAIT, kept_alive).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&sent).starts_with("HTTP/1.1 200"));
    assert!(
        after <= handshake_timeout + Duration::from_secs(3),
        "{after:?}"
    );

    // Counted one by one, by reason; listed once per address (the rest is summed up later).
    until_metric(
        &central,
        "ocpile_refused_handshakes_total{node=\"dc\",reason=\"handshake_timeout\"}",
        (SILENT + PARTIAL) as f64,
    )
    .await;
    assert_eq!(
        metric(
            &central,
            "ocpile_refused_handshakes_total{node=\"dc\",reason=\"handshake_timeout\"}"
        )
        .await,
        (SILENT + PARTIAL) as f64,
        "the kept-alive connection is no refusal"
    );
    // (Each row is written after its refusal is counted: wait for the ten.)
    let refused = central
        .until("/api/handshakes/refused?limit=10000", "ten rows", |r| {
            r.as_array().unwrap().len() >= 10
        })
        .await;
    let refused = refused.as_array().unwrap();
    let mut remotes: Vec<String> = refused
        .iter()
        .map(|r| {
            assert!(
                r["reason"].as_str().unwrap().contains("handshake timeout"),
                "{r}"
            );
            assert_eq!(r["http_status"], 0);
            let remote: SocketAddr = r["remote"].as_str().unwrap().parse().unwrap();
            remote.ip().to_string()
        })
        .collect();
    remotes.sort();
    let mut expected: Vec<String> = (2..12).map(|n| format!("127.0.0.{n}")).collect();
    expected.sort();
    assert_eq!(remotes, expected, "one row per address");

    // One address with as many handshakes in progress as it may: one more is closed at once.
    let crowded = Ipv4Addr::new(127, 0, 0, 20);
    let mut crowd = Vec::new();
    for _ in 0..PER_ADDRESS {
        crowd.push(connect_from(crowded, target).await);
    }
    until_metric(
        &central,
        "ocpile_handshakes_in_progress{node=\"dc\"}",
        PER_ADDRESS as f64,
    )
    .await;
    for _ in 0..10 {
        let s = connect_from(crowded, target).await;
        let (after, _) = until_closed(s, Instant::now(), Arc::new(AtomicUsize::new(0))).await;
        assert!(after < Duration::from_secs(2), "closed after {after:?}");
    }
    until_metric(
        &central,
        "ocpile_refused_handshakes_total{node=\"dc\",reason=\"too_many_handshakes\"}",
        10.0,
    )
    .await;
    let from_crowded =
        |r: &serde_json::Value| r["remote"].as_str().unwrap().starts_with("127.0.0.20:");
    let refused = central
        .until("/api/handshakes/refused", "the crowded address", |r| {
            r.as_array().unwrap().iter().any(from_crowded)
        })
        .await;
    let crowded_rows: Vec<_> = refused
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| from_crowded(r))
        .collect();
    assert_eq!(crowded_rows.len(), 1, "{refused}");
    assert!(
        crowded_rows[0]["reason"]
            .as_str()
            .unwrap()
            .contains("250 handshakes from this address in progress"),
        "{refused}"
    );
    drop(crowd);
}
