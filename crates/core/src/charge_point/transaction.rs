//! Transactions: starting and stopping them, their meter values, and the durable outbox that
//! delivers their messages in order, exactly as recorded, whatever the connection does.
//!
//! Every transaction message is written to the outbox (durable) before it is sent, under a
//! message id that stays the same on every attempt, and leaves the outbox only when the central
//! system has answered it. After a crash the pile sends what is left again, under the same ids.

use ocpp::{
    IdToken, MeterValue, StartTransactionRequest, StopReason, StopTransactionRequest, Timestamp,
};

use super::*;
use crate::durable::{Transaction, TransactionMessage};

/// At most this many Wh fit in a StartTransaction or StopTransaction (an OCPP integer).
fn wh(v: i64) -> i32 {
    v.clamp(0, i64::from(i32::MAX)) as i32
}

/// The outbox's message on its way to the central system, and when to try again after a
/// failure.
#[derive(Debug, Clone, Default)]
pub(super) struct OutboxRun {
    call: Option<Ticket>,
    retry_at: Option<Duration>,
}

impl OutboxRun {
    /// The connection is gone, and the message on its way with it (it is sent again).
    pub fn forget_call(&mut self) {
        self.call = None;
    }

    /// When the message that failed is tried again.
    pub fn retry_at(&self) -> Option<Duration> {
        self.retry_at
    }
}

impl ChargePoint {
    /// The transaction running on a connector.
    pub fn transaction(&self, connector: u32) -> Option<&Transaction> {
        self.durable.transaction(connector)
    }

    pub(super) fn has_transaction(&self, connector: u32) -> bool {
        self.durable.transaction(connector).is_some()
    }

    pub(super) fn any_transaction(&self) -> bool {
        !self.durable.transactions().is_empty()
    }

    pub(super) fn transaction_count(&self) -> usize {
        self.durable.transactions().len()
    }

    /// The connectors with a transaction running.
    pub(super) fn running_connectors(&self) -> Vec<u32> {
        self.durable.transactions().keys().copied().collect()
    }

    /// The central's transactionId of a running transaction, once known.
    pub fn transaction_id(&self, connector: u32) -> Option<i32> {
        let tx = self.transaction(connector)?;
        self.durable.transaction_id(tx.local_id)
    }

    /// Transaction messages waiting for the central system.
    pub fn outbox_len(&self) -> usize {
        self.durable.outbox().len()
    }

    /// A connector's meter register now: the last reading, else the last one recorded.
    pub(super) fn register(&self, connector: u32) -> i64 {
        self.connectors
            .get(connector as usize)
            .and_then(|k| k.reading())
            .map(|m| m.energy_wh)
            .or_else(|| self.durable.recorded_register(connector))
            .unwrap_or(0)
    }

    /// Starts a transaction on a connector for an authorized idTag.
    pub(super) fn start_transaction(
        &mut self,
        connector: u32,
        id_tag: &str,
        parent: Option<String>,
        reservation_id: Option<i32>,
        now: Duration,
    ) {
        // The connector shows Preparing first, wherever it was (Finishing → Charging, say, is
        // not a transition OCPP allows).
        if let Some(socket) = self.connectors.get_mut(connector as usize) {
            socket.replug(now);
        }
        self.connectors[connector as usize].stop_finishing();
        self.statuses_changed(now);
        let local_id = self.durable.next_number();
        let register = self.register(connector);
        let started = self.time.clock.at(now);
        let mut tx = Transaction {
            local_id,
            connector,
            id_tag: id_tag.to_owned(),
            parent_id_tag: parent,
            meter_start: register,
            started,
            invalidated_at_wh: None,
            last_register: register,
            last_sampled: None,
            stop_data: Vec::new(),
        };
        if let Some(value) = self.sample_of(
            keys::STOP_TXN_SAMPLED_DATA,
            connector,
            0,
            ReadingContext::TransactionBegin,
            now,
        ) {
            tx.stop_data.push(value.into());
        }
        self.durable.begin_transaction(tx);
        self.durable.queue(
            local_id,
            TransactionMessage::Start(StartTransactionRequest {
                connector_id: connector as i32,
                id_tag: IdToken::truncating(id_tag),
                meter_start: wh(register),
                reservation_id,
                timestamp: started,
            }),
        );
        let next_sample = self.sample_interval().map(|i| now + i);
        self.connectors[connector as usize].transaction_started(next_sample);
        self.transaction_changed(now);
    }

