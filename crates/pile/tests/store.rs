//! The state store: the state file and the outbox journal survive any crash point consistently.

use std::path::PathBuf;

use ocpp::{MeterValue, MeterValuesRequest, Timestamp};
use pile::store::StateStore;
use pile::{Durable, Queued, TransactionMessage};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ocpile-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn message(n: u64) -> Queued {
    Queued {
        message_id: format!("tx-1-{n}"),
        transaction: 1,
        message: TransactionMessage::MeterValues(MeterValuesRequest {
            connector_id: 1,
            transaction_id: None,
            meter_value: vec![MeterValue {
                timestamp: Timestamp::from_millis(n as i64 * 60_000).unwrap(),
                sampled_value: Vec::new(),
            }],
        }),
        failures: 0,
    }
}

fn ids(d: &Durable) -> Vec<String> {
    d.outbox.iter().map(|q| q.message_id.clone()).collect()
}

#[test]
fn the_outbox_is_appended_once_and_read_back() {
    let d = dir("append");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable {
        boots: 3,
        ..Durable::default()
    };
    for n in 1..=100 {
        state.outbox.push_back(message(n));
        store.save(&state).unwrap();
    }
    // One line a message, none rewritten; the state file does not hold them.
    let journal = std::fs::read_to_string(d.join("outbox.log")).unwrap();
    assert_eq!(journal.lines().count(), 100);
    let state_file = std::fs::read_to_string(d.join("state.json")).unwrap();
    assert!(!state_file.contains("tx-1-1"));
    // Answered, counted failures, and read back.
    state.outbox.pop_front();
    state.outbox.pop_front();
    state.outbox[0].failures = 2;
    store.save(&state).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded.boots, 3);
    assert_eq!(ids(&loaded), ids(&state));
    assert_eq!(loaded.outbox[0].failures, 2);
    // Loading compacts the journal to what waits.
    let journal = std::fs::read_to_string(d.join("outbox.log")).unwrap();
    assert_eq!(journal.lines().count(), 98);
}

#[test]
fn journal_lines_the_state_does_not_count_are_dropped() {
    let d = dir("crash");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable::default();
    state.outbox.push_back(message(1));
    store.save(&state).unwrap();
    let before = std::fs::read(d.join("state.json")).unwrap();
    // A crash after the journal got a line and before the state was replaced.
    state.outbox.push_back(message(2));
    state.boots = 9;
    store.save(&state).unwrap();
    std::fs::write(d.join("state.json"), &before).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(ids(&loaded), vec!["tx-1-1"]);
    assert_eq!(loaded.boots, 0, "the old state, whole");
    // And a half-written last line beyond the count does no harm.
    std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("outbox.log"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"push\":{\"mess"))
        .unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(ids(&loaded), vec!["tx-1-1"]);
}

#[test]
fn an_empty_outbox_starts_the_journal_over() {
    let d = dir("empty");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable::default();
    state.outbox.push_back(message(1));
    store.save(&state).unwrap();
    state.outbox.clear();
    store.save(&state).unwrap();
    assert_eq!(std::fs::metadata(d.join("outbox.log")).unwrap().len(), 0);
    state.outbox.push_back(message(2));
    store.save(&state).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(ids(&loaded), vec!["tx-1-2"]);
}

#[test]
fn a_state_file_without_a_journal_loads_with_an_empty_outbox() {
    let d = dir("old");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("state.json"),
        r#"{"config":{},"inoperative":[],"last_good":null,"boots":4}"#,
    )
    .unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded.boots, 4);
    assert!(loaded.outbox.is_empty());
    assert!(StateStore::open(dir("none"))
        .unwrap()
        .load()
        .unwrap()
        .is_none());
}

#[test]
fn every_part_of_the_state_reads_back() {
    let d = dir("whole");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable::default();
    state.registers.insert(1, 4200);
    state.inoperative.insert(2);
    state.transactions.insert(
        1,
        pile::Transaction {
            local_id: 7,
            connector: 1,
            id_tag: "TAG".into(),
            parent_id_tag: None,
            meter_start: 4000,
            started: Timestamp::from_millis(0).unwrap(),
            invalidated_at_wh: None,
            last_register: 4100,
            last_sampled: None,
            stop_data: Vec::new(),
        },
    );
    state.transaction_ids.insert(7, 99);
    state.outbox.push_back(message(1));
    store.save(&state).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded, state);
}
