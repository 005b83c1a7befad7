//! Campaign scenarios on a virtual clock: the time is a number the test moves.

use std::collections::HashMap;

use super::rollout::{POLL_INTERVAL, REBOOT_WAIT, RETRY, SILENCE, STALL};
use super::*;
use ocpp::FirmwareStatus as S;

pub(super) const T0: Millis = 1_800_000_000_000;
pub(super) const SEC: Millis = 1000;

pub(super) fn step(image: i64, name: &str, version: Option<&str>) -> Step {
    Step {
        image,
        name: name.into(),
        url: format!("http://central/firmware/{image}/{name}"),
        version: version.map(Into::into),
        signature: None,
    }
}

/// A campaign over `piles`, the piles' facts, and the clock.
pub(super) struct World {
    pub(super) campaign: Campaign,
    facts: HashMap<String, Facts>,
    pub(super) now: Millis,
}

impl World {
    pub(super) fn new(piles: &[&str], steps: Vec<Step>, batch_size: usize) -> World {
        let facts = piles
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    Facts {
                        connected: true,
                        charging: false,
                        firmware_version: Some("1.0".into()),
                    },
                )
            })
            .collect();
        World {
            campaign: Campaign {
                id: 1,
                created_at: T0,
                spec: Spec {
                    steps,
                    batch_size,
                    update: UpdateTerms {
                        retrieve_in: 0,
                        retries: 2,
                        retry_interval: 30 * SEC,
                        signed_requests: None,
                    },
                    deadline: T0 + 24 * 3600 * SEC,
                    refused: vec![],
                },
                rollouts: piles.iter().map(|p| Rollout::new(*p)).collect(),
                cancelled: false,
                finished_at: None,
            },
            facts,
            now: T0,
        }
    }

    pub(super) fn one(version: Option<&str>) -> World {
        World::new(&["P1"], vec![step(1, "fw-2.0.bin", version)], 1)
    }

    pub(super) fn tick(&mut self) -> Vec<Order> {
        let facts = self.facts.clone();
        self.campaign
            .tick(|p| facts.get(p).cloned().unwrap_or_default(), self.now)
    }

    pub(super) fn advance(&mut self, ms: Millis) -> Vec<Order> {
        self.now += ms;
        self.tick()
    }

    pub(super) fn notify(&mut self, pile: &str, status: S) -> Vec<Order> {
        self.campaign.on_notification(pile, status, self.now)
    }

    pub(super) fn boot(&mut self, pile: &str, version: &str) -> Vec<Order> {
        self.facts.get_mut(pile).unwrap().firmware_version = Some(version.into());
        self.campaign.on_boot(pile, Some(version), self.now)
    }

    pub(super) fn answer(&mut self, pile: &str, kind: Kind, answer: Answer) {
        self.campaign.on_answer(pile, kind, answer, self.now);
    }

    pub(super) fn rollout(&self, pile: &str) -> &Rollout {
        self.campaign
            .rollouts
            .iter()
            .find(|r| r.pile == pile)
            .unwrap()
    }

    /// UpdateFirmware accepted, then Downloading → ... → Installed.
    fn install(&mut self, pile: &str) {
        self.answer(pile, Kind::UpdateFirmware, Answer::Ok(None));
        for s in [S::Downloading, S::Downloaded, S::Installing, S::Installed] {
            assert_eq!(self.notify(pile, s), vec![]);
            self.now += SEC;
        }
        assert_eq!(self.rollout(pile).phase, Phase::Rebooting);
    }
}

pub(super) fn kinds(orders: &[Order]) -> Vec<(String, Kind)> {
    orders
        .iter()
        .map(|o| (o.pile.clone(), o.command.kind()))
        .collect()
}

pub(super) fn only(orders: &[Order], pile: &str, kind: Kind) {
    assert_eq!(kinds(orders), vec![(pile.to_owned(), kind)], "{orders:?}");
}