    /// A transaction started or stopped: durable, heard, sent, shown.
    fn transaction_changed(&mut self, now: Duration) {
        self.persist();
        self.beep(Beep::Accepted);
        self.pump_outbox(now);
        self.statuses_changed(now);
    }

    /// Stops the transaction on a connector, if any.
    pub(super) fn stop_transaction(
        &mut self,
        connector: u32,
        reason: StopReason,
        id_tag: Option<&str>,
        now: Duration,
    ) {
        let Some(mut tx) = self.durable.end_transaction(connector) else {
            return;
        };
        let register = self.register(connector).max(tx.last_register);
        if let Some(value) = self.sample_of(
            keys::STOP_TXN_SAMPLED_DATA,
            connector,
            register - tx.last_register,
            ReadingContext::TransactionEnd,
            now,
        ) {
            tx.stop_data.push(value.into());
        }
        self.durable.record_register(connector, register);
        let at = self.time.clock.at(now);
        self.enqueue_stop(tx, register, at, reason, id_tag);
        self.drop_tx_profiles(connector);
        let plugged = self.is_plugged(connector);
        self.connectors[connector as usize].transaction_ended(plugged);
        self.transaction_changed(now);
    }

    /// At start: transactions the durable state still holds were cut off by a power loss (or a
    /// crash). They stop now, with the last register recorded.
    pub(super) fn stop_interrupted(&mut self) {
        for connector in self.running_connectors() {
            let Some(tx) = self.durable.end_transaction(connector) else {
                continue;
            };
            let register = self
                .durable
                .recorded_register(connector)
                .unwrap_or(tx.last_register)
                .max(tx.last_register);
            self.drop_tx_profiles(connector);
            let at = tx.last_sampled.unwrap_or(tx.started);
            self.enqueue_stop(tx, register, at, StopReason::PowerLoss, None);
        }
    }

    /// A sample of a transaction, as a transaction message (its transactionId filled in when
    /// sent).
    fn enqueue_meter_value(&mut self, transaction: u64, connector: u32, value: MeterValue) {
        self.durable.queue(
            transaction,
            TransactionMessage::MeterValues(MeterValuesRequest {
                connector_id: connector as i32,
                transaction_id: None,
                meter_value: vec![value],
            }),
        );
    }

    fn enqueue_stop(
        &mut self,
        tx: Transaction,
        register: i64,
        at: Timestamp,
        reason: StopReason,
        id_tag: Option<&str>,
    ) {
        self.durable.queue(
            tx.local_id,
            TransactionMessage::Stop(StopTransactionRequest {
                id_tag: id_tag.map(IdToken::truncating),
                meter_stop: wh(register),
                timestamp: at,
                // Filled in when sent.
                transaction_id: 0,
                reason: Some(reason),
                transaction_data: (!tx.stop_data.is_empty()).then_some(tx.stop_data),
            }),
        );
    }

    pub(super) fn sample_interval(&self) -> Option<Duration> {
        let s = self.config.int(keys::METER_VALUE_SAMPLE_INTERVAL);
        (s > 0).then(|| Duration::from_secs(s as u64))
    }

    /// A MeterValue of the measurands a key lists, or `None` when it lists none or the
    /// connector's meter has not reported.
    pub(super) fn sample_of(
        &self,
        key: keys::Text,
        connector: u32,
        interval_wh: i64,
        context: ReadingContext,
        now: Duration,
    ) -> Option<MeterValue> {
        let list = self.config.text(key);
        let reading = self.connectors.get(connector as usize)?.reading()?;
        if list.is_empty() {
            return None;
        }
        Some(crate::meter::sample(
            list,
            reading,
            interval_wh,
            context,
            self.time.clock.at(now),
        ))
    }

