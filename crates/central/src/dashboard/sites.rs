//! Sites: the list, and a site's page with its capacity against what its sessions were granted
//! and what they drew over the last hours (an SVG drawn here from the allocations log and the
//! sessions' Current.Import), each running session's grant and draw, and the last decisions.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{page, pile_link, text, when, Ui};
use crate::site::{current_import_a, Millis, Terms, TermsInput};

/// How far back the chart goes.
const WINDOW: Millis = 3 * 3600 * 1000;
/// The most sessions the chart reads (the newest decisions first).
const MAX_SESSIONS: usize = 50;

fn millis(v: &Value) -> Option<Millis> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp_millis())
}

/// One session as the chart sees it: when it ended (if it did), its readings and its grants,
/// each (time, A) in time order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Track {
    pub stop: Option<Millis>,
    pub measured: Vec<(Millis, f64)>,
    pub granted: Vec<(Millis, f64)>,
}

/// The sum over the sessions of their last value (`pick`) at each instant from `from` to `to`,
/// as the steps of a line: (time, A). A session counts from its first value until it stops.
pub fn sum_steps(
    tracks: &[Track],
    pick: fn(&Track) -> &[(Millis, f64)],
    from: Millis,
    to: Millis,
) -> Vec<(Millis, f64)> {
    let mut times: BTreeSet<Millis> = BTreeSet::from([from, to]);
    for t in tracks {
        times.extend(pick(t).iter().map(|p| p.0).filter(|&x| x > from && x < to));
        times.extend(t.stop.filter(|&x| x > from && x < to));
    }
    let at = |x: Millis| -> f64 {
        tracks
            .iter()
            .filter(|t| t.stop.is_none_or(|s| x < s))
            .filter_map(|t| pick(t).iter().rev().find(|p| p.0 <= x).map(|p| p.1))
            .sum()
    };
    let mut out: Vec<(Millis, f64)> = Vec::new();
    for x in times {
        let v = at(x);
        if let Some(&(_, before)) = out.last() {
            if before != v {
                out.push((x, before));
            }
        }
        out.push((x, v));
    }
    out
}

/// The capacity in force from `from` to `to` as steps, from the site's terms (its schedule).
fn capacity_steps(site: &Value, from: Millis, to: Millis) -> Vec<(Millis, f64)> {
    let flat = site["capacity_a"].as_f64().unwrap_or(0.0);
    let input = json!({
        "name": site["name"], "capacity_a": site["capacity_a"], "phases": site["phases"],
        "min_a": site["min_a"], "failsafe_a": site["failsafe_a"], "settle_s": site["settle_s"],
        "schedule": site["schedule"], "priorities": site["priorities"],
    });
    let Some(s) = serde_json::from_value::<TermsInput>(input)
        .ok()
        .and_then(|i| Terms::create(i).ok())
        .and_then(|t| t.site().ok())
    else {
        return vec![(from, flat), (to, flat)];
    };
    let mut out = vec![(from, s.capacity_at(from))];
    let mut x = from;
    while let Some(next) = s.next_change(x).filter(|&n| n > x && n < to) {
        out.push((next, out.last().map_or(flat, |p| p.1)));
        out.push((next, s.capacity_at(next)));
        x = next;
    }
    out.push((to, s.capacity_at(to)));
    out
}

/// One line of the chart: its CSS class, its name and its steps.
pub type Line<'a> = (&'a str, &'a str, &'a [(Millis, f64)]);

const W: f64 = 720.0;
const H: f64 = 240.0;
const PAD: f64 = 48.0;

