//! One durable store for all the piles of a fleet: a redb database whose rows are numbered in
//! the order they are written, each a pile's state (without its outbox) or one message of a
//! pile's outbox. One thread commits every save waiting at that moment in one transaction
//! (group commit: one fsync for hundreds of piles); a pile's save completes when the
//! transaction holding it is committed.
//!
//! A save writes only what changed since the pile's last save: a new state row when the state
//! differs, a row for each message added, and it removes the rows these replace and those of
//! the messages answered. New rows go at the end of the table and the rows removed are mostly
//! recent ones, so a commit rewrites the few pages near its end, not one page per pile (a
//! table keyed by pile made every commit of a busy fleet rewrite nearly all of its pages).
//! The rows of each pile are found by one scan of the table when the store is opened.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use pile::store::{PileStore, Saving, StoreError};
use pile::{Durable, Queued};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Deserialize;
use tokio::sync::oneshot;

/// Row number → (pile, kind, JSON).
const ROWS: TableDefinition<u64, (&str, u8, &[u8])> = TableDefinition::new("fleet_rows");
/// A pile's state, without its outbox.
const STATE: u8 = 0;
/// One message of a pile's outbox; a pile's messages are in the order of their rows.
const MESSAGE: u8 = 1;
/// Rows of an earlier layout (state and outbox in one row per pile), read when a pile has no
/// rows in the table above and removed at its first save.
const LEGACY: TableDefinition<&str, &[u8]> = TableDefinition::new("piles");

const CACHE_BYTES: usize = 8 << 20;

/// The most saves one transaction takes.
const MAX_BATCH: usize = 8192;

#[derive(Deserialize)]
struct LegacyRow {
    state: Durable,
    outbox: VecDeque<Queued>,
}

/// One change a save makes.
enum Write {
    Put(u64, u8, Vec<u8>),
    Remove(u64),
    /// Removes the pile's row of the earlier layout.
    RemoveLegacy,
    /// Removes every row of the pile (after a failed commit, when what they hold is unknown).
    RemoveAll,
}

struct Job {
    pile: String,
    writes: Vec<Write>,
    /// Set when the transaction holding this save failed: the pile's next save rewrites all.
    failed: Arc<AtomicBool>,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the piles share: the database, the writer's queue, the row numbers.
struct Shared {
    db: Database,
    stats: CommitStats,
    next_row: AtomicU64,
    /// The rows each pile had when the store was opened, until the pile loads them.
    found: Mutex<HashMap<String, Vec<u64>>>,
}

/// The fleet's store. Cheap to share; the writer stops when the store and every pile's slot
/// are gone.
pub struct SharedStore {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
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
    /// Saves that found nothing changed and did not wait for a commit.
    pub unchanged: AtomicU64,
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
        tx.open_table(ROWS).map_err(shared)?;
        tx.open_table(LEGACY).map_err(shared)?;
        tx.commit().map_err(shared)?;
        let mut found: HashMap<String, Vec<u64>> = HashMap::new();
        let mut next_row = 0;
        {
            let tx = db.begin_read().map_err(shared)?;
            let rows = tx.open_table(ROWS).map_err(shared)?;
            for row in rows.iter().map_err(shared)? {
                let (n, value) = row.map_err(shared)?;
                let (pile, _, _) = value.value();
                found.entry(pile.to_owned()).or_default().push(n.value());
                next_row = n.value() + 1;
            }
        }
        let shared_part = Arc::new(Shared {
            db,
            stats: CommitStats::default(),
            next_row: AtomicU64::new(next_row),
            found: Mutex::new(found),
        });
        let (jobs, queue) = mpsc::channel::<Job>();
        let writer_part = shared_part.clone();
        let writer = std::thread::Builder::new()
            .name("fleet-store".into())
            .spawn(move || write_batches(&writer_part, &queue))
            .map_err(|e| StoreError::Io(path.to_owned(), e))?;
        Ok(Arc::new(SharedStore {
            shared: shared_part,
            jobs,
            writer: Some(writer),
        }))
    }

