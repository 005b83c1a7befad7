//! Durable state on disk, in two files:
//!
//! - `state.json`: everything but the outbox, replaced atomically (write, fsync, rename, fsync
//!   the directory), so a crash at any instant leaves either the old state or the new one;
//! - `outbox.log`: the transaction messages waiting for the central system, as an append-only
//!   journal (one JSON operation a line: a message queued, the first one answered, its failures
//!   counted), so that a week offline appends each message once instead of rewriting them all
//!   at every sample.
//!
//! `state.json` records how many journal lines belong to it, and the journal is always written
//! (and synced) before the state that counts its new lines: after a crash between the two, the
//! lines beyond that count are dropped along with the state they belonged to, of which nothing
//! had been sent. When the outbox is empty the journal starts over.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::Durable;
use pile_core::Queued;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("state file {0} is corrupt: {1}")]
    Corrupt(PathBuf, serde_json::Error),
    /// A store shared by many piles (the fleet's) failed.
    #[error("shared store: {0}")]
    Shared(String),
}

/// One line of the outbox journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// A message joins the end of the outbox.
    Push(Queued),
    /// The first message leaves it.
    Pop,
    /// The first message's failure count is now this.
    Failures(u32),
}

/// The state file: the state, and how many journal lines belong to it.
#[derive(Serialize)]
struct StateOut<'a> {
    journal_lines: u64,
    state: &'a Durable,
}

#[derive(Deserialize)]
struct StateIn {
    journal_lines: u64,
    state: Durable,
}

/// What [`PileStore::save`] returns: done when the state is durable.
pub type Saving<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Where a pile keeps its durable state: a state file and outbox journal of its own
/// ([`StateStore`]), or, for a fleet, one store shared by thousands of piles that commits many
/// piles' saves at once. A `save` must be durable when its future completes: the shell sends
/// nothing that follows a Persist before it does, and meanwhile other piles go on.
pub trait PileStore: Send {
    /// The state last saved, if any.
    fn load(&mut self) -> Result<Option<Durable>, StoreError>;
    /// Makes `state` durable.
    fn save<'a>(&'a mut self, state: &'a Durable) -> Saving<'a>;
}

impl PileStore for StateStore {
    fn load(&mut self) -> Result<Option<Durable>, StoreError> {
        StateStore::load(self)
    }
    fn save<'a>(&'a mut self, state: &'a Durable) -> Saving<'a> {
        let done = StateStore::save(self, state);
        Box::pin(std::future::ready(done))
    }
}

pub struct StateStore {
    dir: PathBuf,
    /// The outbox as the files hold it: message ids and failure counts.
    written: VecDeque<(String, u32)>,
    journal_lines: u64,
}

