//! A pile booted and accepted, driven through frames with every CALL it sends checked against
//! the official schemas: the bench of the security tests.

use super::harness::Pile;
use super::schemas::Schemas;
use pile::{Durable, Input, Options, Output};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SerialNumber};
use serde_json::{json, Value};

pub const KEY: &str = "00112233445566778899aabbccddeeff01234567";
pub const WSS: &str = "WS,central.example,443,/ocpp/,socpp1.6,,,";

/// A pile booted and accepted, with the schemas to check what it sends.
pub struct Bench {
    pub p: Pile,
    pub schemas: Schemas,
    /// Every CALL the pile sent, in order (each checked against its schema).
    pub calls: Vec<Value>,
}

impl Bench {
    pub fn new() -> Bench {
        Bench::from(Durable::default())
    }

    pub fn from(durable: Durable) -> Bench {
        let mut b = Bench {
            p: Pile::with(1, durable, Options::default()),
            schemas: Schemas::load(),
            calls: Vec::new(),
        };
        let out = b.p.input(Input::Connected);
        b.serve(out);
        b
    }

    /// Answers every CALL in `out` and those that follow (BootNotification accepted, the
    /// rest `{}`), checking and keeping each.
    pub fn serve(&mut self, out: Vec<Output>) {
        let mut pending = Pile::frames(&out);
        while !pending.is_empty() {
            let f = pending.remove(0);
            if f[0] != 2 {
                continue;
            }
            self.schemas.check_call(&f).unwrap();
            let answer = match f[2].as_str().unwrap() {
                "BootNotification" => {
                    json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900})
                }
                "Heartbeat" => json!({"currentTime":"2026-11-24T12:00:00.000Z"}),
                "SignCertificate" => json!({"status":"Accepted"}),
                _ => json!({}),
            };
            self.calls.push(f.clone());
            pending.extend(Pile::frames(&self.p.reply(&f, answer)));
        }
    }

    /// The central calls `action`; returns its answer's payload (checked against the
    /// response schema) and serves the CALLs that follow.
    pub fn ask(&mut self, action: &str, payload: Value) -> Value {
        self.schemas.check(action, &payload).unwrap();
        let out = self.p.central_calls(action, payload);
        let frames = Pile::frames(&out);
        let answer = frames
            .iter()
            .find(|f| f[0] == 3 && f[1] == "cs-1")
            .unwrap_or_else(|| panic!("no answer to {action}: {frames:?}"))[2]
            .clone();
        self.schemas
            .check(&format!("{action}Response"), &answer)
            .unwrap();
        self.serve(out);
        answer
    }

    pub fn status(&mut self, action: &str, payload: Value) -> String {
        self.ask(action, payload)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn change(&mut self, key: &str, value: &str) -> String {
        self.status("ChangeConfiguration", json!({"key": key, "value": value}))
    }

    pub fn events(&self) -> Vec<&Value> {
        self.calls
            .iter()
            .filter(|f| f[2] == "SecurityEventNotification")
            .collect()
    }

    /// A restart from the durable state as the store writes it (JSON).
    pub fn restart(self) -> Bench {
        let text = serde_json::to_string(self.p.cp.durable()).unwrap();
        let mut durable: Durable = serde_json::from_str(&text).unwrap();
        durable.restore_outbox(self.p.cp.durable().outbox().clone());
        Bench::from(durable)
    }
}

pub fn root(serial: Option<&[u8]>) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serial_number = serial.map(SerialNumber::from_slice);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

pub fn install(b: &mut Bench, kind: &str, pem: &str) -> String {
    b.status(
        "InstallCertificate",
        json!({"certificateType": kind, "certificate": pem}),
    )
}
