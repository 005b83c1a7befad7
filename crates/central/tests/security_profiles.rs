//! Each pile's Security Profile at the handshake, on SQLite and PostgreSQL: a table of
//! handshakes by profile with the HTTP status and the reason recorded, the profile a pile
//! connected with that no later handshake may go below until an operator lowers it, and the
//! rotation of its password with ChangeConfiguration AuthorizationKey.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use transport::client::{connect, ClientConfig};
use transport::tls::{client_config, TlsVersion};
use transport::{Message, TransportError, WsStream};

use common::pki::Pki;
use common::wait::until;

mod common;

const PASSWORD: &str = "right-password-1";

/// A central system under test, on TLS (its CA) or plain.
struct Node {
    running: central::Running,
    /// The CA of its server certificate and of the piles' certificates, when on TLS.
    pki: Option<Pki>,
    http: reqwest::Client,
}

/// What a handshake presents.
#[derive(Clone, Copy, Debug)]
struct Shows {
    /// The Basic user and password.
    basic: Option<(&'static str, &'static str)>,
    /// A client certificate: its subject CN (`Some("")`: none).
    cert: Option<&'static str>,
}

const NOTHING: Shows = Shows {
    basic: None,
    cert: None,
};

fn basic(user: &'static str, password: &'static str) -> Shows {
    Shows {
        basic: Some((user, password)),
        cert: None,
    }
}

fn cert(cn: &'static str) -> Shows {
    Shows {
        basic: None,
        cert: Some(cn),
    }
}

impl Node {
    async fn start(db: Option<&str>, label: &str, tls: bool) -> Node {
        let (mut options, pki) = if tls {
            let pki = Pki::new();
            (pki.tls_options(label), Some(pki))
        } else {
            (common::node::options(label, "plain"), None)
        };
        options.db = db.map(str::to_owned);
        Node::with(options, pki).await
    }

    /// A node of these options, on TLS with `pki`'s certificates when given.
    async fn with(mut options: central::Options, pki: Option<Pki>) -> Node {
        options.command_timeout = Duration::from_secs(2);
        let running = common::node::start(options).await;
        let mut http = reqwest::Client::builder().resolve("localhost", running.local_addr);
        if let Some(pki) = &pki {
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap(),
            );
        }
        Node {
            running,
            pki,
            http: http.build().unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    fn scheme(&self) -> &'static str {
        if self.pki.is_some() {
            "s"
        } else {
            ""
        }
    }

