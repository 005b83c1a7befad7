//! The 39 actions: names, which side initiates them, their feature profile, and the typed
//! request/response pair of each.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, Decoded, Policy};
use crate::error::{CallErrorCode, PayloadError};
use crate::messages::*;

/// Which side sends the CALL of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    ChargePoint,
    CentralSystem,
    /// DataTransfer goes both ways.
    Both,
}

/// The feature profile an action belongs to (`Security` for the whitepaper's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureProfile {
    Core,
    FirmwareManagement,
    LocalAuthListManagement,
    Reservation,
    SmartCharging,
    RemoteTrigger,
    Security,
}

/// A typed request: knows its action and its response type.
pub trait OcppRequest: Serialize + DeserializeOwned + Send + 'static {
    const ACTION: Action;
    type Response: Serialize
        + DeserializeOwned
        + TryFrom<Response, Error = Response>
        + Into<Response>
        + Send
        + 'static;
}

/// Decodes a payload (the JSON object of a CALL or CALLRESULT) under `policy`.
pub fn decode<T: DeserializeOwned>(json: &str, policy: Policy) -> Result<Decoded<T>, PayloadError> {
    if !json.trim_start().starts_with('{') {
        return Err(PayloadError {
            code: CallErrorCode::FormationViolation,
            description: "payload is not a JSON object".into(),
        });
    }
    codec::with_policy(policy, || serde_json::from_str::<T>(json))
        .map_err(|e| PayloadError::from_json(&e))
}

/// Encodes a payload. Every type of this crate serializes to a JSON object; absent optional
/// fields are omitted.
pub fn encode<T: Serialize>(payload: &T) -> String {
    // Serialization of these types cannot fail: they hold only strings, integers, booleans and
    // finite numbers.
    serde_json::to_string(payload).expect("OCPP payloads always serialize")
}

macro_rules! actions {
    ($($action:ident: $req:ident => $resp:ident, $init:ident, $profile:ident;)+) => {
        /// An OCPP-J 1.6 action name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($action,)+ }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$action),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Action::$action => stringify!($action),)+ }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name { $(stringify!($action) => Some(Action::$action),)+ _ => None }
            }

            pub fn initiator(self) -> Initiator {
                match self { $(Action::$action => Initiator::$init,)+ }
            }

            pub fn profile(self) -> FeatureProfile {
                match self { $(Action::$action => FeatureProfile::$profile,)+ }
            }
        }

        $(impl OcppRequest for $req {
            const ACTION: Action = Action::$action;
            type Response = $resp;
        })+

        /// The request of any action.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request { $($action($req),)+ }

        /// The response of any action.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Response { $($action($resp),)+ }

        $(impl From<$req> for Request {
            fn from(r: $req) -> Self { Request::$action(r) }
        })+

        $(impl From<$resp> for Response {
            fn from(r: $resp) -> Self { Response::$action(r) }
        })+

        $(impl TryFrom<Response> for $resp {
            type Error = Response;
            fn try_from(r: Response) -> Result<Self, Response> {
                match r { Response::$action(v) => Ok(v), other => Err(other) }
            }
        })+

        impl Request {
            pub fn action(&self) -> Action {
                match self { $(Request::$action(_) => Action::$action,)+ }
            }
            pub fn decode(action: Action, json: &str, policy: Policy) -> Result<Decoded<Request>, PayloadError> {
                match action {
                    $(Action::$action => decode::<$req>(json, policy).map(|d| Decoded { value: Request::$action(d.value), deviations: d.deviations }),)+
                }
            }
            pub fn to_json(&self) -> String {
                match self { $(Request::$action(r) => encode(r),)+ }
            }
        }

        /// Proptest strategies producing requests and responses of one action.
        #[cfg(feature = "arbitrary")]
        pub mod strategies {
            use super::*;
            use proptest::prelude::*;
            use proptest::strategy::BoxedStrategy;

            pub fn request(action: Action) -> BoxedStrategy<Request> {
                match action { $(Action::$action => any::<$req>().prop_map(Request::$action).boxed(),)+ }
            }
            pub fn response(action: Action) -> BoxedStrategy<Response> {
                match action { $(Action::$action => any::<$resp>().prop_map(Response::$action).boxed(),)+ }
            }
        }

        impl Response {
            pub fn action(&self) -> Action {
                match self { $(Response::$action(_) => Action::$action,)+ }
            }
            pub fn decode(action: Action, json: &str, policy: Policy) -> Result<Decoded<Response>, PayloadError> {
                match action {
                    $(Action::$action => decode::<$resp>(json, policy).map(|d| Decoded { value: Response::$action(d.value), deviations: d.deviations }),)+
                }
            }
            pub fn to_json(&self) -> String {
                match self { $(Response::$action(r) => encode(r),)+ }
            }
        }
    };
}