    /// The store of one pile: one slot per pile while the store is open (a pile's rows are
    /// found when the store is opened and handed to the first slot that loads them).
    pub fn pile(&self, id: &str) -> PileSlot {
        PileSlot {
            pile: id.to_owned(),
            shared: self.shared.clone(),
            jobs: self.jobs.clone(),
            written: None,
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn stats(&self) -> &CommitStats {
        &self.shared.stats
    }

    /// How many piles have a state (one scan of the store).
    pub fn piles(&self) -> Result<u64, StoreError> {
        let tx = self.shared.db.begin_read().map_err(shared)?;
        let mut piles = std::collections::HashSet::new();
        for row in tx
            .open_table(ROWS)
            .map_err(shared)?
            .iter()
            .map_err(shared)?
        {
            let (_, value) = row.map_err(shared)?;
            let (pile, kind, _) = value.value();
            if kind == STATE {
                piles.insert(pile.to_owned());
            }
        }
        for row in tx
            .open_table(LEGACY)
            .map_err(shared)?
            .iter()
            .map_err(shared)?
        {
            piles.insert(row.map_err(shared)?.0.value().to_owned());
        }
        Ok(piles.len() as u64)
    }
}

fn write_batches(shared: &Shared, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = commit(&shared.db, &batch).map_err(|e| e.to_string());
        let stats = &shared.stats;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.saves.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for job in batch {
            if result.is_err() {
                job.failed.store(true, Ordering::Release);
            }
            // The pile may have stopped meanwhile.
            let _ = job.done.send(result.clone());
        }
    }
}

fn commit(db: &Database, batch: &[Job]) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut rows = tx.open_table(ROWS)?;
        let mut legacy = tx.open_table(LEGACY)?;
        for job in batch {
            let pile = job.pile.as_str();
            for write in &job.writes {
                match write {
                    Write::Put(n, kind, json) => {
                        rows.insert(*n, (pile, *kind, json.as_slice()))?;
                    }
                    Write::Remove(n) => {
                        rows.remove(*n)?;
                    }
                    Write::RemoveLegacy => {
                        legacy.remove(pile)?;
                    }
                    Write::RemoveAll => {
                        rows.retain(|_, (p, _, _)| p != pile)?;
                        legacy.remove(pile)?;
                    }
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// What a pile's rows hold, as of its last save.
#[derive(Default)]
struct Written {
    /// The state row: its number and a digest of its JSON.
    state: Option<(u64, u64)>,
    /// The outbox rows: number, message id, failures.
    outbox: VecDeque<(u64, String, u32)>,
    /// Rows to remove at the next save (a state superseded, the earlier layout's row).
    stale: Vec<Write>,
}

/// One pile's part of the [`SharedStore`].
pub struct PileSlot {
    pile: String,
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    /// None before the pile loads, and after a failed commit: the next save rewrites all.
    written: Option<Written>,
    failed: Arc<AtomicBool>,
}

/// A 64-bit FNV-1a digest.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl PileSlot {
    fn next_row(&self) -> u64 {
        self.shared.next_row.fetch_add(1, Ordering::Relaxed)
    }

    /// Reads the pile's rows; what they hold.
    fn read(&self) -> Result<(Option<Durable>, Written), StoreError> {
        let bad = |e: serde_json::Error| shared(format!("pile {}: {e}", self.pile));
        let mut written = Written::default();
        let numbers = match &self.written {
            // Loaded before: its own rows.
            Some(w) => {
                let mut own: Vec<u64> = w.state.iter().map(|(n, _)| *n).collect();
                own.extend(w.outbox.iter().map(|(n, _, _)| *n));
                own.sort_unstable();
                written.stale.extend(w.stale.iter().filter_map(|s| match s {
                    Write::Remove(n) => Some(Write::Remove(*n)),
                    _ => None,
                }));
                own
            }
            None => self
                .shared
                .found
                .lock()
                .map_err(|_| shared("the store's index is poisoned"))?
                .remove(&self.pile)
                .unwrap_or_default(),
        };
        let tx = self.shared.db.begin_read().map_err(shared)?;
        let rows = tx.open_table(ROWS).map_err(shared)?;
        let mut state: Option<Durable> = None;
        let mut outbox = VecDeque::new();
        for n in numbers {
            let Some(row) = rows.get(n).map_err(shared)? else {
                continue;
            };
            let (_, kind, json) = row.value();
            if kind == STATE {
                // The last state row is the pile's (there is only one unless a save was cut).
                if let Some((old, _)) = written.state.replace((n, digest(json))) {
                    written.stale.push(Write::Remove(old));
                }
                state = Some(serde_json::from_slice(json).map_err(bad)?);
            } else {
                let q: Queued = serde_json::from_slice(json).map_err(bad)?;
                written
                    .outbox
                    .push_back((n, q.message_id.clone(), q.failures));
                outbox.push_back(q);
            }
        }
        if let Some(mut state) = state {
            state.restore_outbox(outbox);
            return Ok((Some(state), written));
        }
        let legacy = tx.open_table(LEGACY).map_err(shared)?;
        let Some(row) = legacy.get(self.pile.as_str()).map_err(shared)? else {
            return Ok((None, written));
        };
        let row: LegacyRow = serde_json::from_slice(row.value()).map_err(bad)?;
        let mut state = row.state;
        state.restore_outbox(row.outbox);
        written.stale.push(Write::RemoveLegacy);
        Ok((Some(state), written))
    }

    /// The writes that bring the pile's rows from what they hold to `state`.
    fn changes(&mut self, state: &Durable) -> Result<Vec<Write>, serde_json::Error> {
        if self.failed.swap(false, Ordering::Acquire) {
            self.written = None;
        }
        let json = serde_json::to_vec(state)?;
        let state_digest = digest(&json);
        let mut writes = Vec::new();
        let mut written = match self.written.take() {
            Some(w) => w,
            None => {
                writes.push(Write::RemoveAll);
                Written::default()
            }
        };
        writes.append(&mut written.stale);
        if written.state.is_none_or(|(_, d)| d != state_digest) {
            let n = self.next_row();
            writes.push(Write::Put(n, STATE, json));
            if let Some((old, _)) = written.state.replace((n, state_digest)) {
                writes.push(Write::Remove(old));
            }
        }
        // Answered: gone from the front of the outbox.
        let kept_from = state
            .outbox()
            .front()
            .and_then(|q| {
                written
                    .outbox
                    .iter()
                    .position(|(_, id, _)| id == &q.message_id)
            })
            .unwrap_or(written.outbox.len());
        for (n, _, _) in written.outbox.drain(..kept_from) {
            writes.push(Write::Remove(n));
        }
        // From the first row that differs (the front's failures, counted on each error
        // answer), the rows are written again, after the others.
        let stale = written
            .outbox
            .iter()
            .zip(state.outbox())
            .position(|((_, id, failures), q)| id != &q.message_id || *failures != q.failures);
        if let Some(from) = stale {
            for (n, _, _) in written.outbox.drain(from..) {
                writes.push(Write::Remove(n));
            }
        }
        for q in state.outbox().iter().skip(written.outbox.len()) {
            let n = self.next_row();
            writes.push(Write::Put(n, MESSAGE, serde_json::to_vec(q)?));
            written
                .outbox
                .push_back((n, q.message_id.clone(), q.failures));
        }
        self.written = Some(written);
        Ok(writes)
    }
}

impl PileStore for PileSlot {
    fn load(&mut self) -> Result<Option<Durable>, StoreError> {
        let (state, written) = self.read()?;
        self.written = Some(written);
        Ok(state)
    }

    fn save<'a>(&'a mut self, state: &'a Durable) -> Saving<'a> {
        let writes = match self.changes(state) {
            Ok(writes) => writes,
            Err(e) => {
                self.written = None;
                return Box::pin(std::future::ready(Err(shared(e))));
            }
        };
        if writes.is_empty() {
            // Nothing to write; what the rows hold was committed before this save began
            // (each save is awaited before the next).
            self.shared.stats.unchanged.fetch_add(1, Ordering::Relaxed);
            return Box::pin(std::future::ready(Ok(())));
        }
        let (done, committed) = oneshot::channel();
        let sent = self.jobs.send(Job {
            pile: self.pile.clone(),
            writes,
            failed: self.failed.clone(),
            done,
        });
        Box::pin(async move {
            sent.map_err(|_| shared("the store's writer stopped"))?;
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
        let mut d = Durable::default();
        for _ in 0..boots {
            d.count_boot();
        }
        for _ in 0..outbox {
            d.queue(1, meter_values());
        }
        d
    }

    fn meter_values() -> pile::TransactionMessage {
        pile::TransactionMessage::MeterValues(ocpp::MeterValuesRequest {
            connector_id: 1,
            transaction_id: None,
            meter_value: vec![],
        })
    }

    fn queued(id: &str, failures: u32) -> Queued {
        Queued {
            message_id: id.into(),
            transaction: 1,
            message: meter_values(),
            failures,
        }
    }

    /// A message at the end of the outbox, and nothing else of the state changed.
    fn push(d: &mut Durable, q: Queued) {
        let mut outbox = d.outbox().clone();
        outbox.push_back(q);
        d.restore_outbox(outbox);
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
            // Loaded twice, as the fleet and then the pile's shell do.
            let mut slot = store.pile(&format!("P{i}"));
            let first = slot.load().unwrap().unwrap();
            assert_eq!(first, state(i, (i % 3) as usize));
            assert_eq!(slot.load().unwrap().unwrap(), first);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ocpile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_save_writes_only_what_changed_and_the_outbox_reads_back_in_order() {
        let dir = temp("fleet-store-diff");
        let store = SharedStore::open(&dir.join("fleet.redb")).unwrap();
        let mut slot = store.pile("P1");
        assert_eq!(slot.load().unwrap(), None);
        let mut d = state(1, 0);
        let kinds = |w: &[Write]| -> Vec<&'static str> {
            w.iter()
                .map(|w| match w {
                    Write::Put(_, STATE, _) => "state",
                    Write::Put(..) => "put",
                    Write::Remove(_) => "remove",
                    Write::RemoveLegacy => "legacy",
                    Write::RemoveAll => "all",
                })
                .collect()
        };
        assert_eq!(kinds(&slot.changes(&d).unwrap()), ["state"]);
        for n in 0..50 {
            push(&mut d, queued(&format!("m{n}"), 0));
            // One message queued behind 49 others: one row written.
            assert_eq!(kinds(&slot.changes(&d).unwrap()), ["put"], "{n}");
        }
        d.dequeue();
        d.dequeue();
        assert_eq!(kinds(&slot.changes(&d).unwrap()), ["remove", "remove"]);
        d.count_failure();
        d.count_failure();
        // The front's failures: that row and those after it written again, in order.
        assert_eq!(slot.changes(&d).unwrap().len(), 48 * 2);
        d.count_boot();
        // A new state row, the old one removed.
        assert_eq!(kinds(&slot.changes(&d).unwrap()), ["state", "remove"]);
        assert!(slot.changes(&d).unwrap().is_empty());

        // Saved for real, step by step, and read back.
        drop(slot);
        let mut slot = store.pile("P2");
        slot.load().unwrap();
        let mut d = state(1, 0);
        for n in 0..20 {
            push(&mut d, queued(&format!("x{n}"), 0));
            slot.save(&d).await.unwrap();
            if n % 3 == 0 {
                d.dequeue();
                slot.save(&d).await.unwrap();
            }
        }
        d.count_failure();
        slot.save(&d).await.unwrap();
        let commits = store.stats().commits.load(Ordering::Relaxed);
        slot.save(&d).await.unwrap();
        assert_eq!(store.stats().commits.load(Ordering::Relaxed), commits);
        assert_eq!(store.stats().unchanged.load(Ordering::Relaxed), 1);
        // A commit that failed: the next save writes everything again.
        slot.failed.store(true, Ordering::Release);
        assert_eq!(kinds(&slot.changes(&d).unwrap())[..2], ["all", "state"]);
        drop(slot);
        drop(store);
        let store = SharedStore::open(&dir.join("fleet.redb")).unwrap();
        assert_eq!(store.pile("P2").load().unwrap().unwrap(), d);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_row_of_the_earlier_layout_is_read_and_replaced_at_the_first_save() {
        let dir = temp("fleet-store-legacy");
        let path = dir.join("fleet.redb");
        let old = {
            let mut d = state(3, 0);
            push(&mut d, queued("old-1", 1));
            push(&mut d, queued("old-2", 0));
            d
        };
        {
            std::fs::create_dir_all(&dir).unwrap();
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(LEGACY).unwrap();
                let row = serde_json::json!({"state": &old, "outbox": old.outbox()});
                t.insert("L1", row.to_string().as_bytes()).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = SharedStore::open(&path).unwrap();
        assert_eq!(store.piles().unwrap(), 1);
        let mut slot = store.pile("L1");
        let mut d = slot.load().unwrap().unwrap();
        assert_eq!(d, old);
        d.dequeue();
        slot.save(&d).await.unwrap();
        // Loaded again (as the pile does at its start): its own rows.
        assert_eq!(slot.load().unwrap().unwrap(), d);
        drop(slot);
        assert_eq!(store.piles().unwrap(), 1);
        drop(store);
        let store = SharedStore::open(&path).unwrap();
        assert_eq!(store.pile("L1").load().unwrap().unwrap(), d);
        let tx = store.shared.db.begin_read().unwrap();
        let legacy = tx.open_table(LEGACY).unwrap();
        assert!(legacy.get("L1").unwrap().is_none(), "replaced");
        drop((legacy, tx));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
