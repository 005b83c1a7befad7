//! A fresh repository of each kind for the store tests: SQLite in the target's temporary
//! folder, PostgreSQL at `OCPILE_TEST_PG` (default the local server, database `test`) in a
//! schema of its own, named `ocpile_SUITE_NAME_PID_NANOS` (scripts/test.sh drops those whose
//! process is gone).

use std::sync::Arc;

use central::store::{open, Repository};

fn pg_url() -> String {
    std::env::var("OCPILE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The repositories of the test `name` of the suite `suite`, each new and empty.
#[allow(dead_code)]
pub async fn repositories(suite: &str, name: &str) -> Vec<(&'static str, Arc<dyn Repository>)> {
    let pid = std::process::id();
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{suite}-{name}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = open(&format!("sqlite://{}", dir.join("central.db").display()))
        .await
        .expect("SQLite opens");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("ocpile_{suite}_{name}_{pid}_{nanos}");
    let pg = open(&format!("{}?schema={schema}", pg_url()))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} does not answer ({e}): start it, or set OCPILE_TEST_PG",
                pg_url()
            )
        });
    vec![("sqlite", sqlite), ("postgres", pg)]
}

/// A new, empty PostgreSQL schema named for the test (the URL of the database in it), created
/// before any repository opens it.
#[allow(dead_code)]
pub async fn pg_schema(suite: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("ocpile_{suite}_{name}_{}_{nanos}", std::process::id());
    let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} does not answer ({e}): start it, or set OCPILE_TEST_PG",
            pg_url()
        )
    });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    format!("{}?schema={schema}", pg_url())
}

/// Two repositories on the same new PostgreSQL schema, opened at once: two nodes of one
/// central system.
#[allow(dead_code)]
pub async fn two_nodes(suite: &str, name: &str) -> (Arc<dyn Repository>, Arc<dyn Repository>) {
    let url = pg_schema(suite, name).await;
    let (a, b) = tokio::join!(open(&url), open(&url));
    (a.expect("node A opens"), b.expect("node B opens"))
}
