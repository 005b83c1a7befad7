//! Heap bytes of one idle pile core: the FAQ's configuration, booted and accepted, its status
//! reported, nothing running. A counting allocator measures what the core holds.
//! `cargo bench -p pile --bench memory`; the figure is in BENCHMARKS.md.

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
