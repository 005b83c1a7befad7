//! The decoding path that the fuzz target and the corpus replay test drive: frame parsing,
//! CallError classification and payload decoding under both policies, with a round-trip
//! oracle (whatever decodes must re-encode to something that decodes to the same value).

use std::time::Duration;

use crate::action::{Action, Request, Response};
use crate::codec::Policy;
use crate::frame::Frame;
use crate::rpc::{Endpoint, Inbound};

/// Runs `data` through every decoder. Panics only if an invariant breaks.
pub fn exercise_decoder(data: &[u8]) {
    // Websocket text messages are UTF-8; anything else never reaches the decoder.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What the fast path accepts, the general path decodes to the same value, without deviations.
    if let Some((id, fast)) = crate::fastpath::call(text) {
        for policy in [Policy::Strict, Policy::Lenient] {
            let Ok(Some(Frame::Call(call))) = Frame::parse(text) else {
                panic!("fast path accepted a non-CALL: {text}")
            };
            let slow = call
                .decode(policy)
                .expect("fast path accepted what the general path refuses");
            assert_eq!(call.id, id);
            assert_eq!(slow.value, fast, "fast and general paths differ on {text}");
            assert!(slow.deviations.is_empty());
        }
    }
    for policy in [Policy::Strict, Policy::Lenient] {
        let mut endpoint = Endpoint::new(policy, Duration::from_secs(1), "f");
        if let Inbound::Call { request, .. } = endpoint.handle_frame(text, Duration::ZERO) {
            let json = request.value.to_json();
            let again = Request::decode(request.value.action(), &json, policy)
                .expect("a decoded request re-decodes");
            assert_eq!(again.value, request.value, "request round trip of {json}");
        }
        while let Some(answer) = endpoint.poll_transmit() {
            assert!(
                matches!(Frame::parse(&answer), Ok(Some(Frame::CallError { .. }))),
                "answers are CALLERRORs: {answer}"
            );
        }
        if let Ok(Some(Frame::CallResult { payload, .. })) = Frame::parse(text) {
            for &action in Action::ALL {
                if let Ok(d) = Response::decode(action, payload.get(), policy) {
                    let json = d.value.to_json();
                    let again = Response::decode(action, &json, policy)
                        .expect("a decoded response re-decodes");
                    assert_eq!(again.value, d.value, "response round trip of {json}");
                }
            }
        }
    }
}
