//! The home page: the fleet at a glance (`GET /api/fleet`), each figure a link to the piles it
//! counts, and a chart of the last hour.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::chart::{two_lines, Line, Point};
use super::{page, text, Flash, Ui};

/// A query string value, escaped.
fn escaped(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One figure of the fleet, with the page that lists what it counts.
fn figure(id: &str, label: &str, value: String, href: Option<&str>) -> Markup {
    html! {
        div.figure id=(id) {
            span.label { (label) }
            @if let Some(href) = href {
                a.value href=(href) { (value) }
            } @else {
                span.value { (value) }
            }
        }
    }
}

/// A table of names and counts, each name linked through `href`.
fn tally(title: &str, id: &str, counts: &Value, href: impl Fn(&str) -> Option<String>) -> Markup {
    let rows: Vec<(&String, &Value)> = counts.as_object().into_iter().flatten().collect();
    html! {
        div.tally id=(id) {
            h2 { (title) }
            @if rows.is_empty() {
                p.hint { "none" }
            } @else {
                table {
                    tbody {
                        @for (name, count) in rows {
                            tr {
                                td { @if let Some(h) = href(name) { a href=(h) { (name) } } @else { (name) } }
                                td.count { (text(count)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Messages per second as shown: one decimal, or a dash before the first sample.
fn rate(v: &Value) -> String {
    v.as_f64()
        .map(|r| format!("{r:.1}"))
        .unwrap_or_else(|| "–".into())
}

/// Energy as shown: Wh under a kWh, else kWh with one decimal.
fn energy(wh: &Value) -> String {
    match wh.as_i64().unwrap_or(0) {
        wh if wh.abs() < 1000 => format!("{wh} Wh"),
        wh => format!("{:.1} kWh", wh as f64 / 1000.0),
    }
}

/// The last hour: messages per second and piles online.
fn hour_chart(last_hour: &Value) -> Markup {
    let intervals: Vec<&Value> = last_hour.as_array().into_iter().flatten().collect();
    let times: Vec<i64> = intervals
        .iter()
        .filter_map(|i| {
            i["time"]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp_millis())
        })
        .collect();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return html! { p.hint { "The chart starts with the first samples (one every ten seconds)." } };
    };
    let point = |t: i64, v: f64| Point { t: t - first, v };
    let messages: Vec<Point> = intervals
        .iter()
        .zip(&times)
        .filter_map(|(i, t)| Some(point(*t, i["messages_per_second"].as_f64()?)))
        .collect();
    let online: Vec<Point> = intervals
        .iter()
        .zip(&times)
        .filter_map(|(i, t)| Some(point(*t, i["online"].as_f64()?)))
        .collect();
    let span = (last - first) / 60_000;
    let start = if span > 0 {
        format!("−{span} min")
    } else {
        format!("−{} s", (last - first) / 1000)
    };
    let left = Line {
        points: &messages,
        class: "rate",
        name: "messages",
        unit: "/s",
        from_zero: true,
    };
    let right = Line {
        points: &online,
        class: "online",
        name: "online",
        unit: "piles",
        from_zero: true,
    };
    two_lines(&left, &right, last - first, (&start, "now"))
}

pub async fn show(State(ui): State<Ui>, Query(f): Query<Flash>) -> Response {
    let fleet = match ui.get("/api/fleet").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let pending = fleet["registration"]["Pending"].as_i64().unwrap_or(0);
    let mut faults = fleet["faults"].as_object().cloned().unwrap_or_default();
    faults.extend(
        fleet["error_codes"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let faults = Value::Object(faults);
    page(
        "Fleet",
        f.msg.as_deref(),
        html! {
            h1 { "Fleet" }
            section data-live id="glance" {
                div.figures {
                    (figure("online", "Piles online", text(&fleet["online"]), Some("/piles?online=true")))
                    (figure("offline", "Piles offline", text(&fleet["offline"]), Some("/piles?online=false")))
                    (figure("pending", "Waiting for approval", pending.to_string(), Some("/piles?registration=Pending")))
                    (figure("running", "Transactions running", text(&fleet["transactions_running"]), Some("/transactions")))
                    (figure("energy", "Energy today (UTC)", energy(&fleet["energy_today_wh"]), None))
                    (figure("rate", "Messages per second", rate(&fleet["messages_per_second"]), None))
                }
                h2 { "The last hour" }
                (hour_chart(&fleet["last_hour"]))
                div.tallies {
                    (tally("Connectors by status", "connectors", &fleet["connectors"], |s| Some(format!("/piles?status={}", escaped(s)))))
                    (tally("Faults", "faults", &faults, |_| Some("/piles?faulted=true".into())))
                    (tally("Models", "models", &fleet["models"], |m| Some(format!("/piles?model={}", escaped(m)))))
                    (tally("Firmware", "firmware", &fleet["firmware"], |v| Some(format!("/piles?firmware={}", escaped(v)))))
                }
                p.hint {
                    (text(&fleet["piles"])) " piles. Energy today: the transactions that stopped since "
                    (super::when(&fleet["energy_since"])) " and the running ones so far."
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hour_chart_draws_both_lines() {
        let hour = json!([
            {"time": "2026-01-01T10:00:10.000Z", "messages_per_second": 2.0, "online": 3},
            {"time": "2026-01-01T10:00:20.000Z", "messages_per_second": 4.5, "online": 4},
            {"time": "2026-01-01T10:05:20.000Z", "messages_per_second": 3.0, "online": 4},
        ]);
        let svg = hour_chart(&hour).into_string();
        assert!(svg.contains("<polyline class=\"rate\""), "{svg}");
        assert!(svg.contains("<polyline class=\"online\""), "{svg}");
        assert!(svg.contains("messages 0.0–4.5 /s"), "{svg}");
        assert!(svg.contains("−5 min"), "{svg}");
        assert!(hour_chart(&json!([]))
            .into_string()
            .contains("first samples"));
        assert_eq!(rate(&Value::Null), "–");
        assert_eq!(rate(&json!(12.345)), "12.3");
        assert_eq!(energy(&json!(12)), "12 Wh");
        assert_eq!(energy(&json!(1_549)), "1.5 kWh");
    }
}
