//! The repository on SQLite and on PostgreSQL: the same scenarios, the same answers.
//! PostgreSQL: `OCPILE_TEST_PG` (default the local server, database `test`), each run in a
//! schema of its own.

use std::sync::Arc;

use central::store::*;

mod common;

async fn apply(repo: &Arc<dyn Repository>, op: WriteOp) -> WriteResult {
    repo.apply(&[op], 1_000).await.unwrap().pop().unwrap()
}

fn start(connector: i64, time: i64, meter: i64) -> WriteOp {
    WriteOp::StartTransaction {
        pile: "CP1".into(),
        connector,
        id_tag: "CARD1".into(),
        meter_start: meter,
        reservation_id: None,
        time,
    }
}

fn stop(id: i64, meter: i64) -> WriteOp {
    WriteOp::StopTransaction {
        pile: "CP1".into(),
        transaction_id: id,
        id_tag: Some("CARD1".into()),
        meter_stop: meter,
        time: 9_000,
        reason: Some("Local".into()),
        data: vec![MeterSample {
            time: 9_000,
            sampled: r#"[{"value":"1500","measurand":"Energy.Active.Import.Register"}]"#.into(),
        }],
    }
}

#[tokio::test]
async fn transactions_are_idempotent_on_both_databases() {
    for (kind, repo) in common::repositories("store", "tx").await {
        apply(
            &repo,
            WriteOp::RegisterPile {
                id: "CP1".into(),
                password_hash: None,
                security_profile: 0,
            },
        )
        .await;
        apply(
            &repo,
            WriteOp::PutIdTag(IdTagRow {
                id_tag: "CARD1".into(),
                status: "Accepted".into(),
                expiry_date: None,
                parent_id_tag: Some("FLEET".into()),
            }),
        )
        .await;
        let WriteResult::Started {
            transaction_id: t1,
            id_tag,
        } = apply(&repo, start(1, 5_000, 100)).await
        else {
            panic!("{kind}: not started")
        };
        assert_eq!(
            id_tag.unwrap().parent_id_tag.as_deref(),
            Some("FLEET"),
            "{kind}"
        );
        // The same start again (a retry under a new message id): the same transaction.
        let WriteResult::Started {
            transaction_id: again,
            ..
        } = apply(&repo, start(1, 5_000, 100)).await
        else {
            panic!()
        };
        assert_eq!(again, t1, "{kind}");
        let WriteResult::Started {
            transaction_id: t2, ..
        } = apply(&repo, start(2, 5_000, 100)).await
        else {
            panic!()
        };
        assert_ne!(t2, t1, "{kind}");
        // Starts in one batch get distinct ids too.
        let results = repo
            .apply(&[start(1, 6_000, 1), start(2, 6_000, 1)], 1)
            .await
            .unwrap();
        let ids: Vec<i64> = results
            .iter()
            .map(|r| match r {
                WriteResult::Started { transaction_id, .. } => *transaction_id,
                _ => panic!(),
            })
            .collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1], "{kind}");
        assert!(!ids.contains(&t1) && !ids.contains(&t2), "{kind}");

        // A stop, then the same stop again: stopped once, meter values once.
        apply(&repo, stop(t1, 1_500)).await;
        let mut second = stop(t1, 9_999);
        if let WriteOp::StopTransaction { time, .. } = &mut second {
            *time = 10_000;
        }
        apply(&repo, second).await;
        apply(&repo, stop(t1, 1_500)).await;
        let t = repo.transaction(t1).await.unwrap().unwrap();
        assert_eq!(
            (t.meter_start, t.meter_stop, t.stop),
            (Some(100), Some(1_500), Some(9_000)),
            "{kind}"
        );
        assert_eq!(repo.meter_values(t1).await.unwrap().len(), 1, "{kind}");

        // A stop for a transaction the central never issued: kept, reconciled.
        apply(&repo, stop(777, 2_000)).await;
        let r = repo.transaction(777).await.unwrap().unwrap();
        assert!(r.reconciled, "{kind}");
        assert_eq!(
            (r.connector, r.start, r.meter_start),
            (None, None, None),
            "{kind}"
        );
        // New ids go past it.
        let WriteResult::Started {
            transaction_id: t3, ..
        } = apply(&repo, start(1, 20_000, 5)).await
        else {
            panic!()
        };
        assert!(t3 > 777, "{kind}: {t3}");

        // Meter values sent twice are stored once.
        let mv = WriteOp::MeterValues {
            pile: "CP1".into(),
            connector: 1,
            transaction_id: Some(t3),
            samples: vec![
                MeterSample {
                    time: 21_000,
                    sampled: r#"[{"value":"10"}]"#.into(),
                },
                MeterSample {
                    time: 22_000,
                    sampled: r#"[{"value":"20"}]"#.into(),
                },
            ],
        };
        repo.apply(&[mv.clone(), mv.clone()], 1).await.unwrap();
        apply(&repo, mv).await;
        assert_eq!(repo.meter_values(t3).await.unwrap().len(), 2, "{kind}");
        let active = repo.transactions(Some("CP1"), Some(true)).await.unwrap();
        assert_eq!(active.len(), 4, "{kind}: t2, two batch starts, t3");
        let done = repo.transactions(None, Some(false)).await.unwrap();
        assert_eq!(done.len(), 2, "{kind}: t1 and the reconciled one");
    }
}

