//! Charging sessions on the sans-I/O core with a virtual clock: cards, plugs, the pilot and the
//! relay, transaction messages on the wire, offline weeks, crashes, faults and the vendor's
//! function mask (FAQ 3.4, 3.5, 3.12, 3.13).

mod common;

use common::harness::{faults, secs, Pile};
use pile::hardware::{Beep, HardwareCommand, MeterReading, Pilot};
use pile::{Input, Options, Output};
use serde_json::{json, Value};

/// What our test central system answers: transactions numbered from 100, idTags starting with
/// BAD refused.
struct Central {
    next_tx: i64,
    /// Every CALL the pile sent, in order.
    calls: Vec<Value>,
}

impl Central {
    fn new() -> Central {
        Central {
            next_tx: 100,
            calls: Vec::new(),
        }
    }

    fn verdict(tag: &Value) -> &'static str {
        if tag.as_str().unwrap_or_default().starts_with("BAD") {
            "Invalid"
        } else {
            "Accepted"
        }
    }

    fn answer(&mut self, call: &Value) -> Value {
        match call[2].as_str().unwrap() {
            "BootNotification" => {
                json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900})
            }
            "Heartbeat" => json!({"currentTime":"2026-11-24T12:00:00.000Z"}),
            "Authorize" => json!({"idTagInfo": {"status": Central::verdict(&call[3]["idTag"])}}),
            "StartTransaction" => {
                self.next_tx += 1;
                json!({"transactionId": self.next_tx, "idTagInfo": {"status": Central::verdict(&call[3]["idTag"])}})
            }
            _ => json!({}),
        }
    }

    /// Answers every CALL in `out` and those that follow, in order; returns them.
    fn serve(&mut self, p: &mut Pile, out: Vec<Output>) -> Vec<Value> {
        let mut queue: std::collections::VecDeque<Value> = Pile::frames(&out).into();
        let mut seen = Vec::new();
        while let Some(frame) = queue.pop_front() {
            if frame[0] != 2 {
                continue;
            }
            let answer = self.answer(&frame);
            self.calls.push(frame.clone());
            seen.push(frame.clone());
            queue.extend(Pile::frames(&p.reply(&frame, answer)));
        }
        seen
    }

    /// Does something at the pile, then answers what it sent; returns that.
    fn after(&mut self, p: &mut Pile, act: impl FnOnce(&mut Pile) -> Vec<Output>) -> Vec<Value> {
        let out = act(p);
        self.serve(p, out)
    }

    /// Plugs an EV into a connector and lets it ask for energy.
    fn charge(&mut self, p: &mut Pile, connector: u32) {
        self.after(p, |p| plug(p, connector, true));
        self.after(p, |p| pilot(p, connector, Pilot::C));
    }

    /// Connects and boots the pile; returns what it sent.
    fn connect(&mut self, p: &mut Pile) -> Vec<Value> {
        self.after(p, |p| p.input(Input::Connected))
    }
}

/// A pile with `connectors` connectors, connected to our central and booted.
fn booted(connectors: u32) -> (Pile, Central) {
    let mut p = Pile::new(connectors);
    let mut c = Central::new();
    c.connect(&mut p);
    (p, c)
}

fn actions(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|f| f[2].as_str().unwrap()).collect()
}

fn of<'a>(frames: &'a [Value], action: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f[2] == action).collect()
}

fn hardware(out: &[Output]) -> Vec<HardwareCommand> {
    out.iter()
        .filter_map(|o| match o {
            Output::Hardware(h) => Some(h.clone()),
            _ => None,
        })
        .collect()
}

fn meter(energy_wh: i64, temperature: f64) -> MeterReading {
    MeterReading {
        energy_wh,
        power_w: 7360.0,
        current_a: 32.0,
        offered_a: 32.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![temperature],
    }
}

fn plug(p: &mut Pile, connector: u32, plugged: bool) -> Vec<Output> {
    p.input(Input::Plug { connector, plugged })
}

fn pilot(p: &mut Pile, connector: u32, state: Pilot) -> Vec<Output> {
    p.input(Input::Pilot { connector, state })
}

fn card(p: &mut Pile, connector: u32, id_tag: &str) -> Vec<Output> {
    p.input(Input::Card {
        connector: Some(connector),
        id_tag,
    })
}

fn reading(p: &mut Pile, connector: u32, energy_wh: i64, temperature: f64) -> Vec<Output> {
    let r = meter(energy_wh, temperature);
    p.input(Input::Meter {
        connector,
        reading: &r,
    })
}

