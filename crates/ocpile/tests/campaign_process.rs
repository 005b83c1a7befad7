//! A firmware campaign of `ocpile central` (the real binary) over our piles (real binaries),
//! with the image served by the central itself: the piles that fit upgrade a batch at a time,
//! the charging one after its session, each ends on the new version and Available; the one of
//! another model is refused up front; a SIGKILL of the central system mid-campaign changes
//! nothing of that.

mod common;

use common::central::{start_card_session, start_central, start_central_at, CentralProcess};
use common::wire::{set, state_until};
use common::{http, start_pile_with_control, state_dir, PileProcess};
use serde_json::{json, Value};

const IMAGE: &str = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";
const IMAGE_QUERY: &str = "XSmart.V2.0.110%28M3G31H%29%407KW.EVPro.070";

async fn pile_view(central: &CentralProcess, id: &str) -> Value {
    central.ok("GET", &format!("/api/piles/{id}"), None).await
}

fn rollout<'a>(campaign: &'a Value, pile: &str) -> &'a Value {
    campaign["piles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pile"] == pile)
        .unwrap_or_else(|| panic!("{pile} is not in {campaign}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_upgrades_three_piles_the_charging_one_after_its_session() {
    let data = state_dir("campaign-central");
    let mut central = start_central(&data, None, &["--admission", "open"]);
    let mut piles: Vec<(PileProcess, String)> = Vec::new();
    let ids = ["FW-A", "FW-B", "FW-C", "FW-OLD"];
    for id in ids {
        let model = if id == "FW-OLD" { "m3g2" } else { "m3g3" };
        piles.push(start_pile_with_control(
            id,
            &central.ocpp_url(),
            &state_dir(&format!("campaign-{id}")),
            &["--model", model],
        ));
    }
    for id in ids {
        central
            .until(&format!("/api/piles/{id}"), "the pile booted", |p| {
                p["connected"] == true && p["model"].is_string()
            })
            .await;
    }
    let before = pile_view(&central, "FW-A").await["firmware_version"].clone();
    assert_eq!(before, env!("CARGO_PKG_VERSION"));

    // The image: stored, described, and served to anyone who has its URL.
    let body = vec![0xA5u8; 96 * 1024];
    let (code, image) = central
        .post_bytes(
            &format!("/api/firmware?name={IMAGE_QUERY}&version={IMAGE_QUERY}"),
            &body,
        )
        .await;
    assert_eq!(code, 201, "{image}");
    assert_eq!(image["target"], "st070");
    assert_eq!(image["model"], "M3G31H");
    assert_eq!(image["version"], IMAGE);
    assert_eq!(image["size"], body.len());
    assert_eq!(image["sha256"].as_str().unwrap().len(), 64);
    let url = image["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/firmware/", central.addr)),
        "{url}"
    );
    let listed = central.ok("GET", "/api/firmware", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (code, _) = central
        .post_bytes("/api/firmware?name=empty.bin", b"")
        .await;
    assert_eq!(code, 400);

    // FW-C is charging when the campaign starts.
    let (_, c_control) = &piles[2];
    central.accept_id_tag("CARD1").await;
    set(c_control, "VendorDirectWorkMode", "false").await;
    start_card_session(&central, c_control, "CARD1").await;

    let (code, campaign) = central
        .api(
            "POST",
            "/api/campaigns",
            Some(json!({
                "firmware": [image["id"]],
                "piles": ["FW-A", "FW-B", "FW-C", "FW-OLD", "NOBODY"],
                "batch_size": 2,
            })),
        )
        .await;
    assert_eq!(code, 201, "{campaign}");
    let id = campaign["id"].as_i64().unwrap();
    let refused = campaign["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["pile"], "FW-OLD");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("the image is for model M3G31H; the pile is a M3G2"),
        "{refused:?}"
    );
    assert_eq!(refused[1]["reason"], "no such pile");
    assert_eq!(campaign["piles"].as_array().unwrap().len(), 3);

    // A and B upgrade; C waits for its session to end.
    let path = format!("/api/campaigns/{id}");
    let shown = central
        .until(&path, "FW-A and FW-B upgraded", |c| {
            ["FW-A", "FW-B"]
                .iter()
                .all(|p| rollout(c, p)["result"] == "succeeded")
        })
        .await;
    let c = rollout(&shown, "FW-C");
    assert_eq!(c["state"], "waiting", "{shown}");
    assert_eq!(c["started_at"], Value::Null);
    for p in ["FW-A", "FW-B"] {
        let r = rollout(&shown, p);
        assert_eq!(r["from_version"], before);
        assert_eq!(r["to_version"], IMAGE);
        assert_eq!(r["status"], "Installed");
        assert_eq!(r["error"], Value::Null);
    }
    assert_eq!(shown["state"], "running");

    // The central system is killed (SIGKILL) and started again: the campaign goes on.
    let listen = central.addr.clone();
    central.kill();
    central = start_central_at(&data, None, &listen, &["--admission", "open"]);
    // The kill may come before the last change of a rollout reached the store: that step is
    // taken again (SetOperative sent again), and the result is the same.
    let resumed = central
        .until(&path, "the campaign after the restart", |c| {
            c["state"] == "running"
                && ["FW-A", "FW-B"]
                    .iter()
                    .all(|p| rollout(c, p)["result"] == "succeeded")
        })
        .await;
    assert_eq!(rollout(&resumed, "FW-C")["state"], "waiting");
    central
        .until("/api/piles/FW-C", "FW-C back", |p| p["connected"] == true)
        .await;

    // The session ends; then C upgrades.
    http(
        c_control,
        "POST",
        "/card",
        Some(json!({"idTag": "CARD1", "connector": 1})),
    )
    .await;
    state_until(c_control, "the stop sent", |s| {
        s["outbox"] == 0 && s["connectors"][0]["transaction"].is_null()
    })
    .await;
    http(c_control, "POST", "/connectors/1/unplug", None).await;
    let done = central
        .until(&path, "the campaign finished", |c| c["state"] == "finished")
        .await;
    assert_eq!(done["counts"]["succeeded"], 3, "{done}");
    let stopped = central.ok("GET", "/api/transactions?pile=FW-C", None).await[0]["stop"]
        .as_str()
        .unwrap()
        .to_owned();
    let c_started = rollout(&done, "FW-C")["started_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(c_started > stopped, "{c_started} after {stopped}");

    // Every pile on the new version and Available; the commands are in each pile's log.
    for p in ["FW-A", "FW-B", "FW-C"] {
        let view = central
            .until(&format!("/api/piles/{p}"), "the pile Available", |v| {
                v["connected"] == true && v["connectors"][0]["status"] == "Available"
            })
            .await;
        assert_eq!(view["firmware_version"], IMAGE, "{view}");
        let commands = central
            .ok("GET", &format!("/api/piles/{p}/commands"), None)
            .await;
        let actions: Vec<&str> = commands
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"UpdateFirmware"), "{actions:?}");
        assert!(actions.contains(&"ChangeAvailability"), "{actions:?}");
    }
    let old = pile_view(&central, "FW-OLD").await;
    assert_eq!(old["firmware_version"], before);

    // A finished campaign cannot be cancelled; it is listed.
    let (code, body) = central
        .api("POST", &format!("/api/campaigns/{id}/cancel"), None)
        .await;
    assert_eq!(code, 409, "{body}");
    let all = central.ok("GET", "/api/campaigns", None).await;
    assert_eq!(all[0]["id"], id);
}
