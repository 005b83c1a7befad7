//! Two nodes of one central system (one PostgreSQL schema, one NATS server), each on a runtime
//! of its own so that a node can die at once, its tasks and sockets gone as in a crash: a
//! campaign created through node A runs on A (the holder of its lease); A dies mid-upgrade, its
//! piles reconnect to B, B takes the campaign up within the lease's time from its stored state
//! and finishes it, no pile getting an UpdateFirmware twice; a cancel asked of the node that
//! does not run a campaign reaches the one that does; the reaping of silent nodes and the log's
//! retention each run on one node, and pass to the other when it dies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use central::store::{At, Repository};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use common::pile::{connect, Ws};
use common::wait::until;

mod common;

const TTL: Duration = Duration::from_secs(3);

/// A node on a runtime of its own.
struct Node {
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<central::Running>,
    addr: SocketAddr,
    name: String,
}

impl Node {
    /// `command_timeout`: how long a command waits for the pile's answer.
    async fn start(test: &str, name: &str, db: &str, command_timeout: u64) -> Node {
        let label = format!("campaign-cluster-{test}-{name}");
        let mut options = common::node::cluster_options(&label, name, db, TTL);
        options.command_timeout = Duration::from_secs(command_timeout);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime.spawn(common::node::start(options)).await.unwrap();
        Node {
            addr: running.local_addr,
            runtime: Some(runtime),
            running: Some(running),
            name: name.to_owned(),
        }
    }

