//! What the store keeps of the security extension: the security events (the piles' and the
//! central's own) and the certificates the central's CA signed.

use async_trait::async_trait;

use super::{Millis, StoreError};

/// Who raised a security event.
pub const FROM_PILE: &str = "pile";
/// The central's own events (a CSR it refused).
pub const FROM_CENTRAL: &str = "central";

/// A security event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecurityEventRow {
    pub pile: String,
    /// The pile's timestamp (the central's clock for its own events).
    pub time: Millis,
    /// The event's type (the whitepaper's, e.g. `FirmwareUpdated`, or the central's own).
    pub kind: String,
    pub tech_info: Option<String>,
    /// [`FROM_PILE`] or [`FROM_CENTRAL`].
    pub source: String,
    /// When the central received (or raised) it.
    pub received_at: Millis,
}

/// A certificate the central's CA signed for a pile.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CertificateRow {
    /// The serial number, hex.
    pub serial: String,
    pub pile: String,
    pub not_before: Millis,
    pub not_after: Millis,
    pub signed_at: Millis,
    /// The certificate, PEM.
    pub certificate: String,
    /// The pile's answer to the CertificateSigned (`Accepted`, `Rejected`) or why there is
    /// none (the command's outcome); none while it is sent.
    pub delivery: Option<String>,
}

#[async_trait]
pub trait SecurityStore: Send + Sync {
    /// Stores a security event unless the same one is stored; whether it was new.
    async fn record_security_event(&self, event: &SecurityEventRow) -> Result<bool, StoreError>;
    /// The security events, newest first (by `time`): of one pile or all, of one type or
    /// all, strictly before `before`; at most `limit`.
    async fn security_events(
        &self,
        pile: Option<&str>,
        kind: Option<&str>,
        before: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<SecurityEventRow>, StoreError>;
    /// Stores a certificate just signed.
    async fn put_certificate(&self, certificate: &CertificateRow) -> Result<(), StoreError>;
    /// Records the pile's answer to a certificate's CertificateSigned; false: no such one.
    async fn certificate_delivered(&self, serial: &str, delivery: &str)
        -> Result<bool, StoreError>;
    /// The certificates signed for a pile, newest first; at most `limit`.
    async fn certificates(&self, pile: &str, limit: i64)
        -> Result<Vec<CertificateRow>, StoreError>;
    /// Keeps the manufacturer's signature (base64) and signing certificate (PEM) of a firmware
    /// image, in place of any; false: no such image.
    async fn set_image_signature(
        &self,
        image: i64,
        signature: &str,
        signing_certificate: &str,
    ) -> Result<bool, StoreError>;
}
