//! Signed campaigns on the virtual clock: SignedUpdateFirmware out, the
//! SignedFirmwareStatusNotification statuses in.

use super::tests::{only, step, World, SEC, T0};
use super::*;
use ocpp::FirmwareStatusSigned as Signed;

const REQUEST: i32 = 7000;

fn signature() -> ImageSignature {
    ImageSignature {
        signing_certificate: "-----BEGIN CERTIFICATE-----\n...".into(),
        signature: "c2lnbmF0dXJl".into(),
    }
}

/// One pile, one signed image.
fn signed_world(steps: usize) -> World {
    let steps = (1..=steps as i64)
        .map(|i| Step {
            signature: Some(signature()),
            ..step(i, &format!("fw-{i}.bin"), Some(&format!("2.{i}")))
        })
        .collect();
    let mut w = World::new(&["P1"], steps, 1);
    w.campaign.spec.update.signed_requests = Some(REQUEST);
    w
}

impl World {
    fn signed(&mut self, status: Signed, request_id: Option<i32>) -> Vec<Order> {
        let now = self.now;
        self.campaign
            .on_signed_notification("P1", &status, request_id, now)
    }
}

#[test]
fn a_signed_rollout_goes_to_installed_and_the_next_image_gets_the_next_request_id() {
    let mut w = signed_world(2);
    assert!(w.campaign.is_signed());
    let orders = w.tick();
    assert_eq!(
        orders,
        vec![Order {
            pile: "P1".into(),
            command: Command::UpdateFirmware {
                location: "http://central/firmware/1/fw-1.bin".into(),
                retrieve_date: T0,
                retries: 2,
                retry_interval: 30 * SEC,
                signed: Some((REQUEST, signature())),
            }
        }]
    );
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    for s in [
        Signed::DownloadScheduled,
        Signed::Downloading,
        Signed::Downloaded,
        Signed::SignatureVerified,
        Signed::InstallScheduled,
        Signed::Installing,
        Signed::InstallRebooting,
    ] {
        assert_eq!(w.signed(s.clone(), Some(REQUEST)), vec![]);
        assert_eq!(w.rollout("P1").phase, Phase::Upgrading, "{s:?}");
        assert_eq!(w.rollout("P1").status.as_deref(), Some(s.as_str()));
        w.now += SEC;
    }
    assert_eq!(w.signed(Signed::Installed, Some(REQUEST)), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Rebooting);
    assert_eq!(w.rollout("P1").percent, Some(100));
    // Booted on the first image: the second goes at once, with its own request id.
    let next = w.boot("P1", "2.1");
    assert!(
        matches!(
            &next[..],
            [Order { command: Command::UpdateFirmware { location, signed: Some((id, _)), .. }, .. }]
                if location.ends_with("fw-2.bin") && *id == REQUEST + 1
        ),
        "{next:?}"
    );
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    // A status of the first request now belongs to no step: ignored.
    assert_eq!(w.signed(Signed::InvalidSignature, Some(REQUEST)), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Upgrading);
    assert_eq!(w.signed(Signed::Installed, Some(REQUEST + 1)), vec![]);
    only(&w.boot("P1", "2.2"), "P1", Kind::SetOperative);
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.rollout("P1").outcome, Some(Outcome::Succeeded));
    assert_eq!(w.campaign.state(), State::Finished);
}

#[test]
fn a_silent_signed_pile_is_asked_with_extended_trigger_message() {
    let mut w = signed_world(1);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(w.signed(Signed::Downloading, Some(REQUEST)), vec![]);
    let orders = w.advance(super::rollout::SILENCE);
    assert!(
        orders
            .iter()
            .any(|o| o.command == Command::TriggerSignedStatus),
        "{orders:?}"
    );
}

#[test]
fn invalid_signature_ends_the_pile_failed_with_the_status_as_reason() {
    let mut w = signed_world(1);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(w.signed(Signed::Downloading, None), vec![]);
    assert_eq!(w.signed(Signed::Downloaded, Some(REQUEST)), vec![]);
    only(
        &w.signed(Signed::InvalidSignature, Some(REQUEST)),
        "P1",
        Kind::SetOperative,
    );
    assert_eq!(
        w.rollout("P1").error.as_deref(),
        Some("the pile reports InvalidSignature")
    );
    w.answer("P1", Kind::SetOperative, Answer::Ok(None));
    assert_eq!(w.rollout("P1").outcome, Some(Outcome::Failed));
    assert_eq!(w.rollout("P1").status.as_deref(), Some("InvalidSignature"));
    assert_eq!(w.campaign.state(), State::Finished);
}

#[test]
fn install_verification_failed_and_download_failed_fail_like_their_plain_kin() {
    let mut w = signed_world(1);
    w.campaign.spec.update.retries = 0;
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    only(
        &w.signed(Signed::DownloadFailed, Some(REQUEST)),
        "P1",
        Kind::SetOperative,
    );
    assert_eq!(
        w.rollout("P1").error.as_deref(),
        Some("the pile reports DownloadFailed (its only attempt)")
    );

    let mut w = signed_world(1);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    w.signed(Signed::Installing, Some(REQUEST));
    only(
        &w.signed(Signed::InstallVerificationFailed, Some(REQUEST)),
        "P1",
        Kind::SetOperative,
    );
    assert_eq!(
        w.rollout("P1").error.as_deref(),
        Some("the pile reports InstallVerificationFailed")
    );
}

#[test]
fn the_request_id_of_another_campaign_is_ignored() {
    let mut w = signed_world(1);
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(
        w.signed(Signed::InvalidSignature, Some(REQUEST + 500)),
        vec![]
    );
    assert_eq!(w.signed(Signed::Installed, Some(1)), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Upgrading);
    assert_eq!(w.rollout("P1").status, None);
}

#[test]
fn an_unsigned_campaign_ignores_signed_statuses() {
    let mut w = World::one(Some("2.0"));
    w.tick();
    w.answer("P1", Kind::UpdateFirmware, Answer::Ok(None));
    assert_eq!(w.signed(Signed::InvalidSignature, None), vec![]);
    assert_eq!(w.rollout("P1").phase, Phase::Upgrading);
}

#[test]
fn refusals_of_signed_update_firmware_fail_the_pile_with_the_status() {
    for status in ["Rejected", "InvalidCertificate", "RevokedCertificate"] {
        let mut w = signed_world(1);
        w.tick();
        w.answer("P1", Kind::UpdateFirmware, Answer::Refused(status.into()));
        assert_eq!(w.rollout("P1").outcome, Some(Outcome::Failed));
        assert_eq!(
            w.rollout("P1").error.as_deref(),
            Some(format!("SignedUpdateFirmware refused: {status}").as_str())
        );
        assert_eq!(w.advance(SEC), vec![]);
    }
}

#[test]
fn a_signed_spec_survives_the_store() {
    let w = signed_world(1);
    let json = serde_json::to_string(&w.campaign.spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, w.campaign.spec);
    // An unsigned spec stays as it was stored before.
    let plain = World::one(None);
    let json = serde_json::to_string(&plain.campaign.spec).unwrap();
    assert!(
        !json.contains("signed") && !json.contains("signature"),
        "{json}"
    );
}
