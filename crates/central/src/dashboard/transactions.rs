//! Transactions, live and past, and one transaction with its power and energy chart.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::chart::{chart, series};
use super::{page, pile_link, text, when, Ui};

#[derive(Deserialize)]
pub struct TxQuery {
    pile: Option<String>,
}

/// Seconds between two API times, or since `start` when the transaction runs.
fn duration(t: &Value) -> String {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp())
    };
    let Some(start) = parse(&t["start"]) else {
        return String::new();
    };
    let end = parse(&t["stop"]).unwrap_or_else(|| chrono::Utc::now().timestamp());
    let s = (end - start).max(0);
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn table(rows: &[&Value]) -> maud::Markup {
    html! {
        table.transactions {
            thead { tr {
                th { "Id" } th { "Pile" } th { "Connector" } th { "idTag" } th { "Start" }
                th { "Stop" } th { "Duration" } th { "Energy (Wh)" } th { "Reason" }
            } }
            tbody {
                @for t in rows {
                    tr {
                        td { a href={ "/transactions/" (text(&t["id"])) } { (text(&t["id"])) } }
                        td { (pile_link(&text(&t["pile"]))) }
                        td { (text(&t["connector"])) }
                        td { (text(&t["id_tag"])) }
                        td { (when(&t["start"])) }
                        td { (when(&t["stop"])) }
                        td { (duration(t)) }
                        td { (text(&t["energy_so_far_wh"])) @if t["stop"].is_null() && !t["energy_so_far_wh"].is_null() { " so far" } }
                        td { (text(&t["reason"])) @if t["reconciled"] == true { " (reconciled)" } }
                    }
                }
            }
        }
    }
}

pub async fn list(State(ui): State<Ui>, Query(q): Query<TxQuery>) -> Response {
    let mut path = "/api/transactions".to_owned();
    if let Some(p) = q.pile.as_deref().filter(|p| !p.is_empty()) {
        path.push_str(&format!(
            "?pile={}",
            percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let all = match ui.get(&path).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let rows: Vec<&Value> = all.as_array().into_iter().flatten().collect();
    let live: Vec<&Value> = rows
        .iter()
        .copied()
        .filter(|t| t["stop"].is_null())
        .collect();
    let past: Vec<&Value> = rows
        .iter()
        .copied()
        .filter(|t| !t["stop"].is_null())
        .collect();
    page(
        "Transactions",
        None,
        html! {
            h1 { "Transactions" }
            section data-live id="live" {
                h2 { "Running (" (live.len()) ")" }
                (table(&live))
            }
            section data-live id="past" {
                h2 { "Past (" (past.len()) ")" }
                (table(&past))
            }
        },
    )
    .into_response()
}

pub async fn show(State(ui): State<Ui>, Path(id): Path<i64>) -> Response {
    let t = match ui.get(&format!("/api/transactions/{id}")).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let values = ui
        .get(&format!("/api/transactions/{id}/meter-values"))
        .await
        .unwrap_or(Value::Null);
    let values = values.as_array().cloned().unwrap_or_default();
    let (energy, power) = series(&values);
    page(
        &format!("Transaction {id}"),
        None,
        html! {
            h1 { "Transaction " (id) }
            section data-live id="transaction" {
                dl.facts {
                    dt { "Pile" } dd { (pile_link(&text(&t["pile"]))) ", connector " (text(&t["connector"])) }
                    dt { "idTag" } dd { (text(&t["id_tag"])) }
                    dt { "Start" } dd { (when(&t["start"])) " at " (text(&t["meter_start"])) " Wh" }
                    dt { "Stop" } dd { (when(&t["stop"])) " at " (text(&t["meter_stop"])) " Wh, " (text(&t["reason"])) }
                    dt { "Duration" } dd { (duration(&t)) }
                    dt { "Energy" } dd {
                        @if t["stop"].is_null() {
                            @if t["energy_so_far_wh"].is_null() { "no meter reading yet" }
                            @else { (text(&t["energy_so_far_wh"])) " Wh so far (the last meter value)" }
                        } @else {
                            (text(&t["energy_wh"])) " Wh"
                        }
                    }
                }
                h2 { "Power and energy" }
                @if energy.len() + power.len() < 2 {
                    p.hint { "Not enough meter values for a chart yet." }
                } @else {
                    (chart(&energy, &power))
                }
                p.hint { (values.len()) " meter values" }
            }
        },
    )
    .into_response()
}
