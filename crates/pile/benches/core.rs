//! The pile core on a virtual clock: what a day of charging and a week offline cost.
//! `cargo bench -p pile --bench core`; the figures are in BENCHMARKS.md.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pile::hardware::{MeterReading, Pilot};
use pile::{ChargePoint, Input, Output};
use serde_json::{json, Value};

#[path = "../tests/common/mod.rs"]
mod common;

fn pile() -> ChargePoint {
    common::pile(1)
}

/// Answers every CALL the pile sends, as a central system would.
fn serve(cp: &mut ChargePoint, out: Vec<Output>, now: Duration) -> usize {
    let mut frames: Vec<String> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(f) => Some(f),
            _ => None,
        })
        .collect();
    let mut calls = 0;
    while let Some(f) = frames.pop() {
        let v: Value = serde_json::from_str(&f).unwrap();
        if v[0] != 2 {
            continue;
        }
        calls += 1;
        let payload = match v[2].as_str().unwrap() {
            "BootNotification" => {
                json!({"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":900})
            }
            "Heartbeat" => json!({"currentTime":"2026-01-01T00:00:00.000Z"}),
            "StartTransaction" => json!({"transactionId": 1, "idTagInfo": {"status": "Accepted"}}),
            _ => json!({}),
        };
        let reply = json!([3, v[1], payload]).to_string();
        for o in cp.handle(Input::Frame(&reply), now) {
            if let Output::Send(f) = o {
                frames.push(f);
            }
        }
    }
    calls
}

fn reading(wh: i64) -> MeterReading {
    MeterReading {
        energy_wh: wh,
        power_w: 7360.0,
        current_a: 32.0,
        offered_a: 32.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![25.0, 25.0, 25.0],
    }
}

/// Charges for `hours` (a meter reading a minute), online or not; returns the CALLs answered.
fn session(hours: u64, online: bool) -> (ChargePoint, usize) {
    let mut cp = pile();
    let mut now = Duration::ZERO;
    let mut calls = 0;
    if online {
        let out = cp.handle(Input::Connected, now);
        calls += serve(&mut cp, out, now);
    }
    let r = reading(0);
    cp.handle(
        Input::Meter {
            connector: 1,
            reading: &r,
        },
        now,
    );
    for input in [
        Input::Plug {
            connector: 1,
            plugged: true,
        },
        Input::Pilot {
            connector: 1,
            state: Pilot::C,
        },
    ] {
        let out = cp.handle(input, now);
        calls += serve(&mut cp, out, now);
    }
    for minute in 1..=hours * 60 {
        now = Duration::from_secs(minute * 60);
        let r = reading(minute as i64 * 122);
        cp.handle(
            Input::Meter {
                connector: 1,
                reading: &r,
            },
            now,
        );
        while let Some(d) = cp.next_deadline().filter(|d| *d <= now) {
            let out = cp.handle(Input::Tick, d);
            calls += serve(&mut cp, out, d);
        }
    }
    if !online {
        let out = cp.handle(Input::Connected, now);
        calls += serve(&mut cp, out, now);
    }
    (cp, calls)
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("pile core");
    group.sample_size(10);
    group.bench_function("a day of charging online (1,440 samples, answered)", |b| {
        b.iter(|| session(24, true))
    });
    group.bench_function("a week of charging offline, then the outbox sent", |b| {
        b.iter(|| session(7 * 24, false))
    });
    group.finish();
    // What the store writes for a week offline: the journal once, the state file at each sample.
    let (cp, _) = {
        let mut cp = pile();
        let r = reading(0);
        cp.handle(
            Input::Meter {
                connector: 1,
                reading: &r,
            },
            Duration::ZERO,
        );
        cp.handle(
            Input::Plug {
                connector: 1,
                plugged: true,
            },
            Duration::ZERO,
        );
        for minute in 1..=7 * 24 * 60u64 {
            let now = Duration::from_secs(minute * 60);
            while let Some(d) = cp.next_deadline().filter(|d| *d <= now) {
                cp.handle(Input::Tick, d);
            }
        }
        (cp, 0)
    };
    let state = serde_json::to_vec(cp.durable()).unwrap().len();
    let journal: usize = cp
        .durable()
        .outbox()
        .iter()
        .map(|q| serde_json::to_vec(q).unwrap().len() + 1)
        .sum();
    println!(
        "after a week offline: {} messages waiting, journal {:.1} MB (each line written once), \
         state file {:.1} kB (rewritten at each sample)",
        cp.outbox_len(),
        journal as f64 / 1e6,
        state as f64 / 1e3
    );
}

criterion_group!(core, benches);
criterion_main!(core);