fn change(p: &mut Pile, c: &mut Central, key: &str, value: &str) {
    let out = p.central_calls("ChangeConfiguration", json!({"key": key, "value": value}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted", "{key}");
    c.serve(p, out);
}

fn statuses_of(frames: &[Value], connector: i64) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f[2] == "StatusNotification" && f[3]["connectorId"] == connector)
        .map(|f| f[3]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_card_then_a_plug_charges_samples_and_the_same_card_stops() {
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    reading(&mut p, 1, 5000, 25.0);

    // The card: Authorize first, then Preparing while waiting for the plug.
    let out = card(&mut p, 1, "CARD1");
    assert_eq!(
        hardware(&out),
        vec![],
        "no beep before the central's answer"
    );
    let sent = c.serve(&mut p, out.clone());
    assert_eq!(sent[0][2], "Authorize");
    assert_eq!(sent[0][3], json!({"idTag": "CARD1"}));
    assert_eq!(statuses_of(&sent, 1), vec!["Preparing"]);
    assert!(p
        .log
        .contains(&Output::Hardware(HardwareCommand::Beep(Beep::Accepted))));

    // The plug: the transaction starts, the pilot offers the rated current.
    let out = plug(&mut p, 1, true);
    assert_eq!(
        hardware(&out),
        vec![
            HardwareCommand::Beep(Beep::Accepted),
            HardwareCommand::Offer {
                connector: 1,
                amps: Some(32.0)
            }
        ]
    );
    let persist = out.iter().position(|o| *o == Output::Persist).unwrap();
    let start_at = out
        .iter()
        .position(|o| matches!(o, Output::Send(f) if f.contains("StartTransaction")))
        .unwrap();
    assert!(persist < start_at, "durable before it is sent");
    let sent = c.serve(&mut p, out);
    let start = of(&sent, "StartTransaction")[0];
    assert_eq!(start[3]["connectorId"], 1);
    assert_eq!(start[3]["idTag"], "CARD1");
    assert_eq!(start[3]["meterStart"], 5000);
    assert_eq!(start[3]["timestamp"], "2026-11-24T12:00:00.000Z");
    assert_eq!(p.cp.transaction_id(1), Some(101));
    assert_eq!(
        statuses_of(&sent, 1),
        vec!["SuspendedEV"],
        "the EV has not asked yet"
    );

    // The EV asks: the relay closes, Charging.
    let out = pilot(&mut p, 1, Pilot::C);
    assert_eq!(
        hardware(&out),
        vec![HardwareCommand::Relay {
            connector: 1,
            closed: true
        }]
    );
    assert_eq!(statuses_of(&c.serve(&mut p, out), 1), vec!["Charging"]);
    assert!(p.cp.relay_closed(1));

    // A sample every MeterValueSampleInterval (60 s), with the transactionId.
    reading(&mut p, 1, 5100, 25.0);
    let out = p.advance(secs(60));
    let sent = c.serve(&mut p, out);
    let mv = of(&sent, "MeterValues");
    assert_eq!(mv.len(), 1);
    assert_eq!(mv[0][3]["transactionId"], 101);
    let values = &mv[0][3]["meterValue"][0]["sampledValue"];
    assert!(values
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["context"] == "Sample.Periodic"));
    assert!(values
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["measurand"] == "Energy.Active.Import.Register" && v["value"] == "5100"));
    assert!(values
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["measurand"] == "Energy.Active.Import.Interval" && v["value"] == "100"));

    // Another card cannot stop it (not the same group); the same card does.
    let sent = c.after(&mut p, |p| card(p, 1, "CARD2"));
    assert_eq!(actions(&sent), vec!["Authorize"]);
    assert!(p.cp.transaction(1).is_some());
    reading(&mut p, 1, 5230, 25.0);
    let out = card(&mut p, 1, "CARD1");
    assert_eq!(
        hardware(&out)[..3],
        [
            HardwareCommand::Beep(Beep::Accepted),
            HardwareCommand::Relay {
                connector: 1,
                closed: false
            },
            HardwareCommand::Offer {
                connector: 1,
                amps: None
            }
        ],
        "the relay opens before the offer goes"
    );
    let sent = c.serve(&mut p, out);
    let stop = of(&sent, "StopTransaction")[0];
    assert_eq!(stop[3]["transactionId"], 101);
    assert_eq!(stop[3]["reason"], "Local");
    assert_eq!(stop[3]["idTag"], "CARD1");
    assert_eq!(stop[3]["meterStop"], 5230);
    assert_eq!(statuses_of(&sent, 1), vec!["Finishing"]);
    assert_eq!(p.cp.outbox_len(), 0);
    // Out: Available; the lock opens (UnlockConnectorOnEVSideDisconnect).
    let out = plug(&mut p, 1, false);
    assert!(hardware(&out).contains(&HardwareCommand::Unlock { connector: 1 }));
    assert_eq!(statuses_of(&c.serve(&mut p, out), 1), vec!["Available"]);
}

#[test]
fn plug_and_charge_is_the_factory_mode() {
    let (mut p, mut c) = booted(1);
    let out = plug(&mut p, 1, true);
    let sent = c.serve(&mut p, out);
    assert_eq!(
        actions(&sent),
        vec![
            "StatusNotification",
            "StartTransaction",
            "StatusNotification"
        ]
    );
    assert_eq!(statuses_of(&sent, 1), vec!["Preparing", "SuspendedEV"]);
    assert_eq!(of(&sent, "StartTransaction")[0][3]["idTag"], "SN0001");
    // FAQ 3.4: VendorDirectWorkMode false needs a card.
    c.after(&mut p, |p| plug(p, 1, false));
    let sent = c.after(&mut p, |p| card(p, 1, "SN0001"));
    assert_eq!(of(&sent, "StopTransaction")[0][3]["reason"], "Local");
    change(&mut p, &mut c, "VendorDirectWorkMode", "false");
    let sent = c.after(&mut p, |p| plug(p, 1, true));
    assert!(of(&sent, "StartTransaction").is_empty());
    assert_eq!(statuses_of(&sent, 1), vec!["Preparing"]);
}

