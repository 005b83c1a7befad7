//! Group commit: one task applies the writes of many connections in one database transaction,
//! and each writer learns its result only once that transaction is committed. The raw message
//! log and the deviations go into the same transactions: one writer, so that the database's
//! write lock is never contended (a contended SQLite writer sleeps in its busy handler) and a
//! batch costs one commit.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{DeviationRow, LogBatch, LogRow, Millis, Repository, StoreError, WriteOp, WriteResult};
use crate::metrics::Metrics;

/// The most writes one database transaction takes.
const MAX_BATCH: usize = 2048;
/// The most log rows one database transaction takes.
const MAX_LOG_BATCH: usize = 8192;

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
    /// Starts the group-commit task; returns the handles for writes and for the log.
    pub async fn start(
        repo: Arc<dyn Repository>,
        metrics: Arc<Metrics>,
    ) -> Result<(Writer, LogWriter), StoreError> {
        let seq = if repo.numbers_log() {
            None
        } else {
            Some(Arc::new(AtomicI64::new(repo.max_log_seq().await?)))
        };
        let (jobs, jobs_rx) = mpsc::channel(65_536);
        let (entries, log_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(repo, jobs_rx, log_rx, metrics));
        Ok((Writer { jobs }, LogWriter { entries, seq }))
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

/// What the task has gathered for its next transaction.
#[derive(Default)]
struct Pending {
    jobs: Vec<Job>,
    messages: Vec<LogRow>,
    deviations: Vec<DeviationRow>,
}

impl Pending {
    fn take_log(&mut self, entry: LogEntry) {
        match entry {
            LogEntry::Message(m) => self.messages.push(m),
            LogEntry::Deviation(d) => self.deviations.push(d),
        }
    }

    fn log_len(&self) -> usize {
        self.messages.len() + self.deviations.len()
    }
}

async fn run(
    repo: Arc<dyn Repository>,
    mut jobs: mpsc::Receiver<Job>,
    mut log: mpsc::UnboundedReceiver<LogEntry>,
    metrics: Arc<Metrics>,
) {
    let (mut jobs_open, mut log_open) = (true, true);
    let mut pending = Pending::default();
    while jobs_open || log_open {
        tokio::select! {
            job = jobs.recv(), if jobs_open => match job {
                Some(job) => pending.jobs.push(job),
                None => jobs_open = false,
            },
            entry = log.recv(), if log_open => match entry {
                Some(entry) => pending.take_log(entry),
                None => log_open = false,
            },
        }
        while pending.jobs.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => pending.jobs.push(job),
                Err(_) => break,
            }
        }
        while pending.log_len() < MAX_LOG_BATCH {
            match log.try_recv() {
                Ok(entry) => pending.take_log(entry),
                Err(_) => break,
            }
        }
        metrics.store_queue.set(jobs.len() as i64);
        metrics.log_queue.set(log.len() as i64);
        if !pending.jobs.is_empty() || pending.log_len() > 0 {
            commit(&*repo, &mut pending, &metrics).await;
        }
    }
}

/// Commits what is pending and answers its writers. When the transaction fails, the log goes
/// on its own and each write is retried alone, so that one bad write fails no other.
async fn commit(repo: &dyn Repository, pending: &mut Pending, metrics: &Metrics) {
    let ops: Vec<WriteOp> = pending.jobs.iter().map(|j| j.op.clone()).collect();
    let log = LogBatch {
        messages: &pending.messages,
        deviations: &pending.deviations,
    };
    let started = Instant::now();
    let combined = repo.apply_and_log(&ops, log, now_ms()).await;
    let failed = match combined {
        Ok(results) => {
            metrics.observe_commit(started.elapsed(), ops.len());
            for (job, result) in pending.jobs.drain(..).zip(results) {
                let _ = job.reply.send(Ok(result));
            }
            None
        }
        Err(e) => Some(e),
    };
    if let Some(e) = failed {
        tracing::warn!(
            "a batch of {} writes and {} log rows failed ({e}); retrying each on its own",
            ops.len(),
            log.len()
        );
        if !log.is_empty() {
            if let Err(e) = repo.apply_and_log(&[], log, now_ms()).await {
                tracing::error!("the message log lost {} rows: {e}", log.len());
            }
        }
        for job in pending.jobs.drain(..) {
            let started = Instant::now();
            let result = repo.apply(std::slice::from_ref(&job.op), now_ms()).await;
            metrics.observe_commit(started.elapsed(), 1);
            if let Err(e) = &result {
                tracing::error!("a write failed: {e}");
            }
            let _ = job.reply.send(
                result
                    .map(|mut r| r.pop().unwrap_or(WriteResult::Done))
                    .map_err(|e| e.to_string()),
            );
        }
    }
    pending.messages.clear();
    pending.deviations.clear();
}

enum LogEntry {
    Message(LogRow),
    Deviation(DeviationRow),
}

/// Hands rows of the raw message log and deviations to the group-commit task (nothing waits
/// for them); cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    entries: mpsc::UnboundedSender<LogEntry>,
    /// The last `seq` given, when the database does not number the log itself.
    seq: Option<Arc<AtomicI64>>,
}

impl LogWriter {
    pub fn message(
        &self,
        pile: &str,
        direction: &'static str,
        action: Option<String>,
        message_id: Option<String>,
        frame: &str,
    ) {
        let seq = self
            .seq
            .as_ref()
            .map_or(0, |seq| seq.fetch_add(1, Ordering::Relaxed) + 1);
        let _ = self.entries.send(LogEntry::Message(LogRow {
            pile: pile.to_owned(),
            time: now_ms(),
            seq,
            direction,
            action: action.map(storable),
            message_id: message_id.map(storable),
            frame: storable(frame),
        }));
    }

    pub fn deviation(&self, pile: &str, action: &str, kind: String, detail: String) {
        let _ = self.entries.send(LogEntry::Deviation(DeviationRow {
            pile: pile.to_owned(),
            time: now_ms(),
            action: storable(action),
            kind: storable(kind),
            detail: storable(detail),
        }));
    }
}

/// The text with its NUL characters replaced: PostgreSQL refuses them in text, and a pile may
/// send one in a frame (a websocket text frame allows it).
fn storable(text: impl AsRef<str> + Into<String>) -> String {
    if text.as_ref().contains('\0') {
        text.as_ref().replace('\0', "\u{FFFD}")
    } else {
        text.into()
    }
}
