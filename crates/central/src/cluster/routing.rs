//! The one way commands reach a pile: through its connection when it lives on this node, else
//! as a request on the pile's `call` subject, which only its owner answers.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use ocpp::{Action, Decoded, Response};

use super::owner::local_call;
use super::wire::{CallReply, CallRequest};
use crate::sessions::{Delivery, DeliveryError};
use crate::store::PileFilter;
use crate::Central;

/// Delivers commands to piles wherever their connection lives.
pub struct Route<'a> {
    central: &'a Central,
}

/// The delivery of commands of this node (alone: its own connections only).
pub fn delivery(central: &Central) -> Route<'_> {
    Route { central }
}

#[async_trait]
impl Delivery for Route<'_> {
    /// Connected here, or (in a cluster) by its presence record.
    async fn is_connected(&self, pile: &str) -> bool {
        if self.central.sessions().is_live(pile) {
            return true;
        }
        if self.central.cluster().is_none() {
            return false;
        }
        match self.central.repo().pile(pile).await {
            Ok(row) => row.is_some_and(|p| p.connection.is_some()),
            Err(e) => {
                tracing::warn!(pile, "presence unknown: {e}");
                false
            }
        }
    }

    async fn call(
        &self,
        pile: &str,
        action: Action,
        payload: String,
    ) -> Result<Decoded<Response>, DeliveryError> {
        let central = self.central;
        match central.cluster() {
            Some(_) if !central.sessions().is_live(pile) => {
                remote_call(central, pile, action, payload).await
            }
            _ => local_call(central, pile, action, payload).await,
        }
    }
}

/// A CALL through the node that holds the pile: no node holds it → NotConnected at once; the
/// owner's timeout, or none within a little more → Timeout.
async fn remote_call(
    central: &Central,
    pile: &str,
    action: Action,
    payload: String,
) -> Result<Decoded<Response>, DeliveryError> {
    let cluster = central.cluster().ok_or(DeliveryError::NotConnected)?;
    let body = CallRequest {
        action: action.as_str().to_owned(),
        payload,
    };
    // The owner answers a timeout after command_timeout + 1 s.
    let wait = central.options().command_timeout + Duration::from_secs(2);
    match cluster.ask_pile(pile, "call", &body, wait).await {
        Ok(answer) => match serde_json::from_slice::<CallReply>(&answer.payload) {
            Ok(reply) => reply.outcome(action),
            Err(e) => Err(DeliveryError::BadResponse(format!(
                "the owner's answer does not decode: {e}"
            ))),
        },
        Err(e) => match e.kind() {
            async_nats::RequestErrorKind::NoResponders => Err(DeliveryError::NotConnected),
            async_nats::RequestErrorKind::TimedOut => Err(DeliveryError::Timeout),
            async_nats::RequestErrorKind::Other => {
                tracing::warn!(pile, "a command through NATS failed: {e}");
                Err(DeliveryError::Unavailable(e.to_string()))
            }
        },
    }
}

/// Which piles are connected, at one glance (a campaign's tick asks about many).
pub struct Online<'a> {
    central: &'a Central,
    /// In a cluster, the piles whose presence record says connected.
    recorded: HashSet<String>,
}

impl Online<'_> {
    pub fn contains(&self, pile: &str) -> bool {
        self.central.sessions().is_live(pile) || self.recorded.contains(pile)
    }
}

/// The piles connected now: this node's, and in a cluster every node's presence records; none
/// when the store does not answer.
pub async fn online(central: &Central) -> Option<Online<'_>> {
    let mut recorded = HashSet::new();
    if central.cluster().is_some() {
        let filter = PileFilter {
            online: Some(true),
            ..PileFilter::default()
        };
        match central.repo().pile_page(&filter, None, None).await {
            Ok(rows) => recorded.extend(rows.into_iter().map(|p| p.id)),
            Err(e) => {
                tracing::warn!("the piles connected to other nodes are unknown: {e}");
                return None;
            }
        }
    }
    Some(Online { central, recorded })
}