    /// Dies at once: every task and socket of the node is dropped, nothing is given up.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        // What it held belonged to its runtime; it is left as a crash leaves it.
        std::mem::forget(self.running.take());
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        common::node::api(self.addr, method, path, body).await
    }

    async fn campaign(&self, id: &Value) -> Value {
        let (status, c) = self.api("GET", &format!("/api/campaigns/{id}"), None).await;
        assert_eq!(status, 200, "{c}");
        c
    }

    /// Polls the campaign through this node until `done` holds (within 60 s).
    async fn campaign_until(&self, id: &Value, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.campaign(id).await;
            if done(&c) {
                return c;
            }
            assert!(Instant::now() < deadline, "{what}: never; last {c}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a test tells a pile.
enum Do {
    /// Connect (again) to this node.
    Connect(SocketAddr),
    /// Go on with the upgrade: Downloaded, Installing, Installed, then boot on the new version.
    Finish,
    /// Downloaded, Installing, Installed, and no boot yet.
    Install,
    /// Boot on the new version.
    BootNew,
}

/// A pile as a raw websocket client: it boots on version 1.0, answers every CALL, and carries
/// out an upgrade as the central system asks; what it received is counted over all its
/// connections.
struct Pile {
    calls: Arc<Mutex<Vec<String>>>,
    control: mpsc::UnboundedSender<Do>,
}

impl Pile {
    /// `answers_update`: it answers UpdateFirmware (and reports Downloading); else it never
    /// answers one, as if the node died before the answer came.
    fn spawn(id: &str, addr: SocketAddr, answers_update: bool) -> Pile {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (control, rx) = mpsc::unbounded_channel();
        let _ = control.send(Do::Connect(addr));
        tokio::spawn(run_pile(id.to_owned(), answers_update, calls.clone(), rx));
        Pile { calls, control }
    }

    fn received(&self, action: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    fn tell(&self, what: Do) {
        self.control.send(what).unwrap();
    }
}

fn status(s: &str) -> (String, Value) {
    ("FirmwareStatusNotification".into(), json!({ "status": s }))
}

fn installed() -> Vec<(String, Value)> {
    ["Downloaded", "Installing", "Installed"]
        .into_iter()
        .map(status)
        .collect()
}

fn boot_on_new() -> (String, Value) {
    (
        "BootNotification".into(),
        json!({"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "2.0"}),
    )
}

fn rest_of_upgrade() -> Vec<(String, Value)> {
    let mut rest = installed();
    rest.push(boot_on_new());
    rest
}

async fn run_pile(
    id: String,
    answers_update: bool,
    calls: Arc<Mutex<Vec<String>>>,
    mut control: mpsc::UnboundedReceiver<Do>,
) {
    let mut ws: Option<Ws> = None;
    let mut outbox: VecDeque<(String, Value)> = VecDeque::new();
    let mut awaiting: Option<String> = None;
    let mut sent = 0u32;
    let mut booted = false;
    loop {
        if let (Some(w), None, Some((action, payload))) = (ws.as_mut(), &awaiting, outbox.front()) {
            sent += 1;
            let mid = format!("{id}-{sent}");
            let frame = json!([2, mid, action, payload]).to_string();
            if w.send(Message::text(frame)).await.is_ok() {
                awaiting = Some(mid);
                outbox.pop_front();
            }
        }
        let frame = tokio::select! {
            what = control.recv() => {
                match what {
                    Some(Do::Connect(addr)) => {
                        ws = Some(connect(addr, &id).await);
                        awaiting = None;
                        if !booted {
                            booted = true;
                            outbox.push_front((
                                "BootNotification".into(),
                                json!({"chargePointVendor": "V", "chargePointModel": "M",
                                    "firmwareVersion": "1.0"}),
                            ));
                        }
                    }
                    Some(Do::Finish) => outbox.extend(rest_of_upgrade()),
                    Some(Do::Install) => outbox.extend(installed()),
                    Some(Do::BootNew) => outbox.push_back(boot_on_new()),
                    None => return,
                }
                continue;
            }
            frame = async { ws.as_mut().unwrap().next().await }, if ws.is_some() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            // The node is gone: wait to be told where to connect.
            Some(Err(_)) | None => {
                ws = None;
                continue;
            }
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        match v[0].as_i64() {
            Some(3) | Some(4) if v[1].as_str() == awaiting.as_deref() => awaiting = None,
            Some(2) => {
                let action = v[2].as_str().unwrap_or_default().to_owned();
                calls.lock().unwrap().push(action.clone());
                let answer = match action.as_str() {
                    "UpdateFirmware" if !answers_update => continue,
                    "UpdateFirmware" => {
                        outbox.push_back(status("Downloading"));
                        json!({})
                    }
                    "TriggerMessage" => {
                        outbox.push_back(status("Downloading"));
                        outbox.extend(rest_of_upgrade());
                        json!({"status": "Accepted"})
                    }
                    "ChangeAvailability" => json!({"status": "Accepted"}),
                    "GetConfiguration" => json!({"configurationKey": []}),
                    _ => json!({}),
                };
                let reply = json!([3, v[1], answer]).to_string();
                if let Some(w) = ws.as_mut() {
                    let _ = w.send(Message::text(reply)).await;
                }
            }
            _ => {}
        }
    }
}

async fn upload_image(node: &Node) -> Value {
    let client = reqwest::Client::new();
    let resp = client
        .post(format!(
            "http://{}/api/firmware?name=fw-2.0.bin&version=2.0",
            node.addr
        ))
        .bearer_auth("T")
        .body(vec![0x5Au8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let image: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    image["id"].clone()
}

fn rollout<'a>(campaign: &'a Value, pile: &str) -> &'a Value {
    campaign["piles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pile"] == pile)
        .unwrap_or_else(|| panic!("{pile} is not in {campaign}"))
}

/// Creates a campaign through `node`: what it answers.
async fn create_campaign(node: &Node, spec: Value) -> Value {
    let (status, created) = node.api("POST", "/api/campaigns", Some(spec)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Waits until the pile received `action` `times` times (10 s at most).
async fn received(pile: &Pile, action: &str, times: usize) {
    let what = format!("{action} received {times} times");
    until(Duration::from_secs(10), &what, || async {
        (pile.received(action) == times).then_some(())
    })
    .await;
}

/// Two piles on `node` in a campaign of one place at a time: `PREFIX-R1`, which takes the
/// place and never answers its UpdateFirmware, and `PREFIX-R2`, which waits; the image and
/// the campaign's id once R1 got its UpdateFirmware.
async fn one_place_campaign(node: &Node, prefix: &str) -> (Pile, Pile, Value, Value) {
    let (r1_id, r2_id) = (format!("{prefix}-R1"), format!("{prefix}-R2"));
    let r1 = Pile::spawn(&r1_id, node.addr, false);
    let r2 = Pile::spawn(&r2_id, node.addr, true);
    wait_registered(node, &r1_id).await;
    wait_registered(node, &r2_id).await;
    let image = upload_image(node).await;
    let spec = json!({"firmware": [image], "piles": [r1_id, r2_id], "batch_size": 1});
    let id = create_campaign(node, spec).await["id"].clone();
    received(&r1, "UpdateFirmware", 1).await;
    (r1, r2, image, id)
}

async fn wait_registered(node: &Node, pile: &str) {
    until(Duration::from_secs(10), "the pile registered", || async {
        let (status, p) = node.api("GET", &format!("/api/piles/{pile}"), None).await;
        (status == 200 && p["firmware_version"] == "1.0").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_passes_to_another_node_when_its_node_dies_and_sends_nothing_twice() {
    let db = common::database_url("campaign_cluster", "takeover");
    // Commands wait long: Q's unanswered UpdateFirmware is still on its way when A dies.
    let mut a = Node::start("takeover", "camp-a", &db, 60).await;
    let b = Node::start("takeover", "camp-b", &db, 60).await;
    let store = central::store::open(&db).await.unwrap();

    // P answers its UpdateFirmware; Q's answer never comes before A dies.
    let p = Pile::spawn("CC-P", a.addr, true);
    let q = Pile::spawn("CC-Q", a.addr, false);
    wait_registered(&a, "CC-P").await;
    wait_registered(&a, "CC-Q").await;
    let image = upload_image(&a).await;
    let created = create_campaign(
        &a,
        json!({"firmware": [image], "piles": ["CC-P", "CC-Q"], "batch_size": 2}),
    )
    .await;
    let id = created["id"].clone();
    assert_eq!(
        created["node"], "camp-a",
        "taken by the node that created it"
    );
    // B shows it from the store, run by A.
    let seen = b.campaign(&id).await;
    assert_eq!(seen["node"], "camp-a", "{seen}");
    assert_eq!(
        store
            .lease_holder(&format!("campaign:{id}"), At::Database)
            .await
            .unwrap()
            .as_deref(),
        Some("camp-a")
    );

    // P downloads; Q's UpdateFirmware is out (its state stored before it went).
    b.campaign_until(&id, "P downloading, stored", |c| {
        rollout(c, "CC-P")["status"] == "Downloading" && rollout(c, "CC-Q")["state"] == "sending"
    })
    .await;
    received(&q, "UpdateFirmware", 1).await;
    assert_eq!(p.received("UpdateFirmware"), 1);

    // A dies; its piles come back on B; B takes the campaign up within the lease's time.
    a.kill();
    let died = Instant::now();
    p.tell(Do::Connect(b.addr));
    q.tell(Do::Connect(b.addr));
    b.campaign_until(&id, "B runs the campaign", |c| c["node"] == "camp-b")
        .await;
    let took = died.elapsed();
    assert!(
        took <= TTL + Duration::from_secs(2),
        "taken up {took:?} after the node died (lease {TTL:?}, a tick)"
    );

    // Q is asked its status, not sent the update again, and carries it out; P goes on.
    until(Duration::from_secs(15), "Q asked its status", || async {
        (q.received("TriggerMessage") >= 1).then_some(())
    })
    .await;
    p.tell(Do::Finish);
    let done = b
        .campaign_until(&id, "the campaign finished on B", |c| {
            c["state"] == "finished"
        })
        .await;
    assert_eq!(done["counts"]["succeeded"], 2, "{done}");
    for pile in ["CC-P", "CC-Q"] {
        let r = rollout(&done, pile);
        assert_eq!(r["to_version"], "2.0", "{done}");
        assert_eq!(r["from_version"], "1.0", "{done}");
    }
    assert_eq!(p.received("UpdateFirmware"), 1, "P: one UpdateFirmware");
    assert_eq!(q.received("UpdateFirmware"), 1, "Q: one UpdateFirmware");
    assert!(p.received("ChangeAvailability") >= 1);
    assert!(q.received("ChangeAvailability") >= 1);
    assert!(done["node"].is_null(), "no node runs it: {done}");
    // Over: its lease given up, its state stored.
    let lease = format!("campaign:{id}");
    until(Duration::from_secs(5), "the lease given up", || async {
        holder(&store, &lease).await.is_none().then_some(())
    })
    .await;
    let rows = store.campaigns().await.unwrap();
    let row = rows.iter().find(|r| Some(r.id) == id.as_i64()).unwrap();
    assert_eq!(row.state, "finished");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn holder(store: &Arc<dyn Repository>, lease: &str) -> Option<String> {
    store.lease_holder(lease, At::Database).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reaper_and_retention_run_on_one_node_and_pass_to_the_other_when_it_dies() {
    let db = common::database_url("campaign_cluster", "jobs");
    let mut a = Node::start("jobs", "jobs-a", &db, 10).await;
    let mut b = Node::start("jobs", "jobs-b", &db, 10).await;
    let store = central::store::open(&db).await.unwrap();
    let names = [a.name.clone(), b.name.clone()];

    // One holder each, and it stays while both live.
    let reaper = until(
        Duration::from_secs(10),
        "the reaper's lease held",
        || async { holder(&store, "node-reaper").await },
    )
    .await;
    let retention = until(
        Duration::from_secs(10),
        "the retention's lease held",
        || async { holder(&store, "log-retention").await },
    )
    .await;
    assert!(names.contains(&reaper) && names.contains(&retention));
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(holder(&store, "node-reaper").await.as_ref(), Some(&reaper));
        assert_eq!(
            holder(&store, "log-retention").await.as_ref(),
            Some(&retention)
        );
    }

    // A node silent for longer than the TTL is reaped by the reaper's holder.
    let long_ago = now_ms() - 60_000;
    store
        .heartbeat("ghost-1", "10.0.0.1:8180", At::Time(long_ago))
        .await
        .unwrap();
    until(Duration::from_secs(10), "ghost-1 reaped", || async {
        let nodes = store.nodes().await.unwrap();
        (!nodes.iter().any(|n| n.name == "ghost-1")).then_some(())
    })
    .await;

    // The holder of the reaper's lease dies: the other takes both jobs up within the TTL.
    let (dead, alive) = if reaper == a.name {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    dead.kill();
    let alive_name = alive.name.clone();
    until(
        TTL + Duration::from_secs(5),
        "the reaper passed on",
        || async {
            (holder(&store, "node-reaper").await.as_ref() == Some(&alive_name)).then_some(())
        },
    )
    .await;
    until(
        TTL + Duration::from_secs(5),
        "the retention passed on",
        || async {
            (holder(&store, "log-retention").await.as_ref() == Some(&alive_name)).then_some(())
        },
    )
    .await;
    store
        .heartbeat("ghost-2", "10.0.0.2:8180", At::Time(long_ago))
        .await
        .unwrap();
    until(Duration::from_secs(10), "ghost-2 reaped", || async {
        let nodes = store.nodes().await.unwrap();
        (!nodes.iter().any(|n| n.name == "ghost-2")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_asked_of_another_node_reaches_the_node_that_runs_the_campaign() {
    let db = common::database_url("campaign_cluster", "cancel");
    // R1's UpdateFirmware gets no answer within 3 s.
    let a = Node::start("cancel", "cancel-a", &db, 3).await;
    let b = Node::start("cancel", "cancel-b", &db, 3).await;
    // R1 never answers its UpdateFirmware; R2 waits for the batch's one place.
    let (_r1, _r2, image, id) = one_place_campaign(&a, "CX").await;
    // A pile in a running campaign is refused by the other node too (the store says so).
    let (status, refused) = b
        .api(
            "POST",
            "/api/campaigns",
            Some(json!({"firmware": [image], "piles": ["CX-R2"]})),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(&format!("it is in campaign {id}, still running")),
        "{refused}"
    );

    let (status, cancelled) = b
        .api("POST", &format!("/api/campaigns/{id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelling", "{cancelled}");
    assert_eq!(cancelled["node"], "cancel-a", "{cancelled}");
    // A applies it: R2 never starts; R1's UpdateFirmware gets no answer, and it ends too.
    let over = a
        .campaign_until(&id, "the campaign cancelled", |c| c["state"] == "cancelled")
        .await;
    let r2 = rollout(&over, "CX-R2");
    assert_eq!(r2["result"], "skipped", "{over}");
    assert_eq!(r2["error"], "the campaign was cancelled", "{over}");
    // Once the store has it cancelled, a cancel through B is refused.
    b.campaign_until(&id, "the campaign cancelled in the store", |c| {
        c["state"] == "cancelled"
    })
    .await;
    let (status, again) = b
        .api("POST", &format!("/api/campaigns/{id}/cancel"), None)
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, missing) = b.api("POST", "/api/campaigns/999999/cancel", None).await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piles_news_reach_its_campaigns_node_from_the_node_that_holds_the_pile() {
    let db = common::database_url("campaign_cluster", "events");
    let a = Node::start("events", "events-a", &db, 10).await;
    let b = Node::start("events", "events-b", &db, 10).await;
    let p = Pile::spawn("CE-P", a.addr, true);
    wait_registered(&a, "CE-P").await;
    let image = upload_image(&a).await;
    let id =
        create_campaign(&a, json!({"firmware": [image], "piles": ["CE-P"]})).await["id"].clone();
    a.campaign_until(&id, "P downloading", |c| {
        rollout(c, "CE-P")["status"] == "Downloading"
    })
    .await;
    // The pile moves to B and upgrades there: B answers, A (the campaign's node) follows.
    p.tell(Do::Connect(b.addr));
    p.tell(Do::Finish);
    let seen = a
        .campaign_until(&id, "A saw the install and the boot", |c| {
            rollout(c, "CE-P")["to_version"] == "2.0"
        })
        .await;
    let r = rollout(&seen, "CE-P");
    assert_eq!(r["status"], "Installed", "{seen}");
    // Run by A, or finished already (a finished campaign is no node's).
    assert!(
        seen["node"] == "events-a" || (seen["state"] == "finished" && seen["node"].is_null()),
        "{seen}"
    );
    // Then its last step, ChangeAvailability Operative, goes from A to the pile on B (it
    // waits in `restoring` while A has no way to a pile held by another node).
    assert!(
        matches!(r["state"].as_str(), Some("restoring" | "done")),
        "{seen}"
    );
    assert_eq!(p.received("UpdateFirmware"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_recorded_while_the_campaigns_node_is_dead_is_applied_by_the_node_taking_it_up() {
    let db = common::database_url("campaign_cluster", "cancel_dead");
    let mut a = Node::start("cancel_dead", "dead-a", &db, 60).await;
    let b = Node::start("cancel_dead", "dead-b", &db, 60).await;
    // R1 takes the batch's one place and never answers its UpdateFirmware; R2 waits.
    let (r1, _r2, _, id) = one_place_campaign(&a, "CD").await;
    // A dies; before its lease expires, B is asked to cancel: recorded, told to nobody.
    a.kill();
    let (status, cancelled) = b
        .api("POST", &format!("/api/campaigns/{id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelling", "{cancelled}");
    assert_eq!(cancelled["node"], "dead-a", "still A's lease: {cancelled}");
    // B takes the campaign up, cancelled: R2 never starts; R1, asked its status, finishes.
    r1.tell(Do::Connect(b.addr));
    let over = b
        .campaign_until(&id, "the campaign cancelled on B", |c| {
            c["state"] == "cancelled"
        })
        .await;
    let r2 = rollout(&over, "CD-R2");
    assert_eq!(r2["result"], "skipped", "{over}");
    assert_eq!(r2["error"], "the campaign was cancelled", "{over}");
    assert_eq!(rollout(&over, "CD-R1")["result"], "succeeded", "{over}");
    assert_eq!(r1.received("UpdateFirmware"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_that_boots_while_its_campaign_has_no_node_is_done_when_the_campaign_is_taken_up() {
    let db = common::database_url("campaign_cluster", "gap");
    let mut a = Node::start("gap", "gap-a", &db, 10).await;
    let b = Node::start("gap", "gap-b", &db, 10).await;
    // The pile lives on B; the campaign runs on A.
    let p = Pile::spawn("CG-P", b.addr, true);
    wait_registered(&b, "CG-P").await;
    let image = upload_image(&a).await;
    let id =
        create_campaign(&a, json!({"firmware": [image], "piles": ["CG-P"]})).await["id"].clone();
    a.campaign_until(&id, "P downloading", |c| {
        rollout(c, "CG-P")["status"] == "Downloading"
    })
    .await;
    p.tell(Do::Install);
    a.campaign_until(&id, "P rebooting", |c| {
        rollout(c, "CG-P")["state"] == "rebooting"
    })
    .await;
    // A dies; the pile boots on its new image at once, while no node runs the campaign (A's
    // lease has not expired): its BootNotification reaches no campaign.
    a.kill();
    p.tell(Do::BootNew);
    // B takes the campaign up within the TTL and finds the boot in the store: done, not
    // waiting ten minutes for a boot that came already.
    let done = b
        .campaign_until(&id, "P done on B", |c| {
            rollout(c, "CG-P")["result"] == "succeeded"
        })
        .await;
    let r = rollout(&done, "CG-P");
    assert_eq!(r["to_version"], "2.0", "{done}");
    assert_eq!(p.received("UpdateFirmware"), 1, "{done}");
}