#[test]
fn a_week_offline_loses_no_meter_value_and_sends_everything_in_order() {
    let mut p = Pile::new(1);
    let mut c = Central::new();
    // Never connected: plug-and-charge starts offline (AllowOfflineTxForUnknownId).
    reading(&mut p, 1, 0, 25.0);
    plug(&mut p, 1, true);
    pilot(&mut p, 1, Pilot::C);
    assert!(p.cp.relay_closed(1));
    for hour in 1..=7 * 24 {
        p.advance(secs(3600));
        reading(&mut p, 1, hour * 7000, 25.0);
    }
    let out = card(&mut p, 1, "SN0001");
    assert!(
        Pile::frames(&out).is_empty(),
        "offline: nothing on the wire"
    );
    // 7 × 24 × 60 periodic samples, 7 × 48 clock-aligned ones (ClockAlignedDataInterval
    // 1800), the start and the stop, all durable.
    let expected = 7 * 24 * 60 + 7 * 48 + 2;
    assert_eq!(p.cp.outbox_len(), expected);
    assert_eq!(p.cp.durable().outbox().len(), p.cp.outbox_len());

    let sent = c.connect(&mut p);
    let tx: Vec<&Value> = sent
        .iter()
        .filter(|f| {
            f[2] != "BootNotification"
                && f[2] != "StatusNotification"
                && f[2] != "SecurityEventNotification"
        })
        .collect();
    assert_eq!(tx.len(), expected);
    // The security events: the start, and the central setting the clock a week back.
    let events: Vec<&Value> = sent
        .iter()
        .filter(|f| f[2] == "SecurityEventNotification")
        .map(|f| &f[3]["type"])
        .collect();
    assert_eq!(events, ["StartupOfTheDevice", "SettingSystemTime"]);
    assert_eq!(tx[0][2], "StartTransaction");
    assert_eq!(tx[0][3]["meterStart"], 0);
    assert_eq!(tx.last().unwrap()[2], "StopTransaction");
    assert_eq!(tx.last().unwrap()[3]["meterStop"], 7 * 24 * 7000);
    let mut last_time = String::new();
    for f in &tx[1..tx.len() - 1] {
        assert_eq!(f[2], "MeterValues");
        assert_eq!(f[3]["transactionId"], 101);
        let t = f[3]["meterValue"][0]["timestamp"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(t >= last_time, "in order");
        last_time = t;
    }
    let ids: std::collections::BTreeSet<&str> = tx.iter().map(|f| f[1].as_str().unwrap()).collect();
    assert_eq!(ids.len(), tx.len(), "each message once");
    assert_eq!(p.cp.outbox_len(), 0);
}

#[test]
fn a_crash_before_the_answer_sends_the_message_again_under_the_same_id() {
    let (mut p, mut c) = booted(1);
    reading(&mut p, 1, 1200, 25.0);
    // The status notifications are answered; the StartTransaction is sent, not answered.
    let mut frames = Pile::frames(&plug(&mut p, 1, true));
    let start = loop {
        let f = frames.remove(0);
        if f[2] == "StartTransaction" {
            break f;
        }
        frames.extend(Pile::frames(&p.reply(&f, json!({}))));
    };
    // Killed here: what is on disk is what the core made durable.
    let durable = p.cp.durable().clone();
    let mut again = Pile::with(1, durable, Options::default());
    let sent = c.connect(&mut again);
    let tx: Vec<&Value> = sent
        .iter()
        .filter(|f| f[2] == "StartTransaction" || f[2] == "StopTransaction")
        .collect();
    assert_eq!(tx.len(), 2);
    assert_eq!(tx[0][1], start[1], "the same message id");
    assert_eq!(tx[0][3], start[3], "the same message");
    // The transaction was cut off: it stops, PowerLoss, at the last register recorded.
    assert_eq!(tx[1][3]["reason"], "PowerLoss");
    assert_eq!(tx[1][3]["transactionId"], 101);
    assert_eq!(tx[1][3]["meterStop"], 1200);
    assert_eq!(
        tx[1][3]["timestamp"], "2026-11-24T12:00:00.000Z",
        "no sample yet: the start"
    );
    assert!(again.cp.transaction(1).is_none());
    assert_eq!(again.cp.outbox_len(), 0);
}

#[test]
fn call_errors_are_retried_up_to_transaction_message_attempts() {
    let (mut p, mut c) = booted(1);
    change(&mut p, &mut c, "TransactionMessageRetryInterval", "10");
    reading(&mut p, 1, 0, 25.0);
    c.after(&mut p, |p| plug(p, 1, true));
    let out = p.advance(secs(60));
    let mv = Pile::frames(&out)
        .into_iter()
        .find(|f| f[2] == "MeterValues")
        .unwrap();
    // Refused: again after 10 s, then after 20 s more, then dropped (3 attempts).
    let err = json!([4, mv[1], "InternalError", "busy", {}]).to_string();
    let after = Pile::frames(&p.input(Input::Frame(&err)));
    assert!(after.is_empty(), "{after:?}");
    assert!(Pile::frames(&p.advance(secs(9))).is_empty());
    let retry = Pile::frames(&p.advance(secs(1)));
    assert_eq!(retry[0][1], mv[1], "same message, same id");
    p.input(Input::Frame(&err));
    assert!(Pile::frames(&p.advance(secs(19))).is_empty());
    let retry = Pile::frames(&p.advance(secs(1)));
    assert_eq!(retry[0][1], mv[1]);
    assert_eq!(p.cp.outbox_len(), 1);
    let out = p.input(Input::Frame(&err));
    assert_eq!(p.cp.outbox_len(), 0, "dropped after the third failure");
    // The decision goes to the pile's log (the host logs it and keeps it for GetDiagnostics).
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Log(l) if l.contains("dropped after 3 failures"))),
        "{out:?}"
    );
    // A timeout is no failure to process: the message waits and goes again, same id.
    let out = p.advance(secs(60));
    let mv = Pile::frames(&out)
        .into_iter()
        .find(|f| f[2] == "MeterValues")
        .unwrap();
    // No answer within the call timeout (30 s): sent again after the retry interval.
    let later = Pile::frames(&p.advance(secs(45)));
    assert!(later.iter().any(|f| f[1] == mv[1]), "{later:?}");
    assert_eq!(p.cp.durable().outbox()[0].failures, 0);
}

