//! A central system that stops reading what the pile (the real binary) writes: the pile's
//! writes back up, the write timeout fails the connection and the pile connects again, and its
//! control port answers all along. (Before the writes had a task of their own, the pile's loop
//! waited in the stalled write: no control port, no ticks, no hardware events.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::wire::{accept, Wire};
use common::{http, start_pile_with_control, state_dir, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::Message;

#[tokio::test(flavor = "multi_thread")]
async fn a_central_that_stops_reading_is_left_and_the_control_port_answers_meanwhile() {
    // A small receive buffer, so that what the pile writes backs up soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut server = WsServer::listen(
        socket.listen(16).unwrap(),
        ServerConfig::new(Arc::new(AllowAll)),
    )
    .unwrap();
    let url = format!("ws://{}/ocpp/", server.local_addr());
    let (_pile, control) = start_pile_with_control(
        "STALL-PILE",
        &url,
        &state_dir("stalled-central"),
        &["--write-timeout", "2"],
    );
    let first = timeout(WAIT, server.accept())
        .await
        .expect("the pile connects")
        .unwrap();
    let mut ws = first.ws;
    // Answer the boot, then never read again.
    let boot: Value = loop {
        let Some(Ok(Message::Text(t))) = timeout(WAIT, ws.next()).await.unwrap() else {
            continue;
        };
        let frame: Value = serde_json::from_str(t.as_str()).unwrap();
        if frame[2] == "BootNotification" {
            break frame;
        }
    };
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    ws.send(Message::text(
        json!([3, boot[1], {"status": "Accepted", "currentTime": now, "interval": 300}])
            .to_string(),
    ))
    .await
    .unwrap();
    // Thousands of GetConfiguration: their answers (all the keys each) fill the buffers.
    for i in 0..3000 {
        let call = json!([2, format!("g{i}"), "GetConfiguration", {}]).to_string();
        if timeout(Duration::from_secs(5), ws.send(Message::text(call)))
            .await
            .is_err()
        {
            break;
        }
    }
    // The pile goes on: its control port answers while its writes wait.
    let (code, state) = timeout(
        Duration::from_secs(5),
        http(&control, "GET", "/state", None),
    )
    .await
    .expect("the control port answers while the central does not read");
    assert_eq!(code, 200);
    assert_eq!(state["identity"], "STALL-PILE");
    // The write timeout fails the connection; the pile connects again, and the new
    // connection carries CALLs both ways.
    let wire = Wire::default();
    accept(&mut server, &wire).await;
    wire.connected().await;
    let answer = wire
        .call(
            "t1",
            "TriggerMessage",
            json!({"requestedMessage": "Heartbeat"}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    wire.wait_for("Heartbeat", 1).await;
    let (code, _) = http(&control, "GET", "/state", None).await;
    assert_eq!(code, 200);
    drop(ws);
}
