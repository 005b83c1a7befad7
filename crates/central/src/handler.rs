//! Answers what piles send. Every answer leaves only once what it acknowledges is committed;
//! messages sent again (same id or same content) get the same answer and change nothing.

use std::sync::Arc;

use ocpp::{
    AuthorizationStatus, AuthorizeResponse, BootNotificationResponse, CallError, CallErrorCode,
    DataTransferResponse, DataTransferStatus, Decoded, DiagnosticsStatusNotificationResponse,
    FirmwareStatusNotificationResponse, HeartbeatResponse, IdTagInfo, IdToken, MeterValue,
    MeterValuesResponse, RegistrationStatus, Request, Response, StartTransactionResponse,
    StatusNotificationResponse, StopTransactionResponse, Timestamp,
};
use transport::{Handler, HandlerFuture};

use crate::store::{BootInfo, IdTagRow, MeterSample, Millis, WriteOp, WriteResult};
use crate::Central;

/// The handler of one connection.
pub struct PileHandler {
    pile: String,
    central: Arc<Central>,
    /// True once the connection is recorded as the pile's (its presence, its subjects): the
    /// pile's messages wait until then, so that nothing it sends is answered while the API
    /// would still show it offline.
    admitted: tokio::sync::watch::Receiver<bool>,
}

