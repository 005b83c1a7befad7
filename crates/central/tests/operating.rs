//! The operator's side of nodes: several on one port with `--reuse-port`, `/health`, and the
//! drain of a node that stops.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use common::pile::connect as connect_pile;

mod common;

const WAIT: Duration = Duration::from_secs(20);

fn options(name: &str) -> central::Options {
    common::node::options(&format!("operating-{name}"), name)
}

/// One request on a connection kept open; the status and the JSON body.
async fn request(conn: &mut BufReader<TcpStream>, path: &str) -> (u16, Value) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: central\r\n\r\n");
    conn.get_mut().write_all(head.as_bytes()).await.unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).await.unwrap();
    let code: u16 = status[9..12].parse().unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("content-length:") {
            length = n.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn connect_http(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_with_reuse_port_share_a_port_and_the_kernel_spreads_connections() {
    let mut first = options("reuse-a");
    first.reuse_port = true;
    let a = central::server::start(first).await.unwrap();
    let port = a.local_addr;
    let mut second = options("reuse-b");
    second.reuse_port = true;
    second.listen = port;
    let b = central::server::start(second).await.unwrap();
    assert_eq!(b.local_addr, port);

    // Without the option a third one is refused, and told why.
    let mut third = options("reuse-c");
    third.listen = port;
    let refused = central::server::start(third).await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains(&port.to_string()) && message.contains("--reuse-port"),
        "{message}"
    );

    // Each new connection goes to one of the two: both answer.
    let mut nodes = BTreeSet::new();
    for _ in 0..64 {
        let mut conn = connect_http(port).await;
        let (code, body) = request(&mut conn, "/health").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "ready");
        nodes.insert(body["node"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        nodes,
        BTreeSet::from(["reuse-a".to_owned(), "reuse-b".to_owned()])
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_reuse_port_keeps_its_port_to_itself() {
    let a = central::server::start(options("alone-a")).await.unwrap();
    let mut second = options("alone-b");
    second.reuse_port = true;
    second.listen = a.local_addr;
    let message = central::server::start(second)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("in use"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_longer_than_a_day_is_refused_at_the_start() {
    let mut options = options("drain-long");
    options.drain = Duration::from_secs(2 * 86_400);
    let message = central::server::start(options)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("86400"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_node_says_so_takes_no_connection_and_closes_its_piles_spread_over_time() {
    const PILES: usize = 4;
    let running = central::server::start(options("drain")).await.unwrap();
    let addr = running.local_addr;
    let mut kept = connect_http(addr).await;
    let (code, body) = request(&mut kept, "/health").await;
    assert_eq!(
        (code, body.clone()),
        (
            200,
            serde_json::json!({"status": "ready", "database": "up", "nats": "not used",
                "node": "drain"})
        )
    );
    let mut piles = Vec::new();
    for i in 0..PILES {
        piles.push(connect_pile(addr, &format!("DRAIN-{i}")).await);
    }
    let deadline = Instant::now() + WAIT;
    while running.central.sessions().count() < PILES {
        assert!(
            Instant::now() < deadline,
            "the piles never showed connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each pile notes when its connection was closed.
    let closes: Vec<_> = piles
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Instant::now(),
                        Some(Ok(_)) => {}
                    }
                }
            })
        })
        .collect();
    let over = Duration::from_secs(2);
    let started = Instant::now();
    let central = running.central.clone();
    let drained = tokio::spawn(async move {
        let result = running.drain(over).await;
        (result, running)
    });
    // At once: draining on a connection kept open, and no new connection taken.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = request(&mut kept, "/health").await;
        if body["status"] == "draining" {
            assert_eq!(code, 503);
            break;
        }
        assert!(Instant::now() < deadline, "never draining: {body}");
    }
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener stays open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut closed = Vec::new();
    for close in closes {
        closed.push(tokio::time::timeout(WAIT, close).await.unwrap().unwrap());
    }
    closed.sort();
    let (first, last) = (closed[0] - started, closed[PILES - 1] - started);
    // Closes at 0, 1/4, 2/4 and 3/4 of the time: spread, not at once.
    assert!(first < Duration::from_millis(500), "{closed:?}");
    assert!(
        last >= Duration::from_millis(1300) && last < over + Duration::from_secs(1),
        "{first:?} {last:?}"
    );
    let (result, running) = tokio::time::timeout(WAIT, drained).await.unwrap().unwrap();
    result.unwrap();
    // Every disconnection is committed by the time the drain returns.
    for i in 0..PILES {
        let events = central
            .repo()
            .events(&format!("DRAIN-{i}"), 50)
            .await
            .unwrap();
        assert!(
            events.iter().any(|e| e.kind == "Disconnected"),
            "DRAIN-{i}: {events:?}"
        );
    }
    drop(running);
}

/// A TCP relay to the test's NATS server, which the test can cut (every relayed connection
/// closed, nothing listening) and open again on the same port.
struct Relay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn open(at: SocketAddr) -> Relay {
        let upstream = common::nats_url().trim_start_matches("nats://").to_owned();
        let listener = tokio::net::TcpListener::bind(at).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut relayed = tokio::task::JoinSet::new();
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                relayed.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Relay { addr, task }
    }

    /// Closes every relayed connection and the listener (the join set goes with the task).
    fn cut(self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn health_until(addr: SocketAddr, what: &str, done: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = request(&mut connect_http(addr).await, "/health").await;
        if done(code, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/health never showed {what}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_nats_link_drops_is_unavailable_until_it_is_back() {
    let relay = Relay::open("127.0.0.1:0".parse().unwrap()).await;
    let mut options = options("health-nats");
    options.db = Some(common::database_url("operating", "nats"));
    options.cluster = Some(format!("nats://{}", relay.addr));
    let running = central::server::start(options).await.unwrap();
    let addr = running.local_addr;
    let (code, body) = request(&mut connect_http(addr).await, "/health").await;
    assert_eq!(
        (code, body),
        (
            200,
            serde_json::json!({"status": "ready", "database": "up", "nats": "up",
                "node": "health-nats"})
        )
    );
    let at = relay.cut();
    health_until(addr, "NATS down", |code, body| {
        code == 503
            && body["status"] == "unavailable"
            && body["nats"] == "down"
            && body["database"] == "up"
    })
    .await;
    let relay = Relay::open(at).await;
    health_until(addr, "NATS up again", |code, body| {
        code == 200 && body["nats"] == "up"
    })
    .await;
    drop((relay, running));
}
