//! Signed campaigns in the runner: the firmware signer of the options kept at the start, and a
//! pile's SignedFirmwareStatusNotification applied where the campaign runs, told to the other
//! nodes otherwise.

use std::sync::Arc;

use ocpp::FirmwareStatusSigned;

use super::now_ms;
use crate::campaign::events::Event;
use crate::Central;

/// At the start: the firmware signer of the options, if given, kept in place of the stored one.
pub(super) async fn keep_signer_of_options(
    central: &Central,
) -> Result<(), crate::campaign::signer::SignerError> {
    let options = central.options();
    crate::campaign::signer::from_options(
        central.repo().as_ref(),
        options.firmware_signing_cert.as_deref(),
        options.firmware_signing_key.as_deref(),
    )
    .await
}

/// A pile's SignedFirmwareStatusNotification, for the campaigns run here.
pub(super) fn apply_signed_notification(
    central: &Central,
    pile: &str,
    status: &FirmwareStatusSigned,
    request_id: Option<i32>,
) {
    let now = now_ms();
    central
        .campaigns()
        .each(|c, _| c.on_signed_notification(pile, status, request_id, now));
}

/// What the handler calls once it has answered a SignedFirmwareStatusNotification: applied
/// here, and told to the other nodes unless the pile's campaign runs here.
pub fn signed_notified(
    central: &Arc<Central>,
    pile: &str,
    status: FirmwareStatusSigned,
    request_id: Option<i32>,
) {
    let here = central.campaigns().holding(pile).is_some();
    apply_signed_notification(central, pile, &status, request_id);
    if !here {
        central.campaigns().tell(Event::SignedFirmwareStatus {
            pile: pile.to_owned(),
            status,
            request_id,
        });
    }
}