#[test]
fn the_happy_path() {
    let mut w = World::one(Some("fw-2.0.bin"));
    let orders = w.tick();
    assert_eq!(
        orders,
        vec![Order {
            pile: "P1".into(),
            command: Command::UpdateFirmware {
                location: "http://central/firmware/1/fw-2.0.bin".into(),
                retrieve_date: T0,
                retries: 2,
                retry_interval: 30 * SEC,
                signed: None,
            }
        }]
    );
    assert_eq!(w.rollout("P1").phase, Phase::Sending);
    assert_eq!(w.rollout("P1").from_version.as_deref(), Some("1.0"));
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(w.notify("P1", S::Downloading), vec![]);
    // The progress is read while Downloading.
    only(&w.advance(SEC), "P1", Kind::ReadProgress);
    w.answer("P1", Kind::ReadProgress, Answer::Ok(Some("42".into())));
    assert_eq!(w.rollout("P1").percent, Some(42));
    assert_eq!(w.advance(SEC), vec![], "not before the poll interval");
    only(&w.advance(POLL_INTERVAL), "P1", Kind::ReadProgress);
    w.answer("P1", Kind::ReadProgress, Answer::Ok(Some("77".into())));
    for s in [S::Downloaded, S::Installing, S::Installed] {
        assert_eq!(w.notify("P1", s), vec![]);
        w.now += SEC;
    }
    assert_eq!(w.rollout("P1").percent, Some(100));
    assert_eq!(w.tick(), vec![], "no progress reading once Downloaded");
    only(&w.boot("P1", "fw-2.0.bin"), "P1", Kind::SetOperative);
    assert_eq!(w.campaign.state(), State::Running);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Succeeded));
    assert_eq!(r.to_version.as_deref(), Some("fw-2.0.bin"));
    assert_eq!(r.error, None);
    assert!(r.finished_at.unwrap() > r.started_at.unwrap());
    assert_eq!(w.campaign.state(), State::Finished);
    assert_eq!(
        w.campaign.finished_at,
        Some(w.now),
        "finished with its last answer"
    );
    assert_eq!(w.tick(), vec![]);
}

#[test]
fn the_faqs_two_images_go_in_order() {
    let esp = "cp.onfly.V1.2@23283e3+48.ws.cp";
    let st = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";
    let mut w = World::new(&["G2"], vec![step(1, esp, None), step(2, st, None)], 1);
    let first = w.tick();
    assert!(
        matches!(&first[0].command, Command::UpdateFirmware { location, .. } if location.ends_with(esp))
    );
    w.install("G2");
    // The ST image right after the pile is back on the new ESP32 firmware.
    let second = w.boot("G2", esp);
    assert!(
        matches!(&second[..], [Order { command: Command::UpdateFirmware { location, .. }, .. }] if location.ends_with(st))
    );
    assert_eq!(w.rollout("G2").from_version.as_deref(), Some(esp));
    w.install("G2");
    only(&w.boot("G2", st), "G2", Kind::SetOperative);
    w.answer("G2", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("G2");
    assert_eq!(r.outcome, Some(Outcome::Succeeded));
    assert_eq!(r.original_version.as_deref(), Some("1.0"));
    assert_eq!(r.to_version.as_deref(), Some(st));
}

#[test]
fn a_silent_pile_gets_exactly_one_trigger_per_silence() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloaded);
    assert_eq!(w.advance(SILENCE - 1), vec![]);
    only(&w.advance(1), "P1", Kind::TriggerStatus);
    w.answer("P1", Kind::TriggerStatus, Answer::Ok(None));
    for _ in 0..10 {
        assert_eq!(w.advance(5 * SEC), vec![], "one trigger per silence");
    }
    // The notification ends the silence; the next one gets its own trigger.
    w.notify("P1", S::Installing);
    assert_eq!(w.advance(SILENCE - 1), vec![]);
    only(&w.advance(1), "P1", Kind::TriggerStatus);
    assert_eq!(w.advance(SEC), vec![]);
    // Silent far too long: timed out, and set Operative again.
    w.now += STALL;
    only(&w.tick(), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.rollout("P1").outcome, Some(Outcome::TimedOut));
}