/// Capacity, granted and measured (A) against the time from `from` to `to`, on one scale from 0.
pub fn chart(lines: &[Line], from: Millis, to: Millis) -> Markup {
    let hi = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let span = (to - from).max(1) as f64;
    let points = |steps: &[(Millis, f64)]| {
        steps
            .iter()
            .map(|&(t, v)| {
                let x = PAD + (t - from) as f64 / span * (W - 2.0 * PAD);
                let y = H - PAD - v / hi * (H - 2.0 * PAD);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let hours = (to - from) as f64 / 3_600_000.0;
    html! {
        svg.chart.site viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img" aria-label="capacity, granted and measured current" {
            rect x=(PAD) y=(PAD) width=(W - 2.0 * PAD) height=(H - 2.0 * PAD) class="frame" {}
            @for (class, _, steps) in lines {
                @if steps.len() > 1 {
                    polyline class=(class) points=(points(steps)) {}
                }
            }
            @for (i, (class, name, _)) in lines.iter().enumerate() {
                text x=(PAD + i as f64 * 150.0) y=(PAD - 8.0) class=(class) { (name) }
            }
            text x=(PAD - 6.0) y=(PAD + 4.0) text-anchor="end" { (format!("{hi:.0} A")) }
            text x=(PAD - 6.0) y=(H - PAD + 4.0) text-anchor="end" { "0" }
            text x=(PAD) y=(H - PAD + 18.0) { (format!("−{hours:.0} h")) }
            text x=(W - PAD) y=(H - PAD + 18.0) text-anchor="end" { "now" }
        }
    }
}

pub async fn list(State(ui): State<Ui>) -> Response {
    let sites = match ui.get("/api/sites").await {
        Ok(v) => v,
        Err(e) => return e,
    };
    page(
        "Sites",
        None,
        html! {
            h1 { "Sites" }
            section data-live id="sites" {
                @if sites.as_array().is_none_or(|a| a.is_empty()) {
                    p.hint { "No site yet: create one with POST /api/sites." }
                } @else {
                    table.sites {
                        thead { tr { th { "Site" } th { "Capacity (A per phase)" } th { "Phases" } th { "Piles" } } }
                        tbody {
                            @for s in sites.as_array().into_iter().flatten() {
                                tr {
                                    td { a href={ "/sites/" (text(&s["id"])) } { (text(&s["name"])) } }
                                    td { (text(&s["capacity_a"])) }
                                    td { (text(&s["phases"])) }
                                    td { (s["piles"].as_array().map_or(0, Vec::len)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// The sessions of the window: each one's stop, readings and grants.
async fn tracks(ui: &Ui, site: &Value, decisions: &[Value], from: Millis) -> Vec<Track> {
    let mut ids: Vec<i64> = Vec::new();
    let running = site["sessions"].as_array().into_iter().flatten();
    let decided = decisions
        .iter()
        .filter(|d| millis(&d["time"]).is_some_and(|t| t >= from));
    for id in running
        .chain(decided)
        .filter_map(|s| s["transaction"].as_i64())
    {
        if !ids.contains(&id) && ids.len() < MAX_SESSIONS {
            ids.push(id);
        }
    }
    let mut granted: BTreeMap<i64, Vec<(Millis, f64)>> = BTreeMap::new();
    for d in decisions.iter().rev() {
        if let (Some(id), Some(t)) = (d["transaction"].as_i64(), millis(&d["time"])) {
            let a = if d["queued"] == true {
                0.0
            } else {
                d["granted_a"].as_f64().unwrap_or(0.0)
            };
            granted.entry(id).or_default().push((t, a));
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let Ok(t) = ui.get(&format!("/api/transactions/{id}")).await else {
            continue;
        };
        let values = ui
            .get(&format!("/api/transactions/{id}/meter-values"))
            .await
            .unwrap_or(Value::Null);
        let measured = values
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|mv| {
                let a = current_import_a(&mv["sampled_value"].to_string())?;
                Some((millis(&mv["time"])?, a))
            })
            .collect();
        out.push(Track {
            stop: millis(&t["stop"]),
            measured,
            granted: granted.remove(&id).unwrap_or_default(),
        });
    }
    out
}

pub async fn show(State(ui): State<Ui>, Path(id): Path<i64>) -> Response {
    let site = match ui.get(&format!("/api/sites/{id}")).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let decisions = ui
        .get(&format!("/api/sites/{id}/allocations?limit=1000"))
        .await
        .unwrap_or(Value::Null);
    let decisions = decisions.as_array().cloned().unwrap_or_default();
    let to = chrono::Utc::now().timestamp_millis();
    let from = to - WINDOW;
    let tracks = tracks(&ui, &site, &decisions, from).await;
    let capacity = capacity_steps(&site, from, to);
    let granted = sum_steps(&tracks, |t| &t.granted, from, to);
    let measured = sum_steps(&tracks, |t| &t.measured, from, to);
    let name = text(&site["name"]);
    let sessions: Vec<&Value> = site["sessions"].as_array().into_iter().flatten().collect();
    page(
        &format!("Site {name}"),
        None,
        html! {
            h1 { "Site " (name) }
            dl.facts {
                dt { "Capacity" } dd { (text(&site["capacity_a"])) " A per phase, " (text(&site["phases"])) " phase(s)" }
                dt { "Minimum per session" } dd { (text(&site["min_a"])) " A" }
                dt { "Fail-safe per connector" } dd { (text(&site["failsafe_a"])) " A" }
                dt { "Piles" } dd {
                    @for p in site["piles"].as_array().into_iter().flatten() {
                        (pile_link(&text(&p["pile"])))
                        @if !p["connector"].is_null() { " (connector " (text(&p["connector"])) ")" }
                        " "
                    }
                }
            }
            section data-live id="site-chart" {
                h2 { "The last 3 hours (A per phase)" }
                (chart(&[("capacity", "capacity", &capacity[..]), ("granted", "granted (sum)", &granted[..]), ("measured", "measured (sum of Current.Import)", &measured[..])], from, to))
            }
            section data-live id="site-sessions" {
                h2 { "Sessions (" (sessions.len()) ")" }
                table.sessions {
                    thead { tr { th { "Pile" } th { "Connector" } th { "Transaction" } th { "Granted (A)" } th { "Measured (A)" } th { "State" } } }
                    tbody {
                        @for s in &sessions {
                            tr {
                                td { (pile_link(&text(&s["pile"]))) }
                                td { (text(&s["connector"])) }
                                td { a href={ "/transactions/" (text(&s["transaction"])) } { (text(&s["transaction"])) } }
                                td.granted { (text(&s["granted_a"])) }
                                td.measured { (text(&s["measured_a"])) }
                                td { @if s["queued"] == true { "queued" } @else { "charging" } }
                            }
                        }
                    }
                }
            }
            section data-live id="site-decisions" {
                h2 { "Last decisions" }
                table.decisions {
                    thead { tr { th { "Time" } th { "Pile" } th { "Transaction" } th { "Granted (A)" } th { "Why" } } }
                    tbody {
                        @for d in decisions.iter().take(20) {
                            tr {
                                td { (when(&d["time"])) }
                                td { (pile_link(&text(&d["pile"]))) " " (text(&d["connector"])) }
                                td { (text(&d["transaction"])) }
                                td { (text(&d["granted_a"])) @if d["queued"] == true { " (queued)" } }
                                td { (text(&d["why"])) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_steps_with_each_reading_and_drops_a_session_at_its_stop() {
        let tracks = [
            Track {
                stop: None,
                measured: vec![(0, 10.0), (50, 12.0)],
                granted: vec![],
            },
            Track {
                stop: Some(80),
                measured: vec![(20, 6.0)],
                granted: vec![],
            },
        ];
        assert_eq!(
            sum_steps(&tracks, |t| &t.measured, 10, 100),
            vec![
                (10, 10.0),
                (20, 10.0),
                (20, 16.0),
                (50, 16.0),
                (50, 18.0),
                (80, 18.0),
                (80, 12.0),
                (100, 12.0)
            ]
        );
        let svg = chart(
            &[("measured", "measured", &[(10, 10.0), (100, 12.0)][..])],
            10,
            100,
        )
        .into_string();
        assert!(svg.contains("<polyline class=\"measured\""), "{svg}");
    }

    #[test]
    fn the_capacity_follows_the_schedule() {
        let site = json!({"id": 1, "name": "Depot", "capacity_a": 63.0, "phases": 1,
            "min_a": 6.0, "failsafe_a": 6.0, "settle_s": 60, "priorities": {},
            "schedule": {"cycle": "daily", "periods": [{"start": 1020, "end": 1260, "limit_a": 32.0}]}});
        let day = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        let hour = 3_600_000;
        assert_eq!(
            capacity_steps(&site, day + 16 * hour, day + 18 * hour),
            vec![
                (day + 16 * hour, 63.0),
                (day + 17 * hour, 63.0),
                (day + 17 * hour, 32.0),
                (day + 18 * hour, 32.0)
            ]
        );
        let flat = json!({"capacity_a": 40.0, "name": ""});
        assert_eq!(capacity_steps(&flat, 0, 10), vec![(0, 40.0), (10, 40.0)]);
    }
}