    /// `METHOD path` of the API: its status and JSON answer.
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!(
            "http{}://localhost:{}{path}",
            self.scheme(),
            self.addr().port()
        );
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(common::node::TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn register(&self, id: &str, profile: i64, password: Option<&str>) {
        let mut body = json!({"id": id, "security_profile": profile});
        if let Some(pw) = password {
            body["password"] = json!(pw);
        }
        let (status, answer) = self.api("POST", "/api/piles", Some(body)).await;
        assert_eq!(status, 201, "{answer}");
    }

    async fn pile(&self, id: &str) -> Value {
        let (status, pile) = self.api("GET", &format!("/api/piles/{id}"), None).await;
        assert_eq!(status, 200, "{pile}");
        pile
    }

    /// A websocket handshake of `id` (ws or wss as the node listens).
    async fn handshake(&self, id: &str, shows: Shows) -> Result<WsStream, TransportError> {
        let port = self.addr().port();
        let mut config =
            ClientConfig::new(format!("ws{}://localhost:{port}/ocpp/{id}", self.scheme()));
        config.resolve = vec![("localhost".into(), port, self.addr())];
        config.basic = shows
            .basic
            .map(|(user, pw)| (user.to_owned(), pw.as_bytes().to_vec()));
        if let Some(pki) = &self.pki {
            let identity = shows
                .cert
                .map(|cn| pki.issue(&[], Some(cn).filter(|c| !c.is_empty())));
            let identity = identity.as_ref().map(|(c, k)| (c.as_bytes(), k.as_bytes()));
            config.tls = Some(
                client_config(
                    pki.ca_pem.as_bytes(),
                    &[TlsVersion::Tls13, TlsVersion::Tls12],
                    identity,
                )
                .unwrap(),
            );
        }
        connect(&config).await
    }

    /// The HTTP status a handshake gets (101 when it connects; the connection is closed), and
    /// the reason recorded for a refusal.
    async fn status(&self, id: &str, shows: Shows) -> (u16, String) {
        match self.handshake(id, shows).await {
            Ok(mut ws) => {
                let _ = ws.close(None).await;
                (101, String::new())
            }
            Err(TransportError::Refused { status, .. }) => {
                let (_, refused) = self.api("GET", "/api/handshakes/refused", None).await;
                let reason = refused
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["identity"] == id)
                    .map(|r| {
                        assert_eq!(r["http_status"], status, "{r}");
                        r["reason"].as_str().unwrap().to_owned()
                    })
                    .unwrap_or_else(|| panic!("no refusal of {id} recorded: {refused}"));
                (status, reason)
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
}

/// The databases of a test: SQLite in the node's data directory, and a PostgreSQL schema.
fn databases(name: &str) -> [(&'static str, Option<String>); 2] {
    [
        ("sqlite", None),
        ("postgres", Some(common::database_url("secprof", name))),
    ]
}

/// One handshake of the table: the pile's profile, what it shows, the HTTP status, the start
/// of the reason recorded (or, for 101, the profile it then has connected with).
type Row = (i64, Shows, u16, &'static str);

#[tokio::test(flavor = "multi_thread")]
async fn each_profile_admits_the_handshakes_that_reach_it() {
    let wss: &[Row] = &[
        (0, NOTHING, 101, "0"),
        (0, basic("T", "wrong-password-1"), 101, "0"),
        (0, basic("T", PASSWORD), 101, "2"),
        (0, cert("T"), 101, "3"),
        (
            0,
            cert("SOMEONE-ELSE"),
            403,
            "the client certificate's CN \"SOMEONE-ELSE\"",
        ),
        (1, NOTHING, 401, "no Basic credentials"),
        (1, basic("T", "wrong-password-1"), 401, "wrong password"),
        (
            1,
            basic("OTHER", PASSWORD),
            401,
            "the Basic user \"OTHER\" is not the identity",
        ),
        (1, basic("T", PASSWORD), 101, "2"),
        (1, cert("T"), 101, "3"),
        (2, NOTHING, 401, "no Basic credentials"),
        (2, basic("T", "wrong-password-1"), 401, "wrong password"),
        (2, basic("T", PASSWORD), 101, "2"),
        (2, cert("T"), 101, "3"),
        (
            3,
            basic("T", PASSWORD),
            403,
            "no client certificate with a subject CN",
        ),
        (3, cert(""), 403, "no client certificate with a subject CN"),
        (
            3,
            cert("SOMEONE-ELSE"),
            403,
            "the client certificate's CN \"SOMEONE-ELSE\"",
        ),
        (3, cert("T"), 101, "3"),
    ];
    let ws: &[Row] = &[
        (0, NOTHING, 101, "0"),
        (0, basic("T", PASSWORD), 101, "1"),
        (1, NOTHING, 401, "no Basic credentials"),
        (1, basic("T", "wrong-password-1"), 401, "wrong password"),
        (1, basic("T", PASSWORD), 101, "1"),
        (
            2,
            basic("T", PASSWORD),
            403,
            "security profile 2 needs TLS (wss://)",
        ),
        (
            3,
            basic("T", PASSWORD),
            403,
            "security profile 3 needs TLS (wss://)",
        ),
    ];
    for (kind, db) in databases("table") {
        for (tls, rows) in [(true, wss), (false, ws)] {
            let label = format!("secprof-table-{kind}-{tls}");
            let db = db
                .as_deref()
                .map(|url| url.replace("_table_", &format!("_table_{tls}_")));
            let node = Node::start(db.as_deref(), &label, tls).await;
            for (n, &(profile, shows, expected, what)) in rows.iter().enumerate() {
                // A pile of its own for each row (the user "T" stands for its identity).
                let id = format!("P{n}");
                let fix = |s: Shows| Shows {
                    basic: s
                        .basic
                        .map(|(u, p)| (if u == "T" { leak(&id) } else { u }, p)),
                    cert: s.cert.map(|c| if c == "T" { leak(&id) } else { c }),
                };
                let password = (profile != 3 || !tls).then_some(PASSWORD);
                if profile >= 2 && !tls {
                    // As a central that no longer runs on TLS finds such a pile.
                    node.register(&id, 1, password).await;
                    set_profile(&node, &id, profile).await;
                } else {
                    node.register(&id, profile, password).await;
                }
                let at = format!(
                    "{kind}, {}, profile {profile}, {shows:?}",
                    if tls { "wss" } else { "ws" }
                );
                let (status, reason) = node.status(&id, fix(shows)).await;
                assert_eq!(status, expected, "{at}: {reason}");
                if status == 101 {
                    assert_eq!(
                        node.pile(&id).await["connected_profile"].to_string(),
                        what,
                        "{at}"
                    );
                } else {
                    assert!(reason.starts_with(what), "{at}: {reason}");
                }
            }
        }
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// Sets a profile through the store, as a central on TLS did before this one started without.
async fn set_profile(node: &Node, id: &str, profile: i64) {
    node.running
        .central
        .writer()
        .write(central::store::WriteOp::SetSecurity {
            id: id.to_owned(),
            security_profile: Some(profile),
            allow_downgrade: false,
            password_hash: None,
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_a_profile_the_central_cannot_hold() {
    let node = Node::start(None, "secprof-api", false).await;
    let register = |body: Value| node.api("POST", "/api/piles", Some(body));
    for (body, why) in [
        (
            json!({"id": "A", "security_profile": 2, "password": PASSWORD}),
            "needs TLS",
        ),
        (json!({"id": "A", "security_profile": 3}), "needs TLS"),
        (
            json!({"id": "A", "security_profile": 1}),
            "needs a password",
        ),
        (json!({"id": "A", "security_profile": 4}), "0 to 3"),
        (json!({"id": "A", "security_profile": "1"}), "bad JSON body"),
    ] {
        let (status, answer) = register(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{body}: {answer}"
        );
    }
    let (status, pile) = register(json!({"id": "A", "password": PASSWORD})).await;
    assert_eq!(status, 201);
    assert_eq!(
        (
            pile["security_profile"].as_i64(),
            pile["has_password"].as_bool()
        ),
        (Some(1), Some(true))
    );
    for (body, status, why) in [
        (json!({"security_profile": 2}), 400, "needs TLS"),
        (json!({}), 400, "nothing to change"),
        (
            json!({"security_profile": 1, "bogus": 1}),
            400,
            "unknown field",
        ),
        (json!({"password": "short"}), 400, "8 to 64 characters"),
        (json!({"security_profile": 0}), 409, "allow_downgrade"),
    ] {
        let (got, answer) = node.api("PATCH", "/api/piles/A", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{body}: {answer}"
        );
    }
    let (status, _) = node
        .api(
            "PATCH",
            "/api/piles/NONE",
            Some(json!({"security_profile": 1})),
        )
        .await;
    assert_eq!(status, 404);
    // On TLS without --client-ca, profile 3 is verified against the central's own CA.
    let pki = Pki::new();
    let mut options = pki.tls_options("secprof-api-no-ca");
    options.client_ca = None;
    let tls_node = Node::with(options, Some(pki)).await;
    let (status, answer) = tls_node
        .api(
            "POST",
            "/api/piles",
            Some(json!({"id": "B", "security_profile": 3})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["security_profile"], 3, "{answer}");
    let (status, answer) = tls_node
        .api(
            "POST",
            "/api/piles",
            Some(json!({"id": "C", "security_profile": 2, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_is_not_taken_below_the_profile_it_connected_with() {
    for (kind, db) in databases("downgrade") {
        let sqlite = common::fresh_dir(&format!("secprof-downgrade-{kind}")).join("central.db");
        let db = db.unwrap_or_else(|| format!("sqlite://{}", sqlite.display()));
        // The same database behind a central on TLS and one without.
        let tls = Node::start(Some(&db), &format!("secprof-down-tls-{kind}"), true).await;
        let plain = Node::start(Some(&db), &format!("secprof-down-plain-{kind}"), false).await;
        tls.register("DG", 1, Some(PASSWORD)).await;
        assert_eq!(tls.status("DG", basic("DG", PASSWORD)).await.0, 101);
        let pile = tls.pile("DG").await;
        assert_eq!(
            (
                pile["security_profile"].as_i64(),
                pile["connected_profile"].as_i64()
            ),
            (Some(1), Some(2)),
            "{kind}"
        );

        // Its profile is 1, but it connected with TLS: plain ws is refused, with the reason.
        let (status, reason) = plain.status("DG", basic("DG", PASSWORD)).await;
        assert_eq!(status, 403, "{kind}");
        assert!(
            reason.starts_with("security profile 2 needs TLS (wss://), not plain ws (it connected with security profile 2 before"),
            "{kind}: {reason}"
        );
        // Not without saying so.
        let (status, answer) = plain
            .api(
                "PATCH",
                "/api/piles/DG",
                Some(json!({"security_profile": 1})),
            )
            .await;
        assert_eq!(status, 409, "{kind}: {answer}");
        // What happened is in its events.
        let (_, events) = plain.api("GET", "/api/piles/DG/events", None).await;
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"SecurityProfileHeld"), "{kind}: {events}");
        // A password alone is no lowering, below the profile it connected with too.
        let (status, answer) = plain
            .api(
                "PATCH",
                "/api/piles/DG",
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(
            plain.status("DG", basic("DG", PASSWORD)).await.0,
            403,
            "{kind}"
        );

        let lower = json!({"security_profile": 1, "allow_downgrade": true});
        let (status, pile) = plain.api("PATCH", "/api/piles/DG", Some(lower)).await;
        assert_eq!(status, 200, "{kind}: {pile}");
        assert_eq!(
            (
                pile["security_profile"].as_i64(),
                pile["connected_profile"].as_i64()
            ),
            (Some(1), Some(0)),
            "{kind}"
        );
        let (_, events) = plain.api("GET", "/api/piles/DG/events", None).await;
        let lowered = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "SecurityChanged")
            .unwrap_or_else(|| panic!("{kind}: {events}"));
        assert_eq!(
            lowered["detail"],
            "security profile 1 (was 1); allow_downgrade: the profile it connected with (2) \
             forgotten",
            "{kind}"
        );
        assert_eq!(
            plain.status("DG", basic("DG", PASSWORD)).await.0,
            101,
            "{kind}"
        );
        assert_eq!(plain.pile("DG").await["connected_profile"], 1, "{kind}");
        // Profile 1 still holds.
        assert_eq!(plain.status("DG", NOTHING).await.0, 401, "{kind}");
        // A new password alone lowers nothing, and ends the old one.
        let (status, pile) = plain
            .api(
                "PATCH",
                "/api/piles/DG",
                Some(json!({"password": "another-password"})),
            )
            .await;
        assert_eq!(status, 200, "{kind}: {pile}");
        assert_eq!(
            plain.status("DG", basic("DG", PASSWORD)).await.0,
            401,
            "{kind}"
        );
        assert_eq!(
            plain.status("DG", basic("DG", "another-password")).await.0,
            101,
            "{kind}"
        );
        // Raising needs no permission, and holds at once.
        let (status, pile) = tls
            .api(
                "PATCH",
                "/api/piles/DG",
                Some(json!({"security_profile": 2})),
            )
            .await;
        assert_eq!(status, 200, "{kind}: {pile}");
        assert_eq!(
            plain.status("DG", basic("DG", "another-password")).await.0,
            403,
            "{kind}"
        );
    }
}

/// Reads frames until the central's CALL, and returns its id and payload.
async fn next_call(ws: &mut WsStream) -> (String, Value) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a CALL")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let frame: Value = serde_json::from_str(t.as_str()).unwrap();
            if frame[0] == 2 {
                assert_eq!(frame[2], "ChangeConfiguration", "{frame}");
                return (frame[1].as_str().unwrap().to_owned(), frame[3].clone());
            }
        }
    }
}

/// The pile `ROT` connected with `password`, once its earlier connection is gone and this one
/// is served (a command finds it).
async fn connected(node: &Node, password: &'static str) -> WsStream {
    let online = |want: bool| {
        until(
            Duration::from_secs(10),
            "the pile's connection",
            move || async move { (node.pile("ROT").await["connected"] == want).then_some(()) },
        )
    };
    online(false).await;
    let ws = node.handshake("ROT", basic("ROT", password)).await.unwrap();
    online(true).await;
    ws
}

/// Asks for a rotation while the pile `ws` answers `status` (none: it does not answer);
/// the API's status and answer, and the key sent.
async fn rotate(node: &Node, ws: &mut WsStream, status: Option<&str>) -> (u16, Value, String) {
    let api = node.api("POST", "/api/piles/ROT/password/rotate", None);
    let pile = async {
        let (id, payload) = next_call(ws).await;
        assert_eq!(payload["key"], "AuthorizationKey");
        let key = payload["value"].as_str().unwrap().to_owned();
        if let Some(status) = status {
            let answer = json!([3, id, {"status": status}]).to_string();
            ws.send(Message::text(answer)).await.unwrap();
        }
        key
    };
    let ((code, answer), key) = tokio::join!(api, pile);
    (code, answer, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_password_replaces_the_old_one_once_the_pile_takes_it() {
    for (kind, db) in databases("rotation") {
        let node = Node::start(db.as_deref(), &format!("secprof-rotation-{kind}"), false).await;
        node.register("ROT", 1, Some(PASSWORD)).await;
        let (status, answer) = node
            .api("POST", "/api/piles/ROT/password/rotate", None)
            .await;
        assert_eq!(status, 409, "{kind}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .ends_with("the old password stays"),
            "{answer}"
        );
        let mut ws = connected(&node, PASSWORD).await;

        // Only a rotation gives the pile a password: not a command of its own.
        let (status, answer) = node
            .api(
                "POST",
                "/api/piles/ROT/commands/ChangeConfiguration",
                Some(
                    json!({"key": "authorizationkey", "value": "00112233445566778899aabbccddeeff"}),
                ),
            )
            .await;
        assert_eq!(status, 400, "{kind}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("/password/rotate"),
            "{answer}"
        );
        // Rejected: nothing changes.
        let (status, answer, _) = rotate(&node, &mut ws, Some("Rejected")).await;
        assert_eq!(status, 409, "{kind}: {answer}");
        assert_eq!(
            answer["error"],
            "the pile answered Rejected: the old password stays"
        );
        assert_eq!(
            node.status("ROT", basic("ROT", PASSWORD)).await.0,
            101,
            "{kind}"
        );
        let mut ws = connected(&node, PASSWORD).await;

        // Accepted: the new key is the password; the old one until the pile uses the new.
        let (status, answer, key) = rotate(&node, &mut ws, Some("Accepted")).await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(answer["status"], "Accepted");
        assert_eq!(answer["pile"]["previous_password_valid"], true);
        assert_eq!(key.len(), 40, "{key}");
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        // The key is neither in the message log nor in the commands.
        for path in ["/api/piles/ROT/messages", "/api/piles/ROT/commands"] {
            // Both rotations, the one Rejected and the one Accepted.
            let shown = until(Duration::from_secs(10), "the rotations logged", || async {
                let (_, rows) = node.api("GET", path, None).await;
                let text = rows.to_string();
                (text.matches("AuthorizationKey").count() >= 2).then_some(text)
            })
            .await;
            assert!(
                !shown.contains(&key) && shown.contains("***"),
                "{path}: {shown}"
            );
        }
        // No other rotation until the pile has connected with this one.
        let (status, answer) = node
            .api("POST", "/api/piles/ROT/password/rotate", None)
            .await;
        assert_eq!(status, 409, "{kind}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("last rotation"),
            "{answer}"
        );
        let new: &'static str = leak(&key);
        assert_eq!(node.status("ROT", basic("ROT", new)).await.0, 101, "{kind}");
        assert_eq!(node.pile("ROT").await["previous_password_valid"], false);
        let (status, reason) = node.status("ROT", basic("ROT", PASSWORD)).await;
        assert_eq!((status, reason.as_str()), (401, "wrong password"), "{kind}");

        // No answer: the pile may have taken it, both stay valid until it connects with it.
        let mut ws = connected(&node, new).await;
        let (status, answer, newer) = rotate(&node, &mut ws, None).await;
        assert_eq!(status, 504, "{kind}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("both valid"),
            "{answer}"
        );
        drop(ws);
        assert_eq!(node.status("ROT", basic("ROT", new)).await.0, 101, "{kind}");
        let newer: &'static str = leak(&newer);
        assert_eq!(
            node.status("ROT", basic("ROT", newer)).await.0,
            101,
            "{kind}"
        );
        assert_eq!(node.status("ROT", basic("ROT", new)).await.0, 401, "{kind}");
    }
}