#[test]
fn no_trigger_before_the_retrieve_date() {
    let mut w = World::one(None);
    w.campaign.spec.update.retrieve_in = 60 * SEC;
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(w.advance(60 * SEC + SILENCE - 1), vec![]);
    only(&w.advance(1), "P1", Kind::TriggerStatus);
}

#[test]
fn installation_failed_fails_and_restores_availability() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    only(
        &w.notify("P1", S::InstallationFailed),
        "P1",
        Kind::SetOperative,
    );
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Failed));
    assert_eq!(
        r.error.as_deref(),
        Some("the pile reports InstallationFailed")
    );
    assert_eq!(r.status.as_deref(), Some("InstallationFailed"));
}

#[test]
fn a_failed_download_waits_for_the_retries_it_asked_for() {
    let mut w = World::one(Some("fw-2.0.bin"));
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    // The first of three attempts fails: the pile tries again, nothing to send.
    assert_eq!(w.notify("P1", S::DownloadFailed), vec![]);
    let r = w.rollout("P1");
    assert_eq!((r.phase, r.outcome), (Phase::Upgrading, None));
    assert_eq!(r.failed_attempts, 1);
    assert_eq!(r.status.as_deref(), Some("DownloadFailed"));
    // The same failure told again (the pile's 10 s rule, or a trigger) is no new attempt.
    for _ in 0..2 {
        w.now += 10 * SEC;
        assert_eq!(w.notify("P1", S::DownloadFailed), vec![]);
    }
    assert_eq!(w.rollout("P1").failed_attempts, 1);
    assert_eq!(w.advance(5 * SEC), vec![], "no progress reading meanwhile");
    // The retry, and its failure; the third attempt succeeds.
    w.notify("P1", S::Downloading);
    assert_eq!(w.notify("P1", S::DownloadFailed), vec![]);
    w.notify("P1", S::Downloading);
    for s in [S::Downloaded, S::Installing, S::Installed] {
        assert_eq!(w.notify("P1", s), vec![]);
    }
    only(&w.boot("P1", "fw-2.0.bin"), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Succeeded));
    assert_eq!(r.failed_attempts, 2);
}

#[test]
fn the_failure_of_the_last_attempt_fails_the_pile() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    for _ in 0..2 {
        w.notify("P1", S::Downloading);
        assert_eq!(w.notify("P1", S::DownloadFailed), vec![]);
    }
    w.notify("P1", S::Downloading);
    only(&w.notify("P1", S::DownloadFailed), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Failed));
    assert_eq!(r.failed_attempts, 3);
    assert_eq!(
        r.error.as_deref(),
        Some("the pile reports DownloadFailed (all 3 attempts)")
    );
}

#[test]
fn without_retries_the_first_download_failure_fails_the_pile() {
    let mut w = World::one(None);
    w.campaign.spec.update.retries = 0;
    let orders = w.tick();
    assert!(
        matches!(
            &orders[0].command,
            Command::UpdateFirmware { retries: 0, .. }
        ),
        "{orders:?}"
    );
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    only(&w.notify("P1", S::DownloadFailed), "P1", Kind::SetOperative);
    assert_eq!(
        w.rollout("P1").error.as_deref(),
        Some("the pile reports DownloadFailed (its only attempt)")
    );
}

