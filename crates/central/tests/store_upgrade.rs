//! A database an older version left (migrated up to 0003, with rows) opens with this one: the
//! unique index on a start's content holds over its transactions, and new ids and log rows go
//! past the ones it holds, its meter values read as they were (new ones are packed), its piles
//! with a password are at Security Profile 1, on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};

use central::store::*;

mod common;

/// The migrations of the older version: the first three.
fn older_migrations(dir: &Path) -> PathBuf {
    let older = dir.join("older-migrations");
    std::fs::create_dir_all(&older).unwrap();
    for name in ["0001_initial.sql", "0002_firmware.sql", "0003_fleet.sql"] {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name);
        std::fs::copy(from, older.join(name)).unwrap();
    }
    older
}

/// What the older version wrote: two transactions of one pile (one stopped), two reconciled
/// ones (no start), commands, an image, a campaign and message log rows.
const OLDER_ROWS: &[&str] = &[
    "INSERT INTO piles (id, registration, created_at) VALUES ('CP1', 'Accepted', 1)",
    "INSERT INTO piles (id, password_hash, registration, created_at) \
     VALUES ('CP2', 'hash', 'Accepted', 1)",
    "INSERT INTO transactions (id, pile, connector, id_tag, start_time, meter_start, reconciled) \
     VALUES (3, 'CP1', 1, 'CARD1', 1000, 5, 0)",
    "INSERT INTO transactions (id, pile, connector, id_tag, start_time, meter_start, stop_time, \
     meter_stop, reconciled) VALUES (4, 'CP1', 1, 'CARD1', 2000, 5, 3000, 9, 0)",
    "INSERT INTO transactions (id, pile, id_tag, stop_time, meter_stop, reconciled) \
     VALUES (40, 'CP1', 'CARD1', 4000, 9, 1)",
    "INSERT INTO transactions (id, pile, id_tag, stop_time, meter_stop, reconciled) \
     VALUES (41, 'CP1', 'CARD1', 4000, 9, 1)",
    "INSERT INTO commands (id, pile, action, payload, sent_at) VALUES (7, 'CP1', 'Reset', '{}', 1)",
    "INSERT INTO firmware_images (id, name, target, size, sha256, created_at) \
     VALUES (2, 'fw.bin', 'bin', 3, 'ab', 1)",
    "INSERT INTO campaigns (id, created_at, spec, state) VALUES (5, 1, '{}', 'running')",
    "INSERT INTO message_log (pile, time, seq, direction, frame) VALUES ('CP1', 1, 90, 'in', '[]')",
    "INSERT INTO meter_values (pile, connector, transaction_id, time, digest, sampled) \
     VALUES ('CP1', 1, 3, 1500, 7, '[{\"value\":\"12\",\"measurand\":\"Current.Import\",\"unit\":\"A\"}]')",
];

