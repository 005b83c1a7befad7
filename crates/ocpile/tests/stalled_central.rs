//! A central system that stops reading our frames: the pile's writes make no progress, it
//! notices within its write timeout and reconnects, and its control port answers meanwhile.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, start_pile_with_control, state_dir, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::Message;

#[tokio::test(flavor = "multi_thread")]
async fn a_central_that_stops_reading_is_left_and_the_control_port_answers_meanwhile() {
    let mut server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
        .await
        .unwrap();
    let url = format!("ws://{}/ocpp/", server.local_addr());
    let state = state_dir("stalled-central");
    let (_pile, control) =
        start_pile_with_control("SN-STALL", &url, &state, &["--write-timeout", "2"]);
    let first = timeout(WAIT, server.accept()).await.unwrap().unwrap();
    let (mut sink, mut stream) = first.ws.split();
    // Accept the boot, then stop reading.
    loop {
        let m = timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v[2] == "BootNotification" {
            let answer = json!([3, v[1], {"status": "Accepted", "currentTime": "2026-12-01T00:00:00.000Z", "interval": 900}]);
            sink.send(Message::text(answer.to_string())).await.unwrap();
            break;
        }
    }
    // Thousands of GetConfiguration CALLs, each answered with every key (about 3.5 kB): the
    // answers fill the socket buffers, and the pile's writes stall.
    let flood = tokio::spawn(async move {
        for i in 0..8000 {
            let call = json!([2, format!("g{i}"), "GetConfiguration", {}]).to_string();
            if sink.send(Message::text(call)).await.is_err() {
                break;
            }
        }
        sink
    });
    let stalled_at = Instant::now();
    // The control port answers while the link is stuck.
    for _ in 0..5 {
        let asked = Instant::now();
        let (code, _) = timeout(
            Duration::from_secs(2),
            http(&control, "GET", "/state", None),
        )
        .await
        .expect("the control port answers at once");
        assert_eq!(code, 200);
        assert!(asked.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The pile gives up on the stalled connection and connects again.
    let second = timeout(WAIT, server.accept())
        .await
        .expect("the pile reconnects")
        .unwrap();
    assert!(
        stalled_at.elapsed() >= Duration::from_secs(1),
        "left after its writes stalled, not before"
    );
    // And it answers there.
    let (mut sink2, mut stream2) = second.ws.split();
    let call = json!([2, "again", "GetConfiguration", {"key": ["HeartbeatInterval"]}]);
    sink2.send(Message::text(call.to_string())).await.unwrap();
    let answer = loop {
        let m = timeout(WAIT, stream2.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v[1] == "again" {
            break v;
        }
    };
    assert_eq!(answer[2]["configurationKey"][0]["value"], "900");
    drop((flood, stream));
}