#[test]
fn a_pile_that_does_not_retry_in_time_fails() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    w.notify("P1", S::DownloadFailed);
    // Idle before the retry is due: the pile waits for its time.
    w.now += 10 * SEC;
    assert_eq!(w.notify("P1", S::Idle), vec![]);
    assert_eq!(w.rollout("P1").outcome, None);
    // Silent: asked once the silence is long enough; Idle past the retry's time fails it.
    assert_eq!(w.advance(SILENCE - 1), vec![]);
    only(&w.advance(1), "P1", Kind::TriggerStatus);
    only(&w.notify("P1", S::Idle), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Failed));
    assert_eq!(
        r.error.as_deref(),
        Some("the pile reports DownloadFailed and did not try again within 30 s")
    );
}

#[test]
fn idle_after_progress_without_a_failure_means_the_upgrade_stopped() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    only(&w.notify("P1", S::Idle), "P1", Kind::SetOperative);
    assert_eq!(
        w.rollout("P1").error.as_deref(),
        Some("the pile reports Idle: the upgrade stopped")
    );
}

#[test]
fn a_refused_update_fails_without_more_commands() {
    let mut w = World::one(None);
    w.tick();
    w.answer(
        "P1",
        Kind::UpdateFirmware,
        Answer::Refused("NotSupported".into()),
    );
    assert_eq!(w.rollout("P1").outcome, Some(Outcome::Failed));
    assert_eq!(w.advance(SEC), vec![]);
}

#[test]
fn a_charging_pile_waits_until_its_transaction_ends() {
    let mut w = World::new(&["P1", "P2"], vec![step(1, "fw.bin", None)], 2);
    w.facts.get_mut("P1").unwrap().charging = true;
    only(&w.tick(), "P2", Kind::UpdateFirmware);
    for _ in 0..5 {
        let orders = w.advance(60 * SEC);
        assert!(
            !kinds(&orders).contains(&("P1".into(), Kind::UpdateFirmware)),
            "{orders:?}"
        );
    }
    assert_eq!(w.rollout("P1").phase, Phase::Waiting);
    w.facts.get_mut("P1").unwrap().charging = false;
    let orders = w.advance(SEC);
    assert!(kinds(&orders).contains(&("P1".into(), Kind::UpdateFirmware)));
}

#[test]
fn an_offline_pile_waits_and_a_lost_update_goes_again() {
    let mut w = World::one(None);
    w.facts.get_mut("P1").unwrap().connected = false;
    assert_eq!(w.tick(), vec![]);
    w.facts.get_mut("P1").unwrap().connected = true;
    only(&w.advance(SEC), "P1", Kind::UpdateFirmware);
    w.answer("P1", Kind::UpdateFirmware, Answer::Lost);
    assert_eq!(w.rollout("P1").phase, Phase::Waiting);
    assert_eq!(w.advance(SEC), vec![], "not at once");
    only(&w.advance(RETRY), "P1", Kind::UpdateFirmware);
}

#[test]
fn a_pile_that_reboots_on_the_old_version_fails() {
    let mut w = World::one(None);
    w.tick();
    w.install("P1");
    only(&w.boot("P1", "1.0"), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Failed));
    assert_eq!(r.error.as_deref(), Some("rebooted on the old version 1.0"));
    assert_eq!(w.campaign.state(), State::Finished);
}

#[test]
fn a_pile_that_boots_on_another_version_than_the_images_fails() {
    let mut w = World::one(Some("2.0"));
    w.tick();
    w.install("P1");
    w.boot("P1", "1.5");
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Failed));
    assert_eq!(
        r.error.as_deref(),
        Some("booted on 1.5, not the image's 2.0")
    );
}

#[test]
fn a_pile_already_on_the_version_is_skipped() {
    let mut w = World::one(Some("1.0"));
    assert_eq!(w.tick(), vec![]);
    let r = w.rollout("P1");
    assert_eq!(r.outcome, Some(Outcome::Skipped));
    assert_eq!(r.error.as_deref(), Some("already runs 1.0"));
}

