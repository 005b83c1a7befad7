//! Group commit: one task applies the writes of many connections in one database transaction,
//! and each writer learns its result only once that transaction is committed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{DeviationRow, LogRow, Millis, Repository, StoreError, WriteOp, WriteResult};
use crate::metrics::Metrics;

/// The most writes one database transaction takes.
const MAX_BATCH: usize = 2048;

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteResult, String>>,
}

/// Hands writes to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

impl Writer {
    pub fn start(repo: Arc<dyn Repository>, metrics: Arc<Metrics>) -> Writer {
        let (jobs, rx) = mpsc::channel(65_536);
        tokio::spawn(run(repo, rx, metrics));
        Writer { jobs }
    }

    /// Applies one write; returns once it is committed.
    pub async fn write(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(StoreError::Failed(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Writes waiting for the next transaction.
    pub fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

async fn run(repo: Arc<dyn Repository>, mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics.store_queue.set(rx.len() as i64);
        let ops: Vec<WriteOp> = batch.iter().map(|j| j.op.clone()).collect();
        let started = Instant::now();
        match repo.apply(&ops, now_ms()).await {
            Ok(results) => {
                metrics.observe_commit(started.elapsed(), ops.len());
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) if ops.len() > 1 => {
                // One bad write must not fail the others: each on its own.
                tracing::warn!(
                    "a batch of {} writes failed ({e}); applying them one by one",
                    ops.len()
                );
                for job in batch.drain(..) {
                    let started = Instant::now();
                    let result = repo.apply(std::slice::from_ref(&job.op), now_ms()).await;
                    metrics.observe_commit(started.elapsed(), 1);
                    let _ = job.reply.send(
                        result
                            .map(|mut r| r.pop().unwrap_or(WriteResult::Done))
                            .map_err(|e| e.to_string()),
                    );
                }
            }
            Err(e) => {
                tracing::error!("a write failed: {e}");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

enum LogEntry {
    Message(LogRow),
    Deviation(DeviationRow),
}

/// The raw message log and the deviations, written in batches (nothing waits for them).
#[derive(Clone)]
pub struct LogWriter {
    entries: mpsc::UnboundedSender<LogEntry>,
    seq: Arc<AtomicI64>,
}

impl LogWriter {
    pub async fn start(
        repo: Arc<dyn Repository>,
        metrics: Arc<Metrics>,
    ) -> Result<LogWriter, StoreError> {
        let seq = Arc::new(AtomicI64::new(repo.max_log_seq().await?));
        let (entries, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_log(repo, rx, metrics));
        Ok(LogWriter { entries, seq })
    }

    pub fn message(
        &self,
        pile: &str,
        direction: &'static str,
        action: Option<String>,
        message_id: Option<String>,
        frame: &str,
    ) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.entries.send(LogEntry::Message(LogRow {
            pile: pile.to_owned(),
            time: now_ms(),
            seq,
            direction,
            action,
            message_id,
            frame: frame.to_owned(),
        }));
    }

    pub fn deviation(&self, pile: &str, action: &str, kind: String, detail: String) {
        let _ = self.entries.send(LogEntry::Deviation(DeviationRow {
            pile: pile.to_owned(),
            time: now_ms(),
            action: action.to_owned(),
            kind,
            detail,
        }));
    }
}

async fn run_log(
    repo: Arc<dyn Repository>,
    mut rx: mpsc::UnboundedReceiver<LogEntry>,
    metrics: Arc<Metrics>,
) {
    let (mut messages, mut deviations) = (Vec::new(), Vec::new());
    while let Some(first) = rx.recv().await {
        let mut entry = Some(first);
        while let Some(e) = entry.take() {
            match e {
                LogEntry::Message(m) => messages.push(m),
                LogEntry::Deviation(d) => deviations.push(d),
            }
            if messages.len() + deviations.len() < 5000 {
                entry = rx.try_recv().ok();
            }
        }
        metrics.log_queue.set(rx.len() as i64);
        if let Err(e) = repo.append_log(&messages, &deviations).await {
            tracing::error!(
                "the message log lost {} rows: {e}",
                messages.len() + deviations.len()
            );
        }
        messages.clear();
        deviations.clear();
    }
}
