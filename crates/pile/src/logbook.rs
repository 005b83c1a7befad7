//! The pile's own log: what it sent and received and what happened to its connection, kept in
//! memory (the latest records) for GetDiagnostics, and streamed over MQTT while
//! DBGEnableInsight is on.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use ocpp::Timestamp;
use serde_json::json;

use crate::insight::Insight;

/// How many records the log keeps.
pub const CAPACITY: usize = 10_000;

struct Record {
    time: DateTime<Utc>,
    kind: &'static str,
    text: String,
}

#[derive(Default)]
pub struct LogBook {
    records: VecDeque<Record>,
    insight: Option<Insight>,
}

impl LogBook {
    /// Streams to this broker from now on, or stops streaming.
    pub fn set_insight(&mut self, insight: Option<Insight>) {
        self.insight = insight;
    }

    /// Notes one record (`kind`: `send`, `receive`, `event`) at `time` on the pile's clock
    /// (the one the central system sets, not the host's).
    pub fn record(&mut self, time: Timestamp, kind: &'static str, text: &str) {
        let time = time.as_utc();
        if let Some(i) = &self.insight {
            i.log(time, kind, text);
        }
        if self.records.len() == CAPACITY {
            self.records.pop_front();
        }
        self.records.push_back(Record {
            time,
            kind,
            text: text.to_owned(),
        });
    }

    /// The records between `start` and `stop` (either end open), one JSON object a line.
    pub fn render(&self, start: Option<Timestamp>, stop: Option<Timestamp>) -> Vec<u8> {
        let mut out = Vec::new();
        for r in &self.records {
            if start.is_some_and(|s| r.time < s.as_utc())
                || stop.is_some_and(|s| r.time > s.as_utc())
            {
                continue;
            }
            let line = json!({
                "time": r.time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "kind": r.kind,
                "text": r.text,
            });
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }
}
