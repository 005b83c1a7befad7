//! Group commit: one task applies the writes of many connections in one database transaction,
//! and each writer learns its result only once that transaction is committed. The raw message
//! log and the deviations go into the same transactions: one writer, so that the database's
//! write lock is never contended (a contended SQLite writer sleeps in its busy handler) and a
//! batch costs one commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{DeviationRow, LogBatch, LogRow, Millis, Repository, StoreError, WriteOp, WriteResult};
use crate::metrics::Metrics;

/// The most writes one database transaction takes.
const MAX_BATCH: usize = 2048;
/// The most log rows one database transaction takes.
const MAX_LOG_BATCH: usize = 8192;
/// How long log rows gather before they go into a transaction (with the writes of the moment,
/// or alone): one block of the log holds them all, and a block of many frames compresses many
/// times better than one of a few. A process killed loses at most this much of its log.
const LOG_GATHER: Duration = Duration::from_secs(1);

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteResult, String>>,
}

/// What the task receives: a write, or a flush, answered once everything sent before it (the
/// writes and the log rows) is committed. Flushes are rare and writes many: a write is not
/// boxed to make the two the same size.
#[allow(clippy::large_enum_variant)]
enum Request {
    Write(Box<Job>),
    Flush(oneshot::Sender<()>),
}