#[test]
fn faq_3_5_offline_authorization() {
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    // Online, CARD1 is authorized by the central and so cached.
    c.after(&mut p, |p| card(p, 1, "CARD1"));
    p.advance(secs(200));
    assert!(p.cp.durable().auth_cache().contains_key("card1"));
    c.after(&mut p, |p| card(p, 1, "BADCARD"));
    assert!(p.cp.durable().auth_cache().contains_key("badcard"));

    p.input(Input::Disconnected);
    // Offline: a cached card starts (LocalAuthorizeOffline), a known bad one is refused, an
    // unknown one starts (AllowOfflineTxForUnknownId).
    for (tag, starts) in [("CARD1", true), ("BADCARD", false), ("STRANGER", true)] {
        let out = card(&mut p, 1, tag);
        let beep = if starts {
            Beep::Accepted
        } else {
            Beep::Refused
        };
        assert!(
            hardware(&out).contains(&HardwareCommand::Beep(beep)),
            "{tag}"
        );
        plug(&mut p, 1, true);
        assert_eq!(p.cp.transaction(1).is_some(), starts, "{tag}");
        card(&mut p, 1, tag);
        plug(&mut p, 1, false);
        p.advance(secs(200));
    }
    // FAQ 3.5: with the four keys off, no card starts offline.
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    c.after(&mut p, |p| card(p, 1, "CARD1"));
    p.advance(secs(200));
    for key in [
        "LocalAuthorizeOffline",
        "LocalPreAuthorize",
        "AuthorizationCacheEnabled",
        "AllowOfflineTxForUnknownId",
    ] {
        change(&mut p, &mut c, key, "false");
    }
    p.input(Input::Disconnected);
    for tag in ["CARD1", "FACTORY01", "STRANGER"] {
        let out = card(&mut p, 1, tag);
        assert!(
            hardware(&out).contains(&HardwareCommand::Beep(Beep::Refused)),
            "{tag}"
        );
    }
}

#[test]
fn faq_3_2_2_factory_cards_work_offline_until_the_name_changes() {
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    change(&mut p, &mut c, "AllowOfflineTxForUnknownId", "false");
    // Online with LocalPreAuthorize the factory card needs no Authorize.req.
    change(&mut p, &mut c, "LocalPreAuthorize", "true");
    let out = card(&mut p, 1, "FACTORY01");
    assert!(!Pile::frames(&out).iter().any(|f| f[2] == "Authorize"));
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Accepted)));
    p.advance(secs(200));
    p.input(Input::Disconnected);
    let out = card(&mut p, 1, "FACTORY01");
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Accepted)));
    p.advance(secs(200));
    // A new VendorChargePointName invalidates the factory cards.
    let (change, _) = p.cp.provision("VendorChargePointName", "RENAMED", p.now);
    assert_eq!(change.status, ocpp::ConfigurationStatus::Accepted);
    p.input(Input::Disconnected);
    let out = card(&mut p, 1, "FACTORY01");
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Refused)));
}

#[test]
fn an_invalid_id_tag_stops_the_transaction_or_limits_its_energy() {
    let mut p = Pile::new(1);
    let mut c = Central::new();
    // Offline start with an idTag the central later refuses.
    p.without_plug_and_charge_offline();
    reading(&mut p, 1, 0, 25.0);
    card(&mut p, 1, "BAD-7");
    plug(&mut p, 1, true);
    pilot(&mut p, 1, Pilot::C);
    let sent = c.connect(&mut p);
    let stop = of(&sent, "StopTransaction");
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0][3]["reason"], "DeAuthorized");

    // StopTransactionOnInvalidId false: MaxEnergyOnInvalidId (1000 Wh) more, then
    // SuspendedEVSE.
    let mut p = Pile::new(1);
    let mut c = Central::new();
    p.without_plug_and_charge_offline();
    change_offline(&mut p, "StopTransactionOnInvalidId", "false");
    reading(&mut p, 1, 0, 25.0);
    card(&mut p, 1, "BAD-8");
    plug(&mut p, 1, true);
    pilot(&mut p, 1, Pilot::C);
    reading(&mut p, 1, 500, 25.0);
    let sent = c.connect(&mut p);
    assert!(of(&sent, "StopTransaction").is_empty());
    assert_eq!(statuses_of(&sent, 1), vec!["Charging"]);
    let sent = c.after(&mut p, |p| reading(p, 1, 1400, 25.0));
    assert!(sent.is_empty());
    let out = reading(&mut p, 1, 1500, 25.0);
    assert!(hardware(&out).contains(&HardwareCommand::Relay {
        connector: 1,
        closed: false
    }));
    assert_eq!(statuses_of(&c.serve(&mut p, out), 1), vec!["SuspendedEVSE"]);
}

fn change_offline(p: &mut Pile, key: &str, value: &str) {
    let (change, _) = p.cp.provision(key, value, p.now);
    assert_eq!(change.status, ocpp::ConfigurationStatus::Accepted);
}

