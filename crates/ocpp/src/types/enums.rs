//! Every enumeration of the 1.6 schemas (core and security whitepaper).

use crate::codec::{in_stop_transaction_units, tolerate, DeviationKind};

pub(crate) fn decode_enum<T, E: serde::de::Error>(
    v: &str,
    known: impl FnOnce(&str) -> Option<T>,
    unknown: impl FnOnce(String) -> T,
    type_name: &'static str,
) -> Result<T, E> {
    if let Some(t) = known(v) {
        return Ok(t);
    }
    if tolerate(DeviationKind::UnknownEnumValue, || {
        format!("{type_name}: unknown value {v:?}")
    }) {
        Ok(unknown(v.to_owned()))
    } else {
        Err(E::invalid_value(serde::de::Unexpected::Str(v), &type_name))
    }
}

macro_rules! enums {
    ($($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? })+) => {
        $(
            ocpp_enum!($(#[$meta])* $name { $($variant = $wire),+ });
            ocpp_enum_serde!($name);
        )+
    };
}

enums! {
    AuthorizationStatus { Accepted = "Accepted", Blocked = "Blocked", Expired = "Expired", Invalid = "Invalid", ConcurrentTx = "ConcurrentTx" }
    RegistrationStatus { Accepted = "Accepted", Pending = "Pending", Rejected = "Rejected" }
    CancelReservationStatus { Accepted = "Accepted", Rejected = "Rejected" }
    AvailabilityType { Inoperative = "Inoperative", Operative = "Operative" }
    AvailabilityStatus { Accepted = "Accepted", Rejected = "Rejected", Scheduled = "Scheduled" }
    ConfigurationStatus { Accepted = "Accepted", Rejected = "Rejected", RebootRequired = "RebootRequired", NotSupported = "NotSupported" }
    ClearCacheStatus { Accepted = "Accepted", Rejected = "Rejected" }
    ChargingProfilePurpose { ChargePointMaxProfile = "ChargePointMaxProfile", TxDefaultProfile = "TxDefaultProfile", TxProfile = "TxProfile" }
    ClearChargingProfileStatus { Accepted = "Accepted", Unknown = "Unknown" }
    DataTransferStatus { Accepted = "Accepted", Rejected = "Rejected", UnknownMessageId = "UnknownMessageId", UnknownVendorId = "UnknownVendorId" }
    DiagnosticsStatus { Idle = "Idle", Uploaded = "Uploaded", UploadFailed = "UploadFailed", Uploading = "Uploading" }
    FirmwareStatus { Downloaded = "Downloaded", DownloadFailed = "DownloadFailed", Downloading = "Downloading", Idle = "Idle", InstallationFailed = "InstallationFailed", Installing = "Installing", Installed = "Installed" }
    ChargingRateUnit { A = "A", W = "W" }
    GetCompositeScheduleStatus { Accepted = "Accepted", Rejected = "Rejected" }
    ReadingContext {
        InterruptionBegin = "Interruption.Begin", InterruptionEnd = "Interruption.End", SampleClock = "Sample.Clock",
        SamplePeriodic = "Sample.Periodic", TransactionBegin = "Transaction.Begin", TransactionEnd = "Transaction.End",
        Trigger = "Trigger", Other = "Other"
    }
    ValueFormat { Raw = "Raw", SignedData = "SignedData" }
    Measurand {
        EnergyActiveExportRegister = "Energy.Active.Export.Register", EnergyActiveImportRegister = "Energy.Active.Import.Register",
        EnergyReactiveExportRegister = "Energy.Reactive.Export.Register", EnergyReactiveImportRegister = "Energy.Reactive.Import.Register",
        EnergyActiveExportInterval = "Energy.Active.Export.Interval", EnergyActiveImportInterval = "Energy.Active.Import.Interval",
        EnergyReactiveExportInterval = "Energy.Reactive.Export.Interval", EnergyReactiveImportInterval = "Energy.Reactive.Import.Interval",
        PowerActiveExport = "Power.Active.Export", PowerActiveImport = "Power.Active.Import", PowerOffered = "Power.Offered",
        PowerReactiveExport = "Power.Reactive.Export", PowerReactiveImport = "Power.Reactive.Import", PowerFactor = "Power.Factor",
        CurrentImport = "Current.Import", CurrentExport = "Current.Export", CurrentOffered = "Current.Offered",
        Voltage = "Voltage", Frequency = "Frequency", Temperature = "Temperature", SoC = "SoC", Rpm = "RPM"
    }
    Phase { L1 = "L1", L2 = "L2", L3 = "L3", N = "N", L1N = "L1-N", L2N = "L2-N", L3N = "L3-N", L1L2 = "L1-L2", L2L3 = "L2-L3", L3L1 = "L3-L1" }
    Location { Cable = "Cable", Ev = "EV", Inlet = "Inlet", Outlet = "Outlet", Body = "Body" }
    RemoteStartStopStatus { Accepted = "Accepted", Rejected = "Rejected" }
    ChargingProfileKind { Absolute = "Absolute", Recurring = "Recurring", Relative = "Relative" }
    RecurrencyKind { Daily = "Daily", Weekly = "Weekly" }
    ReservationStatus { Accepted = "Accepted", Faulted = "Faulted", Occupied = "Occupied", Rejected = "Rejected", Unavailable = "Unavailable" }
    ResetType { Hard = "Hard", Soft = "Soft" }
    ResetStatus { Accepted = "Accepted", Rejected = "Rejected" }
    UpdateType { Differential = "Differential", Full = "Full" }
    UpdateStatus { Accepted = "Accepted", Failed = "Failed", NotSupported = "NotSupported", VersionMismatch = "VersionMismatch" }
    ChargingProfileStatus { Accepted = "Accepted", Rejected = "Rejected", NotSupported = "NotSupported" }
    ChargePointErrorCode {
        ConnectorLockFailure = "ConnectorLockFailure", EvCommunicationError = "EVCommunicationError", GroundFailure = "GroundFailure",
        HighTemperature = "HighTemperature", InternalError = "InternalError", LocalListConflict = "LocalListConflict", NoError = "NoError",
        OtherError = "OtherError", OverCurrentFailure = "OverCurrentFailure", PowerMeterFailure = "PowerMeterFailure",
        PowerSwitchFailure = "PowerSwitchFailure", ReaderFailure = "ReaderFailure", ResetFailure = "ResetFailure",
        UnderVoltage = "UnderVoltage", OverVoltage = "OverVoltage", WeakSignal = "WeakSignal"
    }
    ChargePointStatus {
        Available = "Available", Preparing = "Preparing", Charging = "Charging", SuspendedEvse = "SuspendedEVSE",
        SuspendedEv = "SuspendedEV", Finishing = "Finishing", Reserved = "Reserved", Unavailable = "Unavailable", Faulted = "Faulted"
    }
    StopReason {
        EmergencyStop = "EmergencyStop", EvDisconnected = "EVDisconnected", HardReset = "HardReset", Local = "Local", Other = "Other",
        PowerLoss = "PowerLoss", Reboot = "Reboot", Remote = "Remote", SoftReset = "SoftReset", UnlockCommand = "UnlockCommand",
        DeAuthorized = "DeAuthorized"
    }
    MessageTrigger {
        BootNotification = "BootNotification", DiagnosticsStatusNotification = "DiagnosticsStatusNotification",
        FirmwareStatusNotification = "FirmwareStatusNotification", Heartbeat = "Heartbeat", MeterValues = "MeterValues",
        StatusNotification = "StatusNotification"
    }
    TriggerMessageStatus { Accepted = "Accepted", Rejected = "Rejected", NotImplemented = "NotImplemented" }
    UnlockStatus { Unlocked = "Unlocked", UnlockFailed = "UnlockFailed", NotSupported = "NotSupported" }

    // Security whitepaper (edition 2).
    CertificateSignedStatus { Accepted = "Accepted", Rejected = "Rejected" }
    HashAlgorithm { Sha256 = "SHA256", Sha384 = "SHA384", Sha512 = "SHA512" }
    DeleteCertificateStatus { Accepted = "Accepted", Failed = "Failed", NotFound = "NotFound" }
    ExtendedMessageTrigger {
        BootNotification = "BootNotification", LogStatusNotification = "LogStatusNotification",
        FirmwareStatusNotification = "FirmwareStatusNotification", Heartbeat = "Heartbeat", MeterValues = "MeterValues",
        SignChargePointCertificate = "SignChargePointCertificate", StatusNotification = "StatusNotification"
    }
    CertificateUse { CentralSystemRootCertificate = "CentralSystemRootCertificate", ManufacturerRootCertificate = "ManufacturerRootCertificate" }
    GetInstalledCertificateStatus { Accepted = "Accepted", NotFound = "NotFound" }
    LogType { DiagnosticsLog = "DiagnosticsLog", SecurityLog = "SecurityLog" }
    LogStatus { Accepted = "Accepted", Rejected = "Rejected", AcceptedCanceled = "AcceptedCanceled" }
    CertificateStatus { Accepted = "Accepted", Failed = "Failed", Rejected = "Rejected" }
    UploadLogStatus {
        BadMessage = "BadMessage", Idle = "Idle", NotSupportedOperation = "NotSupportedOperation", PermissionDenied = "PermissionDenied",
        Uploaded = "Uploaded", UploadFailure = "UploadFailure", Uploading = "Uploading"
    }
    GenericStatus { Accepted = "Accepted", Rejected = "Rejected" }
    FirmwareStatusSigned {
        Downloaded = "Downloaded", DownloadFailed = "DownloadFailed", Downloading = "Downloading", DownloadScheduled = "DownloadScheduled",
        DownloadPaused = "DownloadPaused", Idle = "Idle", InstallationFailed = "InstallationFailed", Installing = "Installing",
        Installed = "Installed", InstallRebooting = "InstallRebooting", InstallScheduled = "InstallScheduled",
        InstallVerificationFailed = "InstallVerificationFailed", InvalidSignature = "InvalidSignature", SignatureVerified = "SignatureVerified"
    }
    UpdateFirmwareStatus {
        Accepted = "Accepted", Rejected = "Rejected", AcceptedCanceled = "AcceptedCanceled",
        InvalidCertificate = "InvalidCertificate", RevokedCertificate = "RevokedCertificate"
    }
}

ocpp_enum! {
    /// UnitOfMeasure. The temperature unit has one value here, `Celsius`; on the wire it is
    /// `Celsius` in MeterValues (the OCA's advice to Charge Points) and `Celcius` in
    /// StopTransaction, whose schema knows only that spelling. Both spellings are read.
    UnitOfMeasure {
        Wh = "Wh", KWh = "kWh", Varh = "varh", Kvarh = "kvarh", W = "W", KW = "kW", Va = "VA", KVa = "kVA",
        Var = "var", Kvar = "kvar", A = "A", V = "V", K = "K", Celsius = "Celsius", Fahrenheit = "Fahrenheit", Percent = "Percent"
    }
}

impl serde::Serialize for UnitOfMeasure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UnitOfMeasure::Celsius if in_stop_transaction_units() => s.serialize_str("Celcius"),
            other => s.serialize_str(other.as_str()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for UnitOfMeasure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = UnitOfMeasure;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a UnitOfMeasure value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UnitOfMeasure, E> {
                match v {
                    "Celcius" => Ok(UnitOfMeasure::Celsius),
                    "Celsius" if in_stop_transaction_units() => {
                        if tolerate(DeviationKind::CelsiusSpelling, || {
                            "StopTransaction unit \"Celsius\"".into()
                        }) {
                            Ok(UnitOfMeasure::Celsius)
                        } else {
                            Err(E::invalid_value(serde::de::Unexpected::Str(v), &"Celcius"))
                        }
                    }
                    _ => decode_enum(
                        v,
                        UnitOfMeasure::from_wire,
                        UnitOfMeasure::Unrecognized,
                        "UnitOfMeasure",
                    ),
                }
            }
        }
        d.deserialize_str(V)
    }
}
