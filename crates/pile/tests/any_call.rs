//! Whatever the central system sends (every action, generated values), the pile answers each
//! CALL exactly once, with a CALLRESULT that validates against the official response schema or
//! with a CALLERROR, and never panics; every CALL it sends itself validates too.

mod common;

use std::time::Duration;

use common::schemas::Schemas;
use ocpp::action::strategies;
use ocpp::Action;
use pile::{ChargePoint, Input};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::Config;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn booted_pile() -> ChargePoint {
    let mut cp = common::pile(2);
    let out = common::sends(cp.handle(Input::Connected, Duration::ZERO));
    common::answer_all(&mut cp, out, Duration::ZERO, |_| Ok::<(), ()>(())).unwrap();
    assert!(cp.is_accepted());
    cp
}

#[test]
fn every_call_gets_exactly_one_valid_answer() {
    let schemas = Schemas::load();
    let mut runner = common::runner(Config::default().cases);
    let mut answered = BTreeMap::<String, (usize, usize)>::new();
    for &action in Action::ALL {
        let mut cp = booted_pile();
        let (mut results, mut errors) = (0, 0);
        let strategy = strategies::request(action);
        for n in 1..=64u64 {
            let request = strategy.new_tree(&mut runner).unwrap().current();
            let id = format!("cs-{n}");
            let frame = ocpp::frame::call(&id, action, &request.to_json());
            let now = Duration::from_secs(n);
            let out = common::sends(cp.handle(Input::Frame(&frame), now));
            let answers: Vec<&Value> = out.iter().filter(|f| f[0] != 2).collect();
            assert_eq!(answers.len(), 1, "{frame} got {out:?}");
            let answer = answers[0];
            assert_eq!(answer[1], json!(id));
            if answer[0] == 3 {
                results += 1;
                schemas
                    .check(&format!("{}Response", action.as_str()), &answer[2])
                    .unwrap();
            } else {
                errors += 1;
                assert_eq!(answer[0], json!(4), "{answer}");
                assert!(
                    answer[2].is_string() && answer[3].is_string() && answer[4].is_object(),
                    "{answer}"
                );
            }
            // Whatever the pile sends on its own validates, and is answered so the next can go.
            common::answer_all(&mut cp, out, now, |call| {
                schemas.check(call[2].as_str().unwrap(), &call[3])
            })
            .unwrap();
        }
        answered.insert(action.as_str().to_owned(), (results, errors));
    }
    // What the pile handles gets answers; the rest NotSupported.
    for handled in [
        "GetConfiguration",
        "ChangeConfiguration",
        "ChangeAvailability",
        "DataTransfer",
        "TriggerMessage",
        "Reset",
    ] {
        assert!(
            answered[handled].0 > 0,
            "{handled}: {:?}",
            answered[handled]
        );
    }
    println!("{answered:?}");
}
