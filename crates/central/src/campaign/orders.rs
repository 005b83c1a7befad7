//! The campaigns' commands on the wire: each [`Command`] as its OCPP request, sent to the pile
//! through the recorded delivery the API uses, and the pile's answer as an [`Answer`].

use ocpp::{
    Action, AvailabilityStatus, AvailabilityType, ChangeAvailabilityRequest, CiString, CiString50,
    ExtendedMessageTrigger, ExtendedTriggerMessageRequest, Firmware, GetConfigurationRequest,
    MessageTrigger, Response, SignedUpdateFirmwareRequest, Timestamp, TriggerMessageRequest,
    UpdateFirmwareRequest, UpdateFirmwareStatus, Uri,
};

use super::{Answer, Command, Kind};
use crate::sessions::DeliveryError;
use crate::Central;

/// A time in whole seconds, rounded up, as the wire has it.
fn seconds(ms: super::Millis) -> Result<i32, String> {
    i32::try_from((ms.max(0) + 999) / 1000).map_err(|_| "the retry interval is too long".into())
}

/// The OCPP message of a command.
fn message(command: &Command) -> Result<(Action, String), String> {
    Ok(match command {
        Command::UpdateFirmware {
            location,
            retrieve_date,
            retries,
            retry_interval,
            signed: Some((request_id, image)),
        } => (
            Action::SignedUpdateFirmware,
            ocpp::encode(&SignedUpdateFirmwareRequest {
                retries: Some(i32::try_from(*retries).map_err(|_| "too many retries")?),
                retry_interval: Some(seconds(*retry_interval)?),
                request_id: *request_id,
                firmware: Firmware {
                    location: CiString::new(location.clone()).map_err(|e| e.to_string())?,
                    retrieve_date_time: Timestamp::from_millis(*retrieve_date)
                        .ok_or("the retrieve date is out of range")?,
                    install_date_time: None,
                    signing_certificate: CiString::new(image.signing_certificate.clone())
                        .map_err(|e| format!("the signing certificate: {e}"))?,
                    signature: CiString::new(image.signature.clone())
                        .map_err(|e| format!("the signature: {e}"))?,
                },
            }),
        ),
        Command::UpdateFirmware {
            location,
            retrieve_date,
            retries,
            retry_interval,
            signed: None,
        } => (
            Action::UpdateFirmware,
            ocpp::encode(&UpdateFirmwareRequest {
                location: Uri::new(location.clone()).map_err(|e| e.to_string())?,
                retries: Some(i32::try_from(*retries).map_err(|_| "too many retries")?),
                retrieve_date: Timestamp::from_millis(*retrieve_date)
                    .ok_or("the retrieve date is out of range")?,
                retry_interval: Some(seconds(*retry_interval)?),
            }),
        ),
        Command::TriggerStatus => (
            Action::TriggerMessage,
            ocpp::encode(&TriggerMessageRequest {
                requested_message: MessageTrigger::FirmwareStatusNotification,
                connector_id: None,
            }),
        ),
        Command::TriggerSignedStatus => (
            Action::ExtendedTriggerMessage,
            ocpp::encode(&ExtendedTriggerMessageRequest {
                requested_message: ExtendedMessageTrigger::FirmwareStatusNotification,
                connector_id: None,
            }),
        ),
        Command::ReadProgress => (
            Action::GetConfiguration,
            ocpp::encode(&GetConfigurationRequest {
                key: Some(vec![CiString50::truncating(
                    oem::keys::GET_FIRMWARE_UPGRADE_PERCENTAGES,
                )]),
            }),
        ),
        Command::SetOperative => (
            Action::ChangeAvailability,
            ocpp::encode(&ChangeAvailabilityRequest {
                connector_id: 0,
                kind: AvailabilityType::Operative,
            }),
        ),
    })
}

/// Sends the command to the pile, records it with its result, and tells what came of it.
pub async fn execute(central: &Central, pile: &str, command: &Command) -> Answer {
    let (action, payload) = match message(command) {
        Ok(m) => m,
        Err(why) => return Answer::Refused(why),
    };
    let outcome = match crate::command_log::call_recorded(central, pile, action, payload).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!("campaign command to {pile} not recorded: {e}");
            return Answer::Lost;
        }
    };
    match outcome {
        Ok(answer) => match (command.kind(), answer.value) {
            (Kind::ReadProgress, Response::GetConfiguration(r)) => Answer::Ok(
                r.configuration_key
                    .unwrap_or_default()
                    .into_iter()
                    .find(|k| {
                        k.key
                            .as_str()
                            .eq_ignore_ascii_case(oem::keys::GET_FIRMWARE_UPGRADE_PERCENTAGES)
                    })
                    .and_then(|k| k.value.map(|v| v.as_str().to_owned())),
            ),
            (Kind::SetOperative, Response::ChangeAvailability(r)) => match r.status {
                AvailabilityStatus::Accepted | AvailabilityStatus::Scheduled => Answer::Ok(None),
                other => Answer::Refused(other.as_str().to_owned()),
            },
            (Kind::UpdateFirmware, Response::SignedUpdateFirmware(r)) => match r.status {
                // AcceptedCanceled: accepted, an upgrade the pile was at cancelled for it.
                UpdateFirmwareStatus::Accepted | UpdateFirmwareStatus::AcceptedCanceled => {
                    Answer::Ok(None)
                }
                other => Answer::Refused(other.as_str().to_owned()),
            },
            _ => Answer::Ok(None),
        },
        Err(DeliveryError::CallError(e)) => {
            Answer::Refused(format!("{}: {}", e.code.as_str(), e.description))
        }
        Err(_) => Answer::Lost,
    }
}
