//! The node that holds a pile's connection: it answers the pile's `call` subject with the
//! pile's answers, and its `close` subject by closing the connection when a newer one lives on
//! another node. One subscription of each per pile connected here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ocpp::Action;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::wire::{CallReply, CallRequest, CloseRequest, Closed};
use crate::sessions::{Delivery, DeliveryError, Session};
use crate::Central;

/// How long a node that completed a pile's handshake waits for the old owner to close the
/// pile's older connection.
const TAKEOVER_WAIT: Duration = Duration::from_secs(1);

/// How long the old owner waits for its end-of-connection writes before it answers anyway.
const END_WAIT: Duration = Duration::from_secs(5);

/// The piles this node answers for.
#[derive(Default)]
pub(super) struct Owned {
    piles: Mutex<HashMap<String, Served>>,
}

/// One pile's subscriptions, served by a task.
struct Served {
    connection: u64,
    /// Set once the connection's end is written.
    ended: watch::Sender<bool>,
    /// Set when a newer connection on another node took the pile over.
    replaced: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// The older connection a newer one of the same pile replaced: where it came from, and the
/// node that held it.
pub struct Replaced {
    pub remote: String,
    pub node: Option<String>,
}

/// Closes the pile's older connection, `old` on this node or one another node holds (which
/// answers once its end is written); the connection replaced, if there was one.
pub async fn take_over(
    central: &Central,
    pile: &str,
    old: Option<Session>,
    since: i64,
) -> Option<Replaced> {
    if let Some(old) = old {
        old.handle.close();
        return Some(Replaced {
            remote: old.remote.to_string(),
            node: None,
        });
    }
    let why = CloseRequest {
        deleted: false,
        from: Some(central.node().to_owned()),
        since: Some(since),
    };
    let closed = close_elsewhere(central, pile, why).await?;
    Some(Replaced {
        remote: closed.remote,
        node: Some(closed.node),
    })
}

/// Closes the pile's connection wherever another node holds it: the pile was deleted.
pub async fn close_deleted(central: &Central, pile: &str) {
    let why = CloseRequest {
        deleted: true,
        from: Some(central.node().to_owned()),
        since: None,
    };
    close_elsewhere(central, pile, why).await;
}

/// Asks on the pile's `close` subject; the answer of the node that closed its connection.
async fn close_elsewhere(central: &Central, pile: &str, why: CloseRequest) -> Option<Closed> {
    let cluster = central.cluster()?;
    match cluster.ask_pile(pile, "close", &why, TAKEOVER_WAIT).await {
        // The other connection is newer and stays; this one is closed by its node's request.
        Ok(answer) if answer.payload.as_ref() == KEPT.as_bytes() => None,
        Ok(answer) => match serde_json::from_slice::<Closed>(&answer.payload) {
            Ok(closed) => Some(closed),
            Err(e) => {
                tracing::warn!(pile, "the old owner's answer does not decode: {e}");
                None
            }
        },
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => None,
        Err(e) => {
            tracing::warn!(pile, "no node closed the pile's connection: {e}");
            None
        }
    }
}

/// Answers the pile's `call` and `close` subjects for its connection `connection` here (in a
/// cluster; alone nothing is to do).
pub async fn serve(central: &Arc<Central>, pile: &str, connection: u64, since: i64) {
    let Some(cluster) = central.cluster() else {
        return;
    };
    if let Some(older) = cluster.owned.take(pile) {
        older.task.abort();
    }
    let nats = cluster.nats();
    let subscribed = async {
        let calls = nats.subscribe(cluster.pile_subject(pile, "call")).await?;
        let closes = nats.subscribe(cluster.pile_subject(pile, "close")).await?;
        Ok::<_, async_nats::Error>((calls, closes))
    };
    let (calls, closes) = match subscribed.await {
        Ok(subs) => subs,
        Err(e) => {
            tracing::error!(pile, "commands through other nodes will not reach it: {e}");
            return;
        }
    };
    if let Err(e) = cluster.settle().await {
        tracing::warn!(pile, "its subscriptions may not be in place yet: {e}");
    }
    let (ended, ended_rx) = watch::channel(false);
    let replaced = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(answer(
        central.clone(),
        pile.to_owned(),
        (connection, since),
        (calls, closes),
        ended_rx,
        replaced.clone(),
    ));
    let mut piles = cluster.owned.piles.lock().expect("owned lock");
    // A newer connection of the pile here may have come meanwhile: it keeps its own.
    if piles.get(pile).is_some_and(|s| s.connection > connection) {
        task.abort();
        return;
    }
    if let Some(older) = piles.insert(
        pile.to_owned(),
        Served {
            connection,
            ended,
            replaced,
            task,
        },
    ) {
        older.task.abort();
    }
}

/// The connection `connection` of the pile ended and its end is written: its subscriptions
/// go; whether a newer connection on another node replaced it.
pub fn released(central: &Central, pile: &str, connection: u64) -> bool {
    let Some(cluster) = central.cluster() else {
        return false;
    };
    let mut piles = cluster.owned.piles.lock().expect("owned lock");
    let served = match piles.remove(pile) {
        Some(served) if served.connection == connection => served,
        // A newer connection of the pile here keeps its subscriptions.
        Some(newer) => {
            piles.insert(pile.to_owned(), newer);
            return false;
        }
        None => return false,
    };
    // The task answers a takeover in progress, then ends.
    let _ = served.ended.send(true);
    served.replaced.load(Ordering::SeqCst)
}

impl Owned {
    fn take(&self, pile: &str) -> Option<Served> {
        self.piles.lock().expect("owned lock").remove(pile)
    }
}

/// Serves one pile's subjects until its connection's end is written.
async fn answer(
    central: Arc<Central>,
    pile: String,
    (connection, since): (u64, i64),
    (mut calls, mut closes): (async_nats::Subscriber, async_nats::Subscriber),
    mut ended: watch::Receiver<bool>,
    replaced: Arc<AtomicBool>,
) {
    let close = loop {
        tokio::select! {
            call = calls.next() => match call {
                Some(call) => {
                    tokio::spawn(answer_call(central.clone(), pile.clone(), call));
                }
                None => return,
            },
            close = closes.next() => match close {
                // This node's own request (it subscribed before it asked): not for us.
                Some(close) if asked_by(&close, central.node()) => {}
                // For a connection older than ours: ours stays, and the asker hears so at once.
                Some(close) if stays(&close, central.node(), since) => {
                    tokio::spawn(answer_kept(central.clone(), close.reply));
                }
                Some(close) => break close,
                None => return,
            },
            _ = ended.wait_for(|e| *e) => return,
        }
    };
    drop(calls);
    close_here(&central, &pile, connection, close, &mut ended, &replaced).await;
}

/// The answer of a node whose connection of the pile is newer than the asker's: it stays.
const KEPT: &str = r#"{"kept":true}"#;

/// Tells the asker that this node's newer connection of the pile stays.
async fn answer_kept(central: Arc<Central>, reply: Option<async_nats::Subject>) {
    if let (Some(reply), Some(cluster)) = (reply, central.cluster()) {
        let _ = cluster.nats().publish(reply, KEPT.into()).await;
    }
}

/// Whether `node` sent this close request.
fn asked_by(close: &async_nats::Message, node: &str) -> bool {
    serde_json::from_slice::<CloseRequest>(&close.payload)
        .is_ok_and(|why| why.from.as_deref() == Some(node))
}

/// Whether the connection of `node` that began at `since` stays despite this close request
/// from another node: the request comes for a connection older than it (two handshakes
/// completed at once on two nodes: the newer stays; at the same millisecond, the node named
/// last).
fn stays(close: &async_nats::Message, node: &str, since: i64) -> bool {
    let Ok(why) = serde_json::from_slice::<CloseRequest>(&close.payload) else {
        return false;
    };
    match (why.from.as_deref(), why.since) {
        (Some(from), Some(theirs)) => (since, node) > (theirs, from),
        _ => false,
    }
}

/// A newer connection of the pile lives on another node (or the pile was deleted): this one
/// is closed, and the answer sent once its end is written.
async fn close_here(
    central: &Central,
    pile: &str,
    connection: u64,
    close: async_nats::Message,
    ended: &mut watch::Receiver<bool>,
    replaced: &AtomicBool,
) {
    let Some(session) = central
        .sessions()
        .get(pile)
        .filter(|s| s.connection == connection)
    else {
        return;
    };
    // A newer connection elsewhere (also when the request has no body), unless the pile was
    // deleted.
    let why: CloseRequest = serde_json::from_slice(&close.payload).unwrap_or(CloseRequest {
        deleted: false,
        from: None,
        since: None,
    });
    replaced.store(!why.deleted, Ordering::SeqCst);
    session.handle.close();
    if tokio::time::timeout(END_WAIT, ended.wait_for(|e| *e))
        .await
        .is_err()
    {
        tracing::warn!(pile, "the connection's end was not written in time");
    }
    let Some(reply) = close.reply else { return };
    let closed = Closed {
        node: central.node().to_owned(),
        remote: session.remote.to_string(),
    };
    let Some(cluster) = central.cluster() else {
        return;
    };
    let body = serde_json::to_vec(&closed).expect("JSON");
    if let Err(e) = cluster.nats().publish(reply, body.into()).await {
        tracing::warn!(pile, "takeover not answered: {e}");
    }
}

/// Sends a CALL from another node to the pile and answers with the pile's answer.
async fn answer_call(central: Arc<Central>, pile: String, call: async_nats::Message) {
    let Some(reply) = call.reply else { return };
    let outcome = match serde_json::from_slice::<CallRequest>(&call.payload) {
        Ok(request) => match Action::from_name(&request.action) {
            Some(action) => local_call(&central, &pile, action, request.payload).await,
            None => Err(DeliveryError::BadResponse(format!(
                "no action {:?}",
                request.action
            ))),
        },
        Err(e) => Err(DeliveryError::BadResponse(format!(
            "the request does not decode: {e}"
        ))),
    };
    let body = serde_json::to_vec(&CallReply::of(outcome)).expect("JSON");
    let Some(cluster) = central.cluster() else {
        return;
    };
    if let Err(e) = cluster.nats().publish(reply, body.into()).await {
        tracing::warn!(pile, "a command's answer not sent back: {e}");
    }
}

/// A CALL through the pile's connection here, queued behind its outstanding one; a timeout
/// a little after the pile's own.
pub(super) async fn local_call(
    central: &Central,
    pile: &str,
    action: Action,
    payload: String,
) -> Result<ocpp::Decoded<ocpp::Response>, DeliveryError> {
    if !central.sessions().is_live(pile) {
        return Err(DeliveryError::NotConnected);
    }
    let wait = central.options().command_timeout + Duration::from_secs(1);
    tokio::time::timeout(wait, central.sessions().call(pile, action, payload))
        .await
        .unwrap_or(Err(DeliveryError::Timeout))
}
