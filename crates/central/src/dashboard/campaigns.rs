//! Firmware campaigns: create one, follow each pile's progress, cancel.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{back, form_pairs, outcome, page, pile_link, text, when, Flash, Ui};

fn progress(c: &Value) -> Markup {
    let piles = c["piles"].as_array().map_or(0, Vec::len);
    let done = c["piles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| !p["result"].is_null())
        .count();
    html! {
        progress max=(piles.max(1)) value=(done) {} " " (done) "/" (piles)
    }
}

pub async fn list(State(ui): State<Ui>, Query(f): Query<Flash>) -> Response {
    let campaigns = match ui.get("/api/campaigns").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let images = ui.get("/api/firmware").await.unwrap_or(Value::Null);
    let piles = ui.get("/api/piles").await.unwrap_or(Value::Null);
    page(
        "Campaigns",
        f.msg.as_deref(),
        html! {
            h1 { "Firmware campaigns" }
            section data-live id="campaigns" {
                table.campaigns {
                    thead { tr { th { "Campaign" } th { "State" } th { "Images" } th { "Signed" } th { "Progress" } th { "Results" } th { "Created" } } }
                    tbody {
                        @for c in campaigns.as_array().into_iter().flatten() {
                            tr {
                                td { a href={ "/campaigns/" (text(&c["id"])) } { "#" (text(&c["id"])) } }
                                td.state { (text(&c["state"])) }
                                td { @for i in c["firmware"].as_array().into_iter().flatten() { code { (text(&i["name"])) } " " } }
                                td.signed { @if c["signed"] == true { "signed" } @else { "—" } }
                                td { (progress(c)) }
                                td { @for (k, v) in c["counts"].as_object().into_iter().flatten() { (k) " " (text(v)) "; " } }
                                td { (when(&c["created_at"])) }
                            }
                        }
                    }
                }
            }
            h2 { "New campaign" }
            @if images.as_array().is_none_or(|a| a.is_empty()) {
                p.hint { "No firmware image yet: upload one with POST /api/firmware?name=FILE (the image as the body)." }
            } @else {
                form.campaign method="post" action="/campaigns" {
                    fieldset {
                        legend { "Images, installed in this order (FAQ 3.10: the ESP32 image before the ST image)" }
                        @for i in images.as_array().into_iter().flatten() {
                            label {
                                input type="checkbox" name="firmware" value=(text(&i["id"]));
                                " " code { (text(&i["name"])) } " " small { (text(&i["target"])) " " (text(&i["model"])) " " (text(&i["size"])) " bytes"
                                    @if i["signed"] == true { " · the manufacturer's signature" } }
                            }
                        }
                    }
                    fieldset {
                        legend { "Piles" }
                        @for p in piles.as_array().into_iter().flatten() {
                            label.pile {
                                input type="checkbox" name="pile" value=(text(&p["id"]));
                                " " (text(&p["id"])) " " small { (text(&p["model"])) " " (text(&p["firmware_version"])) }
                            }
                        }
                    }
                    label { "Batch size " input type="number" name="batch_size" value="10" min="1"; }
                    label { "Download in (s) " input type="number" name="retrieve_in_s" value="0" min="0"; }
                    label {
                        input type="checkbox" name="signed" value="true";
                        " Signed firmware (SignedUpdateFirmware with each image's own signature, else the firmware signer's; piles trust its root, "
                        code { "GET /api/security/firmware-root" } ")"
                    }
                    button type="submit" { "Start the campaign" }
                }
            }
        },
    )
    .into_response()
}

pub async fn create(State(ui): State<Ui>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let ids: Vec<i64> = pairs
        .iter()
        .filter(|(k, _)| k == "firmware")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let piles: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "pile")
        .map(|(_, v)| v.as_str())
        .collect();
    let number =
        |k: &str| -> Option<u64> { super::field(&pairs, k).and_then(|v| v.trim().parse().ok()) };
    let mut req = json!({"firmware": ids, "piles": piles});
    if super::field(&pairs, "signed").is_some_and(|v| v == "true") {
        req["signed"] = json!(true);
    }
    if let Some(b) = number("batch_size") {
        req["batch_size"] = json!(b);
    }
    if let Some(r) = number("retrieve_in_s") {
        req["retrieve_in_s"] = json!(r);
    }
    let (status, answer) = ui.api("POST", "/api/campaigns", Some(req)).await;
    if status.is_success() {
        let refused = answer["refused"].as_array().map_or(0, Vec::len);
        back(
            &format!("/campaigns/{}", text(&answer["id"])),
            &format!("campaign started; {refused} piles refused"),
        )
    } else {
        back("/campaigns", &outcome(status, &answer))
    }
}

pub async fn show(State(ui): State<Ui>, Path(id): Path<i64>, Query(f): Query<Flash>) -> Response {
    let c = match ui.get(&format!("/api/campaigns/{id}")).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    page(
        &format!("Campaign {id}"),
        f.msg.as_deref(),
        html! {
            h1 { "Campaign #" (id) }
            section data-live data-watch={ "campaign " (id) } id="campaign" {
                p { "State: " b.state { (text(&c["state"])) } " · batch size " (text(&c["batch_size"]))
                    " · deadline " (when(&c["deadline"])) " · " (progress(&c))
                    @if let Some(node) = c["node"].as_str() { " · run by node " code { (node) } } }
                p { "Images: " @for i in c["firmware"].as_array().into_iter().flatten() { code { (text(&i["name"])) } " " }
                    @if c["signed"] == true { " · signed: SignedUpdateFirmware, followed by SignedFirmwareStatusNotification" } }
                table.rollouts {
                    thead { tr {
                        th { "Pile" } th { "State" } th { "Step" } th { "Status" } th { "Download" }
                        th { "From" } th { "To" } th { "Result" } th { "Duration (s)" }
                    } }
                    tbody {
                        @for r in c["piles"].as_array().into_iter().flatten() {
                            tr data-pile=(text(&r["pile"])) {
                                td { (pile_link(&text(&r["pile"]))) }
                                td { (text(&r["state"])) }
                                td { (text(&r["step"])) " " small { (text(&r["image"])) } }
                                td { (text(&r["status"])) }
                                td { progress max="100" value=(r["percent"].as_u64().unwrap_or(0)) {} " " (text(&r["percent"])) }
                                td { (text(&r["from_version"])) }
                                td { (text(&r["to_version"])) }
                                td.result { (text(&r["result"])) " " small { (text(&r["error"])) } }
                                td { (text(&r["duration_s"])) }
                            }
                        }
                    }
                }
                @if c["refused"].as_array().is_some_and(|a| !a.is_empty()) {
                    h2 { "Refused up front" }
                    ul { @for r in c["refused"].as_array().into_iter().flatten() { li { (text(&r["pile"])) ": " (text(&r["reason"])) } } }
                }
                @if c["state"] == "running" {
                    form method="post" action={ "/campaigns/" (id) "/cancel" } {
                        button type="submit" { "Cancel the campaign" }
                    }
                }
            }
        },
    )
    .into_response()
}

pub async fn cancel(State(ui): State<Ui>, Path(id): Path<i64>) -> Response {
    let (status, answer) = ui
        .api("POST", &format!("/api/campaigns/{id}/cancel"), None)
        .await;
    back(&format!("/campaigns/{id}"), &outcome(status, &answer))
}