async fn older_database(kind: &str, dir: &Path) -> String {
    let older = sqlx::migrate::Migrator::new(older_migrations(dir))
        .await
        .unwrap();
    match kind {
        "sqlite" => {
            let path = dir.join("central.db");
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            older.run(&pool).await.unwrap();
            for statement in OLDER_ROWS {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
            format!("sqlite://{}", path.display())
        }
        _ => {
            let url = common::pg_schema("upgrade", "older").await;
            let (base, schema) = url.split_once("?schema=").unwrap();
            let options: sqlx::postgres::PgConnectOptions = base.parse().unwrap();
            let pool = sqlx::PgPool::connect_with(options.options([("search_path", schema)]))
                .await
                .unwrap();
            older.run(&pool).await.unwrap();
            for statement in OLDER_ROWS {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
            url
        }
    }
}

#[tokio::test]
async fn a_database_an_older_version_left_opens_and_numbers_on() {
    for kind in ["sqlite", "postgres"] {
        let dir = common::fresh_dir(&format!("store-upgrade-{kind}"));
        let url = older_database(kind, &dir).await;
        let repo = open(&url).await.expect("the older database migrates");
        // Opened again: nothing left to apply, nothing refused.
        let repo_again = open(&url).await.expect("opens again");
        drop(repo_again);
        // A pile with a password had to connect with it: Security Profile 1; the others 0.
        let profiles = |p: Option<PileRow>| {
            let p = p.unwrap();
            (p.security_profile, p.connected_profile)
        };
        assert_eq!(profiles(repo.pile("CP1").await.unwrap()), (0, 0), "{kind}");
        assert_eq!(profiles(repo.pile("CP2").await.unwrap()), (1, 0), "{kind}");

        let apply = |op: WriteOp| {
            let repo = repo.clone();
            async move { repo.apply(&[op], 1).await.unwrap().pop().unwrap() }
        };
        // The older running transaction started again: the same one.
        let start = |time: i64| WriteOp::StartTransaction {
            pile: "CP1".into(),
            connector: 1,
            id_tag: "CARD1".into(),
            meter_start: 5,
            reservation_id: None,
            time,
        };
        let WriteResult::Started { transaction_id, .. } = apply(start(1000)).await else {
            panic!("{kind}: not started")
        };
        assert_eq!(transaction_id, 3, "{kind}");
        let WriteResult::Started { transaction_id, .. } = apply(start(5000)).await else {
            panic!("{kind}: not started")
        };
        assert!(transaction_id > 41, "{kind}: {transaction_id}");
        let command = apply(WriteOp::CommandSent {
            pile: "CP1".into(),
            action: "Reset".into(),
            payload: "{}".into(),
        })
        .await;
        assert_eq!(command, WriteResult::Command(8), "{kind}");
        let campaign = repo.create_campaign("{}", &[], 0).await.unwrap();
        assert_eq!(campaign, CampaignCreated::Id(6), "{kind}");
        let image = repo.image(2).await.unwrap().unwrap();
        assert_eq!(repo.put_image(&image, b"abc").await.unwrap(), 3, "{kind}");
        // The older image has no bytes yet (the central imports them at start).
        let without = common::images_without_bytes(repo.as_ref()).await;
        assert_eq!(without, [2], "{kind}");
        repo.append_log(
            &[LogRow {
                pile: "CP1".into(),
                time: 2,
                seq: 91,
                direction: "out",
                action: None,
                message_id: None,
                frame: "[]".into(),
            }],
            &[],
        )
        .await
        .unwrap();
        // The older meter value reads as it was written (JSON); a new one is kept packed and
        // reads back as the JSON it was given.
        let new_sample = r#"[{"value":"13","context":"Sample.Periodic","measurand":"Current.Import","unit":"A"}]"#;
        apply(WriteOp::MeterValues {
            pile: "CP1".into(),
            connector: 1,
            transaction_id: Some(3),
            samples: vec![MeterSample {
                time: 1600,
                sampled: new_sample.into(),
            }],
        })
        .await;
        let meter = repo.meter_values(3).await.unwrap();
        assert_eq!(
            meter
                .iter()
                .map(|m| (m.time, m.sampled.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    1500,
                    r#"[{"value":"12","measurand":"Current.Import","unit":"A"}]"#
                ),
                (1600, new_sample)
            ],
            "{kind}"
        );
        // The log of the older version reads after the new one's blocks.
        let log = repo.messages("CP1", None, 10).await.unwrap();
        assert_eq!(
            log.iter()
                .map(|m| (m.time, m.direction))
                .collect::<Vec<_>>(),
            [(2, "out"), (1, "in")],
            "{kind}"
        );
        assert_eq!(log[1].seq, 90, "{kind}");
        assert_eq!(
            repo.messages("CP1", None, 1).await.unwrap().len(),
            1,
            "{kind}"
        );
        assert_eq!(
            repo.prune_log(3).await.unwrap(),
            2,
            "{kind}: both logs pruned"
        );
        assert!(
            repo.messages("CP1", None, 10).await.unwrap().is_empty(),
            "{kind}"
        );
    }
}
