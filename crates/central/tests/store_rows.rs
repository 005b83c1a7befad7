//! Every row type the store reads comes back whole, field by field, as it was written: on
//! SQLite and on PostgreSQL, through the one row mapping both share. PostgreSQL:
//! `OCPILE_TEST_PG` (default the local server, database `test`), in a schema of its own.

use std::sync::Arc;

use central::store::*;

mod common;

async fn apply(repo: &Arc<dyn Repository>, op: WriteOp, now: Millis) -> WriteResult {
    repo.apply(&[op], now).await.unwrap().pop().unwrap()
}

#[tokio::test]
async fn piles_connectors_and_id_tags_read_back_whole() {
    for (kind, repo) in common::repositories("rows", "piles").await {
        let register = WriteOp::RegisterPile {
            id: "CP9".into(),
            password_hash: Some("hash".into()),
            security_profile: 1,
        };
        apply(&repo, register, 1_000).await;
        let boot = WriteOp::Boot {
            pile: "CP9".into(),
            info: BootInfo {
                vendor: "V".into(),
                model: "M3G3".into(),
                serial_number: Some("S1".into()),
                firmware_version: Some("1.0".into()),
                meter_type: Some("AC".into()),
                ..Default::default()
            },
        };
        apply(&repo, boot, 2_000).await;
        let event = WriteOp::Event {
            pile: "CP9".into(),
            kind: "FirmwareStatusNotification".into(),
            detail: "{\"status\":\"Installed\"}".into(),
            firmware_status: Some("Installed".into()),
            diagnostics_status: None,
        };
        apply(&repo, event, 3_000).await;
        let pile = PileRow {
            id: "CP9".into(),
            password_hash: Some("hash".into()),
            registration: "Accepted".into(),
            vendor: Some("V".into()),
            model: Some("M3G3".into()),
            serial_number: Some("S1".into()),
            charge_box_serial_number: None,
            firmware_version: Some("1.0".into()),
            iccid: None,
            imsi: None,
            meter_type: Some("AC".into()),
            meter_serial_number: None,
            firmware_status: Some("Installed".into()),
            diagnostics_status: None,
            created_at: 1_000,
            last_boot: Some(2_000),
            last_seen: Some(2_000),
            connection: None,
            node: None,
            connected_at: None,
            security_profile: 1,
            connected_profile: 0,
            previous_password_hash: None,
        };
        assert_eq!(
            repo.pile("CP9").await.unwrap(),
            Some(pile.clone()),
            "{kind}"
        );
        assert_eq!(repo.piles().await.unwrap(), [pile], "{kind}");
        assert_eq!(
            repo.events("CP9", 10).await.unwrap(),
            [EventRow {
                pile: "CP9".into(),
                time: 3_000,
                kind: "FirmwareStatusNotification".into(),
                detail: "{\"status\":\"Installed\"}".into(),
            }],
            "{kind}"
        );

        let status = WriteOp::Status {
            pile: "CP9".into(),
            connector: 2,
            status: "Faulted".into(),
            error_code: "GroundFailure".into(),
            vendor_error_code: Some("0xC000".into()),
            info: Some("leak".into()),
            vendor_id: None,
            time: 4_000,
        };
        apply(&repo, status, 4_500).await;
        let connector = ConnectorRow {
            pile: "CP9".into(),
            connector: 2,
            status: "Faulted".into(),
            error_code: "GroundFailure".into(),
            vendor_error_code: Some("0xC000".into()),
            info: Some("leak".into()),
            time: 4_000,
        };
        assert_eq!(
            repo.connectors(Some("CP9")).await.unwrap(),
            std::slice::from_ref(&connector),
            "{kind}"
        );
        assert_eq!(
            repo.connectors(None).await.unwrap(),
            std::slice::from_ref(&connector),
            "{kind}"
        );
        assert_eq!(
            repo.status_history("CP9", 10).await.unwrap(),
            [connector],
            "{kind}"
        );

        let tag = IdTagRow {
            id_tag: "CARD9".into(),
            status: "Blocked".into(),
            expiry_date: Some(9_000),
            parent_id_tag: Some("FLEET".into()),
        };
        apply(&repo, WriteOp::PutIdTag(tag.clone()), 5_000).await;
        assert_eq!(
            repo.id_tag("CARD9").await.unwrap(),
            Some(tag.clone()),
            "{kind}"
        );
        assert_eq!(repo.id_tag("NONE").await.unwrap(), None, "{kind}");
        assert_eq!(repo.id_tags().await.unwrap(), [tag], "{kind}");
    }
}