/// Hands writes to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Request>,
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
        let (jobs, jobs_rx) = mpsc::channel(65_536);
        let (entries, log_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(repo, jobs_rx, log_rx, metrics));
        Ok((Writer { jobs }, LogWriter { entries }))
    }

    /// Applies one write; returns once it is committed.
    pub async fn write(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Request::Write(Box::new(Job { op, reply })))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(StoreError::Failed(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Returns once every write and log row handed over before this call is committed (or has
    /// failed and been answered so): what a node that stops waits for.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(Request::Flush(done))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
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
    /// Flushes answered once this batch, and the log rows still queued, are committed.
    flushes: Vec<oneshot::Sender<()>>,
    /// When the oldest log row pending arrived.
    log_since: Option<tokio::time::Instant>,
    /// A row pending is shown at once (a CALL the central sent).
    log_now: bool,
}

impl Pending {
    fn take(&mut self, request: Request) {
        match request {
            Request::Write(job) => self.jobs.push(*job),
            Request::Flush(done) => self.flushes.push(done),
        }
    }

    fn take_log(&mut self, entry: LogEntry) {
        self.log_since.get_or_insert_with(tokio::time::Instant::now);
        match entry {
            LogEntry::Message(m, at_once) => {
                self.log_now |= at_once;
                self.messages.push(m);
            }
            LogEntry::Deviation(d) => self.deviations.push(d),
        }
    }

    fn log_len(&self) -> usize {
        self.messages.len() + self.deviations.len()
    }

    /// When the log rows pending are due in a transaction.
    fn log_due(&self) -> Option<tokio::time::Instant> {
        self.log_since.map(|since| since + LOG_GATHER)
    }

    /// Whether the log rows pending go into the next transaction: they have gathered long
    /// enough, are as many as one takes, or hold one to show at once (a deviation, a CALL the
    /// central sent: rare, and what an operator looks for right after a command).
    fn log_ready(&self) -> bool {
        self.log_len() >= MAX_LOG_BATCH
            || self.log_now
            || !self.deviations.is_empty()
            || self
                .log_due()
                .is_some_and(|due| due <= tokio::time::Instant::now())
    }
}

async fn run(
    repo: Arc<dyn Repository>,
    mut jobs: mpsc::Receiver<Request>,
    mut log: mpsc::UnboundedReceiver<LogEntry>,
    metrics: Arc<Metrics>,
) {
    let (mut jobs_open, mut log_open) = (true, true);
    let mut pending = Pending::default();
    while jobs_open || log_open {
        let log_due = pending.log_due();
        tokio::select! {
            request = jobs.recv(), if jobs_open => match request {
                Some(request) => pending.take(request),
                None => jobs_open = false,
            },
            entry = log.recv(), if log_open => match entry {
                Some(entry) => pending.take_log(entry),
                None => log_open = false,
            },
            () = tokio::time::sleep_until(log_due.unwrap_or_else(tokio::time::Instant::now)),
                if log_due.is_some() => {}
        }
        // A flush ends the batch: what was sent after it waits for the next one.
        while pending.jobs.len() < MAX_BATCH && pending.flushes.is_empty() {
            match jobs.try_recv() {
                Ok(request) => pending.take(request),
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
        let with_log = pending.log_ready() || !(jobs_open || log_open);
        if !pending.jobs.is_empty() || (with_log && pending.log_len() > 0) {
            commit(&*repo, &mut pending, with_log, &metrics).await;
        }
        if !pending.flushes.is_empty() {
            // The log rows handed over before the flush are in the channel by now: every one
            // of them is committed before the flush is answered.
            loop {
                while pending.log_len() < MAX_LOG_BATCH {
                    match log.try_recv() {
                        Ok(entry) => pending.take_log(entry),
                        Err(_) => break,
                    }
                }
                if pending.log_len() == 0 {
                    break;
                }
                commit(&*repo, &mut pending, true, &metrics).await;
            }
            for done in pending.flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

/// Commits the writes pending, and the log rows with them if `with_log`, and answers the
/// writers. When the transaction fails, the log goes on its own and each write is retried
/// alone, so that one bad write fails no other.
async fn commit(repo: &dyn Repository, pending: &mut Pending, with_log: bool, metrics: &Metrics) {
    let ops: Vec<WriteOp> = pending.jobs.iter().map(|j| j.op.clone()).collect();
    let log = if with_log {
        LogBatch {
            messages: &pending.messages,
            deviations: &pending.deviations,
        }
    } else {
        LogBatch::default()
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
    if with_log {
        pending.messages.clear();
        pending.deviations.clear();
        pending.log_since = None;
        pending.log_now = false;
    }
}

enum LogEntry {
    /// A frame, and whether it goes into the next transaction rather than gather.
    Message(LogRow, bool),
    Deviation(DeviationRow),
}

/// Hands rows of the raw message log and deviations to the group-commit task (nothing waits
/// for them); cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    entries: mpsc::UnboundedSender<LogEntry>,
}

impl LogWriter {
    /// A frame of the log; a CALL the central sends goes into the next transaction, the rest
    /// gather for up to a second.
    pub fn message(
        &self,
        pile: &str,
        direction: &'static str,
        action: Option<String>,
        message_id: Option<String>,
        frame: &str,
    ) {
        let at_once = direction == "out" && frame.trim_start().starts_with("[2");
        let row = LogRow {
            pile: pile.to_owned(),
            time: now_ms(),
            // Numbered as the store keeps it (its block and its place there).
            seq: 0,
            direction,
            action: action.map(storable),
            message_id: message_id.map(storable),
            frame: storable(frame),
        };
        let _ = self.entries.send(LogEntry::Message(row, at_once));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::metrics::Metrics;

    /// Log rows are handed over without waiting; a flush returns only once every one handed
    /// over before it is committed, however many batches they take.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_flush_returns_once_everything_handed_over_is_committed() {
        let dir = std::env::temp_dir().join(format!("central-flush-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("central.db").display());
        let repo = crate::store::open(&url).await.unwrap();
        let (writer, log) = super::Writer::start(repo.clone(), Arc::new(Metrics::default()))
            .await
            .unwrap();
        let rows = super::MAX_LOG_BATCH * 2 + 7;
        for i in 0..rows {
            log.message(
                "FLUSH-1",
                "in",
                Some("Heartbeat".into()),
                None,
                &format!("[{i}]"),
            );
        }
        writer.flush().await.unwrap();
        let stored = repo
            .messages("FLUSH-1", None, rows as i64 + 1)
            .await
            .unwrap();
        assert_eq!(stored.len(), rows);
        // Nothing queued: a flush returns at once.
        writer.flush().await.unwrap();

        // Without a flush and without writes, log rows are committed once they have gathered.
        log.message("FLUSH-2", "in", Some("Heartbeat".into()), None, "[1]");
        let started = std::time::Instant::now();
        while repo.messages("FLUSH-2", None, 10).await.unwrap().is_empty() {
            assert!(
                started.elapsed() < super::LOG_GATHER * 10,
                "a log row never committed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
