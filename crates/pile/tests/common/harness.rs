//! A pile on a virtual clock for scenario tests: inputs in, frames and durable states out.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use pile::config::{Configuration, Factory};
use pile::{ChargePoint, Durable, Identity, Input, Options, Output};
use serde_json::{json, Value};

pub const SETTINGS: &str = "WS,central.example,9000,/ocpp/,ocpp1.6,,,";

pub struct Pile {
    pub cp: ChargePoint,
    pub now: Duration,
    /// Everything the core asked for, in order.
    pub log: Vec<Output>,
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Pile {
    pub fn new(connectors: u32) -> Pile {
        Pile::with(connectors, Durable::default(), Options::default())
    }

    pub fn with(connectors: u32, durable: Durable, options: Options) -> Pile {
        let wall = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        Pile::started_at(connectors, durable, options, wall)
    }

    /// A pile whose wall clock reads `wall` when it starts.
    pub fn started_at(
        connectors: u32,
        durable: Durable,
        options: Options,
        wall: chrono::DateTime<Utc>,
    ) -> Pile {
        let factory = Factory {
            serial_number: "SN0001".into(),
            connectors,
            settings: SETTINGS.parse().unwrap(),
            offline_cards: vec!["FACTORY01".into()],
        };
        let config = Configuration::restore(factory, durable.config());
        let identity = Identity {
            vendor: "ocpile".into(),
            model: "M3G3".into(),
            firmware_version: "1.0.0".into(),
            meter_type: None,
            meter_serial_number: None,
        };
        let mut cp = ChargePoint::new(config, identity, options, durable, Duration::ZERO, wall);
        let log = cp.handle(Input::Tick, Duration::ZERO);
        Pile {
            cp,
            now: Duration::ZERO,
            log,
        }
    }

    pub fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        let out = self.cp.handle(input, self.now);
        self.log.extend(out.iter().cloned());
        out
    }

    /// Moves the clock, waking the core at each of its deadlines on the way.
    pub fn advance(&mut self, by: Duration) -> Vec<Output> {
        let end = self.now + by;
        let mut out = Vec::new();
        while let Some(deadline) = self.cp.next_deadline().filter(|d| *d <= end) {
            self.now = deadline.max(self.now);
            out.extend(self.input(Input::Tick));
        }
        self.now = end;
        out.extend(self.input(Input::Tick));
        out
    }

    pub fn frames(out: &[Output]) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(f) => Some(serde_json::from_str(f).unwrap()),
                _ => None,
            })
            .collect()
    }

    /// Answers the CALL `frame` with `payload`.
    pub fn reply(&mut self, call: &Value, payload: Value) -> Vec<Output> {
        let text = json!([3, call[1], payload]).to_string();
        self.input(Input::Frame(&text))
    }

    pub fn central_calls(&mut self, action: &str, payload: Value) -> Vec<Output> {
        let text = json!([2, "cs-1", action, payload]).to_string();
        self.input(Input::Frame(&text))
    }

    /// Connects, and accepts the boot with the given heartbeat interval; returns what followed.
    pub fn boot(&mut self, interval: i64) -> Vec<Value> {
        let out = self.input(Input::Connected);
        let boot = Pile::frames(&out)[0].clone();
        self.accept(&boot, interval)
    }

    /// Accepts the BootNotification `boot`; answers what follows; returns it.
    pub fn accept(&mut self, boot: &Value, interval: i64) -> Vec<Value> {
        assert_eq!(boot[2], "BootNotification");
        let mut frames = Pile::frames(&self.reply(boot, json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":interval})));
        // The status notifications go out one at a time; answer each.
        let mut all = Vec::new();
        while let Some(f) = frames.pop() {
            all.push(f.clone());
            if f[0] == 2 {
                frames.extend(Pile::frames(&self.reply(&f, json!({}))));
            }
        }
        all
    }

    /// Answers every CALL in `out` (and those that follow) with `{}` and returns the
    /// StatusNotifications.
    pub fn statuses(&mut self, out: Vec<Output>) -> Vec<Value> {
        let mut pending = Pile::frames(&out);
        let mut seen = Vec::new();
        while let Some(f) = pending.pop() {
            if f[0] == 2 {
                if f[2] == "StatusNotification" {
                    seen.push(f[3].clone());
                }
                pending.extend(Pile::frames(&self.reply(&f, json!({}))));
            }
        }
        seen
    }

    /// Card mode: plug-and-charge (VendorDirectWorkMode) off.
    pub fn without_plug_and_charge(&mut self) {
        let out = self.central_calls(
            "ChangeConfiguration",
            json!({"key":"VendorDirectWorkMode","value":"false"}),
        );
        assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    }
}

pub fn faults(names: &[&str]) -> std::collections::BTreeSet<pile::faults::Fault> {
    names
        .iter()
        .map(|n| pile::faults::Fault::from_name(n).unwrap())
        .collect()
}