    /// Periodic samples of the running transactions (MeterValueSampleInterval).
    pub(super) fn sample_transactions(&mut self, now: Duration) {
        let due: Vec<u32> = (1..self.connectors.len() as u32)
            .filter(|c| self.connectors[*c as usize].sample_due(now))
            .collect();
        if due.is_empty() {
            return;
        }
        for connector in due {
            let interval = self.sample_interval();
            self.connectors[connector as usize].schedule_sample(interval.map(|i| now + i));
            let Some(tx) = self.durable.transaction(connector) else {
                continue;
            };
            let (local_id, last) = (tx.local_id, tx.last_register);
            let register = self.register(connector);
            let delta = register - last;
            let stop_sample = self.sample_of(
                keys::STOP_TXN_SAMPLED_DATA,
                connector,
                delta,
                ReadingContext::SamplePeriodic,
                now,
            );
            let sample = self.sample_of(
                keys::METER_VALUES_SAMPLED_DATA,
                connector,
                delta,
                ReadingContext::SamplePeriodic,
                now,
            );
            let at = self.time.clock.at(now);
            self.durable
                .record_sample(connector, register, at, stop_sample.map(Into::into));
            if let Some(value) = sample {
                self.enqueue_meter_value(local_id, connector, value);
            }
        }
        self.persist();
        self.pump_outbox(now);
    }

    /// When the next clock-aligned sample is due (ClockAlignedDataInterval, from midnight UTC).
    pub(super) fn next_aligned_after(&self, now: Duration) -> Option<Duration> {
        let interval = self.config.int(keys::CLOCK_ALIGNED_DATA_INTERVAL);
        if interval <= 0 {
            return None;
        }
        let ms = self.time.clock.at(now).millis();
        let period = interval * 1000;
        let into_day = ms.rem_euclid(86_400_000);
        let next = (into_day / period + 1) * period;
        let next = next.min(86_400_000);
        Some(now + Duration::from_millis((next - into_day) as u64))
    }

    /// Clock-aligned samples (MeterValuesAlignedData; StopTxnAlignedData for running
    /// transactions). Those of a transaction are transaction messages; the others are sent
    /// when connected and not kept.
    pub(super) fn sample_aligned(&mut self, now: Duration) {
        let mut changed = false;
        for connector in 1..self.connectors.len() as u32 {
            let Some(value) = self.sample_of(
                keys::METER_VALUES_ALIGNED_DATA,
                connector,
                0,
                ReadingContext::SampleClock,
                now,
            ) else {
                continue;
            };
            match self.durable.transaction(connector).map(|t| t.local_id) {
                Some(local_id) => {
                    let stop = self.sample_of(
                        keys::STOP_TXN_ALIGNED_DATA,
                        connector,
                        0,
                        ReadingContext::SampleClock,
                        now,
                    );
                    self.durable.add_stop_data(connector, stop.map(Into::into));
                    self.enqueue_meter_value(local_id, connector, value);
                    changed = true;
                }
                None if self.session.online() => {
                    self.call(
                        &MeterValuesRequest {
                            connector_id: connector as i32,
                            transaction_id: None,
                            meter_value: vec![value],
                        },
                        now,
                    );
                }
                None => {}
            }
        }
        if changed {
            self.persist();
            self.pump_outbox(now);
        }
    }

    /// Sends the oldest transaction message when the central can take it.
    pub(super) fn pump_outbox(&mut self, now: Duration) {
        // A retry that came due while the pile could not send is due now: it is no deadline any
        // more (the message goes as soon as the pile can send).
        if self.outbox.retry_at.is_some_and(|t| now >= t) {
            self.outbox.retry_at = None;
        }
        if self.reset.restarting()
            || !self.session.connected()
            || !self.is_accepted()
            || self.outbox.call.is_some()
            || self.outbox.retry_at.is_some()
        {
            return;
        }
        while let Some(front) = self.durable.outbox().front() {
            let id = self.durable.transaction_id(front.transaction);
            let message_id = front.message_id.clone();
            let ticket = match (&front.message, id) {
                (TransactionMessage::Start(r), _) => {
                    let r = r.clone();
                    self.link.rpc.call_with_id(&r, &message_id, now)
                }
                (TransactionMessage::MeterValues(r), Some(id)) => {
                    let mut r = r.clone();
                    r.transaction_id = Some(id);
                    self.link.rpc.call_with_id(&r, &message_id, now)
                }
                (TransactionMessage::Stop(r), Some(id)) => {
                    let mut r = r.clone();
                    r.transaction_id = id;
                    self.link.rpc.call_with_id(&r, &message_id, now)
                }
                (_, None) => {
                    // Its StartTransaction was never accepted by the central system (it kept
                    // answering errors): without a transactionId this cannot be sent.
                    self.link.outputs.push(Output::Log(format!(
                        "transaction message {message_id} dropped: its transaction has no transactionId"
                    )));
                    self.durable.dequeue();
                    self.persist();
                    continue;
                }
            };
            self.session.activity(now);
            self.outbox.call = Some(ticket);
            self.link.awaited.insert(ticket, Awaited::Outbox);
            return;
        }
    }

