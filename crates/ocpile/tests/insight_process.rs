//! DBGEnableInsight (FAQ 3.7): the real pile streams its log to an MQTT broker while the key
//! names one, and stops when it is emptied. Needs a broker: `$OCPILE_MQTT` (default
//! 127.0.0.1:1883), which `scripts/test.sh` checks for.

mod common;

use std::time::Duration;

use common::wire::{accept, server, Wire};
use common::{start_pile, state_dir, WAIT};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn broker() -> (String, u16) {
    let addr = std::env::var("OCPILE_MQTT").unwrap_or_else(|_| "127.0.0.1:1883".into());
    let (host, port) = addr.rsplit_once(':').expect("OCPILE_MQTT is host:port");
    (host.to_owned(), port.parse().expect("a port"))
}

/// Subscribes to the pile's insight topic; the records arrive on the receiver.
async fn subscribe(serial: &str) -> mpsc::UnboundedReceiver<Value> {
    let (host, port) = broker();
    if let Err(e) = tokio::net::TcpStream::connect((host.as_str(), port)).await {
        panic!(
            "this test needs an MQTT broker, and none answers at {host}:{port} ({e}): start \
             Mosquitto, or set OCPILE_MQTT=host:port (scripts/test.sh starts one as root)"
        );
    }
    let options = MqttOptions::new(format!("test-{serial}"), host.clone(), port);
    let (client, mut events) = AsyncClient::new(options, 64);
    client
        .subscribe(format!("ocpile/{serial}/insight"), QoS::AtMostOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(e) => panic!("no MQTT broker at {host}:{port} (set OCPILE_MQTT): {e}"),
            }
        }
    });
    timeout(WAIT, subscribed.recv())
        .await
        .expect("the broker confirms the subscription");
    rx
}

#[tokio::test(flavor = "multi_thread")]
async fn dbg_enable_insight_streams_the_log_over_mqtt_until_emptied() {
    let serial = format!("INSIGHT-{}", std::process::id());
    let mut records = subscribe(&serial).await;
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("insight");
    let _pile = start_pile(&serial, &url, &state, &[]);
    accept(&mut server, &wire).await;
    wire.wait_for("BootNotification", 1).await;
    let (host, port) = broker();
    let answer = wire
        .call(
            "i-1",
            "ChangeConfiguration",
            json!({"key": "DBGEnableInsight", "value": format!("{host},{port}")}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    // Triggered heartbeats until one shows in the stream, as the pile sent it.
    let heartbeat = timeout(WAIT, async {
        let mut n = 0;
        loop {
            n += 1;
            wire.call(
                &format!("hb-{n}"),
                "TriggerMessage",
                json!({"requestedMessage": "Heartbeat"}),
            )
            .await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(record)) = tokio::time::timeout_at(deadline, records.recv()).await {
                if record["kind"] == "send"
                    && record["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("\"Heartbeat\"")
                {
                    return record;
                }
            }
        }
    })
    .await
    .expect("the pile's frames in the insight stream");
    assert!(heartbeat["time"].as_str().unwrap().ends_with('Z'));
    let frame: Value = serde_json::from_str(heartbeat["text"].as_str().unwrap()).unwrap();
    assert_eq!(frame[0], 2);
    // Emptied: the stream stops.
    let answer = wire
        .call(
            "i-2",
            "ChangeConfiguration",
            json!({"key": "DBGEnableInsight", "value": ""}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    // A heartbeat while it is off, then on again and heartbeats until one shows: the one
    // triggered while it was off never does.
    wire.call(
        "hb-while-off",
        "TriggerMessage",
        json!({"requestedMessage": "Heartbeat"}),
    )
    .await;
    let answer = wire
        .call(
            "i-3",
            "ChangeConfiguration",
            json!({"key": "DBGEnableInsight", "value": format!("{host},{port}")}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    let mut seen = Vec::new();
    timeout(WAIT, async {
        let mut n = 0;
        loop {
            n += 1;
            let id = format!("hb-on-again-{n}");
            wire.call(
                &id,
                "TriggerMessage",
                json!({"requestedMessage": "Heartbeat"}),
            )
            .await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(record)) = tokio::time::timeout_at(deadline, records.recv()).await {
                let text = record["text"].as_str().unwrap_or_default().to_owned();
                seen.push(text.clone());
                if text.contains("hb-on-again") {
                    return;
                }
            }
        }
    })
    .await
    .expect("the stream resumes");
    assert!(
        !seen.iter().any(|t| t.contains("hb-while-off")),
        "nothing was streamed while the key was empty: {seen:?}"
    );
}
