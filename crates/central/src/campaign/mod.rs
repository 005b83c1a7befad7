//! Firmware campaigns: images installed in order on many piles, a batch at a time, as the FAQ
//! prescribes (3.10, 3.17). [`Campaign`] and [`rollout::Rollout`] are state machines without
//! I/O (the time is given); [`runner`] carries out their commands (through [`orders`]) and
//! feeds them the piles' notifications, boots and answers, each campaign on the one node that
//! holds its lease; [`events`] carries the piles' news between the nodes of a cluster.

pub mod events;
mod orders;
pub mod rollout;
pub mod runner;
pub mod signer;
mod stored;

use ocpp::{FirmwareStatus, FirmwareStatusSigned};
use serde::{Deserialize, Serialize};

pub use rollout::{
    Answer, Command, Facts, ImageSignature, Kind, Millis, Outcome, Phase, Rollout, Step,
    UpdateTerms,
};

/// A pile left out of a campaign when it was created, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refusal {
    pub pile: String,
    pub reason: String,
}

/// What a campaign does, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The images, installed in this order on every pile.
    pub steps: Vec<Step>,
    /// At most this many piles upgrade at once.
    pub batch_size: usize,
    /// What UpdateFirmware asks: the retrieveDate, `retries` and `retryInterval`.
    #[serde(flatten)]
    pub update: UpdateTerms,
    /// Piles not done by then have timed out.
    pub deadline: Millis,
    /// The piles refused up front.
    pub refused: Vec<Refusal>,
}

/// `running`, `finished` (every pile has a result) or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Finished,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Finished => "finished",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "finished" => State::Finished,
            "cancelled" => State::Cancelled,
            _ => State::Running,
        }
    }
}

/// One campaign: its piles' upgrades and the batch that runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: i64,
    pub created_at: Millis,
    pub spec: Spec,
    pub rollouts: Vec<Rollout>,
    /// Cancelled: no pile starts any more; those upgrading are followed to their end (OCPP
    /// cannot stop an upgrade).
    pub cancelled: bool,
    pub finished_at: Option<Millis>,
}

/// A command for one pile of one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub pile: String,
    pub command: Command,
}

impl Campaign {
    pub fn state(&self) -> State {
        if self.rollouts.iter().all(Rollout::is_done) {
            if self.cancelled {
                State::Cancelled
            } else {
                State::Finished
            }
        } else {
            State::Running
        }
    }

    fn rollout(&mut self, pile: &str) -> Option<&mut Rollout> {
        self.rollouts.iter_mut().find(|r| r.pile == pile)
    }

    fn orders(pile: &str, commands: Vec<Command>) -> Vec<Order> {
        commands
            .into_iter()
            .map(|command| Order {
                pile: pile.to_owned(),
                command,
            })
            .collect()
    }

    /// The time moved on: deadlines, silences, progress readings, and piles starting while the
    /// batch has room. `facts` tells what is known of a pile now.
    pub fn tick(&mut self, facts: impl Fn(&str) -> Facts, now: Millis) -> Vec<Order> {
        let mut orders = Vec::new();
        if self.finished_at.is_some() {
            return orders;
        }
        if now >= self.spec.deadline {
            for r in &mut self.rollouts {
                r.stop(Outcome::TimedOut, "the campaign's deadline passed", now);
            }
        }
        for r in &mut self.rollouts {
            if r.is_active() {
                let mut out = Vec::new();
                r.on_tick(&facts(&r.pile), now, &mut out);
                orders.extend(Self::orders(&r.pile, out));
            }
        }
        if self.cancelled {
            for r in &mut self.rollouts {
                if r.phase == Phase::Waiting {
                    r.stop(Outcome::Skipped, "the campaign was cancelled", now);
                }
            }
        } else {
            let mut active = self.rollouts.iter().filter(|r| r.is_active()).count();
            for r in &mut self.rollouts {
                if active >= self.spec.batch_size.max(1) {
                    break;
                }
                if r.phase != Phase::Waiting {
                    continue;
                }
                let mut out = Vec::new();
                if r.try_start(
                    &self.spec.steps,
                    &facts(&r.pile),
                    &self.spec.update,
                    now,
                    &mut out,
                ) && r.is_active()
                {
                    active += 1;
                }
                orders.extend(Self::orders(&r.pile, out));
            }
        }
        self.settle(now);
        orders
    }

    /// Notes when the last pile got its result.
    fn settle(&mut self, now: Millis) {
        if self.finished_at.is_none() && self.state() != State::Running {
            self.finished_at = Some(now);
        }
    }

    pub fn on_notification(
        &mut self,
        pile: &str,
        status: FirmwareStatus,
        now: Millis,
    ) -> Vec<Order> {
        let mut out = Vec::new();
        let terms = self.spec.update;
        if let Some(r) = self.rollout(pile) {
            r.on_notification(status, &terms, now, &mut out);
        }
        self.settle(now);
        Self::orders(pile, out)
    }

    /// A SignedFirmwareStatusNotification, with the `requestId` it names.
    pub fn on_signed_notification(
        &mut self,
        pile: &str,
        status: &FirmwareStatusSigned,
        request_id: Option<i32>,
        now: Millis,
    ) -> Vec<Order> {
        let mut out = Vec::new();
        let terms = self.spec.update;
        if let Some(r) = self.rollout(pile) {
            r.on_signed_notification(status, request_id, &terms, now, &mut out);
        }
        self.settle(now);
        Self::orders(pile, out)
    }

    /// Whether its piles get SignedUpdateFirmware.
    pub fn is_signed(&self) -> bool {
        self.spec.update.signed_requests.is_some()
    }

    pub fn on_boot(&mut self, pile: &str, version: Option<&str>, now: Millis) -> Vec<Order> {
        let mut out = Vec::new();
        let (steps, terms) = (self.spec.steps.clone(), self.spec.update);
        if let Some(r) = self.rollout(pile) {
            r.on_boot(version, &steps, &terms, now, &mut out);
        }
        self.settle(now);
        Self::orders(pile, out)
    }

    pub fn on_answer(&mut self, pile: &str, kind: Kind, answer: Answer, now: Millis) {
        if let Some(r) = self.rollout(pile) {
            r.on_answer(kind, answer, now);
        }
        self.settle(now);
    }

    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Taken up after a restart of the central system, or by another node.
    pub fn resume(&mut self, now: Millis) {
        let terms = self.spec.update;
        for r in &mut self.rollouts {
            r.resume(&terms, now);
        }
    }

    /// Whether the pile is in this campaign and not done.
    pub fn holds(&self, pile: &str) -> bool {
        self.rollouts.iter().any(|r| r.pile == pile && !r.is_done())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_signed;