#[tokio::test]
async fn piles_statuses_configuration_and_logs_on_both_databases() {
    for (kind, repo) in common::repositories("store", "piles").await {
        let r = apply(
            &repo,
            WriteOp::AdmitPile {
                id: "CP2".into(),
                registration: "Pending".into(),
            },
        )
        .await;
        assert_eq!(r, WriteResult::Affected(1), "{kind}");
        let r = apply(
            &repo,
            WriteOp::AdmitPile {
                id: "CP2".into(),
                registration: "Accepted".into(),
            },
        )
        .await;
        assert_eq!(r, WriteResult::Affected(0), "{kind}: kept as it was");
        assert_eq!(
            repo.pile("CP2").await.unwrap().unwrap().registration,
            "Pending",
            "{kind}"
        );
        apply(
            &repo,
            WriteOp::SetRegistration {
                id: "CP2".into(),
                registration: "Accepted".into(),
            },
        )
        .await;
        apply(
            &repo,
            WriteOp::Boot {
                pile: "CP2".into(),
                info: BootInfo {
                    vendor: "V".into(),
                    model: "M3G3".into(),
                    firmware_version: Some("1.0".into()),
                    ..Default::default()
                },
            },
        )
        .await;
        let p = repo.pile("CP2").await.unwrap().unwrap();
        assert_eq!(
            (p.registration.as_str(), p.model.as_deref(), p.last_boot),
            ("Accepted", Some("M3G3"), Some(1_000)),
            "{kind}"
        );

        let status = |status: &str, time: i64| WriteOp::Status {
            pile: "CP2".into(),
            connector: 1,
            status: status.into(),
            error_code: "NoError".into(),
            vendor_error_code: Some("0xC000".into()),
            info: None,
            vendor_id: None,
            time,
        };
        apply(&repo, status("Preparing", 2_000)).await;
        apply(&repo, status("Charging", 3_000)).await;
        apply(&repo, status("Charging", 3_000)).await;
        // An older status arriving late does not overwrite the newer one.
        apply(&repo, status("Available", 1_500)).await;
        let c = repo.connectors(Some("CP2")).await.unwrap();
        assert_eq!(c[0].status, "Charging", "{kind}");
        assert_eq!(
            repo.status_history("CP2", 10).await.unwrap().len(),
            3,
            "{kind}"
        );

        let config = |v: &str| WriteOp::Configuration {
            pile: "CP2".into(),
            keys: vec![
                ("HeartbeatInterval".into(), Some(v.into()), false),
                ("NumberOfConnectors".into(), Some("1".into()), true),
            ],
        };
        apply(&repo, config("900")).await;
        apply(&repo, config("900")).await;
        apply(&repo, config("120")).await;
        let rows = repo.configuration("CP2").await.unwrap();
        assert_eq!(rows.len(), 2, "{kind}");
        assert!(
            rows.iter()
                .any(|r| r.key == "HeartbeatInterval" && r.value.as_deref() == Some("120")),
            "{kind}"
        );
        let history = repo.configuration_history("CP2").await.unwrap();
        assert_eq!(history.len(), 3, "{kind}: two first reads and one change");
        // A key answered twice in one read is stored once, as its last answer.
        apply(
            &repo,
            WriteOp::Configuration {
                pile: "CP2".into(),
                keys: vec![
                    ("HeartbeatInterval".into(), Some("300".into()), false),
                    ("HeartbeatInterval".into(), Some("600".into()), false),
                ],
            },
        )
        .await;
        let rows = repo.configuration("CP2").await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.key == "HeartbeatInterval" && r.value.as_deref() == Some("600")),
            "{kind}: {rows:?}"
        );
        assert_eq!(repo.configuration_history("CP2").await.unwrap().len(), 4);

        // The piles a batch heard from are seen at the batch's time, once each.
        repo.apply(
            &[
                WriteOp::Seen { pile: "CP2".into() },
                status("Charging", 4_000),
                WriteOp::Seen { pile: "CP2".into() },
            ],
            77_000,
        )
        .await
        .unwrap();
        let p = repo.pile("CP2").await.unwrap().unwrap();
        assert_eq!(p.last_seen, Some(77_000), "{kind}");

        let log = |time: i64, seq: i64| LogRow {
            pile: "CP2".into(),
            time,
            seq,
            direction: "in",
            action: Some(
                if seq % 2 == 0 {
                    "Heartbeat"
                } else {
                    "MeterValues"
                }
                .into(),
            ),
            message_id: Some(seq.to_string()),
            frame: "[2,\"1\",\"Heartbeat\",{}]".into(),
        };
        // Two group commits' frames: two blocks of the log.
        let rows: Vec<LogRow> = (1..=1200).map(|i| log(i, i)).collect();
        repo.append_log(&rows[..600], &[]).await.unwrap();
        repo.append_log(
            &rows[600..],
            &[DeviationRow {
                pile: "CP2".into(),
                time: 5,
                action: "StatusNotification".into(),
                kind: "TimestampFormat".into(),
                detail: "x".into(),
            }],
        )
        .await
        .unwrap();
        let newest = repo.messages("CP2", None, 5).await.unwrap();
        assert_eq!(
            newest.iter().map(|m| m.time).collect::<Vec<_>>(),
            [1200, 1199, 1198, 1197, 1196],
            "{kind}"
        );
        assert!(newest.windows(2).all(|w| w[0].seq > w[1].seq), "{kind}");
        assert_eq!(
            newest[0],
            LogRow {
                seq: newest[0].seq,
                ..rows[1199].clone()
            },
            "{kind}"
        );
        let hb = repo
            .messages("CP2", Some("Heartbeat"), 10_000)
            .await
            .unwrap();
        assert_eq!(hb.len(), 600, "{kind}");
        assert!(
            hb.iter().all(|m| m.action.as_deref() == Some("Heartbeat")),
            "{kind}"
        );
        // Across both blocks, newest first.
        assert_eq!(
            repo.messages("CP2", None, 700)
                .await
                .unwrap()
                .last()
                .map(|m| m.time),
            Some(501),
            "{kind}"
        );
        assert!(
            repo.messages("CP9", None, 10).await.unwrap().is_empty(),
            "{kind}"
        );
        assert_eq!(repo.deviations("CP2", 10).await.unwrap().len(), 1, "{kind}");
        // The first block holds only frames before 601: it goes, with the deviation.
        assert_eq!(
            repo.prune_log(601).await.unwrap(),
            601,
            "{kind}: 600 messages and the deviation"
        );
        // The second holds frames of 601 and later: it stays whole until all are old.
        assert_eq!(repo.prune_log(1000).await.unwrap(), 0, "{kind}");
        assert_eq!(
            repo.messages("CP2", None, 10_000).await.unwrap().len(),
            600,
            "{kind}"
        );

        apply(
            &repo,
            WriteOp::Refused(RefusedRow {
                time: 7,
                remote: "127.0.0.1:1".into(),
                identity: Some("X".into()),
                reason: "wrong password".into(),
                http_status: 401,
            }),
        )
        .await;
        assert_eq!(
            repo.refused(10).await.unwrap()[0].http_status,
            401,
            "{kind}"
        );

        let WriteResult::Command(c1) = apply(
            &repo,
            WriteOp::CommandSent {
                pile: "CP2".into(),
                action: "Reset".into(),
                payload: "{}".into(),
            },
        )
        .await
        else {
            panic!()
        };
        apply(
            &repo,
            WriteOp::CommandDone {
                id: c1,
                outcome: "response".into(),
                result: Some("{}".into()),
            },
        )
        .await;
        assert_eq!(
            repo.commands("CP2", 10).await.unwrap()[0]
                .outcome
                .as_deref(),
            Some("response"),
            "{kind}"
        );

        assert_eq!(
            apply(&repo, WriteOp::DeletePile { id: "CP2".into() }).await,
            WriteResult::Affected(1),
            "{kind}"
        );
        assert!(repo.pile("CP2").await.unwrap().is_none(), "{kind}");
    }
}

