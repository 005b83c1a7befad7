//! Heap bytes of one idle pile core: the FAQ's configuration, booted and accepted, its status
//! reported, nothing running; and of one idle pile in the host (`run_with_store` on a store in
//! memory, its websocket to a central system in another process, its timers and tasks). A
//! counting allocator measures what they hold.
//! `cargo bench -p pile --bench memory`; the figures are in BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use pile::{ChargePoint, Input, Output};
use serde_json::{json, Value};

#[path = "../tests/common/mod.rs"]
mod common;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Answers what the pile sends until it is quiet: booted, accepted, statuses reported.
fn settle(cp: &mut ChargePoint, mut out: Vec<Output>, now: Duration) {
    while !out.is_empty() {
        let mut next = Vec::new();
        for o in out {
            if let Output::Send(f) = o {
                let v: Value = serde_json::from_str(&f).unwrap();
                if v[0] != 2 {
                    continue;
                }
                let payload = match v[2].as_str().unwrap() {
                    "BootNotification" => {
                        json!({"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":900})
                    }
                    _ => json!({}),
                };
                let reply = json!([3, v[1], payload]).to_string();
                next.extend(cp.handle(Input::Frame(&reply), now));
            }
        }
        out = next;
    }
}

fn main() {
    // criterion passes --bench; nothing else to parse.
    if std::env::var_os(CENTRAL_ENV).is_some() {
        return central();
    }
    core_memory();
    host_memory();
}

/// Set in the child process that plays the central system.
const CENTRAL_ENV: &str = "OCPILE_MEMORY_BENCH_CENTRAL";

/// The central system, in a process of its own so that its memory is not counted: accepts
/// every pile, answers boots (Accepted), statuses and heartbeats; prints its address.
fn central() {
    use ocpp::{
        BootNotificationResponse, CallError, Decoded, HeartbeatResponse, RegistrationStatus,
        Request, Response, StatusNotificationResponse, Timestamp,
    };
    use std::sync::Arc;
    use transport::server::{ServerConfig, WsServer};
    use transport::{spawn_rpc, HandlerFuture, LinkConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut server = WsServer::bind(
            "127.0.0.1:0",
            ServerConfig::new(Arc::new(transport::auth::AllowAll)),
        )
        .await
        .unwrap();
        println!("{}", server.local_addr());
        let handler = Arc::new(|request: Decoded<Request>| -> HandlerFuture {
            Box::pin(async move {
                let now = Timestamp::from_utc(chrono::Utc::now());
                match request.value {
                    Request::BootNotification(_) => {
                        Ok(Response::BootNotification(BootNotificationResponse {
                            status: RegistrationStatus::Accepted,
                            current_time: now,
                            interval: 900,
                        }))
                    }
                    Request::StatusNotification(_) => {
                        Ok(Response::StatusNotification(StatusNotificationResponse {}))
                    }
                    Request::Heartbeat(_) => {
                        Ok(Response::Heartbeat(HeartbeatResponse { current_time: now }))
                    }
                    other => Err(CallError::not_supported(other.action().as_str())),
                }
            })
        });
        let mut links = Vec::new();
        while let Some(accepted) = server.accept().await {
            links.push(spawn_rpc(
                accepted.ws,
                LinkConfig::default(),
                handler.clone(),
            ));
        }
    });
}

#[derive(Default)]
struct MemoryStore(Option<pile::Durable>);

impl pile::store::PileStore for MemoryStore {
    fn load(&mut self) -> Result<Option<pile::Durable>, pile::store::StoreError> {
        Ok(self.0.clone())
    }
    fn save<'a>(&'a mut self, state: &'a pile::Durable) -> pile::store::Saving<'a> {
        self.0 = Some(state.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Idle piles in the host, each with its connection, on one runtime.
fn host_memory() {
    use std::io::BufRead;
    const PILES: usize = 200;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CENTRAL_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    let url = format!("ws://{}/ocpp/", addr.trim());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = live();
        let mut handles = Vec::with_capacity(PILES);
        let mut stops = Vec::with_capacity(PILES);
        let mut future = 0;
        for i in 0..PILES {
            let settings = pile::shell::PileSettings {
                state_dir: std::path::PathBuf::from("/nonexistent"),
                firmware_file: None,
                factory: pile::config::Factory {
                    serial_number: format!("MEM-{i}"),
                    connectors: 1,
                    settings: oem::WebsocketSettings::from_url(&url).unwrap(),
                    offline_cards: Vec::new(),
                },
                identity: pile::Identity {
                    vendor: "ocpile".into(),
                    model: "M3G3".into(),
                    firmware_version: "1".into(),
                    meter_type: None,
                    meter_serial_number: None,
                },
                options: pile::Options::default(),
                tls: None,
                tls_versions: vec![pile::shell::TlsVersion::Tls12],
                resolve: Vec::new(),
                write_timeout: pile::shell::WRITE_TIMEOUT,
                log_budget: pile::logbook::DEFAULT_BUDGET,
                bind: None,
                telemetry: None,
            };
            let (handle, control) = pile::shell::control_channel();
            let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
            let host = pile::shell::run_with_store(
                settings,
                Box::new(MemoryStore::default()),
                Box::new(pile::hardware::NoHardware),
                control,
                async move {
                    let _ = stop.await;
                },
            );
            if i == 0 {
                future = std::mem::size_of_val(&host);
            }
            tokio::spawn(host);
            handles.push(handle);
            stops.push(stop_tx);
        }
        // Until every pile is accepted and has nothing left to send.
        for h in &handles {
            loop {
                let s = h.state().await.unwrap();
                if s.connection.accepted && s.outbox == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let total = live() - before;
        println!(
            "idle pile in the host (core, shell, websocket to a central in another process, \
             store in memory, no hardware): {:.1} KiB each (mean of {PILES})",
            total as f64 / PILES as f64 / 1024.0
        );
        println!("  of which the host's task (its future, inline): {future} bytes");
        drop(stops);
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn core_memory() {
    const PILES: usize = 1000;
    let before = live();
    let mut piles = Vec::with_capacity(PILES);
    let vec_bytes = live() - before;
    for _ in 0..PILES {
        let mut cp = common::pile(1);
        let now = Duration::from_secs(1);
        let out = cp.handle(Input::Connected, now);
        settle(&mut cp, out, now);
        let out = cp.handle(Input::Tick, Duration::from_secs(2));
        settle(&mut cp, out, Duration::from_secs(2));
        piles.push(cp);
    }
    let total = live() - before - vec_bytes;
    let stack = std::mem::size_of::<ChargePoint>();
    println!(
        "idle pile core (1 connector, the FAQ's configuration, booted and accepted): \
         {} bytes on the heap + {stack} bytes inline = {:.1} KiB each (mean of {PILES})",
        total / PILES as isize,
        (total as f64 / PILES as f64 + stack as f64) / 1024.0
    );
    // What the largest part, the configuration, holds by itself.
    let before = live();
    let configs: Vec<_> = (0..PILES)
        .map(|_| common::pile(1).config().clone())
        .collect();
    let config = (live() - before) as f64 / PILES as f64;
    println!("  of which the configuration (factory values and what changed): {config:.0} bytes");
    let before = live();
    let durables: Vec<_> = piles.iter().map(|p| p.durable().clone()).collect();
    let durable = (live() - before) as f64 / PILES as f64;
    println!("  of which the durable state (what the store writes): {durable:.0} bytes");
    drop((configs, durables));
    drop(piles);
}