trait Offline {
    fn without_plug_and_charge_offline(&mut self);
}

impl Offline for Pile {
    fn without_plug_and_charge_offline(&mut self) {
        change_offline(self, "VendorDirectWorkMode", "false");
    }
}

#[test]
fn faq_3_12_faults_stop_or_suspend_charging() {
    let (mut p, mut c) = booted(1);
    c.charge(&mut p, 1);
    // A CP error with OEM_FaultMask bit 1: suspended, and resumed when it clears.
    change(&mut p, &mut c, "OEM_FaultMask", "2");
    let out = p.input(Input::Faults(&faults(&["cp_error"])));
    assert!(hardware(&out).contains(&HardwareCommand::Relay {
        connector: 1,
        closed: false
    }));
    let sent = c.serve(&mut p, out);
    assert_eq!(statuses_of(&sent, 1), vec!["SuspendedEVSE"]);
    assert!(of(&sent, "StopTransaction").is_empty());
    let out = p.input(Input::Faults(&faults(&[])));
    assert!(hardware(&out).contains(&HardwareCommand::Relay {
        connector: 1,
        closed: true
    }));
    assert_eq!(statuses_of(&c.serve(&mut p, out), 1), vec!["Charging"]);
    // Without bit 1 the same fault stops charging: the transaction ends (Other), Faulted
    // with the FAQ 3.6 code.
    change(&mut p, &mut c, "OEM_FaultMask", "0");
    let out = p.input(Input::Faults(&faults(&["cp_error"])));
    let sent = c.serve(&mut p, out);
    assert_eq!(of(&sent, "StopTransaction")[0][3]["reason"], "Other");
    let faulted = of(&sent, "StatusNotification");
    assert_eq!(faulted.last().unwrap()[3]["status"], "Faulted");
    assert_eq!(faulted.last().unwrap()[3]["vendorErrorCode"], "0x4000");
    assert!(!p.cp.relay_closed(1));
    // Cleared: Finishing (the plug is still in), no new transaction.
    let sent = c.after(&mut p, |p| p.input(Input::Faults(&faults(&[]))));
    assert_eq!(statuses_of(&sent, 1), vec!["Finishing"]);
    assert!(of(&sent, "StartTransaction").is_empty());
}