#[tokio::test]
async fn transactions_and_meter_values_read_back_whole() {
    for (kind, repo) in common::repositories("rows", "tx").await {
        let start = WriteOp::StartTransaction {
            pile: "CP9".into(),
            connector: 1,
            id_tag: "CARD9".into(),
            meter_start: 100,
            reservation_id: Some(7),
            time: 5_000,
        };
        let WriteResult::Started { transaction_id, .. } = apply(&repo, start, 5_100).await else {
            panic!("{kind}: not started")
        };
        let mut started = TransactionRow {
            id: transaction_id,
            pile: "CP9".into(),
            connector: Some(1),
            id_tag: Some("CARD9".into()),
            start: Some(5_000),
            meter_start: Some(100),
            reservation_id: Some(7),
            stop: None,
            meter_stop: None,
            stop_id_tag: None,
            reason: None,
            reconciled: false,
            meter_last: None,
        };
        assert_eq!(
            repo.transaction(transaction_id).await.unwrap(),
            Some(started.clone()),
            "{kind}"
        );
        let stop = WriteOp::StopTransaction {
            pile: "CP9".into(),
            transaction_id,
            id_tag: Some("CARD8".into()),
            meter_stop: 900,
            time: 8_000,
            reason: Some("Local".into()),
            data: vec![MeterSample {
                time: 7_000,
                sampled: r#"[{"value":"500"}]"#.into(),
            }],
        };
        apply(&repo, stop, 8_100).await;
        started.stop = Some(8_000);
        started.meter_stop = Some(900);
        started.stop_id_tag = Some("CARD8".into());
        started.reason = Some("Local".into());
        assert_eq!(
            repo.transactions(Some("CP9"), Some(false)).await.unwrap(),
            [started],
            "{kind}"
        );
        assert_eq!(
            repo.meter_values(transaction_id).await.unwrap(),
            [MeterValueRow {
                pile: "CP9".into(),
                connector: 1,
                transaction_id: Some(transaction_id),
                time: 7_000,
                sampled: r#"[{"value":"500"}]"#.into(),
            }],
            "{kind}"
        );

        // A stop the central never saw start: kept, and read as reconciled.
        let unknown = WriteOp::StopTransaction {
            pile: "CP9".into(),
            transaction_id: 500,
            id_tag: None,
            meter_stop: 40,
            time: 9_000,
            reason: None,
            data: vec![],
        };
        apply(&repo, unknown, 9_100).await;
        assert_eq!(
            repo.transactions(None, None).await.unwrap()[0],
            TransactionRow {
                id: 500,
                pile: "CP9".into(),
                connector: None,
                id_tag: None,
                start: None,
                meter_start: None,
                reservation_id: None,
                stop: Some(9_000),
                meter_stop: Some(40),
                stop_id_tag: None,
                reason: None,
                reconciled: true,
                meter_last: None,
            },
            "{kind}"
        );
    }
}