#[test]
fn no_boot_after_installed_times_out() {
    let mut w = World::one(None);
    w.tick();
    w.install("P1");
    assert_eq!(w.advance(REBOOT_WAIT - 10 * SEC), vec![]);
    only(&w.advance(10 * SEC), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Lost);
    assert_eq!(w.advance(SEC), vec![]);
    only(&w.advance(RETRY), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.rollout("P1").outcome, Some(Outcome::TimedOut));
}

#[test]
fn batches_limit_how_many_upgrade_at_once() {
    let mut w = World::new(&["A", "B", "C"], vec![step(1, "fw.bin", None)], 2);
    let first = kinds(&w.tick());
    assert_eq!(
        first,
        vec![
            ("A".into(), Kind::UpdateFirmware),
            ("B".into(), Kind::UpdateFirmware)
        ]
    );
    w.install("A");
    assert_eq!(w.advance(SEC), vec![], "C waits for a place");
    w.boot("A", "fw.bin");
    w.answer("A", Kind::SetOperative, Answer::Ok(None));
    only(&w.advance(SEC), "C", Kind::UpdateFirmware);
}

#[test]
fn the_deadline_times_out_what_is_left() {
    let mut w = World::new(&["A", "B"], vec![step(1, "fw.bin", None)], 1);
    w.tick();
    w.now = w.campaign.spec.deadline;
    w.tick();
    for p in ["A", "B"] {
        assert_eq!(w.rollout(p).outcome, Some(Outcome::TimedOut));
    }
    assert_eq!(w.campaign.state(), State::Finished);
}

#[test]
fn cancelling_skips_the_piles_not_started_and_follows_the_others() {
    let mut w = World::new(&["A", "B"], vec![step(1, "fw.bin", None)], 1);
    w.tick();
    w.campaign.cancel();
    w.tick();
    assert_eq!(w.rollout("B").outcome, Some(Outcome::Skipped));
    assert_eq!(w.campaign.state(), State::Running);
    w.install("A");
    w.boot("A", "fw.bin");
    w.answer("A", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.rollout("A").outcome, Some(Outcome::Succeeded));
    assert_eq!(w.campaign.state(), State::Cancelled);
}

/// The central system restarted mid-campaign: the rollouts come back from their JSON.
fn restarted(w: &mut World) {
    let saved: Vec<String> = w
        .campaign
        .rollouts
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    w.campaign.rollouts = saved
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    w.now += 30 * SEC;
    w.campaign.resume(w.now);
}

