//! The fleet's queries on SQLite and on PostgreSQL: the filtered, paged pile list, who is
//! online, the fleet's tallies and a running transaction's energy so far give the same answers
//! on both. PostgreSQL: `OCPILE_TEST_PG` (default the local server, database `test`), each run
//! in a schema of its own.

use std::sync::Arc;

use central::store::*;

mod common;

fn status(pile: &str, connector: i64, status: &str, error: &str, vendor: Option<&str>) -> WriteOp {
    WriteOp::Status {
        pile: pile.into(),
        connector,
        status: status.into(),
        error_code: error.into(),
        vendor_error_code: vendor.map(Into::into),
        info: None,
        vendor_id: None,
        time: 2_000,
    }
}

/// Twelve piles: P-00..P-11, models M1/M2 alternating, firmware 1.0 for the first six and 2.0
/// after; P-03 Faulted, P-05 with a GroundFailure while Available and the FAQ 3.6 bits
/// 0xC000, P-07 Charging; P-02 Pending; P-04 and P-06 online (P-06 online and off again).
async fn fleet(repo: &Arc<dyn Repository>) {
    let mut ops = Vec::new();
    for i in 0..12 {
        let id = format!("P-{i:02}");
        ops.push(WriteOp::RegisterPile {
            id: id.clone(),
            password_hash: None,
            security_profile: 0,
        });
        ops.push(WriteOp::Boot {
            pile: id.clone(),
            info: BootInfo {
                vendor: "Acme".into(),
                model: if i % 2 == 0 { "M1" } else { "M2" }.into(),
                serial_number: Some(format!("SN_{i:02}%")),
                firmware_version: Some(if i < 6 { "1.0" } else { "2.0" }.into()),
                ..BootInfo::default()
            },
        });
        let (s, e, v) = match i {
            3 => ("Faulted", "ConnectorLockFailure", None),
            5 => ("Available", "GroundFailure", Some("0xC000")),
            7 => ("Charging", "NoError", None),
            _ => ("Available", "NoError", None),
        };
        ops.push(status(&id, 1, s, e, v));
        ops.push(status(&id, 2, "Available", "NoError", None));
    }
    ops.push(WriteOp::SetRegistration {
        id: "P-02".into(),
        registration: "Pending".into(),
    });
    for (pile, connection) in [("P-04", 1), ("P-06", 2)] {
        ops.push(WriteOp::Connected {
            pile: pile.into(),
            node: "n1".into(),
            connection,
        });
    }
    // An older connection's end leaves the pile online; its own end takes it offline.
    ops.push(WriteOp::Disconnected {
        pile: "P-04".into(),
        node: "n1".into(),
        connection: 7,
    });
    ops.push(WriteOp::Disconnected {
        pile: "P-06".into(),
        node: "n1".into(),
        connection: 2,
    });
    repo.apply(&ops, 1_000).await.unwrap();
}

