//! Nothing node-local: a central's firmware images and its API token live in its database
//! (SQLite or PostgreSQL), and what an older version kept in the data directory is carried
//! over at the first start.

use std::path::PathBuf;

use central::store::{open, ImageRow};

mod common;

fn data_dir(name: &str) -> PathBuf {
    common::fresh_dir(&format!("node-local-{name}"))
}

fn options(dir: &std::path::Path, db: Option<String>) -> central::Options {
    let mut options = central::Options::new(dir);
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.db = db;
    options
}

/// The databases a test runs on: SQLite in the data directory, and a new PostgreSQL schema.
async fn databases(name: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("sqlite", None),
        (
            "postgres",
            Some(common::pg_schema("node_local", name).await),
        ),
    ]
}

fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An image of a few MiB that is no repetition of one chunk.
fn image_bytes(len: usize) -> Vec<u8> {
    let mut x: u32 = 2_463_534_242;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_uploaded_through_the_api_downloads_byte_identical() {
    for (kind, db) in databases("upload").await {
        let dir = data_dir(&format!("upload-{kind}"));
        let mut options = options(&dir, db);
        options.api_token = Some("T".into());
        let running = central::server::start(options).await.unwrap();
        let base = format!("http://{}", running.local_addr);
        let client = reqwest::Client::new();
        let bytes = image_bytes(3 * 1024 * 1024 + 12_345);
        let answer = client
            .post(format!("{base}/api/firmware?name=fw.V1.070"))
            .bearer_auth("T")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{kind}");
        let image: serde_json::Value =
            serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        assert_eq!(image["size"], bytes.len(), "{kind}");
        assert_eq!(image["sha256"], sha256(&bytes), "{kind}");
        let url = image["url"].as_str().unwrap();
        let download = client.get(url).send().await.unwrap();
        assert_eq!(download.status(), 200, "{kind}");
        assert_eq!(
            download.headers()["content-type"],
            "application/octet-stream",
            "{kind}"
        );
        assert_eq!(
            download.headers()["content-length"],
            bytes.len().to_string().as_str(),
            "{kind}"
        );
        let got = download.bytes().await.unwrap();
        assert!(got[..] == bytes[..], "{kind}: the bytes differ");
        // Nothing in the data directory: the database holds it.
        assert!(!dir.join("firmware").exists(), "{kind}");
        // Another name under its id is missing.
        let other = client
            .get(format!("{base}/firmware/{}/other.bin", image["id"]))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_an_older_data_directory_holds_are_imported_at_start() {
    for (kind, db) in databases("import").await {
        let dir = data_dir(&format!("import-{kind}"));
        let options = options(&dir, db);
        let kept = image_bytes(2 * 1024 * 1024 + 7);
        let altered = image_bytes(100);
        // What an older version left: the images' rows (migrated, without bytes) and files
        // named by their SHA-256; one of them altered on disk, one missing.
        let repo = open(&options.db_url()).await.unwrap();
        let row = |name: &str, bytes: &[u8]| ImageRow {
            id: 0,
            name: name.into(),
            target: "bin".into(),
            model: None,
            version: None,
            size: bytes.len() as i64,
            sha256: sha256(bytes),
            created_at: 1,
            signature: None,
            signing_certificate: None,
        };
        let kept_id = repo.put_image(&row("kept.bin", &kept), &[]).await.unwrap();
        let altered_id = repo
            .put_image(&row("altered.bin", &altered), &[])
            .await
            .unwrap();
        let missing_id = repo
            .put_image(&row("missing.bin", b"gone"), &[])
            .await
            .unwrap();
        drop(repo);
        std::fs::create_dir_all(dir.join("firmware")).unwrap();
        std::fs::write(dir.join("firmware").join(sha256(&kept)), &kept).unwrap();
        std::fs::write(dir.join("firmware").join(sha256(&altered)), b"not it").unwrap();

        let running = central::server::start(options.clone()).await.unwrap();
        let base = format!("http://{}", running.local_addr);
        let get = |path: String| {
            let url = format!("{base}{path}");
            async move { reqwest::get(url).await.unwrap() }
        };
        let download = get(format!("/firmware/{kept_id}/kept.bin")).await;
        assert_eq!(download.status(), 200, "{kind}");
        assert!(download.bytes().await.unwrap()[..] == kept[..], "{kind}");
        for (id, name) in [(altered_id, "altered.bin"), (missing_id, "missing.bin")] {
            assert_eq!(
                get(format!("/firmware/{id}/{name}")).await.status(),
                404,
                "{kind}: {name}"
            );
        }
        let repo = running.central.repo().clone();
        let left = common::images_without_bytes(repo.as_ref()).await;
        assert_eq!(left, [altered_id, missing_id], "{kind}");
        drop(running);
        // Once: the file is no longer needed.
        std::fs::remove_dir_all(dir.join("firmware")).unwrap();
        let running = central::server::start(options).await.unwrap();
        let base = format!("http://{}", running.local_addr);
        let again = reqwest::get(format!("{base}/firmware/{kept_id}/kept.bin"))
            .await
            .unwrap();
        assert!(again.bytes().await.unwrap()[..] == kept[..], "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_is_kept_in_the_database() {
    for (kind, db) in databases("token").await {
        // Generated at the first start, the same at the next.
        let dir = data_dir(&format!("token-{kind}"));
        let first = central::server::start(options(&dir, db.clone()))
            .await
            .unwrap();
        assert!(first.token_generated, "{kind}");
        let token = first.central.api_token().to_owned();
        assert_eq!(
            first.central.repo().setting("api_token").await.unwrap(),
            Some(token.clone()),
            "{kind}"
        );
        assert!(!dir.join("api-token").exists(), "{kind}");
        drop(first);
        let second = central::server::start(options(&dir, db.clone()))
            .await
            .unwrap();
        assert!(!second.token_generated, "{kind}");
        assert_eq!(second.central.api_token(), token, "{kind}");
        let answer = reqwest::Client::new()
            .get(format!("http://{}/api/piles", second.local_addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{kind}");
        drop(second);
        // --api-token: used, and the stored one left as it is.
        let mut given = options(&dir, db);
        given.api_token = Some("GIVEN".into());
        let third = central::server::start(given).await.unwrap();
        assert_eq!(third.central.api_token(), "GIVEN", "{kind}");
        assert_eq!(
            third.central.repo().setting("api_token").await.unwrap(),
            Some(token),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_token_file_is_carried_over() {
    for (kind, db) in databases("token_file").await {
        let dir = data_dir(&format!("token-file-{kind}"));
        std::fs::write(dir.join("api-token"), "older-token\n").unwrap();
        let running = central::server::start(options(&dir, db)).await.unwrap();
        assert!(!running.token_generated, "{kind}");
        assert_eq!(running.central.api_token(), "older-token", "{kind}");
        assert_eq!(
            running.central.repo().setting("api_token").await.unwrap(),
            Some("older-token".into()),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_at_once_agree_on_the_token() {
    let db = Some(common::pg_schema("node_local", "token_race").await);
    let (dir_a, dir_b) = (data_dir("race-a"), data_dir("race-b"));
    let (a, b) = tokio::join!(
        central::server::start(options(&dir_a, db.clone())),
        central::server::start(options(&dir_b, db))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.central.api_token(), b.central.api_token());
    assert!(
        a.token_generated != b.token_generated,
        "the node that stored it prints it, the other does not"
    );
}
