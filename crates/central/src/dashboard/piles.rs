//! The piles page (the approval inbox at its top) and the refused handshakes.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{page, pile_link, pile_path, text, when, Ui};

#[derive(Deserialize)]
pub struct Filter {
    /// Text to find in the identity, vendor, model or firmware version.
    q: Option<String>,
    /// `connected`, `offline`, `pending`, `faulted`.
    show: Option<String>,
    msg: Option<String>,
}

fn matches(p: &Value, q: &str, show: &str) -> bool {
    let q = q.trim().to_lowercase();
    let hay = ["id", "vendor", "model", "firmware_version"]
        .iter()
        .map(|k| text(&p[*k]).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let faulted = p["connectors"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["status"] == "Faulted"));
    let shown = match show {
        "connected" => p["connected"] == true,
        "offline" => p["connected"] != true,
        "pending" => p["registration"] == "Pending",
        "faulted" => faulted,
        _ => true,
    };
    shown && (q.is_empty() || hay.contains(&q))
}

pub async fn list(State(ui): State<Ui>, Query(f): Query<Filter>) -> Response {
    let piles = match ui.get("/api/piles").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let all = piles.as_array().cloned().unwrap_or_default();
    let pending: Vec<&Value> = all
        .iter()
        .filter(|p| p["registration"] == "Pending")
        .collect();
    let q = f.q.clone().unwrap_or_default();
    let show = f.show.clone().unwrap_or_default();
    let shown: Vec<&Value> = all.iter().filter(|p| matches(p, &q, &show)).collect();
    let connected = all.iter().filter(|p| p["connected"] == true).count();
    page(
        "Piles",
        f.msg.as_deref(),
        html! {
            h1 { "Piles" }
            section data-live id="inbox" {
                @if !pending.is_empty() {
                    h2 { "Waiting for approval (" (pending.len()) ")" }
                    table.inbox {
                        thead { tr { th { "Pile" } th { "Model" } th { "Connected" } th {} } }
                        tbody {
                            @for p in &pending {
                                tr {
                                    td { (pile_link(&text(&p["id"]))) }
                                    td { (text(&p["vendor"])) " " (text(&p["model"])) }
                                    td { (if p["connected"] == true { "yes" } else { "no" }) }
                                    td {
                                        form method="post" action={ (pile_path(&text(&p["id"]))) "/approve" } {
                                            button.approve type="submit" { "Approve" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.filter method="get" action="/" {
                input type="search" name="q" value=(q) placeholder="identity, model, firmware…";
                select name="show" {
                    @for (v, label) in [("", "all"), ("connected", "connected"), ("offline", "offline"), ("pending", "pending"), ("faulted", "faulted")] {
                        option value=(v) selected[show == v] { (label) }
                    }
                }
                button type="submit" { "Filter" }
            }
            section data-live id="piles" {
                p.summary { (all.len()) " piles, " (connected) " connected; " (shown.len()) " shown" }
                table.piles {
                    thead { tr {
                        th { "Pile" } th { "Connected" } th { "Registration" } th { "Model" }
                        th { "Firmware" } th { "Connectors" } th { "Faults" } th { "Last seen" }
                    } }
                    tbody {
                        @for p in &shown {
                            tr data-pile=(text(&p["id"])) {
                                td { (pile_link(&text(&p["id"]))) }
                                td.connectivity { @if p["connected"] == true { span.ok { "online" } } @else { span.off { "offline" } } }
                                td { (text(&p["registration"])) }
                                td { (text(&p["model"])) }
                                td { (text(&p["firmware_version"])) " " small { (text(&p["firmware_status"])) } }
                                td {
                                    @for c in p["connectors"].as_array().into_iter().flatten() {
                                        span class={ "status " (text(&c["status"]).to_lowercase()) } title=(text(&c["error_code"])) {
                                            (text(&c["id"])) ": " (text(&c["status"]))
                                        } " "
                                    }
                                }
                                td {
                                    @for c in p["connectors"].as_array().into_iter().flatten() {
                                        @for fault in c["faults"].as_array().into_iter().flatten() {
                                            span.fault { (text(fault)) } " "
                                        }
                                        @if c["error_code"] != "NoError" && !c["error_code"].is_null() {
                                            span.fault { (text(&c["error_code"])) } " "
                                        }
                                    }
                                }
                                td { (when(&p["last_seen"])) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

pub async fn refused(State(ui): State<Ui>) -> Response {
    let rows = match ui.get("/api/handshakes/refused?limit=500").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    page(
        "Refused handshakes",
        None,
        html! {
            h1 { "Refused handshakes" }
            p.hint { "A pile that \"does not connect\" is usually here, with the reason." }
            section data-live id="refused" {
                table {
                    thead { tr { th { "Time" } th { "Remote" } th { "Identity" } th { "HTTP" } th { "Reason" } } }
                    tbody {
                        @for r in rows.as_array().into_iter().flatten() {
                            tr {
                                td { (when(&r["time"])) }
                                td { (text(&r["remote"])) }
                                td { (text(&r["identity"])) }
                                td { (text(&r["http_status"])) }
                                td { (text(&r["reason"])) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
