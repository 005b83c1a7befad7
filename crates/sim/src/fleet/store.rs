//! One durable store for all the piles of a fleet: a redb database with one row per pile (its
//! state and its outbox together, so that a save is atomic), written by one thread that
//! commits every save waiting at that moment in one transaction (group commit: one fsync for
//! hundreds of piles). A pile's save completes when the transaction holding it is committed.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use pile::store::{PileStore, Saving, StoreError};
use pile::{Durable, Queued};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

const PILES: TableDefinition<&str, &[u8]> = TableDefinition::new("piles");

const CACHE_BYTES: usize = 8 << 20;

/// The most saves one transaction takes.
const MAX_BATCH: usize = 8192;

/// A pile's row: the state, and the outbox (which the state leaves out when serialized).
#[derive(Serialize)]
struct RowOut<'a> {
    state: &'a Durable,
    outbox: &'a VecDeque<Queued>,
}

#[derive(Deserialize)]
struct RowIn {
    state: Durable,
    outbox: VecDeque<Queued>,
}

struct Job {
    key: String,
    row: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The fleet's store. Cheap to share; the writer stops when the store and every pile's slot
/// are gone.
pub struct SharedStore {
    db: Arc<Database>,
    jobs: mpsc::Sender<Job>,
    stats: Arc<CommitStats>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SharedStore {
    /// Waits for the writer to commit what is queued and let go of the file (once every
    /// pile's slot is gone too), so that the store can be opened again at once.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// How the group commit went so far.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub commits: AtomicU64,
    pub saves: AtomicU64,
}

fn shared(e: impl std::fmt::Display) -> StoreError {
    StoreError::Shared(e.to_string())
}

impl SharedStore {
    /// Opens (or creates) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<Arc<SharedStore>, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.to_owned(), e))?;
        }
        // The piles read their rows once, at their start: a small page cache will do (redb's
        // default grows to a gigabyte).
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(shared)?;
        let tx = db.begin_write().map_err(shared)?;
        tx.open_table(PILES).map_err(shared)?;
        tx.commit().map_err(shared)?;
        let db = Arc::new(db);
        let (jobs, queue) = mpsc::channel::<Job>();
        let stats = Arc::new(CommitStats::default());
        let writer_db = db.clone();
        let writer_stats = stats.clone();
        let writer = std::thread::Builder::new()
            .name("fleet-store".into())
            .spawn(move || write_batches(&writer_db, &queue, &writer_stats))
            .map_err(|e| StoreError::Io(path.to_owned(), e))?;
        Ok(Arc::new(SharedStore {
            db,
            jobs,
            stats,
            writer: Some(writer),
        }))
    }

    /// The store of one pile.
    pub fn pile(&self, id: &str) -> PileSlot {
        PileSlot {
            key: id.to_owned(),
            db: self.db.clone(),
            jobs: self.jobs.clone(),
        }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// How many piles have a row.
    pub fn piles(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_read().map_err(shared)?;
        tx.open_table(PILES).map_err(shared)?.len().map_err(shared)
    }
}

fn write_batches(db: &Database, queue: &mpsc::Receiver<Job>, stats: &CommitStats) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = commit(db, &batch).map_err(|e| e.to_string());
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.saves.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for job in batch {
            // The pile may have stopped meanwhile.
            let _ = job.done.send(result.clone());
        }
    }
}

fn commit(db: &Database, batch: &[Job]) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(PILES)?;
        for job in batch {
            table.insert(job.key.as_str(), job.row.as_slice())?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// One pile's part of the [`SharedStore`].
pub struct PileSlot {
    key: String,
    db: Arc<Database>,
    jobs: mpsc::Sender<Job>,
}

impl PileStore for PileSlot {
    fn load(&mut self) -> Result<Option<Durable>, StoreError> {
        let tx = self.db.begin_read().map_err(shared)?;
        let table = tx.open_table(PILES).map_err(shared)?;
        let Some(row) = table.get(self.key.as_str()).map_err(shared)? else {
            return Ok(None);
        };
        let row: RowIn = serde_json::from_slice(row.value())
            .map_err(|e| shared(format!("pile {}: {e}", self.key)))?;
        let mut state = row.state;
        state.outbox = row.outbox;
        Ok(Some(state))
    }

    fn save<'a>(&'a mut self, state: &'a Durable) -> Saving<'a> {
        let row = serde_json::to_vec(&RowOut {
            state,
            outbox: &state.outbox,
        });
        let (done, committed) = oneshot::channel();
        let sent = row.map_err(shared).and_then(|row| {
            self.jobs
                .send(Job {
                    key: self.key.clone(),
                    row,
                    done,
                })
                .map_err(|_| shared("the store's writer stopped"))
        });
        Box::pin(async move {
            sent?;
            committed
                .await
                .map_err(|_| shared("the store's writer stopped"))?
                .map_err(shared)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(boots: u64, outbox: usize) -> Durable {
        let mut d = Durable {
            boots,
            ..Durable::default()
        };
        for n in 0..outbox {
            d.outbox.push_back(Queued {
                message_id: format!("tx-{boots}-{n}"),
                transaction: 1,
                message: pile::TransactionMessage::MeterValues(ocpp::MeterValuesRequest {
                    connector_id: 1,
                    transaction_id: None,
                    meter_value: vec![],
                }),
                failures: 0,
            });
        }
        d
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_piles_save_at_once_in_few_commits_and_read_back_their_own() {
        let dir = std::env::temp_dir().join(format!("ocpile-fleet-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SharedStore::open(&dir.join("fleet.redb")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500u64 {
            let mut slot = store.pile(&format!("P{i}"));
            tasks.push(tokio::spawn(async move {
                assert_eq!(slot.load().unwrap(), None);
                slot.save(&state(i, (i % 3) as usize)).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let commits = store.stats().commits.load(Ordering::Relaxed);
        assert_eq!(store.stats().saves.load(Ordering::Relaxed), 500);
        assert!(commits < 500, "saves grouped: {commits} commits");
        assert_eq!(store.piles().unwrap(), 500);
        drop(store);
        // Reopened: every pile finds its own state and outbox.
        let store = SharedStore::open(&dir.join("fleet.redb")).unwrap();
        for i in [0u64, 1, 2, 499] {
            let loaded = store.pile(&format!("P{i}")).load().unwrap().unwrap();
            assert_eq!(loaded, state(i, (i % 3) as usize));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