impl PileHandler {
    /// The handler of one connection of `pile`; its messages are handled once `admitted` is
    /// true (or its sender gone).
    pub fn new(
        pile: String,
        central: Arc<Central>,
        admitted: tokio::sync::watch::Receiver<bool>,
    ) -> PileHandler {
        PileHandler {
            pile,
            central,
            admitted,
        }
    }
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Why a message gets no CALLRESULT.
enum Unanswered {
    /// What it says could not be committed: it is not answered at all.
    StoreFailed,
    /// Answered with this CALLERROR.
    Refused(CallError),
}

impl From<CallError> for Unanswered {
    fn from(e: CallError) -> Self {
        Unanswered::Refused(e)
    }
}

fn store_failed(e: impl std::fmt::Display) -> Unanswered {
    tracing::error!("store: {e}; closing the connection unanswered");
    Unanswered::StoreFailed
}

/// The idTagInfo for an idTag as the store knows it (unknown: Invalid; past its expiry: Expired).
pub fn id_tag_info(tag: Option<&IdTagRow>, now: Millis) -> IdTagInfo {
    let Some(tag) = tag else {
        return IdTagInfo {
            expiry_date: None,
            parent_id_tag: None,
            status: AuthorizationStatus::Invalid,
        };
    };
    let mut status =
        AuthorizationStatus::from_wire(&tag.status).unwrap_or(AuthorizationStatus::Invalid);
    if status == AuthorizationStatus::Accepted && tag.expiry_date.is_some_and(|e| e <= now) {
        status = AuthorizationStatus::Expired;
    }
    IdTagInfo {
        expiry_date: tag.expiry_date.and_then(Timestamp::from_millis),
        parent_id_tag: tag
            .parent_id_tag
            .as_deref()
            .and_then(|p| IdToken::new(p).ok()),
        status,
    }
}

fn samples(values: &[MeterValue]) -> Vec<MeterSample> {
    values
        .iter()
        .map(|v| MeterSample {
            time: v.timestamp.millis(),
            sampled: serde_json::to_string(&v.sampled_value).expect("sampled values serialize"),
        })
        .collect()
}

fn text<const N: usize>(s: &Option<ocpp::CiString<N>>) -> Option<String> {
    s.as_ref().map(|v| v.as_str().to_owned())
}

impl Handler for PileHandler {
    fn handle(&self, request: Decoded<Request>) -> HandlerFuture {
        let pile = self.pile.clone();
        let central = self.central.clone();
        let mut admitted = self.admitted.clone();
        Box::pin(async move {
            // A sender gone means the connection is ending: handled as before.
            let _ = admitted.wait_for(|yes| *yes).await;
            let action = request.value.action();
            for d in &request.deviations {
                central.message_log().deviation(
                    &pile,
                    action.as_str(),
                    format!("{:?}", d.kind),
                    d.detail.clone(),
                );
            }
            match answer(&central, &pile, request.value).await {
                Err(Unanswered::StoreFailed) => {
                    // No answer, and no CALLERROR a pile would count against its
                    // TransactionMessageAttempts: the connection closes, and the pile sends the
                    // message again on the next one.
                    central.sessions().drop_link(&pile);
                    std::future::pending().await
                }
                Err(Unanswered::Refused(e)) => Err(e),
                Ok(response) => {
                    central.changed(format!("pile {pile}"));
                    Ok(response)
                }
            }
        })
    }
}

async fn write(central: &Central, op: WriteOp) -> Result<WriteResult, Unanswered> {
    central.writer().write(op).await.map_err(store_failed)
}

async fn answer(
    central: &Arc<Central>,
    pile: &str,
    request: Request,
) -> Result<Response, Unanswered> {
    let now = now_ms();
    let pile_s = pile.to_owned();
    match request {
        Request::BootNotification(boot) => {
            let row = central
                .repo()
                .pile(pile)
                .await
                .map_err(store_failed)?
                .ok_or_else(|| {
                    CallError::new(CallErrorCode::SecurityError, "this pile is not registered")
                })?;
            let info = BootInfo {
                vendor: boot.charge_point_vendor.as_str().to_owned(),
                model: boot.charge_point_model.as_str().to_owned(),
                serial_number: text(&boot.charge_point_serial_number),
                charge_box_serial_number: text(&boot.charge_box_serial_number),
                firmware_version: text(&boot.firmware_version),
                iccid: text(&boot.iccid),
                imsi: text(&boot.imsi),
                meter_type: text(&boot.meter_type),
                meter_serial_number: text(&boot.meter_serial_number),
            };
            let version = info.firmware_version.clone();
            write(central, WriteOp::Boot { pile: pile_s, info }).await?;
            // Sent once this answer is out (the runtime holds our CALLs until then).
            crate::campaign::runner::booted(central, pile, version.as_deref());
            let (status, interval) = match row.registration.as_str() {
                "Accepted" => (
                    RegistrationStatus::Accepted,
                    central.options().heartbeat_interval,
                ),
                "Rejected" => (
                    RegistrationStatus::Rejected,
                    central.options().boot_retry_interval,
                ),
                _ => (
                    RegistrationStatus::Pending,
                    central.options().boot_retry_interval,
                ),
            };
            if status == RegistrationStatus::Accepted {
                // Sent once this answer is out (the runtime holds our CALLs until then).
                crate::config_reader::spawn_read(central.clone(), pile.to_owned());
            }
            Ok(Response::BootNotification(BootNotificationResponse {
                status,
                current_time: Timestamp::from_millis(now).expect("now is a valid time"),
                interval: interval as i32,
            }))
        }
        Request::Heartbeat(_) => {
            write(central, WriteOp::Seen { pile: pile_s }).await?;
            Ok(Response::Heartbeat(HeartbeatResponse {
                current_time: Timestamp::from_millis(now).expect("now is a valid time"),
            }))
        }
        Request::Authorize(a) => {
            let tag = central
                .repo()
                .id_tag(a.id_tag.as_str())
                .await
                .map_err(store_failed)?;
            write(central, WriteOp::Seen { pile: pile_s }).await?;
            Ok(Response::Authorize(AuthorizeResponse {
                id_tag_info: id_tag_info(tag.as_ref(), now),
            }))
        }
        Request::StatusNotification(s) => {
            write(
                central,
                WriteOp::Status {
                    pile: pile_s,
                    connector: i64::from(s.connector_id),
                    status: s.status.as_str().to_owned(),
                    error_code: s.error_code.as_str().to_owned(),
                    vendor_error_code: text(&s.vendor_error_code),
                    info: text(&s.info),
                    vendor_id: text(&s.vendor_id),
                    time: s.timestamp.map(|t| t.millis()).unwrap_or(now),
                },
            )
            .await?;
            Ok(Response::StatusNotification(StatusNotificationResponse {}))
        }
        Request::StartTransaction(s) => {
            let result = write(
                central,
                WriteOp::StartTransaction {
                    pile: pile_s,
                    connector: i64::from(s.connector_id),
                    id_tag: s.id_tag.as_str().to_owned(),
                    meter_start: i64::from(s.meter_start),
                    reservation_id: s.reservation_id.map(i64::from),
                    time: s.timestamp.millis(),
                },
            )
            .await?;
            let WriteResult::Started {
                transaction_id,
                id_tag,
            } = result
            else {
                return Err(store_failed("unexpected answer to a StartTransaction"));
            };
            let transaction_id = i32::try_from(transaction_id)
                .map_err(|_| store_failed("transaction ids are exhausted"))?;
            Ok(Response::StartTransaction(StartTransactionResponse {
                id_tag_info: id_tag_info(id_tag.as_ref(), now),
                transaction_id,
            }))
        }
        Request::StopTransaction(s) => {
            let data: Vec<MeterValue> = s
                .transaction_data
                .as_ref()
                .map(|d| d.iter().map(|t| t.0.clone()).collect())
                .unwrap_or_default();
            let named = s.id_tag.is_some();
            let result = write(
                central,
                WriteOp::StopTransaction {
                    pile: pile_s,
                    transaction_id: i64::from(s.transaction_id),
                    id_tag: s.id_tag.as_ref().map(|t| t.as_str().to_owned()),
                    meter_stop: i64::from(s.meter_stop),
                    time: s.timestamp.millis(),
                    reason: s.reason.as_ref().map(|r| r.as_str().to_owned()),
                    data: samples(&data),
                },
            )
            .await?;
            let id_tag = match result {
                WriteResult::Stopped { id_tag } => id_tag,
                _ => None,
            };
            Ok(Response::StopTransaction(StopTransactionResponse {
                id_tag_info: named.then(|| id_tag_info(id_tag.as_ref(), now)),
            }))
        }
        Request::MeterValues(m) => {
            write(
                central,
                WriteOp::MeterValues {
                    pile: pile_s,
                    connector: i64::from(m.connector_id),
                    transaction_id: m.transaction_id.map(i64::from),
                    samples: samples(&m.meter_value),
                },
            )
            .await?;
            Ok(Response::MeterValues(MeterValuesResponse {}))
        }
        Request::FirmwareStatusNotification(f) => {
            let status = f.status.as_str().to_owned();
            let notified = f.status.clone();
            write(
                central,
                WriteOp::Event {
                    pile: pile_s,
                    kind: "FirmwareStatusNotification".into(),
                    detail: status.clone(),
                    firmware_status: Some(status.clone()),
                    diagnostics_status: None,
                },
            )
            .await?;
            crate::campaign::runner::notified(central, pile, notified);
            Ok(Response::FirmwareStatusNotification(
                FirmwareStatusNotificationResponse {},
            ))
        }
        Request::DiagnosticsStatusNotification(d) => {
            let status = d.status.as_str().to_owned();
            write(
                central,
                WriteOp::Event {
                    pile: pile_s,
                    kind: "DiagnosticsStatusNotification".into(),
                    detail: status.clone(),
                    firmware_status: None,
                    diagnostics_status: Some(status),
                },
            )
            .await?;
            Ok(Response::DiagnosticsStatusNotification(
                DiagnosticsStatusNotificationResponse {},
            ))
        }
        Request::DataTransfer(d) => {
            let detail = serde_json::json!({
                "vendorId": d.vendor_id.as_str(),
                "messageId": d.message_id.as_ref().map(|m| m.as_str()),
                "data": d.data,
            })
            .to_string();
            write(
                central,
                WriteOp::Event {
                    pile: pile_s,
                    kind: "DataTransfer".into(),
                    detail,
                    firmware_status: None,
                    diagnostics_status: None,
                },
            )
            .await?;
            // Recorded; no vendor extension is implemented here, which the status says.
            Ok(Response::DataTransfer(DataTransferResponse {
                status: DataTransferStatus::UnknownVendorId,
                data: None,
            }))
        }
        Request::SecurityEventNotification(e) => {
            // Stored once: the same event sent again after a reconnect changes nothing.
            crate::security::record_event(central, pile, &e)
                .await
                .map_err(store_failed)?;
            Ok(Response::SecurityEventNotification(
                ocpp::SecurityEventNotificationResponse {},
            ))
        }
        Request::SignCertificate(r) => {
            let answer = crate::security::sign_certificate(central, pile, &r)
                .await
                .map_err(store_failed)?;
            Ok(Response::SignCertificate(answer))
        }
        Request::LogStatusNotification(l) => {
            let detail = ocpp::encode(&l);
            write(
                central,
                WriteOp::Event {
                    pile: pile_s,
                    kind: "LogStatusNotification".into(),
                    detail,
                    firmware_status: None,
                    diagnostics_status: None,
                },
            )
            .await?;
            Ok(Response::LogStatusNotification(
                ocpp::LogStatusNotificationResponse {},
            ))
        }
        Request::SignedFirmwareStatusNotification(f) => {
            let status = f.status.as_str().to_owned();
            let (notified, request_id) = (f.status.clone(), f.request_id);
            write(
                central,
                WriteOp::Event {
                    pile: pile_s,
                    kind: "SignedFirmwareStatusNotification".into(),
                    detail: ocpp::encode(&f),
                    firmware_status: Some(status),
                    diagnostics_status: None,
                },
            )
            .await?;
            crate::campaign::runner::signed_notified(central, pile, notified, request_id);
            Ok(Response::SignedFirmwareStatusNotification(
                ocpp::SignedFirmwareStatusNotificationResponse {},
            ))
        }
        other => Err(CallError::not_supported(other.action().as_str()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(status: &str, expiry: Option<Millis>) -> IdTagRow {
        IdTagRow {
            id_tag: "CARD".into(),
            status: status.into(),
            expiry_date: expiry,
            parent_id_tag: Some("FLEET".into()),
        }
    }

    #[test]
    fn id_tags_authorize_by_status_and_expiry() {
        let now = 1_800_000_000_000;
        let unknown = id_tag_info(None, now);
        assert_eq!(unknown.status, AuthorizationStatus::Invalid);
        let ok = id_tag_info(Some(&tag("Accepted", Some(now + 1))), now);
        assert_eq!(ok.status, AuthorizationStatus::Accepted);
        assert_eq!(ok.parent_id_tag.unwrap().as_str(), "FLEET");
        assert_eq!(ok.expiry_date.unwrap().millis(), now + 1);
        assert_eq!(
            id_tag_info(Some(&tag("Accepted", Some(now))), now).status,
            AuthorizationStatus::Expired
        );
        assert_eq!(
            id_tag_info(Some(&tag("Blocked", None)), now).status,
            AuthorizationStatus::Blocked
        );
        assert_eq!(
            id_tag_info(Some(&tag("Accepted", None)), now).status,
            AuthorizationStatus::Accepted
        );
    }
}