actions! {
    Authorize: AuthorizeRequest => AuthorizeResponse, ChargePoint, Core;
    BootNotification: BootNotificationRequest => BootNotificationResponse, ChargePoint, Core;
    ChangeAvailability: ChangeAvailabilityRequest => ChangeAvailabilityResponse, CentralSystem, Core;
    ChangeConfiguration: ChangeConfigurationRequest => ChangeConfigurationResponse, CentralSystem, Core;
    ClearCache: ClearCacheRequest => ClearCacheResponse, CentralSystem, Core;
    DataTransfer: DataTransferRequest => DataTransferResponse, Both, Core;
    GetConfiguration: GetConfigurationRequest => GetConfigurationResponse, CentralSystem, Core;
    Heartbeat: HeartbeatRequest => HeartbeatResponse, ChargePoint, Core;
    MeterValues: MeterValuesRequest => MeterValuesResponse, ChargePoint, Core;
    RemoteStartTransaction: RemoteStartTransactionRequest => RemoteStartTransactionResponse, CentralSystem, Core;
    RemoteStopTransaction: RemoteStopTransactionRequest => RemoteStopTransactionResponse, CentralSystem, Core;
    Reset: ResetRequest => ResetResponse, CentralSystem, Core;
    StartTransaction: StartTransactionRequest => StartTransactionResponse, ChargePoint, Core;
    StatusNotification: StatusNotificationRequest => StatusNotificationResponse, ChargePoint, Core;
    StopTransaction: StopTransactionRequest => StopTransactionResponse, ChargePoint, Core;
    UnlockConnector: UnlockConnectorRequest => UnlockConnectorResponse, CentralSystem, Core;
    DiagnosticsStatusNotification: DiagnosticsStatusNotificationRequest => DiagnosticsStatusNotificationResponse, ChargePoint, FirmwareManagement;
    FirmwareStatusNotification: FirmwareStatusNotificationRequest => FirmwareStatusNotificationResponse, ChargePoint, FirmwareManagement;
    GetDiagnostics: GetDiagnosticsRequest => GetDiagnosticsResponse, CentralSystem, FirmwareManagement;
    UpdateFirmware: UpdateFirmwareRequest => UpdateFirmwareResponse, CentralSystem, FirmwareManagement;
    GetLocalListVersion: GetLocalListVersionRequest => GetLocalListVersionResponse, CentralSystem, LocalAuthListManagement;
    SendLocalList: SendLocalListRequest => SendLocalListResponse, CentralSystem, LocalAuthListManagement;
    CancelReservation: CancelReservationRequest => CancelReservationResponse, CentralSystem, Reservation;
    ReserveNow: ReserveNowRequest => ReserveNowResponse, CentralSystem, Reservation;
    ClearChargingProfile: ClearChargingProfileRequest => ClearChargingProfileResponse, CentralSystem, SmartCharging;
    GetCompositeSchedule: GetCompositeScheduleRequest => GetCompositeScheduleResponse, CentralSystem, SmartCharging;
    SetChargingProfile: SetChargingProfileRequest => SetChargingProfileResponse, CentralSystem, SmartCharging;
    TriggerMessage: TriggerMessageRequest => TriggerMessageResponse, CentralSystem, RemoteTrigger;
    CertificateSigned: CertificateSignedRequest => CertificateSignedResponse, CentralSystem, Security;
    DeleteCertificate: DeleteCertificateRequest => DeleteCertificateResponse, CentralSystem, Security;
    ExtendedTriggerMessage: ExtendedTriggerMessageRequest => ExtendedTriggerMessageResponse, CentralSystem, Security;
    GetInstalledCertificateIds: GetInstalledCertificateIdsRequest => GetInstalledCertificateIdsResponse, CentralSystem, Security;
    GetLog: GetLogRequest => GetLogResponse, CentralSystem, Security;
    InstallCertificate: InstallCertificateRequest => InstallCertificateResponse, CentralSystem, Security;
    LogStatusNotification: LogStatusNotificationRequest => LogStatusNotificationResponse, ChargePoint, Security;
    SecurityEventNotification: SecurityEventNotificationRequest => SecurityEventNotificationResponse, ChargePoint, Security;
    SignCertificate: SignCertificateRequest => SignCertificateResponse, ChargePoint, Security;
    SignedFirmwareStatusNotification: SignedFirmwareStatusNotificationRequest => SignedFirmwareStatusNotificationResponse, ChargePoint, Security;
    SignedUpdateFirmware: SignedUpdateFirmwareRequest => SignedUpdateFirmwareResponse, CentralSystem, Security;
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
