//! The MeterValues fast path agrees with the general decoder: whatever it accepts decodes to
//! the same value there, it accepts every canonical encoding, and it leaves the rest alone.

use ocpp::action::strategies;
use ocpp::{Action, Frame, Policy, Request};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn general(text: &str, policy: Policy) -> Option<Request> {
    match Frame::parse(text) {
        Ok(Some(Frame::Call(call))) => call.decode(policy).ok().map(|d| d.value),
        _ => None,
    }
}

/// Spellings of the same frame that the fast path may or may not take; either way the
/// outcome must agree with the general path.
fn variants(frame: &str) -> Vec<String> {
    vec![
        frame.to_owned(),
        frame.replace(',', " ,\n\t").replace(':', " : "),
        frame.replace("\"Celsius\"", "\"Celcius\""),
        frame.replace("\"value\":\"", "\"value\":\"\\u0041"),
        frame.replace("\"connectorId\":", "\"connectorId\":0"),
        frame.replace("\"transactionId\":", "\"transactionId\":null,\"x\":"),
        frame.replace("Z\"", "+00:00\""),
        frame.replace(
            "\"sampledValue\":[",
            "\"sampledValue\":[{\"value\":\"1\",\"value\":\"2\"},",
        ),
        frame.replace("{\"connectorId\"", "{\"connectorId\":1,\"connectorId\""),
        frame.replacen(']', "],1", 1),
        format!("{frame} "),
        format!("{frame}x"),
        frame.replace("[2,", "[2.0,"),
    ]
}

#[test]
fn the_fast_path_agrees_with_the_general_decoder() {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let fast_taken = std::cell::Cell::new(0);
    runner
        .run(&strategies::request(Action::MeterValues), |request| {
            let frame = ocpp::frame::call("id-1", Action::MeterValues, &request.to_json());
            // A canonical encoding without escapes always takes the fast path.
            let plain = !frame.contains('\\') && !frame.chars().any(char::is_control);
            let fast = ocpp::fastpath::call(&frame);
            assert_eq!(fast.is_some(), plain, "{frame}");
            for text in variants(&frame) {
                if let Some((id, value)) = ocpp::fastpath::call(&text) {
                    fast_taken.set(fast_taken.get() + 1);
                    assert_eq!(id, "id-1");
                    for policy in [Policy::Strict, Policy::Lenient] {
                        assert_eq!(general(&text, policy).as_ref(), Some(&value), "{text}");
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        fast_taken.get() > 512,
        "the fast path was taken {} times",
        fast_taken.get()
    );
}