#[test]
fn a_restarted_central_resumes_the_campaign() {
    let mut w = World::new(&["A", "B"], vec![step(1, "fw.bin", None)], 1);
    w.tick();
    w.answer("A", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("A", S::Downloading);
    restarted(&mut w);
    // A goes on from where it was: its silence counts from the restart.
    assert_eq!(w.rollout("A").phase, Phase::Upgrading);
    only(&w.tick(), "A", Kind::ReadProgress);
    assert_eq!(
        w.advance(SILENCE - 1),
        vec![],
        "no trigger: the silence counts anew"
    );
    for s in [S::Downloaded, S::Installing, S::Installed] {
        w.notify("A", s);
    }
    w.boot("A", "fw.bin");
    w.answer("A", Kind::SetOperative, Answer::Ok(None));
    // B's UpdateFirmware was on its way at the restart: not sent again, B is asked its
    // status, and goes on from what it tells.
    only(&w.advance(SEC), "B", Kind::UpdateFirmware);
    restarted(&mut w);
    assert_eq!(w.rollout("B").phase, Phase::Upgrading);
    only(&w.tick(), "B", Kind::TriggerStatus);
    assert_eq!(w.advance(SEC), vec![], "asked once");
    w.answer("B", Kind::TriggerStatus, Answer::Ok(None));
    for s in [S::Downloading, S::Downloaded, S::Installing, S::Installed] {
        assert_eq!(w.notify("B", s), vec![]);
    }
    assert_eq!(w.rollout("B").phase, Phase::Rebooting);
    w.boot("B", "fw.bin");
    w.answer("B", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.campaign.state(), State::Finished);
    assert!(w
        .campaign
        .rollouts
        .iter()
        .all(|r| r.outcome == Some(Outcome::Succeeded)));
}

#[test]
fn an_update_lost_at_a_restart_goes_again_once_the_pile_tells_it_is_idle() {
    let mut w = World::one(None);
    w.campaign.spec.update.retrieve_in = 60 * SEC;
    only(&w.tick(), "P1", Kind::UpdateFirmware);
    // Restarted 30 s later, its answer unknown: the pile is asked, not sent it again.
    restarted(&mut w);
    only(&w.tick(), "P1", Kind::TriggerStatus);
    w.answer("P1", Kind::TriggerStatus, Answer::Ok(None));
    // Idle before the retrieve date: a pile that has it waits too.
    assert_eq!(w.notify("P1", S::Idle), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Upgrading);
    // The silence counts from the retrieve date (T0 + 60 s); it is now T0 + 30 s.
    assert_eq!(w.advance(30 * SEC + SILENCE - 1), vec![]);
    // Past the retrieve date, still idle when asked: it never got the UpdateFirmware.
    only(&w.advance(1), "P1", Kind::TriggerStatus);
    w.answer("P1", Kind::TriggerStatus, Answer::Ok(None));
    assert_eq!(w.notify("P1", S::Idle), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Waiting);
    only(&w.tick(), "P1", Kind::UpdateFirmware);
}

#[test]
fn a_pile_taken_up_mid_download_is_not_sent_the_update_again() {
    let mut w = World::one(None);
    only(&w.tick(), "P1", Kind::UpdateFirmware);
    restarted(&mut w);
    only(&w.tick(), "P1", Kind::TriggerStatus);
    w.notify("P1", S::Downloading);
    // Confirmed: an Idle now is the upgrade stopping, not an update that never came.
    w.notify("P1", S::Idle);
    assert_eq!(w.rollout("P1").phase, Phase::Restoring);
    let all = w.advance(10 * SEC);
    assert!(
        kinds(&all).iter().all(|(_, k)| *k != Kind::UpdateFirmware),
        "{all:?}"
    );
}

#[test]
fn a_pile_without_the_progress_key_is_not_asked_again() {
    let mut w = World::one(None);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    only(&w.advance(SEC), "P1", Kind::ReadProgress);
    w.answer("P1", Kind::ReadProgress, Answer::Ok(None));
    w.notify("P1", S::Downloading);
    assert_eq!(w.advance(POLL_INTERVAL * 2), vec![]);
    assert_eq!(w.rollout("P1").percent, Some(0));
}

#[test]
fn a_campaign_stored_before_retries_were_asked_loads_without_them() {
    let old = r#"{"steps":[],"batch_size":3,"retrieve_in":5000,"deadline":7,"refused":[]}"#;
    let spec: Spec = serde_json::from_str(old).unwrap();
    assert_eq!(
        spec.update,
        UpdateTerms {
            retrieve_in: 5000,
            retries: 0,
            retry_interval: 0,
            signed_requests: None,
        }
    );
    // Written again, the terms sit beside the other fields, as before.
    let again: serde_json::Value = serde_json::to_value(&spec).unwrap();
    assert_eq!(again["retrieve_in"], 5000);
    assert_eq!(again["retries"], 0);
    let rollout = r#"{"pile":"P1","phase":"upgrading","step":0,"outcome":null,"pending":null,
        "error":null,"status":"Downloading","percent":0,"from_version":null,"to_version":null,
        "original_version":null,"started_at":null,"finished_at":null,"quiet_since":0,
        "triggered":false,"next_poll":null,"in_flight":[],"phase_since":0,"retry_at":0,
        "progressed":true}"#;
    let r: Rollout = serde_json::from_str(rollout).unwrap();
    assert_eq!(r.failed_attempts, 0);
}
