//! A site carried out on a fleet, both real processes: ten `ocpile fleet` piles on one site of
//! 63 A (single phase, at least 6 A a session, a fail-safe of 0 A), EVs of 16 A and 32 A
//! arriving one after another, then leaving. What the central recorded shows the site never
//! past its capacity but within the reaction window after an arrival (the allocator's
//! decision, the profiles' round trip, one meter interval), no session below the minimum while
//! it charges, and every session ended by its StopTransaction with energy.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::central::{start_central, CentralProcess};
use common::cluster::poll;
use common::fleet::{each_pile, fleet_ids, fleet_until, start_fleet};
use common::{http, state_dir, WAIT};
use serde_json::{json, Value};
use tokio::time::Instant;

const CARD: &str = "SITE-CARD";
const PILES: usize = 10;
const CAPACITY_A: f64 = 63.0;
const MIN_A: f64 = 6.0;
/// The fleet's MeterValueSampleInterval (`start_fleet`), ms.
const METER_INTERVAL_MS: i64 = 1_000;
/// Between two arrivals, and between two departures.
const ARRIVAL_GAP: Duration = Duration::from_secs(4);
const DEPARTURE_GAP: Duration = Duration::from_secs(2);
/// Rounding of the amperes the piles report.
const EPSILON_A: f64 = 0.05;

