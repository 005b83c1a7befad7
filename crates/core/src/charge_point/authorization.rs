//! Who may charge: cards at the reader, remote starts, the authorization cache, the factory's
//! offline cards, and the offline rules (FAQ 3.5: LocalAuthorizeOffline, LocalPreAuthorize,
//! AuthorizationCacheEnabled, AllowOfflineTxForUnknownId).

use ocpp::{AuthorizeRequest, IdToken, StopReason};

use super::*;

/// What an idTag is wanted for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Purpose {
    /// To start a transaction on this connector.
    Start(u32),
    /// To stop the transaction on this connector, which another idTag started.
    Stop(u32),
}

/// Authorization under way: the Authorize.req on its way, and the charging profile of a
/// remote start whose idTag it authorizes.
#[derive(Debug, Clone, Default)]
pub(super) struct AuthorizationRun {
    pending: Option<PendingAuthorization>,
    remote_profile: Option<ocpp::ChargingProfile>,
}

/// An Authorize.req on its way.
#[derive(Debug, Clone)]
pub(super) struct PendingAuthorization {
    pub id_tag: String,
    pub purpose: Purpose,
}

/// An idTag accepted for a connector that has no plug in yet; it lapses after ConnectionTimeOut.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Authorized {
    pub id_tag: String,
    pub parent: Option<String>,
    pub since: Duration,
    /// The TxProfile of a remote start, installed when the transaction starts.
    pub profile: Option<ocpp::ChargingProfile>,
}

impl AuthorizationRun {
    /// The Authorize.req on its way, taken to be decided.
    pub fn take_pending(&mut self) -> Option<PendingAuthorization> {
        self.pending.take()
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The TxProfile of the remote start that the pending Authorize.req is for.
    pub fn set_remote_profile(&mut self, profile: Option<ocpp::ChargingProfile>) {
        self.remote_profile = profile;
    }
}

impl ChargePoint {
    /// ClearCache: the authorization cache emptied (and that made durable).
    pub(super) fn clear_auth_cache(&mut self) {
        if self.durable.clear_auth_cache() {
            self.persist();
        }
    }

    /// Keeps the central's verdict on an idTag in the authorization cache, when enabled.
    /// (An idTag of the Local Authorization List is not cached: the list decides for it.)
    /// The central contradicting the Local Authorization List is reported: a StatusNotification
    /// of connector 0 with errorCode LocalListConflict (a warning; the status stays).
    pub(super) fn remember(&mut self, id_tag: &str, info: IdTagInfo) {
        let listed = self.local_list_entry(id_tag).map(|e| e.status.clone());
        if listed.as_ref().is_some_and(|status| *status != info.status) {
            self.report_list_conflict(id_tag);
        }
        if self.config.flag(keys::AUTHORIZATION_CACHE_ENABLED)
            && listed.is_none()
            && self.durable.cache_verdict(id_tag, info)
        {
            self.persist();
        }
    }

    /// What the pile knows of an idTag by itself: the Local Authorization List (with
    /// LocalAuthListEnabled), the factory's offline cards (valid while the pile keeps its
    /// factory name, FAQ 3.2.2) and the authorization cache, in that order.
    pub(super) fn local_verdict(&self, id_tag: &str) -> Option<IdTagInfo> {
        let now = self.time.clock.at(self.time.now);
        let expired = |mut info: IdTagInfo| {
            if info.status == AuthorizationStatus::Accepted
                && info.expiry_date.as_ref().is_some_and(|e| *e < now)
            {
                info.status = AuthorizationStatus::Expired;
            }
            info
        };
        if let Some(info) = self.local_list_entry(id_tag) {
            return Some(expired(info.clone()));
        }
        let factory = self.config.factory();
        if self.config.identity() == factory.serial_number
            && factory
                .offline_cards
                .iter()
                .any(|c| c.eq_ignore_ascii_case(id_tag))
        {
            return Some(IdTagInfo {
                expiry_date: None,
                parent_id_tag: None,
                status: AuthorizationStatus::Accepted,
            });
        }
        if !self.config.flag(keys::AUTHORIZATION_CACHE_ENABLED) {
            return None;
        }
        let info = self.durable.cached_verdict(id_tag)?;
        Some(expired(info.clone()))
    }

    fn online(&self) -> bool {
        self.session.online()
    }

    /// The decision without the central system (offline, or when it did not answer).
    fn offline_verdict(&self, id_tag: &str) -> Option<IdTagInfo> {
        let local = self
            .config
            .flag(keys::LOCAL_AUTHORIZE_OFFLINE)
            .then(|| self.local_verdict(id_tag))
            .flatten();
        match local {
            Some(info) => Some(info),
            None if self.config.flag(keys::ALLOW_OFFLINE_TX_FOR_UNKNOWN_ID) => Some(IdTagInfo {
                expiry_date: None,
                parent_id_tag: None,
                status: AuthorizationStatus::Accepted,
            }),
            None => None,
        }
    }

