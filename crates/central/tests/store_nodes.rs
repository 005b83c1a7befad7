//! Two nodes on one PostgreSQL database: two repositories on the same schema writing at once.
//! The same replay through both makes one transaction, ids never collide, and the message log
//! keeps each pile's order (SQLite has one writer: the other suites cover it).

use std::collections::HashSet;
use std::sync::Arc;

use central::store::*;

mod common;

const ROUNDS: i64 = 40;

async fn apply(repo: &Arc<dyn Repository>, op: WriteOp) -> WriteResult {
    repo.apply(&[op], 1_000).await.unwrap().pop().unwrap()
}

async fn pile_and_tag(repo: &Arc<dyn Repository>) {
    apply(
        repo,
        WriteOp::RegisterPile {
            id: "CP1".into(),
            password_hash: None,
            security_profile: 0,
        },
    )
    .await;
    apply(
        repo,
        WriteOp::PutIdTag(IdTagRow {
            id_tag: "CARD1".into(),
            status: "Accepted".into(),
            expiry_date: None,
            parent_id_tag: None,
        }),
    )
    .await;
}

fn start(connector: i64, time: i64) -> WriteOp {
    WriteOp::StartTransaction {
        pile: "CP1".into(),
        connector,
        id_tag: "CARD1".into(),
        meter_start: 100,
        reservation_id: None,
        time,
    }
}

fn stop(id: i64, meter: i64, time: i64) -> WriteOp {
    WriteOp::StopTransaction {
        pile: "CP1".into(),
        transaction_id: id,
        id_tag: Some("CARD1".into()),
        meter_stop: meter,
        time,
        reason: Some("Local".into()),
        // The same sample, whichever stop of this transaction carries it.
        data: vec![MeterSample {
            time: id,
            sampled: r#"[{"value":"1500","measurand":"Energy.Active.Import.Register"}]"#.into(),
        }],
    }
}

