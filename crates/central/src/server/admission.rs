//! Who may connect, at the websocket handshake: the pile's Security Profile (the one set
//! through the API, or the higher one it has connected with, so that it is never taken down
//! silently), what the handshake shows of it (TLS, a client certificate naming the pile, its
//! Basic password), and the admission mode for identities not registered.
//!
//! A handshake reaches profile 3 with TLS and a client certificate (verified by the TLS layer
//! against the central's own CA or `--client-ca`) whose subject CN is the identity; 2 with TLS and the pile's Basic
//! password; 1 with the password alone; else 0. Below the pile's profile it is refused: 403
//! for plain ws under 2 or 3 and for a missing client certificate under 3, 401 for missing or
//! wrong Basic credentials. A client certificate that names another identity is refused at any
//! profile.

use axum::http::StatusCode;

use super::Peer;
use crate::store::{PileRow, StoreError, WriteOp};
use crate::{secrets, Admission, Central};

/// Why a handshake is refused: its status and reason.
pub(super) type Refusal = (StatusCode, String);

/// What a client certificate says of the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Certificate {
    /// None presented.
    None,
    /// One without a subject CN.
    NoName,
    /// One whose CN is the identity.
    Names,
    /// One whose CN is another.
    NamesOther(String),
}

/// What the Basic credentials say, against the pile's passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Basic {
    None,
    OtherUser(String),
    Wrong,
    /// Its password (the one set last).
    Current,
    /// The password a rotation replaced, valid until it connects with the new one.
    Previous,
}

impl Basic {
    fn valid(&self) -> bool {
        matches!(self, Basic::Current | Basic::Previous)
    }
}

fn certificate(peer: &Peer, identity: &str) -> Certificate {
    match peer.client_certificates.first() {
        None => Certificate::None,
        Some(der) => match secrets::subject_common_name(der) {
            None => Certificate::NoName,
            Some(cn) if cn == identity => Certificate::Names,
            Some(cn) => Certificate::NamesOther(cn),
        },
    }
}

/// Checks the Basic credentials against the pile's password and the one a rotation replaced.
async fn basic(pile: &PileRow, credentials: Option<(String, Vec<u8>)>) -> Basic {
    let Some((user, password)) = credentials else {
        return Basic::None;
    };
    if user != pile.id {
        return Basic::OtherUser(user);
    }
    let hashes = (
        pile.password_hash.clone(),
        pile.previous_password_hash.clone(),
    );
    if hashes.0.is_none() && hashes.1.is_none() {
        return Basic::Wrong;
    }
    // Argon2 takes a few milliseconds: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let matches = |hash: &Option<String>| {
            hash.as_deref()
                .is_some_and(|h| secrets::verify_password(&password, h))
        };
        if matches(&hashes.0) {
            Basic::Current
        } else if matches(&hashes.1) {
            Basic::Previous
        } else {
            Basic::Wrong
        }
    })
    .await
    .unwrap_or(Basic::Wrong)
}

/// The profile a handshake reaches, if it is the pile's at least; else why it is refused.
fn judge(pile: &PileRow, tls: bool, cert: &Certificate, basic: &Basic) -> Result<i64, Refusal> {
    if let Certificate::NamesOther(cn) = cert {
        return Err((
            StatusCode::FORBIDDEN,
            format!("the client certificate's CN {cn:?} is not the identity"),
        ));
    }
    let reached = match (tls && *cert == Certificate::Names, basic.valid()) {
        (true, _) => 3,
        (false, true) if tls => 2,
        (false, true) => 1,
        (false, false) => 0,
    };
    let required = pile.required_profile();
    if reached >= required {
        return Ok(reached);
    }
    // Refused below the profile it connected with (higher than the one set): said so.
    let held = if pile.connected_profile > pile.security_profile {
        format!(
            " (it connected with security profile {} before, and is not taken below it: an \
             operator lowers it through the API with allow_downgrade)",
            pile.connected_profile
        )
    } else {
        String::new()
    };
    let forbidden = |why: String| Err((StatusCode::FORBIDDEN, format!("{why}{held}")));
    if required >= 2 && !tls {
        return forbidden(format!(
            "security profile {required} needs TLS (wss://), not plain ws"
        ));
    }
    if required == 3 {
        return forbidden("no client certificate with a subject CN".into());
    }
    let why = match basic {
        Basic::None => "no Basic credentials".to_owned(),
        Basic::OtherUser(user) => format!("the Basic user {user:?} is not the identity"),
        Basic::Wrong | Basic::Current | Basic::Previous => "wrong password".to_owned(),
    };
    Err((StatusCode::UNAUTHORIZED, format!("{why}{held}")))
}