    /// A card at the reader. `connector` is the reader's connector, or `None` for a reader of
    /// the whole pile.
    pub(super) fn on_card(&mut self, connector: Option<u32>, id_tag: &str, now: Duration) {
        let count = self.connector_count();
        if connector.is_some_and(|c| c == 0 || c > count) || id_tag.is_empty() {
            return self.beep(Beep::Refused);
        }
        // The card that started a transaction stops it.
        let own = self
            .durable
            .transactions()
            .iter()
            .find(|(c, t)| {
                connector.is_none_or(|x| x == **c) && t.id_tag.eq_ignore_ascii_case(id_tag)
            })
            .map(|(c, _)| *c);
        if let Some(c) = own {
            return self.stop_transaction(c, StopReason::Local, Some(id_tag), now);
        }
        if self.authorization.pending.is_some() {
            // One card at a time.
            return self.beep(Beep::Refused);
        }
        // Another card at a connector that is charging: it may stop it if it shares the
        // parent idTag.
        if let Some(c) = connector.filter(|c| self.has_transaction(*c)) {
            return self.authorize(id_tag, Purpose::Stop(c), now);
        }
        let chosen = connector.or_else(|| self.connector_for(id_tag));
        match chosen {
            Some(c) if self.can_start(c) => self.authorize(id_tag, Purpose::Start(c), now),
            _ => self.beep(Beep::Refused),
        }
    }

    /// The connector an idTag without a connector is for: one reserved for it, else one with
    /// a plug in and no transaction, else the first that can start one, among those it may use.
    pub(super) fn connector_for(&self, id_tag: &str) -> Option<u32> {
        let count = self.connector_count();
        let usable = |c: &u32| self.can_start(*c) && self.reservation_for(*c, id_tag, None).is_ok();
        (1..=count)
            .find(|c| {
                self.can_start(*c) && matches!(self.reservation_for(*c, id_tag, None), Ok(Some(_)))
            })
            .or_else(|| {
                (1..=count)
                    .filter(usable)
                    .find(|c| self.is_plugged(*c) && !self.connectors[*c as usize].is_finishing())
            })
            .or_else(|| (1..=count).find(usable))
    }

    /// Whether a transaction may start on a connector now.
    pub(super) fn can_start(&self, connector: u32) -> bool {
        connector >= 1
            && connector <= self.connector_count()
            && !self.has_transaction(connector)
            && !self.is_inoperative(connector)
            && !self.upgrading()
            && self.fault_assessment().effect != Some(Effect::Stop)
    }

    /// Finds out whether an idTag may do what it is presented for.
    pub(super) fn authorize(&mut self, id_tag: &str, purpose: Purpose, now: Duration) {
        if self.online() {
            let local = self.local_verdict(id_tag);
            let pre_authorized = self.config.flag(keys::LOCAL_PRE_AUTHORIZE)
                && local
                    .as_ref()
                    .is_some_and(|i| i.status == AuthorizationStatus::Accepted);
            if pre_authorized {
                return self.verdict(id_tag, local, purpose, now);
            }
            let ticket = self.call(
                &AuthorizeRequest {
                    id_tag: IdToken::truncating(id_tag),
                },
                now,
            );
            self.link.awaited.insert(ticket, Awaited::Authorize);
            self.authorization.pending = Some(PendingAuthorization {
                id_tag: id_tag.to_owned(),
                purpose,
            });
        } else {
            let verdict = self.offline_verdict(id_tag);
            self.verdict(id_tag, verdict, purpose, now);
        }
    }

    /// The answer to our Authorize.req.
    pub(super) fn on_authorize_reply(
        &mut self,
        pending: PendingAuthorization,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        let verdict = match outcome {
            Ok(Decoded {
                value: Response::Authorize(r),
                ..
            }) => {
                self.remember(&pending.id_tag, r.id_tag_info.clone());
                Some(r.id_tag_info)
            }
            // No answer from the central system: decided as if offline.
            _ => self.offline_verdict(&pending.id_tag),
        };
        self.verdict(&pending.id_tag, verdict, pending.purpose, now);
    }

    /// Acts on what was found out about an idTag.
    fn verdict(&mut self, id_tag: &str, info: Option<IdTagInfo>, purpose: Purpose, now: Duration) {
        let accepted = info
            .as_ref()
            .filter(|i| i.status == AuthorizationStatus::Accepted);
        match (purpose, accepted) {
            (Purpose::Start(c), Some(info))
                if self.can_start(c)
                    && self
                        .reservation_for(c, id_tag, info.parent_id_tag.as_ref().map(|p| p.as_str()))
                        .is_ok() =>
            {
                let parent = info.parent_id_tag.as_ref().map(|p| p.as_str().to_owned());
                self.beep(Beep::Accepted);
                let profile = self.authorization.remote_profile.take();
                self.connectors[c as usize].authorize(Authorized {
                    id_tag: id_tag.to_owned(),
                    parent,
                    since: now,
                    profile,
                });
                self.statuses_changed(now);
            }
            (Purpose::Stop(c), Some(info)) => {
                let parent = info.parent_id_tag.as_ref().map(|p| p.as_str());
                let same_group = self.transaction(c).is_some_and(|t| {
                    t.parent_id_tag
                        .as_deref()
                        .zip(parent)
                        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
                });
                if same_group {
                    self.stop_transaction(c, StopReason::Local, Some(id_tag), now);
                } else {
                    self.beep(Beep::Refused);
                }
            }
            _ => self.beep(Beep::Refused),
        }
    }
}
