//! The sans-I/O RPC endpoint: one outstanding CALL, ordered queue, timeouts, late replies.

use std::time::Duration;

use ocpp::rpc::{CallFailure, Endpoint, Inbound};
use ocpp::{Action, CallErrorCode, HeartbeatRequest, Policy, Response};
use serde_json::Value;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sent(ep: &mut Endpoint) -> Vec<Value> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|f| serde_json::from_str(&f).unwrap())
        .collect()
}

const BOOT: &str = r#"{"chargePointVendor":"V","chargePointModel":"M"}"#;

#[test]
fn one_call_outstanding_and_the_rest_in_order() {
    let mut ep = Endpoint::new(Policy::Strict, secs(30), "c");
    let boot = ep.call_raw(Action::BootNotification, BOOT.into(), secs(0));
    let hb = ep.call(&HeartbeatRequest {}, secs(0));
    let frames = sent(&mut ep);
    assert_eq!(frames.len(), 1, "only the first CALL goes out");
    assert_eq!(frames[0][2], "BootNotification");
    let id = frames[0][1].as_str().unwrap().to_owned();
    assert!(id.len() <= 36);
    assert_eq!(ep.queued(), 1);

    let reply = format!(
        r#"[3,"{id}",{{"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":300}}]"#
    );
    match ep.handle_frame(&reply, secs(1)) {
        Inbound::Reply {
            ticket,
            action: Action::BootNotification,
            outcome: Ok(d),
        } => {
            assert_eq!(ticket, boot);
            assert!(matches!(d.value, Response::BootNotification(ref b) if b.interval == 300));
        }
        other => panic!("{other:?}"),
    }
    let frames = sent(&mut ep);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0][2], "Heartbeat");
    assert_ne!(frames[0][1].as_str().unwrap(), id, "ids are unique");
    let hb_id = frames[0][1].as_str().unwrap().to_owned();
    match ep.handle_frame(
        &format!(r#"[4,"{hb_id}","InternalError","db down",{{"x":1}}]"#),
        secs(2),
    ) {
        Inbound::Reply {
            ticket,
            outcome: Err(CallFailure::CallError(e)),
            ..
        } => {
            assert_eq!(ticket, hb);
            assert_eq!(e.code, CallErrorCode::InternalError);
            assert_eq!(e.details["x"], 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_timeout_retires_the_id_so_a_late_reply_never_matches_a_newer_call() {
    let mut ep = Endpoint::new(Policy::Strict, secs(30), "c");
    let first = ep.call(&HeartbeatRequest {}, secs(0));
    let second = ep.call(&HeartbeatRequest {}, secs(0));
    let old_id = sent(&mut ep)[0][1].as_str().unwrap().to_owned();
    assert!(ep.poll_timeout(secs(29)).is_none());
    assert_eq!(ep.next_deadline(), Some(secs(30)));
    match ep.poll_timeout(secs(30)) {
        Some(Inbound::Reply {
            ticket,
            outcome: Err(CallFailure::Timeout),
            ..
        }) => assert_eq!(ticket, first),
        other => panic!("{other:?}"),
    }
    let new_id = sent(&mut ep)[0][1].as_str().unwrap().to_owned();
    let late = format!(r#"[3,"{old_id}",{{"currentTime":"2026-01-01T00:00:00.000Z"}}]"#);
    match ep.handle_frame(&late, secs(31)) {
        Inbound::Dropped(why) => assert!(why.contains("late"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(ep.poll_transmit().is_none(), "a late reply is not answered");
    assert_eq!(ep.outstanding().map(|o| o.0), Some(second));
    let ok = format!(r#"[3,"{new_id}",{{"currentTime":"2026-01-01T00:00:00.000Z"}}]"#);
    assert!(
        matches!(ep.handle_frame(&ok, secs(32)), Inbound::Reply { ticket, outcome: Ok(_), .. } if ticket == second)
    );
}

#[test]
fn a_reply_that_does_not_decode_fails_the_call() {
    let mut ep = Endpoint::new(Policy::Strict, secs(30), "c");
    ep.call(&HeartbeatRequest {}, secs(0));
    let id = sent(&mut ep)[0][1].as_str().unwrap().to_owned();
    match ep.handle_frame(&format!(r#"[3,"{id}",{{"currentTime":"noon"}}]"#), secs(1)) {
        Inbound::Reply {
            outcome: Err(CallFailure::BadResponse(e)),
            ..
        } => assert_eq!(e.code, CallErrorCode::PropertyConstraintViolation),
        other => panic!("{other:?}"),
    }
    assert!(ep.poll_transmit().is_none(), "a reply is never answered");
}

#[test]
fn incoming_calls_are_decoded_and_answered() {
    let mut ep = Endpoint::new(Policy::Strict, secs(30), "c");
    match ep.handle_frame(r#"[2,"in1","Reset",{"type":"Soft"}]"#, secs(0)) {
        Inbound::Call { id, request } => {
            assert_eq!(id, "in1");
            assert_eq!(request.value.action(), Action::Reset);
            ep.respond(
                &id,
                &Response::Reset(ocpp::ResetResponse {
                    status: ocpp::ResetStatus::Accepted,
                }),
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ep.poll_transmit().unwrap(),
        r#"[3,"in1",{"status":"Accepted"}]"#
    );
    ep.respond_error("in2", &ocpp::CallError::not_supported("GetLog"));
    assert_eq!(
        ep.poll_transmit().unwrap(),
        r#"[4,"in2","NotSupported","GetLog is not supported",{}]"#
    );
}

#[test]
fn disconnect_fails_everything() {
    let mut ep = Endpoint::new(Policy::Strict, secs(30), "c");
    let a = ep.call(&HeartbeatRequest {}, secs(0));
    let b = ep.call(&HeartbeatRequest {}, secs(0));
    let failed = ep.disconnect();
    assert_eq!(failed, vec![(a, Action::Heartbeat), (b, Action::Heartbeat)]);
    assert!(ep.poll_transmit().is_none());
    assert!(ep.outstanding().is_none());
}
