//! Shared helpers for the ocpp crate's tests.

use std::path::PathBuf;

/// `../shared/ocpp16` beside the repository, or `$OCPP16_DIR`.
pub fn ocpp16_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OCPP16_DIR") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16");
    assert!(
        dir.is_dir(),
        "the OCPP 1.6 schemas are expected at {} (or set OCPP16_DIR)",
        dir.display()
    );
    dir
}