#[test]
fn change_availability_during_a_transaction_is_scheduled_until_it_ends() {
    let (mut p, mut c) = booted(1);
    c.charge(&mut p, 1);
    let out = p.central_calls(
        "ChangeAvailability",
        json!({"connectorId": 0, "type": "Inoperative"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Scheduled");
    let sent = c.serve(&mut p, out);
    assert_eq!(
        statuses_of(&sent, 1),
        Vec::<String>::new(),
        "still Charging"
    );
    assert!(p.cp.durable().scheduled().contains(&1));
    // The transaction ends: Unavailable at once (Charging → Finishing → Unavailable).
    let sent = c.after(&mut p, |p| card(p, 1, "SN0001"));
    assert_eq!(statuses_of(&sent, 1), vec!["Finishing", "Unavailable"]);
    // Unavailable: no card or remote start is taken.
    let out = p.central_calls(
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "CARD1"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Rejected");
}

#[test]
fn faq_3_13_function_mask_buzzer_cc_and_derating() {
    let (mut p, mut c) = booted(1);
    // CC: a 16 A cable limits the offer; with bit 1 (CC shielded) the rated 32 A.
    p.input(Input::Cable {
        connector: 1,
        amps: Some(16.0),
    });
    c.after(&mut p, |p| plug(p, 1, true));
    assert_eq!(p.cp.offered(1), Some(16.0));
    change(&mut p, &mut c, "OEM_FunctionMask", "0x2");
    assert_eq!(p.cp.offered(1), Some(32.0));
    // No valid CC resistor: the pile holds back, unless CC is shielded.
    change(&mut p, &mut c, "OEM_FunctionMask", "0");
    let out = p.input(Input::Cable {
        connector: 1,
        amps: None,
    });
    c.serve(&mut p, out);
    assert_eq!(p.cp.offered(1), None);
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::SuspendedEvse);
    change(&mut p, &mut c, "OEM_FunctionMask", "2");
    assert_eq!(p.cp.offered(1), Some(32.0));
    // Over-temperature derating from 70 °C: half the rated current; bit 3 shields it.
    reading(&mut p, 1, 0, pile::DERATING_FROM_C + 5.0);
    assert_eq!(p.cp.offered(1), Some(16.0));
    change(&mut p, &mut c, "OEM_FunctionMask", "10");
    assert_eq!(p.cp.offered(1), Some(32.0));
    // Bit 0: the buzzer stays silent.
    change(&mut p, &mut c, "OEM_FunctionMask", "11");
    let out = card(&mut p, 1, "SN0001");
    assert!(p.cp.transaction(1).is_none(), "stopped");
    assert!(!hardware(&out)
        .iter()
        .any(|h| matches!(h, HardwareCommand::Beep(_))));
}

#[test]
fn remote_start_and_stop() {
    let (mut p, mut c) = booted(2);
    p.without_plug_and_charge();
    let out = p.central_calls(
        "RemoteStartTransaction",
        json!({"connectorId": 2, "idTag": "REMOTE1"}),
    );
    let frames = Pile::frames(&out);
    assert_eq!(frames[0], json!([3, "cs-1", {"status": "Accepted"}]));
    let sent = c.serve(&mut p, out);
    assert_eq!(statuses_of(&sent, 2), vec!["Preparing"]);
    let sent = c.after(&mut p, |p| plug(p, 2, true));
    assert_eq!(of(&sent, "StartTransaction")[0][3]["idTag"], "REMOTE1");
    let tx = p.cp.transaction_id(2).unwrap();
    let out = p.central_calls("RemoteStopTransaction", json!({"transactionId": tx + 1}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Rejected");
    let out = p.central_calls("RemoteStopTransaction", json!({"transactionId": tx}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let sent = c.serve(&mut p, out);
    let stop = of(&sent, "StopTransaction")[0];
    assert_eq!(stop[3]["reason"], "Remote");
    assert!(stop[3].get("idTag").is_none());
    // FAQ 3.15: a profile other than TxProfile is refused.
    let out = p.central_calls(
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "R2", "chargingProfile": {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}}}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Rejected");
    // AuthorizeRemoteTxRequests: the idTag is authorized first; a bad one starts nothing.
    change(&mut p, &mut c, "AuthorizeRemoteTxRequests", "true");
    let out = p.central_calls(
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "BAD-R"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let sent = c.serve(&mut p, out);
    assert_eq!(actions(&sent), vec!["Authorize"]);
    c.after(&mut p, |p| plug(p, 1, true));
    assert!(p.cp.transaction(1).is_none());
}

#[test]
fn ev_side_disconnect_and_unlock() {
    let (mut p, mut c) = booted(1);
    c.charge(&mut p, 1);
    // StopTransactionOnEVSideDisconnect false (the FAQ's default): the transaction goes on.
    let sent = c.after(&mut p, |p| plug(p, 1, false));
    assert!(of(&sent, "StopTransaction").is_empty());
    assert_eq!(statuses_of(&sent, 1), vec!["SuspendedEV"]);
    let status = of(&sent, "StatusNotification")[0];
    assert_eq!(status[3]["info"], "EV side disconnected");
    assert_eq!(status[3]["errorCode"], "NoError");
    c.after(&mut p, |p| plug(p, 1, true));
    change(&mut p, &mut c, "StopTransactionOnEVSideDisconnect", "true");
    let sent = c.after(&mut p, |p| plug(p, 1, false));
    assert_eq!(
        of(&sent, "StopTransaction")[0][3]["reason"],
        "EVDisconnected"
    );
    assert_eq!(statuses_of(&sent, 1), vec!["Finishing", "Available"]);
    // UnlockConnector stops a transaction first.
    c.after(&mut p, |p| plug(p, 1, true));
    let out = p.central_calls("UnlockConnector", json!({"connectorId": 1}));
    assert!(hardware(&out).contains(&HardwareCommand::Unlock { connector: 1 }));
    let sent = c.serve(&mut p, out);
    assert_eq!(
        of(&sent, "StopTransaction")[0][3]["reason"],
        "UnlockCommand"
    );
}

#[test]
fn reset_stops_transactions_and_the_restarted_pile_reports_them() {
    // OCPP 1.6 5.13: the StopTransaction is sent, and its answer awaited, before the restart.
    let (mut p, mut c) = booted(1);
    reading(&mut p, 1, 300, 25.0);
    c.after(&mut p, |p| plug(p, 1, true));
    let out = p.central_calls("Reset", json!({"type": "Soft"}));
    let frames = Pile::frames(&out);
    assert_eq!(frames[0], json!([3, "cs-1", {"status": "Accepted"}]));
    let stop = of(&frames, "StopTransaction")[0].clone();
    assert_eq!(
        (stop[3]["reason"].as_str(), stop[3]["meterStop"].as_i64()),
        (Some("SoftReset"), Some(300))
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Restart { .. })));
    // No new session meanwhile, and no restart before the answer.
    let out = p.advance(secs(5));
    assert!(!out.iter().any(|o| matches!(o, Output::Restart { .. })));
    let out = p.reply(&stop, json!({}));
    assert_eq!(out.last(), Some(&Output::Restart { hard: false }));
    assert!(p.cp.durable().outbox().is_empty());

    // Unanswered: the restart comes after RESET_STOP_WAIT, and the restarted pile sends the
    // same StopTransaction again.
    let (mut p, mut c) = booted(1);
    reading(&mut p, 1, 300, 25.0);
    c.after(&mut p, |p| plug(p, 1, true));
    let out = p.central_calls("Reset", json!({"type": "Hard"}));
    let first = of(&Pile::frames(&out), "StopTransaction")[0].clone();
    assert_eq!(first[3]["reason"], "HardReset");
    let out = p.advance(pile::RESET_STOP_WAIT - secs(1));
    assert!(!out.iter().any(|o| matches!(o, Output::Restart { .. })));
    let out = p.advance(secs(1));
    assert_eq!(out.last(), Some(&Output::Restart { hard: true }));
    let mut again = Pile::with(1, p.cp.durable().clone(), Options::default());
    let sent = c.connect(&mut again);
    let stop = of(&sent, "StopTransaction")[0];
    assert_eq!(stop[1], first[1], "the same message");
    assert_eq!(stop[3]["meterStop"], 300);

    // The connection drops while waiting: the restart comes at once.
    let (mut p, mut c) = booted(1);
    c.after(&mut p, |p| plug(p, 1, true));
    p.central_calls("Reset", json!({"type": "Hard"}));
    let out = p.input(Input::Disconnected);
    assert_eq!(out.last(), Some(&Output::Restart { hard: true }));
    assert_eq!(
        p.cp.durable().outbox().len(),
        1,
        "the stop waits for the restarted pile"
    );
}

#[test]
fn clock_aligned_meter_values() {
    let (mut p, mut c) = booted(1);
    change(&mut p, &mut c, "ClockAlignedDataInterval", "900");
    change(&mut p, &mut c, "MeterValueSampleInterval", "0");
    reading(&mut p, 1, 10, 25.0);
    // 12:00:00 now: the next quarter hour is 12:15.
    assert!(of(&c.after(&mut p, |p| p.advance(secs(899))), "MeterValues").is_empty());
    let sent = c.after(&mut p, |p| p.advance(secs(1)));
    let mv = of(&sent, "MeterValues");
    assert_eq!(mv.len(), 1);
    assert_eq!(
        mv[0][3]["meterValue"][0]["timestamp"],
        "2026-11-24T12:15:00.000Z"
    );
    assert_eq!(
        mv[0][3]["meterValue"][0]["sampledValue"][0]["context"],
        "Sample.Clock"
    );
    assert!(mv[0][3].get("transactionId").is_none());
    // In a transaction they carry its id.
    c.after(&mut p, |p| plug(p, 1, true));
    let sent = c.after(&mut p, |p| p.advance(secs(900)));
    assert_eq!(of(&sent, "MeterValues")[0][3]["transactionId"], 101);
}

#[test]
fn clear_cache_empties_the_authorization_cache() {
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    c.after(&mut p, |p| card(p, 1, "CARD1"));
    assert!(!p.cp.durable().auth_cache().is_empty());
    let out = p.central_calls("ClearCache", json!({}));
    assert_eq!(out[0], Output::Persist);
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    assert!(p.cp.durable().auth_cache().is_empty());
}

#[test]
fn the_local_authorization_list() {
    let (mut p, mut c) = booted(1);
    p.without_plug_and_charge();
    let version = |p: &mut Pile| {
        let out = p.central_calls("GetLocalListVersion", json!({}));
        Pile::frames(&out)[0][2]["listVersion"].clone()
    };
    assert_eq!(version(&mut p), 0, "empty");
    let send = |p: &mut Pile, body: Value| {
        let out = p.central_calls("SendLocalList", body);
        Pile::frames(&out)[0][2]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let out = p.central_calls(
        "SendLocalList",
        json!({"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
            {"idTag": "LIST1", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "LIST2", "idTagInfo": {"status": "Blocked"}}]}),
    );
    assert_eq!(out[0], Output::Persist, "durable before the answer");
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    assert_eq!(version(&mut p), 3);
    // Differential: a version not above the current one is refused; an entry without
    // idTagInfo is removed.
    let diff = |v: i64| {
        json!({"listVersion": v, "updateType": "Differential", "localAuthorizationList": [
            {"idTag": "LIST2"}, {"idTag": "LIST3", "idTagInfo": {"status": "Blocked"}}]})
    };
    assert_eq!(send(&mut p, diff(3)), "VersionMismatch");
    assert_eq!(send(&mut p, diff(4)), "Accepted");
    assert_eq!(version(&mut p), 4);
    assert!(!p.cp.durable().local_list().contains_key("list2"));
    // A full list needs a verdict for each entry; a message over SendLocalListMaxLength fails.
    assert_eq!(
        send(
            &mut p,
            json!({"listVersion": 5, "updateType": "Full", "localAuthorizationList": [{"idTag": "X"}]})
        ),
        "Failed"
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"idTag": format!("T{i}"), "idTagInfo": {"status": "Accepted"}}))
        .collect();
    assert_eq!(
        send(
            &mut p,
            json!({"listVersion": 5, "updateType": "Full", "localAuthorizationList": many})
        ),
        "Failed"
    );
    assert_eq!(version(&mut p), 4, "unchanged");

    // The central says otherwise of a listed idTag: LocalListConflict on connector 0, a warning
    // cleared by the next report.
    let sent = c.after(&mut p, |p| card(p, 1, "LIST3"));
    let conflict: Vec<&Value> = of(&sent, "StatusNotification")
        .into_iter()
        .filter(|f| f[3]["connectorId"] == 0)
        .collect();
    assert_eq!(conflict[0][3]["errorCode"], "LocalListConflict");
    assert_eq!(conflict[0][3]["status"], "Available");
    assert_eq!(conflict[0][3]["info"], "idTag LIST3");
    assert_eq!(conflict[1][3]["errorCode"], "NoError");
    p.advance(secs(200));
    // Online with LocalPreAuthorize: a listed card needs no Authorize.req.
    change(&mut p, &mut c, "LocalPreAuthorize", "true");
    let out = card(&mut p, 1, "LIST1");
    assert!(!Pile::frames(&out).iter().any(|f| f[2] == "Authorize"));
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Accepted)));
    p.advance(secs(200));
    assert!(
        !p.cp.durable().auth_cache().contains_key("list1"),
        "the list decides, not the cache"
    );
    // Offline: the list's verdicts count, before AllowOfflineTxForUnknownId.
    p.input(Input::Disconnected);
    let out = card(&mut p, 1, "LIST3");
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Refused)));
    // LocalAuthListEnabled off: the list is not consulted; LIST3 is unknown, so it starts.
    change_offline(&mut p, "LocalAuthListEnabled", "false");
    let out = card(&mut p, 1, "LIST3");
    assert!(hardware(&out).contains(&HardwareCommand::Beep(Beep::Accepted)));
    // An empty full list: version 0.
    p.advance(secs(200));
    let mut c = Central::new();
    c.connect(&mut p);
    assert_eq!(
        send(
            &mut p,
            json!({"listVersion": 9, "updateType": "Full", "localAuthorizationList": []})
        ),
        "Accepted"
    );
    assert_eq!(version(&mut p), 0);
}