/// Milliseconds since the Unix epoch of an RFC 3339 time the API shows.
fn ms(time: &Value) -> i64 {
    let text = time.as_str().unwrap_or_else(|| panic!("a time: {time}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_millis()
}

/// The Current.Import of a meter value (the highest phase), A.
fn current_import(sampled: &Value) -> Option<f64> {
    sampled
        .as_array()?
        .iter()
        .filter(|v| v["measurand"] == "Current.Import")
        .filter_map(|v| v["value"].as_str()?.parse::<f64>().ok())
        .reduce(f64::max)
}

/// The site's view, as polled: when, and each running session's (transaction, granted,
/// measured, queued).
struct Seen {
    sessions: Vec<(i64, Option<f64>, Option<f64>, bool)>,
}

/// Polls the site's view for `span`, keeping what it showed.
async fn watch(central: &CentralProcess, site: i64, span: Duration, seen: &mut Vec<Seen>) {
    let until = Instant::now() + span;
    while Instant::now() < until {
        let view = central.ok("GET", &format!("/api/sites/{site}"), None).await;
        let sessions = view["sessions"]
            .as_array()
            .expect("the site's sessions")
            .iter()
            .map(|s| {
                (
                    s["transaction"].as_i64().unwrap(),
                    s["granted_a"].as_f64(),
                    s["measured_a"].as_f64(),
                    s["queued"] == true,
                )
            })
            .collect();
        seen.push(Seen { sessions });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A session as the central recorded it.
struct Session {
    pile: String,
    start: i64,
    stop: i64,
    /// Its Current.Import samples: (time, A).
    samples: Vec<(i64, f64)>,
    /// When the allocator first decided about it.
    decided: i64,
}

/// The longest a SetChargingProfile the site sent waited for its answer (each Accepted).
async fn longest_profile_round_trip(central: &CentralProcess, ids: &[String]) -> i64 {
    let mut longest = 0;
    let mut sent = 0;
    for id in ids {
        let commands = central
            .ok("GET", &format!("/api/piles/{id}/commands?limit=1000"), None)
            .await;
        for c in commands.as_array().unwrap() {
            if c["action"] != "SetChargingProfile" {
                continue;
            }
            assert_eq!(c["result"]["response"]["status"], "Accepted", "{id}: {c}");
            longest = longest.max(ms(&c["answered_at"]) - ms(&c["sent_at"]));
            sent += 1;
        }
    }
    assert!(sent > 2 * ids.len(), "{sent} profiles sent");
    longest
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_of_ten_fleet_piles_stays_within_its_capacity() {
    let central = start_central(
        &state_dir("site-fleet-central"),
        None,
        &["--admission", "open"],
    );
    central.accept_id_tag(CARD).await;
    let (_fleet, control) = start_fleet(PILES, &central.ocpp_url(), &state_dir("site-fleet"), &[]);
    fleet_until(&control, WAIT, "every pile accepted", |s| {
        s["accepted"] == PILES
    })
    .await;
    let ids = fleet_ids(PILES);
    // Sessions by card (plug-and-charge off), ended by the EV leaving.
    for (key, value) in [
        ("VendorDirectWorkMode", "false"),
        ("StopTransactionOnEVSideDisconnect", "true"),
    ] {
        each_pile(
            &control,
            &ids,
            "POST",
            "config",
            json!({"key": key, "value": value}),
        )
        .await;
    }

    let site = central
        .ok(
            "POST",
            "/api/sites",
            Some(
                json!({"name": "Depot", "capacity_a": CAPACITY_A, "phases": 1,
                "min_a": MIN_A, "failsafe_a": 0, "settle_s": 5}),
            ),
        )
        .await;
    let site = site["id"].as_i64().unwrap();
    for id in &ids {
        central
            .ok("PUT", &format!("/api/sites/{site}/piles/{id}"), None)
            .await;
    }
    // Every pile holds the fail-safe (0 A: nothing without the central's limit) before the
    // first EV comes.
    for id in &ids {
        poll(WAIT, &format!("{id} took the TxDefaultProfile"), || async {
            let (_, commands) = central
                .api("GET", &format!("/api/piles/{id}/commands"), None)
                .await;
            commands
                .as_array()?
                .iter()
                .any(|c| {
                    c["payload"]["csChargingProfiles"]["chargingProfilePurpose"]
                        == "TxDefaultProfile"
                        && c["result"]["response"]["status"] == "Accepted"
                })
                .then_some(())
        })
        .await;
    }

    // The EVs arrive, 32 A and 16 A in turn, one every ARRIVAL_GAP.
    let mut seen = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let amps = if i % 2 == 0 { 32.0 } else { 16.0 };
        let (code, body) = http(
            &control,
            "POST",
            &format!("/piles/{id}/connectors/1/plug"),
            Some(json!({"max_current": amps})),
        )
        .await;
        assert_eq!(code, 200, "{id}: {body}");
        let (code, body) = http(
            &control,
            "POST",
            &format!("/piles/{id}/card"),
            Some(json!({"idTag": CARD, "connector": 1})),
        )
        .await;
        assert_eq!(code, 200, "{id}: {body}");
        watch(&central, site, ARRIVAL_GAP, &mut seen).await;
    }
    // All ten charge a while (past the settling time), then they leave one by one.
    watch(&central, site, Duration::from_secs(6), &mut seen).await;
    for id in &ids {
        let (code, body) = http(
            &control,
            "POST",
            &format!("/piles/{id}/connectors/1/unplug"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{id}: {body}");
        watch(&central, site, DEPARTURE_GAP, &mut seen).await;
    }
    let transactions = central
        .until("/api/transactions", "every session stopped", |t| {
            t.as_array()
                .is_some_and(|t| t.len() == PILES && t.iter().all(|t| !t["stop"].is_null()))
        })
        .await;

    // Each session ended by its StopTransaction (the EV left), with energy.
    let allocations = central
        .ok(
            "GET",
            &format!("/api/sites/{site}/allocations?limit=1000"),
            None,
        )
        .await;
    let mut first_decision: BTreeMap<i64, i64> = BTreeMap::new();
    for a in allocations.as_array().unwrap() {
        let t = a["transaction"].as_i64().unwrap();
        let at = ms(&a["time"]);
        first_decision
            .entry(t)
            .and_modify(|d| *d = (*d).min(at))
            .or_insert(at);
    }
    let mut sessions = Vec::new();
    for t in transactions.as_array().unwrap() {
        assert_eq!(t["reason"], "EVDisconnected", "{t}");
        assert!(t["energy_wh"].as_i64().unwrap() > 0, "{t}");
        let id = t["id"].as_i64().unwrap();
        let values = central
            .ok("GET", &format!("/api/transactions/{id}/meter-values"), None)
            .await;
        let samples: Vec<(i64, f64)> = values
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| Some((ms(&v["time"]), current_import(&v["sampled_value"])?)))
            .collect();
        assert!(samples.len() >= 5, "{t}: {samples:?}");
        sessions.push(Session {
            pile: t["pile"].as_str().unwrap().to_owned(),
            start: ms(&t["start"]),
            stop: ms(&t["stop"]),
            samples,
            decided: *first_decision
                .get(&id)
                .unwrap_or_else(|| panic!("no decision about {t}")),
        });
    }

    // No session below the minimum while it charges (a sample of 0 A: not charging, before
    // its first limit or as it stops), in the meter values and in the site's view.
    for s in &sessions {
        for &(at, amps) in &s.samples {
            assert!(
                amps == 0.0 || amps >= MIN_A - EPSILON_A,
                "{} at {at}: {amps} A",
                s.pile
            );
        }
        assert!(
            s.samples.iter().any(|&(_, a)| a >= MIN_A - EPSILON_A),
            "{} never charged: {:?}",
            s.pile,
            s.samples
        );
    }
    let mut busiest = 0.0_f64;
    for view in &seen {
        let mut sum = 0.0;
        for &(t, granted, measured, queued) in &view.sessions {
            assert!(!queued, "ten sessions of 6 A fit in 63 A: {t} queued");
            if let Some(g) = granted {
                assert!(g >= MIN_A - EPSILON_A, "{t} granted {g} A");
            }
            if let Some(m) = measured.filter(|&m| m > 0.0) {
                assert!(m >= MIN_A - EPSILON_A, "{t} measured {m} A");
                sum += m;
            }
        }
        busiest = busiest.max(sum);
    }
    // The capacity is used, not merely respected.
    assert!(
        busiest >= PILES as f64 * MIN_A,
        "the site's view never showed more than {busiest} A"
    );

    // The reaction window after an arrival: the allocator's first decision about it (its
    // look at the store, every second), the longest profile round trip (the others lowered
    // and confirmed before the newcomer is raised), then one meter interval for the lowered
    // currents to show.
    let round_trip = longest_profile_round_trip(&central, &ids).await;
    let look = i64::try_from(central::site::runtime::EVERY.as_millis()).unwrap();
    let mut windows = Vec::new();
    for s in &sessions {
        let decide = s.decided - s.start;
        assert!(
            (0..=2 * look).contains(&decide),
            "{}: decided {decide} ms after its start",
            s.pile
        );
        windows.push((s.start, s.start + decide + round_trip + METER_INTERVAL_MS));
    }
    // The measured sum at every sample: each running session at its latest Current.Import.
    let mut instants: Vec<i64> = sessions
        .iter()
        .flat_map(|s| s.samples.iter().map(|&(at, _)| at))
        .collect();
    instants.sort_unstable();
    let (mut checked, mut over, mut highest) = (0, 0, 0.0_f64);
    for &at in &instants {
        let sum: f64 = sessions
            .iter()
            .filter(|s| s.start <= at && at < s.stop)
            .filter_map(|s| {
                s.samples
                    .iter()
                    .rev()
                    .find(|&&(t, _)| t <= at)
                    .map(|&(_, a)| a)
            })
            .sum();
        highest = highest.max(sum);
        if sum > CAPACITY_A + EPSILON_A {
            over += 1;
            assert!(
                windows.iter().any(|&(from, to)| from <= at && at <= to),
                "{sum} A measured at {at}, outside the reaction window of every arrival \
                 ({windows:?}, profile round trip {round_trip} ms)"
            );
        }
        checked += 1;
    }
    println!(
        "{checked} instants: the highest sum {highest:.1} A, {over} above {CAPACITY_A} A within \
         a reaction window; the site's view at most {busiest:.1} A; profile round trip at most \
         {round_trip} ms"
    );
    assert!(checked > 100, "{checked} instants checked");
}