impl StateStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<StateStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io(dir.clone(), e))?;
        Ok(StateStore {
            dir,
            written: VecDeque::new(),
            journal_lines: 0,
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn journal(&self) -> PathBuf {
        self.dir.join("outbox.log")
    }

    fn io(&self) -> impl Fn(std::io::Error) -> StoreError + '_ {
        |e| StoreError::Io(self.dir.clone(), e)
    }

    /// The saved state, or `None` on a first start. The journal is compacted on the way.
    pub fn load(&mut self) -> Result<Option<Durable>, StoreError> {
        let path = self.path();
        let mut loaded: StateIn = match fs::read(&path) {
            // The file as it was before the journal: the state alone.
            Ok(bytes) => serde_json::from_slice(&bytes)
                .or_else(|_| {
                    serde_json::from_slice(&bytes).map(|state| StateIn {
                        journal_lines: 0,
                        state,
                    })
                })
                .map_err(|e| StoreError::Corrupt(path.clone(), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.written.clear();
                self.journal_lines = 0;
                return Ok(None);
            }
            Err(e) => return Err(StoreError::Io(path, e)),
        };
        let journal = match fs::read_to_string(self.journal()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StoreError::Io(self.journal(), e)),
        };
        let mut outbox: VecDeque<Queued> = VecDeque::new();
        for line in journal.lines().take(loaded.journal_lines as usize) {
            match serde_json::from_str::<Op>(line) {
                Ok(Op::Push(q)) => outbox.push_back(q),
                Ok(Op::Pop) => {
                    outbox.pop_front();
                }
                Ok(Op::Failures(n)) => {
                    if let Some(front) = outbox.front_mut() {
                        front.failures = n;
                    }
                }
                // A line the state counts is whole (it was synced before the state).
                Err(e) => return Err(StoreError::Corrupt(self.journal(), e)),
            }
        }
        loaded.state.restore_outbox(outbox);
        // Start the journal over with what is waiting.
        self.written.clear();
        self.journal_lines = 0;
        self.rewrite_journal(&loaded.state)?;
        self.write_state(&loaded.state)?;
        Ok(Some(loaded.state))
    }

    fn rewrite_journal(&mut self, state: &Durable) -> Result<(), StoreError> {
        let tmp = self.dir.join("outbox.log.tmp");
        let mut file = File::create(&tmp).map_err(self.io())?;
        for q in state.outbox() {
            writeln!(
                file,
                "{}",
                serde_json::to_string(&Op::Push(q.clone())).expect("op")
            )
            .map_err(self.io())?;
        }
        file.sync_all().map_err(self.io())?;
        fs::rename(&tmp, self.journal()).map_err(self.io())?;
        sync_dir(&self.dir).map_err(self.io())?;
        self.written = state
            .outbox()
            .iter()
            .map(|q| (q.message_id.clone(), q.failures))
            .collect();
        self.journal_lines = state.outbox().len() as u64;
        Ok(())
    }

    fn write_state(&self, state: &Durable) -> Result<(), StoreError> {
        let tmp = self.dir.join("state.json.tmp");
        let mut file = File::create(&tmp).map_err(self.io())?;
        let out = StateOut {
            state,
            journal_lines: self.journal_lines,
        };
        file.write_all(&serde_json::to_vec(&out).expect("state serializes"))
            .map_err(self.io())?;
        file.sync_all().map_err(self.io())?;
        fs::rename(&tmp, self.path()).map_err(self.io())?;
        sync_dir(&self.dir).map_err(self.io())
    }

    /// Makes `state` durable: the outbox's changes appended to the journal, then the rest.
    pub fn save(&mut self, state: &Durable) -> Result<(), StoreError> {
        if state.outbox().is_empty() && self.journal_lines > 0 {
            // Nothing waits: the state says so first, then the journal starts over.
            self.written.clear();
            self.journal_lines = 0;
            self.write_state(state)?;
            File::create(self.journal())
                .and_then(|f| f.sync_all())
                .map_err(self.io())?;
            return Ok(());
        }
        let mut ops: Vec<Op> = Vec::new();
        let mut written = self.written.clone();
        // The core only ever answers the first message and queues at the end.
        while written
            .front()
            .is_some_and(|(id, _)| state.outbox().front().is_none_or(|q| &q.message_id != id))
        {
            written.pop_front();
            ops.push(Op::Pop);
        }
        if let (Some((_, failures)), Some(front)) = (written.front_mut(), state.outbox().front()) {
            if *failures != front.failures {
                *failures = front.failures;
                ops.push(Op::Failures(front.failures));
            }
        }
        for q in state.outbox().iter().skip(written.len()) {
            written.push_back((q.message_id.clone(), q.failures));
            ops.push(Op::Push(q.clone()));
        }
        if !ops.is_empty() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.journal())
                .map_err(self.io())?;
            let mut text = String::new();
            for op in &ops {
                text.push_str(&serde_json::to_string(op).expect("op"));
                text.push('\n');
            }
            file.write_all(text.as_bytes()).map_err(self.io())?;
            file.sync_all().map_err(self.io())?;
            self.journal_lines += ops.len() as u64;
            self.written = written;
        }
        self.write_state(state)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