/// ReserveNow for `minutes` from now; answers what follows; returns the status.
fn reserve(
    p: &mut Pile,
    c: &mut Central,
    connector: u32,
    id_tag: &str,
    reservation: i32,
    minutes: i64,
) -> String {
    let expiry = (chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap()
        + chrono::Duration::seconds(p.now.as_secs() as i64)
        + chrono::Duration::minutes(minutes))
    .to_utc()
    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
    .to_string();
    let out = p.central_calls(
        "ReserveNow",
        json!({"connectorId": connector, "expiryDate": expiry, "idTag": id_tag, "reservationId": reservation}),
    );
    let status = Pile::frames(&out)[0][2]["status"]
        .as_str()
        .unwrap()
        .to_owned();
    c.serve(p, out);
    status
}

#[test]
fn a_reservation_holds_the_connector_for_its_id_tag() {
    let (mut p, mut c) = booted(2);
    assert_eq!(reserve(&mut p, &mut c, 1, "RES1", 7, 60), "Accepted");
    assert!(p.cp.durable().reservations().contains_key(&7));
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Reserved);
    assert_eq!(
        reserve(&mut p, &mut c, 1, "RES2", 8, 60),
        "Occupied",
        "already held"
    );
    assert_eq!(reserve(&mut p, &mut c, 3, "RES2", 8, 60), "Rejected");
    assert_eq!(
        reserve(&mut p, &mut c, 2, "RES2", 8, -1),
        "Rejected",
        "expired"
    );
    // Another card is refused; a plug alone starts nothing (plug-and-charge waits).
    let sent = c.after(&mut p, |p| card(p, 1, "OTHER"));
    assert_eq!(actions(&sent), vec!["Authorize"]);
    assert!(p
        .log
        .contains(&Output::Hardware(HardwareCommand::Beep(Beep::Refused))));
    let sent = c.after(&mut p, |p| plug(p, 1, true));
    assert!(of(&sent, "StartTransaction").is_empty());
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Reserved);
    // The reserved idTag starts, with the reservationId; the reservation is used.
    let sent = c.after(&mut p, |p| card(p, 1, "RES1"));
    let start = of(&sent, "StartTransaction");
    assert_eq!(start[0][3]["reservationId"], 7);
    assert_eq!(statuses_of(&sent, 1), vec!["Preparing", "SuspendedEV"]);
    assert!(p.cp.durable().reservations().is_empty());
    // CancelReservation: unknown Rejected; known Accepted, back to Available.
    assert_eq!(reserve(&mut p, &mut c, 2, "RES2", 8, 60), "Accepted");
    let out = p.central_calls("CancelReservation", json!({"reservationId": 99}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Rejected");
    let out = p.central_calls("CancelReservation", json!({"reservationId": 8}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    assert_eq!(statuses_of(&c.serve(&mut p, out), 2), vec!["Available"]);
    // It expires at its expiryDate.
    assert_eq!(reserve(&mut p, &mut c, 2, "RES3", 9, 10), "Accepted");
    assert!(statuses_of(&c.after(&mut p, |p| p.advance(secs(599))), 2).is_empty());
    let sent = c.after(&mut p, |p| p.advance(secs(1)));
    assert_eq!(statuses_of(&sent, 2), vec!["Available"]);
    // Faulted and Unavailable connectors cannot be reserved.
    change(&mut p, &mut c, "OEM_FaultMask", "0");
    c.after(&mut p, |p| p.input(Input::Faults(&faults(&["flash"]))));
    assert_eq!(reserve(&mut p, &mut c, 2, "RES4", 10, 60), "Faulted");
    c.after(&mut p, |p| p.input(Input::Faults(&faults(&[]))));
    c.after(&mut p, |p| {
        p.central_calls(
            "ChangeAvailability",
            json!({"connectorId": 2, "type": "Inoperative"}),
        )
    });
    assert_eq!(reserve(&mut p, &mut c, 2, "RES4", 10, 60), "Unavailable");
}

#[test]
fn a_reservation_of_connector_zero_holds_the_last_free_connector() {
    let (mut p, mut c) = booted(2);
    assert_eq!(reserve(&mut p, &mut c, 0, "ZERO1", 5, 60), "Accepted");
    // Two free connectors for one reservation: neither is held.
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Available);
    assert_eq!(p.cp.status(2), ocpp::ChargePointStatus::Available);
    // A plug-and-charge session takes connector 1; connector 2 is now held.
    let sent = c.after(&mut p, |p| plug(p, 1, true));
    assert_eq!(of(&sent, "StartTransaction").len(), 1);
    assert_eq!(statuses_of(&sent, 2), vec!["Reserved"]);
    let sent = c.after(&mut p, |p| card(p, 2, "OTHER"));
    assert_eq!(actions(&sent), vec!["Authorize"]);
    assert!(p.cp.transaction(2).is_none());
    // The reserved idTag, at the pile's own reader, goes to the held connector.
    c.after(&mut p, |p| plug(p, 2, true));
    let sent = c.after(&mut p, |p| {
        p.input(Input::Card {
            connector: None,
            id_tag: "ZERO1",
        })
    });
    let start = of(&sent, "StartTransaction");
    assert_eq!(start[0][3]["connectorId"], 2);
    assert_eq!(start[0][3]["reservationId"], 5);
}