async fn ids(repo: &Arc<dyn Repository>, f: &PileFilter) -> Vec<String> {
    repo.pile_page(f, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect()
}

#[tokio::test]
async fn filters_and_pages_on_both_databases() {
    for (kind, repo) in common::repositories("fleet", "filters").await {
        fleet(&repo).await;
        let all = ids(&repo, &PileFilter::default()).await;
        assert_eq!(all.len(), 12, "{kind}");
        // Pages of five after a cursor, in identity order.
        let page = repo
            .pile_page(&PileFilter::default(), Some("P-04"), Some(5))
            .await
            .unwrap();
        let page: Vec<&str> = page.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(page, ["P-05", "P-06", "P-07", "P-08", "P-09"], "{kind}");
        let f = |edit: fn(&mut PileFilter)| {
            let mut f = PileFilter::default();
            edit(&mut f);
            f
        };
        let cases: Vec<(PileFilter, Vec<&str>)> = vec![
            (f(|f| f.status = Some("Faulted".into())), vec!["P-03"]),
            (f(|f| f.status = Some("Charging".into())), vec!["P-07"]),
            (f(|f| f.faulted = Some(true)), vec!["P-03", "P-05"]),
            (f(|f| f.registration = Some("Pending".into())), vec!["P-02"]),
            (f(|f| f.online = Some(true)), vec!["P-04"]),
            (
                f(|f| {
                    f.model = Some("M2".into());
                    f.firmware = Some("2.0".into());
                }),
                vec!["P-07", "P-09", "P-11"],
            ),
            // Any case; `%` and `_` are text, not patterns.
            (f(|f| f.text = Some("sn_1".into())), vec!["P-10", "P-11"]),
            (f(|f| f.text = Some("1%".into())), vec!["P-01", "P-11"]),
            (
                f(|f| f.text = Some("p-0".into())),
                all[..10].iter().map(String::as_str).collect(),
            ),
            (f(|f| f.text = Some("nothing".into())), vec![]),
        ];
        for (filter, want) in cases {
            assert_eq!(ids(&repo, &filter).await, want, "{kind}: {filter:?}");
        }
        let healthy = ids(&repo, &f(|f| f.faulted = Some(false))).await;
        assert_eq!(healthy.len(), 10, "{kind}");
        assert!(!healthy.contains(&"P-03".to_owned()), "{kind}");
        let offline = ids(&repo, &f(|f| f.online = Some(false))).await;
        assert_eq!(offline.len(), 11, "{kind}");
        let of_page = repo
            .connectors_of(&["P-03".into(), "P-05".into()])
            .await
            .unwrap();
        let of_page: Vec<(&str, i64, &str)> = of_page
            .iter()
            .map(|c| (c.pile.as_str(), c.connector, c.status.as_str()))
            .collect();
        assert_eq!(
            of_page,
            [
                ("P-03", 1, "Faulted"),
                ("P-03", 2, "Available"),
                ("P-05", 1, "Available"),
                ("P-05", 2, "Available")
            ],
            "{kind}"
        );
        // A start of the central system: nobody is online.
        repo.forget_connections().await.unwrap();
        assert!(ids(&repo, &f(|f| f.online = Some(true))).await.is_empty());
    }
}

fn tally(pairs: &[(&str, i64)]) -> Vec<Tally> {
    pairs
        .iter()
        .map(|(name, count)| Tally {
            name: (*name).into(),
            count: *count,
        })
        .collect()
}

#[tokio::test]
async fn tallies_and_energy_so_far_on_both_databases() {
    for (kind, repo) in common::repositories("fleet", "tallies").await {
        fleet(&repo).await;
        let start = |pile: &str, meter_start| WriteOp::StartTransaction {
            pile: pile.into(),
            connector: 1,
            id_tag: "CARD".into(),
            meter_start,
            reservation_id: None,
            time: 3_000,
        };
        let results = repo
            .apply(&[start("P-07", 1_000), start("P-08", 50)], 3_000)
            .await
            .unwrap();
        let [WriteResult::Started {
            transaction_id: running,
            ..
        }, WriteResult::Started {
            transaction_id: done,
            ..
        }] = results.as_slice()
        else {
            panic!("{kind}: {results:?}")
        };
        let values = |id: i64, readings: &[(i64, &str)]| WriteOp::MeterValues {
            pile: "P-07".into(),
            connector: 1,
            transaction_id: Some(id),
            samples: readings
                .iter()
                .map(|(time, sampled)| MeterSample {
                    time: *time,
                    sampled: (*sampled).into(),
                })
                .collect(),
        };
        let t = repo.transaction(*running).await.unwrap().unwrap();
        assert_eq!(t.energy_wh(), None, "{kind}: no reading yet");
        repo.apply(
            &[values(
                *running,
                &[
                    (4_000, r#"[{"value":"1.2","unit":"kWh"}]"#),
                    (5_000, r#"[{"value":"1.5","unit":"kWh"},{"value":"7000","measurand":"Power.Active.Import"}]"#),
                ],
            )],
            5_000,
        )
        .await
        .unwrap();
        // A late, older reading changes nothing; one without the register neither.
        repo.apply(
            &[
                values(*running, &[(4_500, r#"[{"value":"1300"}]"#)]),
                values(
                    *running,
                    &[(6_000, r#"[{"value":"9","measurand":"Voltage"}]"#)],
                ),
            ],
            6_000,
        )
        .await
        .unwrap();
        let t = repo.transaction(*running).await.unwrap().unwrap();
        assert_eq!(
            (t.meter_last, t.energy_wh()),
            (Some(1_500), Some(500)),
            "{kind}"
        );
        repo.apply(
            &[WriteOp::StopTransaction {
                pile: "P-08".into(),
                transaction_id: *done,
                id_tag: None,
                meter_stop: 250,
                time: 8_000,
                reason: None,
                data: vec![],
            }],
            8_000,
        )
        .await
        .unwrap();
        let counts = repo.fleet_counts(7_000).await.unwrap();
        assert_eq!((counts.piles, counts.online), (12, 1), "{kind}");
        assert_eq!(
            counts.registration,
            tally(&[("Accepted", 11), ("Pending", 1)]),
            "{kind}"
        );
        assert_eq!(counts.models, tally(&[("M1", 6), ("M2", 6)]), "{kind}");
        assert_eq!(counts.firmware, tally(&[("1.0", 6), ("2.0", 6)]), "{kind}");
        assert_eq!(
            counts.connector_status,
            tally(&[("Available", 22), ("Charging", 1), ("Faulted", 1)]),
            "{kind}"
        );
        assert_eq!(
            counts.error_codes,
            tally(&[("ConnectorLockFailure", 1), ("GroundFailure", 1)]),
            "{kind}"
        );
        assert_eq!(counts.vendor_error_codes, tally(&[("0xC000", 1)]), "{kind}");
        assert_eq!(counts.running_transactions, 1, "{kind}");
        // The stopped one (200 Wh, stopped after 7 s) and the running one so far (500 Wh).
        assert_eq!(counts.energy_wh, 700, "{kind}");
        // The stopped one before the day: only the running one.
        assert_eq!(repo.fleet_counts(9_000).await.unwrap().energy_wh, 500);
    }
}
