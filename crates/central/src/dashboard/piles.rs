//! The piles page (the approval inbox at its top) and the refused handshakes.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{page, pile_link, pile_path, text, when, Ui};

/// The piles page's query: the API's filters, the cursor and the page size.
#[derive(Deserialize)]
pub struct Filter {
    /// Text in the identity, vendor, model, serial number or firmware version.
    q: Option<String>,
    status: Option<String>,
    registration: Option<String>,
    model: Option<String>,
    firmware: Option<String>,
    /// `true` or `false` (empty: either).
    online: Option<String>,
    /// `true` or `false` (empty: either).
    faulted: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    msg: Option<String>,
}

/// Piles per page unless the query says otherwise.
const PAGE: &str = "50";

impl Filter {
    /// The filter's parameters that are given, in order (the cursor and the size left out).
    fn criteria(&self) -> Vec<(&'static str, &str)> {
        [
            ("q", &self.q),
            ("status", &self.status),
            ("registration", &self.registration),
            ("model", &self.model),
            ("firmware", &self.firmware),
            ("online", &self.online),
            ("faulted", &self.faulted),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref().map(str::trim).filter(|v| !v.is_empty())?)))
        .collect()
    }

    fn limit(&self) -> &str {
        self.limit
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(PAGE)
    }

    /// A query string of the criteria, the page size and `after`.
    fn query(&self, after: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.criteria() {
            q.append_pair(k, v);
        }
        q.append_pair("limit", self.limit());
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        q.finish()
    }

    fn value(&self, name: &str) -> &str {
        self.criteria()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .unwrap_or("")
    }
}

fn select(name: &str, chosen: &str, choices: &[(&str, &str)]) -> maud::Markup {
    html! {
        select name=(name) {
            @for (v, label) in choices {
                option value=(v) selected[chosen == *v] { (label) }
            }
        }
    }
}

fn piles_table(piles: &[&Value]) -> maud::Markup {
    html! {
        table.piles {
            thead { tr {
                th { "Pile" } th { "Connected" } th { "Registration" } th { "Model" }
                th { "Firmware" } th { "Connectors" } th { "Faults" } th { "Last seen" }
            } }
            tbody {
                @for p in piles {
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
}

/// The piles page: the approval inbox, then one page of the piles that match the filter (the
/// API filters and pages in the database).
pub async fn list(State(ui): State<Ui>, Query(f): Query<Filter>) -> Response {
    let after = f.after.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let piles = match ui.get(&format!("/api/piles?{}", f.query(after))).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let inbox = match ui.get("/api/piles?registration=Pending&limit=100").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let pending: Vec<&Value> = inbox["piles"].as_array().into_iter().flatten().collect();
    let shown: Vec<&Value> = piles["piles"].as_array().into_iter().flatten().collect();
    let next = piles["next"].as_str();
    let connected = shown.iter().filter(|p| p["connected"] == true).count();
    let statuses: Vec<(&str, &str)> = std::iter::once(("", "any status"))
        .chain(
            ocpp::ChargePointStatus::ALL
                .iter()
                .map(|s| (s.as_str(), s.as_str())),
        )
        .collect();
    page(
        "Piles",
        f.msg.as_deref(),
        html! {
            h1 { "Piles" }
            section data-live id="inbox" {
                @if !pending.is_empty() {
                    h2 { "Waiting for approval (" (pending.len()) @if inbox["next"].is_string() { "+" } ")" }
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
            form.filter method="get" action="/piles" {
                input type="search" name="q" value=(f.value("q")) placeholder="identity, model, serial, firmware…";
                (select("status", f.value("status"), &statuses))
                (select("registration", f.value("registration"), &[("", "any registration"), ("Accepted", "Accepted"), ("Pending", "Pending"), ("Rejected", "Rejected")]))
                (select("online", f.value("online"), &[("", "online or not"), ("true", "online"), ("false", "offline")]))
                (select("faulted", f.value("faulted"), &[("", "faulted or not"), ("true", "faulted"), ("false", "not faulted")]))
                input type="text" name="model" value=(f.value("model")) placeholder="model";
                input type="text" name="firmware" value=(f.value("firmware")) placeholder="firmware";
                input type="hidden" name="limit" value=(f.limit());
                button type="submit" { "Filter" }
            }
            section data-live id="piles" {
                p.summary {
                    @if let (Some(first), Some(last)) = (shown.first(), shown.last()) {
                        (shown.len()) " piles shown, " (text(&first["id"])) " to " (text(&last["id"])) ", " (connected) " of them connected"
                    } @else {
                        "No pile matches."
                    }
                }
                (piles_table(&shown))
                div.pages {
                    @if after.is_some() {
                        a.first href={ "/piles?" (f.query(None)) } { "« First page" }
                    }
                    @if let Some(next) = next {
                        a.next href={ "/piles?" (f.query(Some(next))) } { "Next page »" }
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
