//! Durable state on disk: one JSON file, replaced atomically (write, fsync, rename, fsync the
//! directory), so a crash at any instant leaves either the old state or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Durable;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("state file {0} is corrupt: {1}")]
    Corrupt(PathBuf, serde_json::Error),
}

pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<StateStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::Io(dir.clone(), e))?;
        Ok(StateStore { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state, or `None` on a first start.
    pub fn load(&self) -> Result<Option<Durable>, StoreError> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(path, e)),
        }
    }

    pub fn save(&self, state: &Durable) -> Result<(), StoreError> {
        let io = |e| StoreError::Io(self.dir.clone(), e);
        let tmp = self.dir.join("state.json.tmp");
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&serde_json::to_vec(state).expect("state serializes"))
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, self.path()).map_err(io)?;
        sync_dir(&self.dir).map_err(io)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
