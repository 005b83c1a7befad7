//! Replays the fuzz seeds (hand-made nasty inputs, `fuzz/seeds`) and, when present, the local
//! fuzzing corpus (`fuzz/corpus/decode`) through the decoder: no input may panic or break the
//! round-trip invariant.

use std::path::PathBuf;

#[test]
fn every_seed_and_corpus_input_decodes_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for dir in ["seeds", "corpus/decode", "artifacts/decode"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| ocpp::fuzzing::exercise_decoder(&data));
            assert!(outcome.is_ok(), "{} breaks the decoder", path.display());
            count += 1;
        }
    }
    assert!(count >= 50, "only {count} inputs found");
    println!("{count} inputs replayed");
}