    /// The central answered (or did not answer) the message at the head of the outbox.
    pub(super) fn on_outbox_reply(
        &mut self,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        self.outbox.call = None;
        match outcome {
            Ok(Decoded { value, .. }) => {
                let Some(done) = self.durable.dequeue() else {
                    return;
                };
                match (done.message, value) {
                    (TransactionMessage::Start(_), Response::StartTransaction(r)) => {
                        self.durable
                            .record_transaction_id(done.transaction, r.transaction_id);
                        self.on_start_answer(done.transaction, r.id_tag_info, now);
                    }
                    (TransactionMessage::Stop(r), Response::StopTransaction(answer)) => {
                        self.durable.forget_transaction_id(done.transaction);
                        if let (Some(tag), Some(info)) = (r.id_tag, answer.id_tag_info) {
                            self.remember(tag.as_str(), info);
                        }
                    }
                    _ => {}
                }
                self.persist();
            }
            Err(CallFailure::CallError(_) | CallFailure::BadResponse(_)) => {
                // The central could not process it: again after TransactionMessageRetryInterval
                // times the failures so far, up to TransactionMessageAttempts.
                let attempts = self.config.int(keys::TRANSACTION_MESSAGE_ATTEMPTS).max(1) as u32;
                let retry = self
                    .config
                    .int(keys::TRANSACTION_MESSAGE_RETRY_INTERVAL)
                    .max(1) as u64;
                if let Some(front) = self.durable.count_failure() {
                    let failures = front.failures;
                    if failures >= attempts {
                        let dropped = format!(
                            "transaction message {} dropped after {failures} failures",
                            front.message_id
                        );
                        self.durable.dequeue();
                        self.link.outputs.push(Output::Log(dropped));
                    } else {
                        self.outbox.retry_at =
                            Some(now + Duration::from_secs(retry * u64::from(failures)));
                    }
                    self.persist();
                }
            }
            // No answer: the message stays first and goes again (same id) when the central can
            // take it. A lost connection is no failure to process it.
            Err(CallFailure::Timeout) => {
                self.outbox.retry_at = Some(
                    now + Duration::from_secs(
                        self.config
                            .int(keys::TRANSACTION_MESSAGE_RETRY_INTERVAL)
                            .max(1) as u64,
                    ),
                )
            }
            Err(CallFailure::Disconnected) => {}
        }
        self.pump_outbox(now);
    }

    /// The central's verdict on the idTag of a transaction it registered.
    fn on_start_answer(&mut self, local_id: u64, info: IdTagInfo, now: Duration) {
        let running = self
            .durable
            .transaction_numbered(local_id)
            .map(|t| (t.connector, t.id_tag.clone()));
        if let Some((_, tag)) = &running {
            self.remember(tag, info.clone());
        }
        let Some((connector, _)) = running else {
            return;
        };
        if info.status == AuthorizationStatus::Accepted {
            return;
        }
        if self.config.flag(keys::STOP_TRANSACTION_ON_INVALID_ID) {
            self.stop_transaction(connector, StopReason::DeAuthorized, None, now);
        } else {
            // Charging goes on up to MaxEnergyOnInvalidId more, then is suspended.
            let register = self.register(connector);
            self.durable.invalidate_transaction(connector, register);
            self.statuses_changed(now);
        }
    }
}
