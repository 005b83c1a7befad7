//! The pile's own log: what it sent and received and what happened to its connection, kept in
//! memory (the latest records, within a byte budget) for GetDiagnostics, and streamed over
//! MQTT while DBGEnableInsight is on.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use ocpp::Timestamp;
use serde_json::json;

use crate::insight::Insight;

/// What one pile's log keeps by default: the latest records that fit in 1 MiB.
pub const DEFAULT_BUDGET: usize = 1 << 20;
/// What a record costs beside its text.
const RECORD_OVERHEAD: usize = std::mem::size_of::<Record>();

struct Record {
    time: DateTime<Utc>,
    kind: &'static str,
    text: String,
}

/// The latest records within a budget of bytes (their text and their bookkeeping): the
/// oldest go first when a new one does not fit.
pub struct LogBook {
    records: VecDeque<Record>,
    budget: usize,
    used: usize,
    insight: Option<Insight>,
}

impl Default for LogBook {
    fn default() -> Self {
        LogBook::with_budget(DEFAULT_BUDGET)
    }
}

impl LogBook {
    /// A log that keeps at most `budget` bytes of records (0: keeps none, still streams).
    pub fn with_budget(budget: usize) -> Self {
        LogBook {
            records: VecDeque::new(),
            budget,
            used: 0,
            insight: None,
        }
    }

    /// How many bytes the records take now.
    pub fn used(&self) -> usize {
        self.used
    }

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
        let cost = RECORD_OVERHEAD + text.len();
        if cost > self.budget {
            return;
        }
        while self.used + cost > self.budget {
            let Some(old) = self.records.pop_front() else {
                break;
            };
            self.used -= RECORD_OVERHEAD + old.text.len();
        }
        self.used += cost;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Timestamp {
        format!("2026-12-02T10:00:{second:02}Z").parse().unwrap()
    }

    fn lines(book: &LogBook) -> Vec<String> {
        String::from_utf8(book.render(None, None))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_oldest_records_go_when_the_budget_is_spent() {
        let mut book = LogBook::with_budget(3 * (RECORD_OVERHEAD + 10));
        for i in 0..5 {
            book.record(at(i), "send", &format!("frame-{i:04}"));
        }
        assert_eq!(lines(&book), ["frame-0002", "frame-0003", "frame-0004"]);
        assert_eq!(book.used(), 3 * (RECORD_OVERHEAD + 10));
        // A long one (two records' worth) pushes out as many as it needs.
        let long = "x".repeat(RECORD_OVERHEAD + 20);
        book.record(at(6), "receive", &long);
        assert_eq!(lines(&book), ["frame-0004", long.as_str()]);
        assert_eq!(book.used(), 3 * (RECORD_OVERHEAD + 10));
        // One that could never fit is not kept, and takes nothing out.
        book.record(at(7), "receive", &"y".repeat(4 * RECORD_OVERHEAD + 100));
        assert_eq!(lines(&book).len(), 2);
    }

    #[test]
    fn a_window_of_time_is_rendered() {
        let mut book = LogBook::default();
        for i in 0..5 {
            book.record(at(i), "event", &format!("e{i}"));
        }
        let window = String::from_utf8(book.render(Some(at(1)), Some(at(3)))).unwrap();
        assert_eq!(window.lines().count(), 3);
        assert!(
            window.starts_with(r#"{"kind":"event","text":"e1","time":"2026-12-02T10:00:01.000Z"}"#),
            "{window}"
        );
        assert!(LogBook::with_budget(0).render(None, None).is_empty());
    }
}