#[tokio::test]
async fn one_failing_write_does_not_fail_its_batch() {
    for (kind, repo) in common::repositories("store", "batch").await {
        let metrics = Arc::new(central::metrics::Metrics::default());
        let (writer, log) = Writer::start(repo.clone(), metrics).await.unwrap();
        // A pile's frame with a NUL character: logged with it replaced, in the batch's
        // transaction or (when the batch fails) on its own.
        log.message(
            "CP3",
            "in",
            Some("DataTransfer".into()),
            Some("7".into()),
            "[2,\"7\",\"DataTransfer\",{\"vendorId\":\"a\0b\"}]",
        );
        // PostgreSQL refuses a NUL character in text; SQLite takes it.
        let poison = WriteOp::Event {
            pile: "CP3".into(),
            kind: "DataTransfer".into(),
            detail: "a\0b".into(),
            firmware_status: None,
            diagnostics_status: None,
        };
        let (a, b, c) = tokio::join!(
            writer.write(WriteOp::RegisterPile {
                id: "CP3".into(),
                password_hash: None,
                security_profile: 0,
            }),
            writer.write(poison),
            writer.write(WriteOp::AdmitPile {
                id: "CP4".into(),
                registration: "Pending".into()
            }),
        );
        a.unwrap();
        c.unwrap();
        assert_eq!(b.is_err(), kind == "postgres", "{kind}: {b:?}");
        assert_eq!(repo.piles().await.unwrap().len(), 2, "{kind}");
        // (The log gathers for a second before it is committed: a flush commits it now.)
        writer.flush().await.unwrap();
        let logged = repo.messages("CP3", None, 10).await.unwrap();
        assert_eq!(logged.len(), 1, "{kind}");
        assert_eq!(
            logged[0].frame, "[2,\"7\",\"DataTransfer\",{\"vendorId\":\"a\u{FFFD}b\"}]",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn firmware_images_and_campaigns_on_both_databases() {
    for (kind, repo) in common::repositories("store", "campaigns").await {
        let image = ImageRow {
            id: 0,
            name: "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070".into(),
            target: "st070".into(),
            model: Some("M3G31H".into()),
            version: None,
            size: 1234,
            sha256: "ab".repeat(32),
            created_at: 5,
            signature: Some("c2lnbmF0dXJl".into()),
            signing_certificate: Some("PEM".into()),
        };
        let bytes: Vec<u8> = (0..1234u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(repo.put_image(&image, &bytes).await.unwrap(), 1, "{kind}");
        assert_eq!(repo.put_image(&image, &bytes).await.unwrap(), 2, "{kind}");
        assert_eq!(
            repo.image_chunk(1, 0).await.unwrap().as_deref(),
            Some(&bytes[..]),
            "{kind}"
        );
        assert_eq!(repo.image_chunk(1, 1).await.unwrap(), None, "{kind}");
        let stored = repo.image(1).await.unwrap().unwrap();
        assert_eq!(stored, ImageRow { id: 1, ..image }, "{kind}");
        assert!(
            repo.set_image_signature(2, "c2ln", "CERT").await.unwrap(),
            "{kind}"
        );
        assert!(
            !repo.set_image_signature(99, "c2ln", "CERT").await.unwrap(),
            "{kind}"
        );
        let signed = repo.image(2).await.unwrap().unwrap();
        assert_eq!(
            (
                signed.signature.as_deref(),
                signed.signing_certificate.as_deref()
            ),
            (Some("c2ln"), Some("CERT")),
            "{kind}"
        );
        assert_eq!(repo.images().await.unwrap().len(), 2, "{kind}");
        assert_eq!(repo.image(9).await.unwrap(), None, "{kind}");

        let rollout = |pile: &str, position: i64, phase: &str| RolloutRow {
            campaign: 0,
            position,
            pile: pile.into(),
            phase: phase.into(),
            outcome: None,
            state: format!("{{\"pile\":\"{pile}\",\"phase\":\"{phase}\"}}"),
        };
        let created = repo
            .create_campaign(
                "{\"steps\":[]}",
                &[rollout("B", 0, "waiting"), rollout("A", 1, "waiting")],
                1_000,
            )
            .await
            .unwrap();
        assert_eq!(created, CampaignCreated::Id(1), "{kind}");
        // A rollout's state replaces the one before it.
        let mut upgraded = rollout("A", 1, "done");
        upgraded.campaign = 1;
        upgraded.outcome = Some("succeeded".into());
        let written = apply(
            &repo,
            WriteOp::PutRollout {
                row: upgraded.clone(),
                fence: None,
            },
        )
        .await;
        assert_eq!(written, WriteResult::Affected(1), "{kind}");
        apply(
            &repo,
            WriteOp::CampaignState {
                id: 1,
                state: "finished".into(),
                finished_at: Some(99),
                fence: None,
            },
        )
        .await;
        let campaigns = repo.campaigns().await.unwrap();
        assert_eq!(campaigns.len(), 1, "{kind}");
        assert_eq!(
            (campaigns[0].state.as_str(), campaigns[0].finished_at),
            ("finished", Some(99)),
            "{kind}"
        );
        assert_eq!(campaigns[0].created_at, 1_000, "{kind}");
        let rows = repo.rollouts(1).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.pile.as_str()).collect::<Vec<_>>(),
            ["B", "A"],
            "in their order: {kind}"
        );
        assert_eq!(rows[1], upgraded, "{kind}");
        assert_eq!(rows[0].campaign, 1, "{kind}");
    }
}