#[tokio::test]
async fn configuration_commands_and_logs_read_back_whole() {
    for (kind, repo) in common::repositories("rows", "config").await {
        let config = WriteOp::Configuration {
            pile: "CP9".into(),
            keys: vec![
                ("HeartbeatInterval".into(), Some("900".into()), false),
                ("NumberOfConnectors".into(), Some("2".into()), true),
                ("AuthorizationKey".into(), None, false),
            ],
        };
        apply(&repo, config, 6_000).await;
        let row = |key: &str, value: Option<&str>, readonly: bool| ConfigRow {
            key: key.into(),
            value: value.map(str::to_owned),
            readonly,
            read_at: 6_000,
        };
        assert_eq!(
            repo.configuration("CP9").await.unwrap(),
            [
                row("AuthorizationKey", None, false),
                row("HeartbeatInterval", Some("900"), false),
                row("NumberOfConnectors", Some("2"), true),
            ],
            "{kind}"
        );
        let change = |key: &str, new_value: Option<&str>| ConfigChange {
            key: key.into(),
            time: 6_000,
            old_value: None,
            new_value: new_value.map(str::to_owned),
        };
        assert_eq!(
            repo.configuration_history("CP9").await.unwrap(),
            [
                change("AuthorizationKey", None),
                change("HeartbeatInterval", Some("900")),
                change("NumberOfConnectors", Some("2")),
            ],
            "{kind}"
        );

        let sent = WriteOp::CommandSent {
            pile: "CP9".into(),
            action: "Reset".into(),
            payload: "{\"type\":\"Soft\"}".into(),
        };
        let WriteResult::Command(id) = apply(&repo, sent, 7_000).await else {
            panic!("{kind}: no command id")
        };
        let done = WriteOp::CommandDone {
            id,
            outcome: "response".into(),
            result: Some("{\"status\":\"Accepted\"}".into()),
        };
        apply(&repo, done, 7_500).await;
        assert_eq!(
            repo.commands("CP9", 10).await.unwrap(),
            [CommandRow {
                id,
                pile: "CP9".into(),
                action: "Reset".into(),
                payload: "{\"type\":\"Soft\"}".into(),
                sent_at: 7_000,
                answered_at: Some(7_500),
                outcome: Some("response".into()),
                result: Some("{\"status\":\"Accepted\"}".into()),
            }],
            "{kind}"
        );

        let refused = RefusedRow {
            time: 8_000,
            remote: "10.0.0.9:4711".into(),
            identity: Some("CP404".into()),
            reason: "unknown pile".into(),
            http_status: 404,
        };
        apply(&repo, WriteOp::Refused(refused.clone()), 8_000).await;
        assert_eq!(repo.refused(10).await.unwrap(), [refused], "{kind}");

        let message = |seq: i64, direction: &'static str| LogRow {
            pile: "CP9".into(),
            time: 9_000,
            seq,
            direction,
            action: Some("Heartbeat".into()),
            message_id: Some(format!("m{seq}")),
            frame: format!("[2,\"m{seq}\",\"Heartbeat\",{{}}]"),
        };
        let deviation = DeviationRow {
            pile: "CP9".into(),
            time: 9_000,
            action: "Heartbeat".into(),
            kind: "extra_field".into(),
            detail: "currentTime".into(),
        };
        repo.append_log(
            &[message(1, "in"), message(2, "out")],
            std::slice::from_ref(&deviation),
        )
        .await
        .unwrap();
        // Read back whole, newest first, numbered by their place in the log.
        let logged = repo.messages("CP9", Some("Heartbeat"), 10).await.unwrap();
        assert!(logged[0].seq > logged[1].seq, "{kind}: {logged:?}");
        let unnumbered: Vec<LogRow> = logged.into_iter().map(|m| LogRow { seq: 0, ..m }).collect();
        let unnumbered_as_written =
            [message(2, "out"), message(1, "in")].map(|m| LogRow { seq: 0, ..m });
        assert_eq!(unnumbered, unnumbered_as_written, "{kind}");
        assert_eq!(
            repo.deviations("CP9", 10).await.unwrap(),
            [deviation],
            "{kind}"
        );
    }
}
