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
    d.outbox().iter().map(|q| q.message_id.clone()).collect()
}

/// A message at the end of the outbox, and nothing else of the state changed.
fn push(d: &mut Durable, q: Queued) {
    let mut outbox = d.outbox().clone();
    outbox.push_back(q);
    d.restore_outbox(outbox);
}

#[test]
fn the_outbox_is_appended_once_and_read_back() {
    let d = dir("append");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable::default();
    for _ in 0..3 {
        state.count_boot();
    }
    for n in 1..=100 {
        push(&mut state, message(n));
        store.save(&state).unwrap();
    }
    // One line a message, none rewritten; the state file does not hold them.
    let journal = std::fs::read_to_string(d.join("outbox.log")).unwrap();
    assert_eq!(journal.lines().count(), 100);
    let state_file = std::fs::read_to_string(d.join("state.json")).unwrap();
    assert!(!state_file.contains("tx-1-1"));
    // Answered, counted failures, and read back.
    state.dequeue();
    state.dequeue();
    state.count_failure();
    state.count_failure();
    store.save(&state).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded.boots(), 3);
    assert_eq!(ids(&loaded), ids(&state));
    assert_eq!(loaded.outbox()[0].failures, 2);
    // Loading compacts the journal to what waits.
    let journal = std::fs::read_to_string(d.join("outbox.log")).unwrap();
    assert_eq!(journal.lines().count(), 98);
}

#[test]
fn journal_lines_the_state_does_not_count_are_dropped() {
    let d = dir("crash");
    let mut store = StateStore::open(&d).unwrap();
    let mut state = Durable::default();
    push(&mut state, message(1));
    store.save(&state).unwrap();
    let before = std::fs::read(d.join("state.json")).unwrap();
    // A crash after the journal got a line and before the state was replaced.
    push(&mut state, message(2));
    state.count_boot();
    store.save(&state).unwrap();
    std::fs::write(d.join("state.json"), &before).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(ids(&loaded), vec!["tx-1-1"]);
    assert_eq!(loaded.boots(), 0, "the old state, whole");
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
    push(&mut state, message(1));
    store.save(&state).unwrap();
    state.dequeue();
    store.save(&state).unwrap();
    assert_eq!(std::fs::metadata(d.join("outbox.log")).unwrap().len(), 0);
    push(&mut state, message(2));
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
    assert_eq!(loaded.boots(), 4);
    assert!(loaded.outbox().is_empty());
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
    state.make_inoperative(2);
    state.begin_transaction(pile::Transaction {
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
    });
    state.record_register(1, 4200);
    state.record_transaction_id(7, 99);
    state.queue(7, message(1).message);
    store.save(&state).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded, state);
}

/// A state file and journal as the pile wrote them before the durable state kept its fields
/// to itself: every part of the state set, one message waiting.
const WRITTEN_BEFORE: &str = r#"{"journal_lines":1,"state":{
 "config": {"HeartbeatInterval": "300", "VendorChargePointName": "PILE-7"},
 "inoperative": [2],
 "scheduled": [1],
 "last_good": ["WS,central.example,9000,/ocpp/,ocpp1.6,,,", "PILE-7"],
 "boots": 12,
 "transactions": {"1": {"local_id": 41, "connector": 1, "id_tag": "CARD1",
   "parent_id_tag": "GROUP", "meter_start": 1000, "started": "2026-11-24T12:00:00.000Z",
   "invalidated_at_wh": 1500, "last_register": 1800, "last_sampled": "2026-11-24T12:30:00.000Z",
   "stop_data": [{"timestamp": "2026-11-24T12:30:00.000Z", "sampledValue": [{"value": "1800",
     "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}},
 "transaction_ids": {"40": 7001},
 "last_number": 44,
 "auth_cache": {"card1": {"expiryDate": "2026-12-01T00:00:00.000Z", "parentIdTag": "GROUP",
   "status": "Accepted"}},
 "local_list": {"list1": {"status": "Blocked"}},
 "local_list_version": 3,
 "profiles": [{"connector": 1, "profile": {"chargingProfileId": 5, "stackLevel": 1,
   "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
   "chargingSchedule": {"chargingRateUnit": "A",
     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}}],
 "firmware": {"location": "http://fw.example/img-2.0.0.bin",
   "retrieve_at": "2026-11-24T13:00:00.000Z", "attempts_left": 2, "retry_interval": 60,
   "stage": "Downloaded", "all_answered": false},
 "firmware_version": "1.9.0",
 "firmware_pending_version": "2.0.0",
 "reservations": {"9": {"connector": 2, "expiry": "2026-11-24T14:00:00.000Z",
   "id_tag": "CARD2", "parent_id_tag": null}},
 "registers": {"1": 1800, "2": 500}
}}"#;

const JOURNAL_BEFORE: &str = r#"{"push":{"message_id":"tx-12-44","transaction":41,"message":{"Start":{"connectorId":1,"idTag":"CARD1","meterStart":1000,"timestamp":"2026-11-24T12:00:00.000Z"}},"failures":1}}
"#;

#[test]
fn a_state_written_before_loads_whole_and_is_written_the_same() {
    let d = dir("before");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("state.json"), WRITTEN_BEFORE).unwrap();
    std::fs::write(d.join("outbox.log"), JOURNAL_BEFORE).unwrap();
    let loaded = StateStore::open(&d).unwrap().load().unwrap().unwrap();
    assert_eq!(loaded.boots(), 12);
    assert_eq!(loaded.config()["VendorChargePointName"], "PILE-7");
    assert!(loaded.is_inoperative(2) && loaded.scheduled().contains(&1));
    assert_eq!(
        loaded
            .last_good_settings()
            .map(|(_, identity)| identity.as_str()),
        Some("PILE-7")
    );
    let tx = loaded.transaction(1).unwrap();
    assert_eq!(
        (tx.local_id, tx.meter_start, tx.stop_data.len()),
        (41, 1000, 1)
    );
    assert_eq!(loaded.transaction_id(40), Some(7001));
    assert_eq!(ids(&loaded), vec!["tx-12-44"]);
    assert_eq!(loaded.outbox()[0].failures, 1);
    assert!(loaded.cached_verdict("CARD1").is_some());
    assert_eq!(loaded.local_list_version(), 3);
    assert!(loaded.listed("LIST1").is_some());
    assert_eq!(loaded.profiles().len(), 1);
    assert_eq!(loaded.firmware_update().map(|f| f.attempts_left), Some(2));
    assert_eq!(loaded.installed_firmware(), Some("1.9.0"));
    assert_eq!(loaded.reservations()[&9].id_tag, "CARD2");
    assert_eq!(loaded.recorded_register(2), Some(500));
    // Written again, the state file holds the same fields with the same values.
    let before: serde_json::Value = serde_json::from_str(WRITTEN_BEFORE).unwrap();
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("state.json")).unwrap()).unwrap();
    assert_eq!(after, before);
    assert_eq!(
        std::fs::read_to_string(d.join("outbox.log")).unwrap(),
        JOURNAL_BEFORE
    );
}
