//! A command sent to a pile and stored with its result, for the API and the campaigns alike.

use std::time::Instant;

use axum::http::StatusCode;
use ocpp::Action;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::metrics::ActionLabels;
use crate::sessions::{Delivery, DeliveryError};
use crate::store::{WriteOp, WriteResult};
use crate::web::ErrorBody;
use crate::Central;

/// Sends a command and stores it with its result (also for the commands campaigns send).
pub async fn call_recorded(
    central: &Central,
    pile: &str,
    action: Action,
    payload: String,
) -> Result<Result<ocpp::Decoded<ocpp::Response>, DeliveryError>, crate::store::StoreError> {
    let shown = payload.clone();
    call_recorded_as(central, pile, action, payload, shown).await
}

/// [`call_recorded`], the command stored with `shown` for its payload (a secret it carries
/// left out).
pub async fn call_recorded_as(
    central: &Central,
    pile: &str,
    action: Action,
    payload: String,
    shown: String,
) -> Result<Result<ocpp::Decoded<ocpp::Response>, DeliveryError>, crate::store::StoreError> {
    let recorded = central
        .writer()
        .write(WriteOp::CommandSent {
            pile: pile.to_owned(),
            action: action.as_str().to_owned(),
            payload: shown,
        })
        .await?;
    let WriteResult::Command(id) = recorded else {
        return Err(crate::store::StoreError::Failed(
            "unexpected store answer".into(),
        ));
    };
    let started = Instant::now();
    central.metrics().commands_waiting.inc();
    // Through the pile's connection here, or the node that holds it (each bounds its wait).
    let outcome = crate::cluster::delivery(central)
        .call(pile, action, payload)
        .await;
    central.metrics().commands_waiting.dec();
    if !matches!(outcome, Err(DeliveryError::NotConnected)) {
        central
            .metrics()
            .command_latency
            .get_or_create(&ActionLabels {
                action: action.as_str().to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
    let (_, kind, body) = describe(central, pile, &outcome);
    if let Err(e) = central
        .writer()
        .write(WriteOp::CommandDone {
            id,
            outcome: kind.into(),
            result: serde_json::to_string(&body).ok(),
        })
        .await
    {
        tracing::error!("command {id}: result not stored: {e}");
    }
    Ok(outcome)
}

/// The pile's answer to a command.
#[derive(Serialize, ToSchema)]
pub struct PileAnswer {
    /// The OCPP payload of its CALLRESULT.
    #[schema(value_type = Object)]
    response: Value,
}

/// The pile answered with a CALLERROR.
#[derive(Serialize, ToSchema)]
pub struct CallErrorAnswer {
    call_error: CallErrorView,
}

#[derive(Serialize, ToSchema)]
pub struct CallErrorView {
    /// The OCPP error code, e.g. NotSupported.
    code: String,
    description: String,
}

/// Why a command got no answer to show: the pile's CALLERROR, or the reason.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CommandFailure {
    CallError(CallErrorAnswer),
    Failed(ErrorBody),
}

/// What a command answers, and what is stored as its result.
#[derive(Serialize)]
#[serde(untagged)]
pub enum CommandAnswer {
    Answered(PileAnswer),
    Failed(CommandFailure),
}

fn failed(why: String) -> CommandAnswer {
    CommandAnswer::Failed(CommandFailure::Failed(ErrorBody { error: why }))
}

/// A command's outcome as the API shows it: the HTTP status, the outcome's name, the body.
pub fn describe(
    central: &Central,
    pile: &str,
    outcome: &Result<ocpp::Decoded<ocpp::Response>, DeliveryError>,
) -> (StatusCode, &'static str, CommandAnswer) {
    match outcome {
        Ok(answer) => {
            let response: Value =
                serde_json::from_str(&answer.value.to_json()).expect("our encoding is JSON");
            (
                StatusCode::OK,
                "response",
                CommandAnswer::Answered(PileAnswer { response }),
            )
        }
        Err(DeliveryError::CallError(e)) => (
            StatusCode::BAD_GATEWAY,
            "call_error",
            CommandAnswer::Failed(CommandFailure::CallError(CallErrorAnswer {
                call_error: CallErrorView {
                    code: e.code.as_str().to_owned(),
                    description: e.description.clone(),
                },
            })),
        ),
        Err(DeliveryError::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            failed(format!(
                "the pile did not answer within {:?}",
                central.options().command_timeout
            )),
        ),
        Err(DeliveryError::NotConnected) => (
            StatusCode::CONFLICT,
            "not_connected",
            failed(format!("pile {pile:?} is not connected")),
        ),
        Err(e @ DeliveryError::Disconnected) => (
            StatusCode::BAD_GATEWAY,
            "disconnected",
            failed(e.to_string()),
        ),
        Err(e @ DeliveryError::BadResponse(_)) => (
            StatusCode::BAD_GATEWAY,
            "bad_response",
            failed(e.to_string()),
        ),
        Err(e @ DeliveryError::Unavailable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            failed(e.to_string()),
        ),
    }
}