/// Decides whether a pile may connect (and records the profile it connected with): its
/// Security Profile for a registered pile, the admission mode for another.
pub(super) async fn admit(
    central: &Central,
    peer: &Peer,
    identity: &str,
    credentials: Option<(String, Vec<u8>)>,
) -> Result<(), Refusal> {
    let internal = |e: StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store failed: {e}"),
        )
    };
    let cert = certificate(peer, identity);
    let pile = central.repo().pile(identity).await.map_err(internal)?;
    let Some(pile) = pile else {
        if let Certificate::NamesOther(cn) = &cert {
            return Err((
                StatusCode::FORBIDDEN,
                format!("the client certificate's CN {cn:?} is not the identity"),
            ));
        }
        let registration = match central.options().admission {
            Admission::Registered => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "unknown pile (not registered)".into(),
                ))
            }
            Admission::Approve => "Pending",
            Admission::Open => "Accepted",
        };
        let write = |op| async { central.writer().write(op).await.map_err(internal) };
        write(WriteOp::AdmitPile {
            id: identity.to_owned(),
            registration: registration.into(),
        })
        .await?;
        // A new pile with its certificate is at profile 3 from now on.
        if peer.tls && cert == Certificate::Names {
            write(WriteOp::ConnectedAtProfile {
                id: identity.to_owned(),
                profile: 3,
                current_password: false,
            })
            .await?;
        }
        return Ok(());
    };
    let basic = basic(&pile, credentials).await;
    let reached = judge(&pile, peer.tls, &cert, &basic)?;
    let ends_previous = basic == Basic::Current && pile.previous_password_hash.is_some();
    if reached > pile.connected_profile || ends_previous {
        central
            .writer()
            .write(WriteOp::ConnectedAtProfile {
                id: identity.to_owned(),
                profile: reached,
                current_password: basic == Basic::Current,
            })
            .await
            .map_err(internal)?;
    }
    let mut news = Vec::new();
    if reached > pile.connected_profile {
        news.push(format!(
            "connected with security profile {reached} (before: {}); no handshake below it is \
             admitted from now on",
            pile.connected_profile
        ));
    }
    if ends_previous {
        news.push("connected with its new password: the former one no longer works".into());
    }
    if !news.is_empty() {
        let op = WriteOp::Event {
            pile: identity.to_owned(),
            kind: "SecurityProfileHeld".into(),
            detail: news.join("; "),
            firmware_status: None,
            diagnostics_status: None,
        };
        if let Err(e) = central.writer().write(op).await {
            tracing::warn!(
                pile = identity,
                "event SecurityProfileHeld not recorded: {e}"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pile(set: i64, connected: i64) -> PileRow {
        PileRow {
            id: "CP1".into(),
            password_hash: None,
            registration: "Accepted".into(),
            vendor: None,
            model: None,
            serial_number: None,
            charge_box_serial_number: None,
            firmware_version: None,
            iccid: None,
            imsi: None,
            meter_type: None,
            meter_serial_number: None,
            firmware_status: None,
            diagnostics_status: None,
            created_at: 0,
            last_boot: None,
            last_seen: None,
            connection: None,
            node: None,
            connected_at: None,
            security_profile: set,
            connected_profile: connected,
            previous_password_hash: None,
        }
    }

    #[test]
    fn each_handshake_reaches_its_profile() {
        let p = pile(0, 0);
        let reach = |tls, cert: Certificate, basic: Basic| judge(&p, tls, &cert, &basic);
        assert_eq!(reach(false, Certificate::None, Basic::None), Ok(0));
        assert_eq!(reach(true, Certificate::None, Basic::Wrong), Ok(0));
        assert_eq!(reach(false, Certificate::None, Basic::Current), Ok(1));
        assert_eq!(reach(true, Certificate::None, Basic::Previous), Ok(2));
        assert_eq!(reach(true, Certificate::Names, Basic::None), Ok(3));
        assert_eq!(reach(true, Certificate::NoName, Basic::Current), Ok(2));
        let other = reach(true, Certificate::NamesOther("CP2".into()), Basic::Current);
        assert_eq!(other.unwrap_err().0, StatusCode::FORBIDDEN);
    }

    #[test]
    fn below_the_profile_it_connected_with_the_reason_says_so() {
        let (status, why) =
            judge(&pile(1, 2), false, &Certificate::None, &Basic::Current).unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(why.starts_with("security profile 2 needs TLS"), "{why}");
        assert!(
            why.contains("connected with security profile 2 before"),
            "{why}"
        );
        let (status, why) =
            judge(&pile(1, 1), false, &Certificate::None, &Basic::Wrong).unwrap_err();
        assert_eq!(
            (status, why.as_str()),
            (StatusCode::UNAUTHORIZED, "wrong password")
        );
    }
}
