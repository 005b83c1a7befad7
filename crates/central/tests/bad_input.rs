//! Malformed frames and API payloads, each with the CALLERROR or HTTP error it must get; the
//! connection lives on, and nothing is sent to a pile for a payload that does not decode.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use common::pile::{connect, Ws};

mod common;

async fn start(name: &str) -> central::Running {
    let mut options = common::node::options(&format!("bad-input-{name}"), "bad-input");
    options.command_timeout = Duration::from_secs(2);
    central::server::start(options).await.unwrap()
}

/// Sends a text frame and returns the next text frame that answers it.
async fn exchange(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::text(text)).await.unwrap();
    next_text(ws).await
}

async fn next_text(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_get_the_right_callerror_and_the_connection_lives_on() {
    let running = start("frames").await;
    let mut ws = connect(running.local_addr, "BAD-FRAMES").await;
    let table: &[(&str, &str, &str)] = &[
        ("not json", "-1", "FormationViolation"),
        (r#"{"a":1}"#, "-1", "FormationViolation"),
        (r#"[2,"f1","Heartbeat"]"#, "f1", "ProtocolError"),
        (r#"[2,"f2","Bogus",{}]"#, "f2", "NotImplemented"),
        (
            r#"[2,"f3","Heartbeat",{"x":1}]"#,
            "f3",
            "FormationViolation",
        ),
        (
            r#"[2,"f4","StartTransaction",{"connectorId":1}]"#,
            "f4",
            "OccurenceConstraintViolation",
        ),
        (
            r#"[2,"f5","StatusNotification",{"connectorId":"a","errorCode":"NoError","status":"Available"}]"#,
            "f5",
            "TypeConstraintViolation",
        ),
        (r#"[2,"f6","Reset",{"type":"Soft"}]"#, "f6", "NotSupported"),
        (
            r#"[2,"f7","RemoteStartTransaction",{"idTag":"X"}]"#,
            "f7",
            "NotSupported",
        ),
    ];
    for (frame, id, code) in table {
        let answer = exchange(&mut ws, frame).await;
        assert_eq!(answer[0], 4, "{frame}: {answer}");
        assert_eq!(
            (answer[1].as_str(), answer[2].as_str()),
            (Some(*id), Some(*code)),
            "{frame}: {answer}"
        );
    }
    // An unknown message type is ignored; the next CALL is answered.
    ws.send(Message::text(r#"[7,"x"]"#)).await.unwrap();
    let answer = exchange(&mut ws, r#"[2,"ok","Heartbeat",{}]"#).await;
    assert_eq!(
        (answer[0].as_i64(), answer[1].as_str()),
        (Some(3), Some("ok")),
        "{answer}"
    );
    assert!(answer[2]["currentTime"].is_string());
    // A string over its bound is tolerated (lenient) and recorded as a deviation.
    let answer = exchange(
        &mut ws,
        r#"[2,"long","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available","info":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]"#,
    )
    .await;
    assert_eq!(answer[0], 3, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_api_payloads_get_a_status_with_a_reason() {
    let running = start("api").await;
    let base = format!("http://{}", running.local_addr);
    let client = reqwest::Client::new();
    let mut ws = connect(running.local_addr, "BAD-API").await;
    let boot = exchange(
        &mut ws,
        r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
    )
    .await;
    assert_eq!(boot[2]["status"], "Accepted");
    // The central reads the configuration after the boot: answer with no keys.
    for _ in 0..2 {
        let call = next_text(&mut ws).await;
        assert_eq!(call[2], "GetConfiguration");
        let reply = json!([3, call[1], {"configurationKey": []}]).to_string();
        ws.send(Message::text(reply)).await.unwrap();
    }
    let table: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/api/piles", None, 200, ""),
        (
            "GET",
            "/api/openapi.json",
            None,
            200,
            "\"openapi\": \"3.1.0\"",
        ),
        ("POST", "/api/piles", Some("{"), 400, "bad JSON"),
        ("POST", "/api/piles", Some(r#"{"id":"a/b"}"#), 400, "id"),
        (
            "POST",
            "/api/piles",
            Some(r#"{"id":"P","password":"short"}"#),
            400,
            "password",
        ),
        (
            "POST",
            "/api/piles",
            Some(r#"{"id":"P","extra":1}"#),
            400,
            "unknown field",
        ),
        (
            "POST",
            "/api/piles",
            Some(r#"{"id":"BAD-API"}"#),
            409,
            "registered already",
        ),
        ("GET", "/api/piles/NOPE", None, 404, "no pile"),
        (
            "POST",
            "/api/piles/BAD-API/commands/Reset",
            Some(r#"{"type":"Bogus"}"#),
            400,
            "Reset payload",
        ),
        (
            "POST",
            "/api/piles/BAD-API/commands/Reset",
            Some("not json"),
            400,
            "Reset payload",
        ),
        (
            "POST",
            "/api/piles/BAD-API/commands/Frobnicate",
            Some("{}"),
            404,
            "not an OCPP 1.6 action",
        ),
        (
            "POST",
            "/api/piles/BAD-API/commands/StartTransaction",
            Some("{}"),
            400,
            "sent by piles",
        ),
        (
            "PATCH",
            "/api/piles/BAD-API/vendor",
            Some(r#"{"heartbeat_interval":10}"#),
            400,
            "FAQ 3.16",
        ),
        (
            "PATCH",
            "/api/piles/BAD-API/vendor",
            Some(r#"{"name":"x"}"#),
            400,
            "confirm",
        ),
        (
            "PATCH",
            "/api/piles/BAD-API/vendor",
            Some(r#"{"colour":"red"}"#),
            400,
            "unknown field",
        ),
        ("GET", "/api/transactions?active=maybe", None, 400, "active"),
        (
            "GET",
            "/api/transactions/abc",
            None,
            400,
            "not a transaction id",
        ),
        ("GET", "/api/transactions/99", None, 404, "no transaction"),
        (
            "POST",
            "/api/id-tags",
            Some(r#"{"id_tag":"T1","status":"Great"}"#),
            400,
            "status",
        ),
        (
            "POST",
            "/api/id-tags",
            Some(r#"{"id_tag":"012345678901234567890","status":"Accepted"}"#),
            400,
            "CiString20",
        ),
        (
            "POST",
            "/api/id-tags",
            Some(r#"{"id_tag":"T1","status":"Accepted","expiry_date":"tomorrow"}"#),
            400,
            "expiry_date",
        ),
        (
            "PUT",
            "/api/id-tags/T1",
            Some(r#"{"id_tag":"T2","status":"Accepted"}"#),
            400,
            "differs",
        ),
        ("DELETE", "/api/id-tags/T9", None, 404, "no idTag"),
        (
            "POST",
            "/api/id-tags",
            Some(r#"{"status":"Accepted"}"#),
            400,
            "missing field `id_tag`",
        ),
        ("GET", "/api/nothing-here", None, 404, "no such path"),
        // Parameters axum refuses before a handler runs are answered like the others.
        (
            "GET",
            "/api/piles/BAD-API/messages?limit=many",
            None,
            400,
            r#"{"error":"Failed to deserialize query string"#,
        ),
        (
            "GET",
            "/api/campaigns/abc",
            None,
            400,
            r#"{"error":"Invalid URL"#,
        ),
        (
            "DELETE",
            "/api/transactions",
            None,
            405,
            r#"{"error":"method not allowed"}"#,
        ),
        // A password's length is counted in characters, not bytes.
        (
            "POST",
            "/api/piles",
            Some(r#"{"id":"P7","password":"äääääää"}"#),
            400,
            "8 to 64 characters",
        ),
        (
            "POST",
            "/api/piles",
            Some(
                r#"{"id":"P8","password":"ääääääääääääääääääääääääääääääääääääääääääääääääääääääääääääääää"}"#,
            ),
            201,
            r#""has_password":true"#,
        ),
    ];
    for (method, path, body, status, why) in table {
        let mut r = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth("T");
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let response = r.send().await.unwrap();
        let code = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(code, *status, "{method} {path}: {text}");
        assert!(
            text.contains(why),
            "{method} {path}: {text:?} should say {why:?}"
        );
    }
    // Nothing above reached the pile: the next frame it gets is the command sent now.
    let pending = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/piles/BAD-API/commands/ClearCache");
        async move {
            client
                .post(url)
                .bearer_auth("T")
                .body("{}")
                .send()
                .await
                .unwrap()
        }
    });
    let call = next_text(&mut ws).await;
    assert_eq!(call[2], "ClearCache", "{call}");
    ws.send(Message::text(
        json!([4, call[1], "InternalError", "cache is busy", {}]).to_string(),
    ))
    .await
    .unwrap();
    let response = pending.await.unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"call_error": {"code": "InternalError", "description": "cache is busy"}})
    );
    // A command the pile does not answer: 504 after the command timeout.
    let response = client
        .post(format!("{base}/api/piles/BAD-API/commands/ClearCache"))
        .bearer_auth("T")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 504);
    // Without the token, or with another: 401.
    for auth in [None, Some("wrong")] {
        let mut r = client.get(format!("{base}/api/piles"));
        if let Some(t) = auth {
            r = r.bearer_auth(t);
        }
        assert_eq!(r.send().await.unwrap().status().as_u16(), 401);
    }
    // /metrics needs no token and counts what happened.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"ocpile_connected_piles{node="bad-input"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ocpile_call_errors_total{node="bad-input",code="InternalError"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("ocpile_store_commit_batch_size"),
        "{metrics}"
    );
    // A second connection of the same identity replaces the first, which is closed.
    let mut second = connect(running.local_addr, "BAD-API").await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the older connection is closed");
    let answer = exchange(&mut second, r#"[2,"hb","Heartbeat",{}]"#).await;
    assert_eq!(answer[0], 3);
    let events = client
        .get(format!("{base}/api/piles/BAD-API/events"))
        .bearer_auth("T")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Value = serde_json::from_str(&events).unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "ConnectionReplaced"),
        "{events}"
    );
}

/// The dashboard without the token: the login page, never a page; `?token=` sets the cookie.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_needs_the_token() {
    let running = start("dashboard").await;
    let base = format!("http://{}", running.local_addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, cookie: Option<&str>| {
        let mut r = client.get(format!("{base}{path}"));
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        r.send()
    };
    for path in [
        "/",
        "/piles/X",
        "/campaigns",
        "/transactions",
        "/handshakes",
    ] {
        let r = get(path, None).await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
        let r = get(path, Some("ocpile_token=wrong")).await.unwrap();
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    assert_eq!(get("/events", None).await.unwrap().status(), 401);
    let r = get("/campaigns?token=T", None).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/campaigns");
    assert_eq!(
        r.headers()["set-cookie"],
        "ocpile_token=T; HttpOnly; SameSite=Strict; Path=/"
    );
    let r = get("/campaigns", Some("ocpile_token=T")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Firmware campaigns"));
    let r = get("/piles/NOBODY", Some("ocpile_token=T")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no pile"));
    let login = client
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("token=nope")
        .send()
        .await
        .unwrap();
    assert!(login.headers().get("set-cookie").is_none());
    assert!(login.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?msg="));
    // The firmware download needs no token; an unknown one is 404.
    let r = get("/firmware/1/x.bin", None).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(get("/static/live.js", None).await.unwrap().status(), 200);
}
