//! A pile's page: connectors, the vendor keys as fields (FAQ 3.1 to 3.16), the standard keys,
//! command buttons and a form for any command, its raw message log, deviations and firmware.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{back, field, form_pairs, outcome, page, pile_path, text, when, Ui};

#[derive(Deserialize)]
pub struct PileQuery {
    msg: Option<String>,
    /// Only messages of this action.
    action: Option<String>,
    /// Only messages whose frame holds this text.
    q: Option<String>,
}

/// A button that sends one command.
fn command_button(id: &str, action: &str, payload: Value, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ (pile_path(id)) "/command" } {
            input type="hidden" name="action" value=(action);
            input type="hidden" name="payload" value=(payload.to_string());
            button type="submit" { (label) }
        }
    }
}

fn mask_fields(name: &str, mask: &Value) -> Markup {
    let set: Vec<String> = mask["bits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["set"] == true)
        .map(|b| text(&b["name"]))
        .collect();
    html! {
        fieldset {
            legend { (name) " = " (text(&mask["value"])) }
            input type="hidden" name={ (name) "_was" } value=(set.join(","));
            @for b in mask["bits"].as_array().into_iter().flatten() {
                label.bit title=(text(&b["meaning"])) {
                    input type="checkbox" name=(name) value=(text(&b["name"])) checked[b["set"] == true];
                    " bit " (text(&b["bit"])) ": " code { (text(&b["name"])) }
                    " " small { (text(&b["meaning"])) }
                }
            }
        }
    }
}

fn vendor_form(id: &str, v: &Value) -> Markup {
    let ws = &v["websocket"];
    let field_was = |name: &str, value: String| {
        html! { input type="hidden" name={ (name) "_was" } value=(value); }
    };
    html! {
        form.vendor method="post" action={ (pile_path(id)) "/vendor" } {
            label { "HeartbeatInterval (s, 60 to 86400, FAQ 3.16) "
                input type="number" name="heartbeat_interval" min="60" max="86400" value=(text(&v["heartbeat_interval"])); }
            (field_was("heartbeat_interval", text(&v["heartbeat_interval"])))
            label { "VendorChargeBoxId: an alias for the operator, at most 63 characters (FAQ 3.2.1) "
                input type="text" name="alias" maxlength="63" value=(text(&v["alias"])); }
            (field_was("alias", text(&v["alias"])))
            label { input type="checkbox" name="direct_work_mode" value="true" checked[v["direct_work_mode"] == true];
                " VendorDirectWorkMode: plug and charge (FAQ 3.4)" }
            input type="hidden" name="direct_work_mode_was" value=(if v["direct_work_mode"] == true { "true" } else { "" });
            label { "DBGEnableInsight: host,port of the vendor's log collector, empty for off (FAQ 3.7) "
                input type="text" name="insight" value=(text(&v["insight"])); }
            (field_was("insight", text(&v["insight"])))
            (mask_fields("fault_mask", &v["fault_mask"]))
            (mask_fields("function_mask", &v["function_mask"]))
            fieldset.danger {
                legend { "VendorWebsocketSettings and VendorChargePointName (FAQ 3.2.2, 3.3)" }
                p.warning { "A wrong value leaves the pile unable to reach any server; it must then be reconfigured on site. Changes here need the confirmation below." }
                label { "host " input type="text" name="ws_host" value=(text(&ws["host"])); }
                label { "port " input type="number" name="ws_port" min="1" max="65535" value=(text(&ws["port"])); }
                label { "path " input type="text" name="ws_path" value=(text(&ws["path"])); }
                label { input type="checkbox" name="ws_tls" value="true" checked[ws["tls"] == true]; " TLS (wss)" }
                label { "user " input type="text" name="ws_user" value=(text(&ws["user"])); }
                label { "password (empty: unchanged) " input type="password" name="ws_password"; }
                (field_was("ws_host", text(&ws["host"])))
                (field_was("ws_port", text(&ws["port"])))
                (field_was("ws_path", text(&ws["path"])))
                input type="hidden" name="ws_tls_was" value=(if ws["tls"] == true { "true" } else { "" });
                (field_was("ws_user", text(&ws["user"])))
                label { "VendorChargePointName (the identity) " input type="text" name="name" value=(text(&v["name"])); }
                (field_was("name", text(&v["name"])))
                label { input type="checkbox" name="confirm" value="true"; " I have checked these values" }
            }
            button type="submit" { "Save the vendor keys" }
        }
    }
}

/// The PATCH of the vendor view a submitted form asks for: only what changed.
fn vendor_patch(pairs: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let get = |k: &str| field(pairs, k).unwrap_or("").trim().to_owned();
    let was = |k: &str| {
        field(pairs, &format!("{k}_was"))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let mut patch = Map::new();
    if get("heartbeat_interval") != was("heartbeat_interval") {
        let n: u32 = get("heartbeat_interval")
            .parse()
            .map_err(|_| "HeartbeatInterval must be a number of seconds".to_owned())?;
        patch.insert("heartbeat_interval".into(), json!(n));
    }
    for k in ["alias", "insight", "name"] {
        if get(k) != was(k) {
            patch.insert(k.into(), json!(get(k)));
        }
    }
    let direct = field(pairs, "direct_work_mode").is_some();
    if direct != (was("direct_work_mode") == "true") {
        patch.insert("direct_work_mode".into(), json!(direct));
    }
    for mask in ["fault_mask", "function_mask"] {
        let mut now: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == mask)
            .map(|(_, v)| v.as_str())
            .collect();
        let before = was(mask);
        let mut then: Vec<&str> = before.split(',').filter(|s| !s.is_empty()).collect();
        now.sort_unstable();
        then.sort_unstable();
        if now != then {
            patch.insert(mask.into(), json!(now));
        }
    }
    let mut ws = Map::new();
    for k in ["host", "path", "user"] {
        let name = format!("ws_{k}");
        if get(&name) != was(&name) {
            ws.insert(k.into(), json!(get(&name)));
        }
    }
    if get("ws_port") != was("ws_port") {
        let port: u16 = get("ws_port")
            .parse()
            .map_err(|_| "the port must be a number from 1 to 65535".to_owned())?;
        ws.insert("port".into(), json!(port));
    }
    let tls = field(pairs, "ws_tls").is_some();
    if tls != (was("ws_tls") == "true") {
        ws.insert("tls".into(), json!(tls));
    }
    if !get("ws_password").is_empty() {
        ws.insert("password".into(), json!(get("ws_password")));
    }
    if !ws.is_empty() {
        patch.insert("websocket".into(), Value::Object(ws));
    }
    if field(pairs, "confirm").is_some() {
        patch.insert("confirm".into(), json!(true));
    }
    Ok(patch)
}

pub async fn vendor(State(ui): State<Ui>, Path(id): Path<String>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let to = pile_path(&id);
    let patch = match vendor_patch(&pairs) {
        Ok(p) => p,
        Err(why) => return back(&to, &why),
    };
    if patch.keys().all(|k| k == "confirm") {
        return back(&to, "nothing changed");
    }
    let (status, answer) = ui
        .api(
            "PATCH",
            &format!("/api{to}/vendor"),
            Some(Value::Object(patch)),
        )
        .await;
    let message = if status.is_success() {
        let results = answer["results"]
            .as_object()
            .map(|r| {
                r.iter()
                    .map(|(k, v)| format!("{k}: {}", text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        format!("vendor keys sent ({results})")
    } else {
        outcome(status, &answer)
    };
    back(&to, &message)
}

/// Builds a command's payload from the form: `payload` (JSON), or fields `s.NAME` (strings)
/// and `n.NAME` (numbers).
fn command_payload(pairs: &[(String, String)]) -> Result<Value, String> {
    if let Some(p) = field(pairs, "payload") {
        if !p.trim().is_empty() {
            return serde_json::from_str(p).map_err(|e| format!("the payload is no JSON: {e}"));
        }
    }
    let mut m = Map::new();
    for (k, v) in pairs {
        if v.trim().is_empty() {
            continue;
        }
        if let Some(name) = k.strip_prefix("s.") {
            m.insert(name.into(), json!(v));
        } else if let Some(name) = k.strip_prefix("n.") {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{name} must be a whole number"))?;
            m.insert(name.into(), json!(n));
        }
    }
    Ok(Value::Object(m))
}

pub async fn command(State(ui): State<Ui>, Path(id): Path<String>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let to = pile_path(&id);
    let action = field(&pairs, "action").unwrap_or("").trim().to_owned();
    if action.is_empty() {
        return back(&to, "choose an action");
    }
    let payload = match command_payload(&pairs) {
        Ok(p) => p,
        Err(why) => return back(&to, &why),
    };
    let (status, answer) = ui
        .api(
            "POST",
            &format!("/api{to}/commands/{action}"),
            Some(payload),
        )
        .await;
    back(&to, &format!("{action}: {}", outcome(status, &answer)))
}

pub async fn approve(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    let to = pile_path(&id);
    let (status, answer) = ui.api("POST", &format!("/api{to}/approve"), None).await;
    back(
        "/piles",
        &format!("{id}: approve {}", outcome(status, &answer)),
    )
}

fn commands(id: &str, p: &Value) -> Markup {
    let connectors: Vec<i64> = p["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_i64())
        .filter(|c| *c > 0)
        .collect();
    let first = connectors.first().copied().unwrap_or(1);
    html! {
        div.commands {
            (command_button(id, "Reset", json!({"type": "Soft"}), "Soft reset"))
            (command_button(id, "Reset", json!({"type": "Hard"}), "Hard reset"))
            (command_button(id, "ClearCache", json!({}), "Clear cache"))
            @for c in &connectors {
                (command_button(id, "UnlockConnector", json!({"connectorId": c}), &format!("Unlock {c}")))
            }
            (command_button(id, "ChangeAvailability", json!({"connectorId": 0, "type": "Operative"}), "Operative"))
            (command_button(id, "ChangeAvailability", json!({"connectorId": 0, "type": "Inoperative"}), "Inoperative"))
            (command_button(id, "ExtendedTriggerMessage", json!({"requestedMessage": "SignChargePointCertificate"}), "Renew certificate"))
        }
        form.inline method="post" action={ (pile_path(id)) "/command" } {
            input type="hidden" name="action" value="RemoteStartTransaction";
            input type="text" name="s.idTag" placeholder="idTag" required;
            input type="number" name="n.connectorId" value=(first) min="1";
            button type="submit" { "Remote start" }
        }
        form.inline method="post" action={ (pile_path(id)) "/command" } {
            input type="hidden" name="action" value="RemoteStopTransaction";
            input type="number" name="n.transactionId" placeholder="transactionId" required;
            button type="submit" { "Remote stop" }
        }
        form.inline method="post" action={ (pile_path(id)) "/command" } {
            input type="hidden" name="action" value="TriggerMessage";
            select name="s.requestedMessage" {
                @for m in ["BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StatusNotification"] {
                    option { (m) }
                }
            }
            button type="submit" { "Trigger" }
        }
        form.inline method="post" action={ (pile_path(id)) "/command" } {
            input type="hidden" name="action" value="GetDiagnostics";
            input type="url" name="s.location" placeholder="http://… or ftp://… (upload location)" required;
            button type="submit" { "Get diagnostics" }
        }
        details {
            summary { "Any command" }
            form.any method="post" action={ (pile_path(id)) "/command" } {
                select name="action" {
                    @for a in ocpp::Action::ALL.iter().filter(|a| a.initiator() != ocpp::Initiator::ChargePoint) {
                        option { (a.as_str()) }
                    }
                }
                textarea name="payload" rows="4" placeholder="{\"key\": [\"HeartbeatInterval\"]}" {}
                button type="submit" { "Send" }
            }
        }
    }
}

fn standard_keys(id: &str, config: &Value) -> Markup {
    let vendor: Vec<&str> = oem::keys::VENDOR_KEYS.to_vec();
    html! {
        p.hint { "read " (when(&config["read_at"])) }
        table.keys {
            thead { tr { th { "Key" } th { "Value" } th {} } }
            tbody {
                @for k in config["keys"].as_array().into_iter().flatten().filter(|k| !vendor.iter().any(|v| k["key"] == *v)) {
                    tr {
                        td { code { (text(&k["key"])) } }
                        td { (text(&k["value"])) }
                        td {
                            @if k["readonly"] != true {
                                form.inline method="post" action={ (pile_path(id)) "/command" } {
                                    input type="hidden" name="action" value="ChangeConfiguration";
                                    input type="hidden" name="s.key" value=(text(&k["key"]));
                                    input type="text" name="s.value" value=(text(&k["value"]));
                                    button type="submit" { "Change" }
                                }
                            } @else { small { "read-only" } }
                        }
                    }
                }
            }
        }
    }
}

/// The pile's security events, newest first: its SecurityEventNotifications and the CSRs the
/// central refused.
fn security_table(events: &Value) -> Markup {
    html! {
        table {
            thead { tr { th { "Time" } th { "Type" } th { "Tech info" } th { "From" } } }
            tbody {
                @for e in events.as_array().into_iter().flatten() {
                    tr { td { (when(&e["time"])) } td { (text(&e["type"])) } td { (text(&e["tech_info"])) } td { (text(&e["source"])) } }
                }
            }
        }
    }
}

pub async fn show(
    State(ui): State<Ui>,
    Path(id): Path<String>,
    Query(q): Query<PileQuery>,
) -> Response {
    let path = format!("/api{}", pile_path(&id));
    let p = match ui.get(&path).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let vendor = ui
        .get(&format!("{path}/vendor"))
        .await
        .unwrap_or(Value::Null);
    let config = ui
        .get(&format!("{path}/configuration"))
        .await
        .unwrap_or(Value::Null);
    let action = q.action.clone().unwrap_or_default();
    let mut log_path = format!("{path}/messages?limit=200");
    if !action.is_empty() {
        log_path.push_str(&format!(
            "&action={}",
            percent_encoding::utf8_percent_encode(&action, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let messages = ui.get(&log_path).await.unwrap_or(Value::Null);
    let needle = q.q.clone().unwrap_or_default();
    let deviations = ui
        .get(&format!("{path}/deviations"))
        .await
        .unwrap_or(Value::Null);
    let security_events = ui
        .get(&format!("{path}/security-events?limit=50"))
        .await
        .unwrap_or(Value::Null);
    let running = ui
        .get(&format!(
            "/api/transactions?active=true&pile={}",
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
        ))
        .await
        .unwrap_or(Value::Null);
    let running: Vec<&Value> = running.as_array().into_iter().flatten().collect();
    let campaigns = ui.get("/api/campaigns").await.unwrap_or(Value::Null);
    let mine: Vec<(Value, Value)> = campaigns
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c["piles"]
                .as_array()?
                .iter()
                .find(|r| r["pile"] == id.as_str())
                .map(|r| (c.clone(), r.clone()))
        })
        .collect();
    page(
        &id,
        q.msg.as_deref(),
        html! {
            h1 { "Pile " (id) }
            section data-live data-watch={ "pile " (id) } id="summary" {
                dl.facts {
                    dt { "Connected" } dd { @if p["connected"] == true { span.ok { "online" } } @else { span.off { "offline" } } }
                    dt { "Node" } dd { (text(&p["node"])) }
                    dt { "Registration" } dd { (text(&p["registration"])) }
                    dt { "Security profile" } dd { (text(&p["security_profile"])) " " small { "connected with " (text(&p["connected_profile"])) } }
                    dt { "Vendor, model" } dd { (text(&p["vendor"])) " " (text(&p["model"])) }
                    dt { "Serial number" } dd { (text(&p["serial_number"])) }
                    dt { "Firmware" } dd { (text(&p["firmware_version"])) " " small { (text(&p["firmware_status"])) } }
                    dt { "Last boot" } dd { (when(&p["last_boot"])) }
                    dt { "Last seen" } dd { (when(&p["last_seen"])) }
                }
                h2 { "Connectors" }
                table.connectors {
                    thead { tr { th { "Connector" } th { "Status" } th { "Error" } th { "Faults (FAQ 3.6)" } th { "Since" } } }
                    tbody {
                        @for c in p["connectors"].as_array().into_iter().flatten() {
                            tr {
                                td { (text(&c["id"])) }
                                td { span class={ "status " (text(&c["status"]).to_lowercase()) } { (text(&c["status"])) } }
                                td { (text(&c["error_code"])) " " small { (text(&c["vendor_error_code"])) } }
                                td { @for f in c["faults"].as_array().into_iter().flatten() { span.fault { (text(f)) } " " } }
                                td { (when(&c["since"])) }
                            }
                        }
                    }
                }
                @if !running.is_empty() {
                    h2 { "Running transactions" }
                    (super::transactions::table(&running))
                }
                @if !mine.is_empty() {
                    h2 { "Firmware campaigns" }
                    table {
                        thead { tr { th { "Campaign" } th { "State" } th { "Status" } th { "Progress" } th { "Result" } } }
                        tbody {
                            @for (c, r) in &mine {
                                tr {
                                    td { a href={ "/campaigns/" (text(&c["id"])) } { (text(&c["id"])) } }
                                    td { (text(&r["state"])) }
                                    td { (text(&r["status"])) }
                                    td { progress max="100" value=(r["percent"].as_u64().unwrap_or(0)) {} }
                                    td { (text(&r["result"])) " " small { (text(&r["error"])) } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Commands" }
            (commands(&id, &p))
            h2 { "Vendor keys" }
            @if vendor.is_null() || vendor["websocket"].is_null() && vendor["heartbeat_interval"].is_null() {
                p.hint { "Not read yet: the central reads them after the pile's next accepted boot." }
            } @else {
                (vendor_form(&id, &vendor))
                @if let Some(net) = vendor["net_state"].as_object() {
                    p { "OEM_NetState: " @for (k, v) in net { (k) " " b { (text(v)) } "; " } }
                }
            }
            h2 { "Standard keys" }
            (standard_keys(&id, &config))
            h2 { "Message log" }
            form.filter method="get" action=(pile_path(&id)) {
                input type="text" name="action" value=(action) placeholder="action";
                input type="search" name="q" value=(needle) placeholder="text in the frame";
                button type="submit" { "Search" }
            }
            section data-live data-watch={ "pile " (id) } id="messages" {
                table.log {
                    thead { tr { th { "Time" } th { "" } th { "Action" } th { "Frame" } } }
                    tbody {
                        @for m in messages.as_array().into_iter().flatten().filter(|m| needle.is_empty() || text(&m["frame"]).contains(needle.as_str())) {
                            tr {
                                td { (when(&m["time"])) }
                                td { (if m["direction"] == "in" { "←" } else { "→" }) }
                                td { (text(&m["action"])) }
                                td { code { (text(&m["frame"])) } }
                            }
                        }
                    }
                }
            }
            h2 { "Security events" }
            section data-live data-watch={ "pile " (id) } id="security-events" {
                (security_table(&security_events))
            }
            h2 { "Deviations" }
            section data-live data-watch={ "pile " (id) } id="deviations" {
                table {
                    thead { tr { th { "Time" } th { "Action" } th { "Kind" } th { "Detail" } } }
                    tbody {
                        @for d in deviations.as_array().into_iter().flatten() {
                            tr { td { (when(&d["time"])) } td { (text(&d["action"])) } td { (text(&d["kind"])) } td { (text(&d["detail"])) } }
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

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_vendor_form_patches_only_what_changed() {
        let unchanged = pairs(&[
            ("heartbeat_interval", "300"),
            ("heartbeat_interval_was", "300"),
            ("alias", "A"),
            ("alias_was", "A"),
            ("fault_mask", "cp_fault_suspends"),
            ("fault_mask_was", "cp_fault_suspends"),
            ("ws_host", "h"),
            ("ws_host_was", "h"),
            ("ws_port", "80"),
            ("ws_port_was", "80"),
        ]);
        assert_eq!(vendor_patch(&unchanged).unwrap(), Map::new());
        let changed = pairs(&[
            ("heartbeat_interval", "900"),
            ("heartbeat_interval_was", "300"),
            ("direct_work_mode", "true"),
            ("fault_mask", "ground_detection_off"),
            ("fault_mask", "cp_fault_suspends"),
            ("fault_mask_was", "cp_fault_suspends"),
            ("function_mask_was", "buzzer_off"),
            ("ws_port", "443"),
            ("ws_port_was", "80"),
            ("ws_tls", "true"),
            ("confirm", "true"),
        ]);
        assert_eq!(
            Value::Object(vendor_patch(&changed).unwrap()),
            json!({
                "heartbeat_interval": 900,
                "direct_work_mode": true,
                "fault_mask": ["cp_fault_suspends", "ground_detection_off"],
                "function_mask": [],
                "websocket": {"port": 443, "tls": true},
                "confirm": true,
            })
        );
        let bad = pairs(&[
            ("heartbeat_interval", "soon"),
            ("heartbeat_interval_was", "300"),
        ]);
        assert!(vendor_patch(&bad).is_err());
    }

    #[test]
    fn command_payloads_from_fields_or_json() {
        let fields = pairs(&[
            ("action", "RemoteStartTransaction"),
            ("s.idTag", "007"),
            ("n.connectorId", "1"),
            ("s.empty", " "),
        ]);
        assert_eq!(
            command_payload(&fields).unwrap(),
            json!({"idTag": "007", "connectorId": 1})
        );
        let raw = pairs(&[("payload", "{\"type\":\"Soft\"}")]);
        assert_eq!(command_payload(&raw).unwrap(), json!({"type": "Soft"}));
        assert!(command_payload(&pairs(&[("payload", "{")])).is_err());
        assert!(command_payload(&pairs(&[("n.connectorId", "one")])).is_err());
    }
}