fn started(result: &WriteResult) -> i64 {
    match result {
        WriteResult::Started { transaction_id, .. } => *transaction_id,
        other => panic!("not started: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_start_through_two_nodes_at_once_is_one_transaction() {
    let (a, b) = common::two_nodes("nodes", "start").await;
    pile_and_tag(&a).await;
    for round in 0..ROUNDS {
        let time = 10_000 + round;
        // Each node's batch holds the start twice, as a replay within one batch would.
        let ops = [start(1, time), start(1, time)];
        let (ra, rb) = tokio::join!(a.apply(&ops, 1), b.apply(&ops, 1));
        let ids: Vec<i64> = ra
            .unwrap()
            .iter()
            .chain(&rb.unwrap())
            .map(started)
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "round {round}: one transaction, ids {ids:?}"
        );
        let rows: Vec<TransactionRow> = a
            .transactions(Some("CP1"), None)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.start == Some(time))
            .collect();
        assert_eq!(rows.len(), 1, "round {round}: {rows:?}");
        assert_eq!(rows[0].id, ids[0], "round {round}");
    }
    assert_eq!(
        b.transactions(None, None).await.unwrap().len(),
        ROUNDS as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_through_two_nodes_at_once_stops_once() {
    let (a, b) = common::two_nodes("nodes", "stop").await;
    pile_and_tag(&a).await;
    for round in 0..ROUNDS {
        let id = started(&apply(&a, start(1, 10_000 + round)).await);
        let (sa, sb) = ([stop(id, 1_500, 20_000)], [stop(id, 1_600, 20_100)]);
        let (ra, rb) = tokio::join!(a.apply(&sa, 1), b.apply(&sb, 1));
        for r in [ra.unwrap(), rb.unwrap()] {
            assert!(matches!(r[0], WriteResult::Stopped { .. }), "{r:?}");
        }
        let t = a.transaction(id).await.unwrap().unwrap();
        let first = (t.meter_stop, t.stop);
        assert!(
            first == (Some(1_500), Some(20_000)) || first == (Some(1_600), Some(20_100)),
            "round {round}: one stop, whole: {t:?}"
        );
        assert!(!t.reconciled, "round {round}");
        // A later stop again changes nothing.
        apply(&b, stop(id, 9_999, 30_000)).await;
        let again = a.transaction(id).await.unwrap().unwrap();
        assert_eq!((again.meter_stop, again.stop), first, "round {round}");
        // The sample both stops carried is stored once.
        assert_eq!(a.meter_values(id).await.unwrap().len(), 1, "round {round}");
    }
    assert_eq!(
        a.transactions(None, None).await.unwrap().len(),
        ROUNDS as usize,
        "no reconciled rows"
    );
    // The stop of a transaction neither node saw, through both at once: reconciled once.
    for round in 0..ROUNDS {
        let id = 1_000_000 + round;
        let both = [stop(id, 2_000, 20_000)];
        let (ra, rb) = tokio::join!(a.apply(&both, 1), b.apply(&both, 1));
        ra.unwrap();
        rb.unwrap();
        let t = b.transaction(id).await.unwrap().unwrap();
        assert!(
            t.reconciled && t.stop == Some(20_000),
            "round {round}: {t:?}"
        );
    }
    assert_eq!(
        a.transactions(None, Some(false)).await.unwrap().len(),
        2 * ROUNDS as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_from_two_nodes_never_collide() {
    let (a, b) = common::two_nodes("nodes", "ids").await;
    pile_and_tag(&a).await;
    let command = |n: i64| WriteOp::CommandSent {
        pile: "CP1".into(),
        action: "Reset".into(),
        payload: format!("{{\"n\":{n}}}"),
    };
    let mut ids = HashSet::new();
    for round in 0..ROUNDS {
        let batch: Vec<WriteOp> = (0..10).map(|n| command(round * 10 + n)).collect();
        let (ra, rb, ca, cb) = tokio::join!(
            a.apply(&batch, 1),
            b.apply(&batch, 1),
            a.create_campaign("{}", &[], 1),
            b.create_campaign("{}", &[], 1)
        );
        for r in ra.unwrap().into_iter().chain(rb.unwrap()) {
            match r {
                WriteResult::Command(id) => assert!(ids.insert(("command", id)), "command {id}"),
                other => panic!("{other:?}"),
            }
        }
        for c in [ca.unwrap(), cb.unwrap()] {
            match c {
                CampaignCreated::Id(id) => assert!(ids.insert(("campaign", id)), "campaign {id}"),
                other => panic!("{other:?}"),
            }
        }
    }
    let commands = a.commands("CP1", 10_000).await.unwrap();
    assert_eq!(commands.len(), 2 * 10 * ROUNDS as usize);
    assert_eq!(b.campaigns().await.unwrap().len(), 2 * ROUNDS as usize);

    let image = ImageRow {
        id: 0,
        name: "fw.bin".into(),
        target: "bin".into(),
        model: None,
        version: None,
        size: 3,
        sha256: "00".repeat(32),
        created_at: 5,
        signature: None,
        signing_certificate: None,
    };
    let mut images = HashSet::new();
    for _ in 0..10 {
        let (ia, ib) = tokio::join!(a.put_image(&image, b"abc"), b.put_image(&image, b"abc"));
        assert!(images.insert(ia.unwrap()) && images.insert(ib.unwrap()));
    }
    assert_eq!(a.images().await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_a_reconciled_stop_gets_another_id() {
    let url = common::pg_schema("nodes", "orphan").await;
    let (a, b) = tokio::join!(open(&url), open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    pile_and_tag(&a).await;
    let first = started(&apply(&a, start(1, 1_000)).await);
    // A pile stops the transactions it says are the next two, through the other node.
    for id in [first + 1, first + 2] {
        apply(&b, stop(id, 2_000, 5_000)).await;
        assert!(b.transaction(id).await.unwrap().unwrap().reconciled);
    }
    let next = started(&apply(&a, start(1, 2_000)).await);
    assert!(next > first + 2, "{next}");
    // Even when the sequence stands below them (a node took its value before the other
    // moved it past a reconciled id), a start skips the ids taken.
    let (base, schema) = url.split_once("?schema=").unwrap();
    let pool = sqlx::PgPool::connect(base).await.unwrap();
    sqlx::query("SELECT setval($1, $2)")
        .bind(format!("{schema}.transactions_id_seq"))
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    let skipped = started(&apply(&b, start(2, 3_000)).await);
    assert!(![first, first + 1, first + 2, next].contains(&skipped));
    let t = a.transaction(skipped).await.unwrap().unwrap();
    assert_eq!((t.connector, t.start), (Some(2), Some(3_000)));
    for id in [first + 1, first + 2] {
        let t = a.transaction(id).await.unwrap().unwrap();
        assert!(t.reconciled && t.start.is_none(), "{t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_log_from_two_nodes_reads_back_in_insert_order() {
    let (a, b) = common::two_nodes("nodes", "log").await;
    // Rows as each node's writer hands them over: the same time, and the seq a counter of
    // the node's own would give (the database numbers them instead).
    let counters = [
        std::sync::atomic::AtomicI64::new(0),
        std::sync::atomic::AtomicI64::new(0),
    ];
    let row = |node: usize, pile: &str, n: usize| LogRow {
        pile: pile.into(),
        time: 7_000,
        seq: counters[node].fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        direction: "in",
        action: Some("Heartbeat".into()),
        message_id: Some(n.to_string()),
        frame: format!("[2,\"{n}\",\"Heartbeat\",{{}}]"),
    };
    let mut expected: Vec<String> = Vec::new();
    for n in 0..60 {
        // CP1 moves between the nodes (each write committed before the next); CP2 and CP3
        // are written by both nodes at once meanwhile.
        let node = (n / 5) % 2;
        [&a, &b][node]
            .append_log(&[row(node, "CP1", n)], &[])
            .await
            .unwrap();
        expected.push(n.to_string());
        let (cp2, cp3) = (
            [row(0, "CP2", n), row(0, "CP2", n + 1000)],
            [row(1, "CP3", n)],
        );
        let (ra, rb) = tokio::join!(a.append_log(&cp2, &[]), b.append_log(&cp3, &[]));
        ra.unwrap();
        rb.unwrap();
    }
    let newest_first = b.messages("CP1", None, 1_000).await.unwrap();
    let read: Vec<String> = newest_first
        .iter()
        .rev()
        .map(|m| m.message_id.clone().unwrap())
        .collect();
    assert_eq!(read, expected);
    let seqs: Vec<i64> = newest_first.iter().map(|m| m.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let cp2: Vec<String> = a
        .messages("CP2", None, 1_000)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|m| m.message_id.clone().unwrap())
        .collect();
    let cp2_expected: Vec<String> = (0..60)
        .flat_map(|n| [n.to_string(), (n + 1000).to_string()])
        .collect();
    assert_eq!(cp2, cp2_expected, "a batch's rows in their order");
}
