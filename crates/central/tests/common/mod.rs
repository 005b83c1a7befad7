//! What the central's in-process suites share: a fresh database of each kind (SQLite in the
//! target's temporary folder, PostgreSQL at `OCPILE_TEST_PG`, default the local server,
//! database `test`, in a schema of its own named `ocpile_SUITE_NAME_PID_NANOS`, which
//! scripts/test.sh drops once its process is gone), the NATS server at `OCPILE_TEST_NATS`, test
//! nodes ([`node`]), raw websocket piles ([`pile`]) and polling with a deadline ([`wait`]).

use std::path::PathBuf;
use std::sync::Arc;

use central::store::{open, Repository};

pub mod node;
pub mod pile;
pub mod pki;
pub mod wait;

/// The test PostgreSQL server (its database `test`).
pub fn pg_url() -> String {
    std::env::var("OCPILE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The test NATS server (JetStream on).
#[allow(dead_code)]
pub fn nats_url() -> String {
    std::env::var("OCPILE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The URL of a PostgreSQL schema of the test `name` of the suite `suite`, new (not created:
/// the first repository that opens it does).
pub fn database_url(suite: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("ocpile_{suite}_{name}_{}_{nanos}", std::process::id());
    format!("{}?schema={schema}", pg_url())
}

/// A new, empty folder `LABEL-PID` in the target's temporary folder.
pub fn fresh_dir(label: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn no_postgres(e: impl std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL at {} does not answer ({e}): start it, or set OCPILE_TEST_PG",
        pg_url()
    )
}

/// The repositories of the test `name` of the suite `suite`, each new and empty.
#[allow(dead_code)]
pub async fn repositories(suite: &str, name: &str) -> Vec<(&'static str, Arc<dyn Repository>)> {
    let dir = fresh_dir(&format!("{suite}-{name}"));
    let sqlite = open(&format!("sqlite://{}", dir.join("central.db").display()))
        .await
        .expect("SQLite opens");
    let pg = open(&database_url(suite, name))
        .await
        .unwrap_or_else(|e| no_postgres(e));
    vec![("sqlite", sqlite), ("postgres", pg)]
}

/// A new, empty PostgreSQL schema named for the test (the URL of the database in it), created
/// before any repository opens it.
#[allow(dead_code)]
pub async fn pg_schema(suite: &str, name: &str) -> String {
    let url = database_url(suite, name);
    let schema = url.rsplit_once("?schema=").unwrap().1;
    let pool = sqlx::PgPool::connect(&pg_url())
        .await
        .unwrap_or_else(|e| no_postgres(e));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    url
}

/// Two repositories on the same new PostgreSQL schema, opened at once: two nodes of one
/// central system.
#[allow(dead_code)]
pub async fn two_nodes(suite: &str, name: &str) -> (Arc<dyn Repository>, Arc<dyn Repository>) {
    let url = pg_schema(suite, name).await;
    let (a, b) = tokio::join!(open(&url), open(&url));
    (a.expect("node A opens"), b.expect("node B opens"))
}

/// The ids of the images whose bytes are not in the database yet.
#[allow(dead_code)]
pub async fn images_without_bytes(repo: &dyn Repository) -> Vec<i64> {
    repo.images_without_bytes()
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect()
}
