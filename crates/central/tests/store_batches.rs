//! One batch holding many admissions, boots, presence records, statuses and events (what a
//! group commit gathers in a boot storm, written a few hundred per statement): the rows are
//! those of the same writes made one at a time, on SQLite and on PostgreSQL.

use central::store::*;

mod common;

fn status(pile: &str, connector: i64, status: &str, time: Millis) -> WriteOp {
    WriteOp::Status {
        pile: pile.into(),
        connector,
        status: status.into(),
        error_code: "NoError".into(),
        vendor_error_code: None,
        info: Some(format!("{status} at {time}")),
        vendor_id: None,
        time,
    }
}

fn boot(pile: &str, firmware: &str) -> WriteOp {
    WriteOp::Boot {
        pile: pile.into(),
        info: BootInfo {
            vendor: "V".into(),
            model: "M3G3".into(),
            serial_number: Some(format!("sn-{pile}")),
            charge_box_serial_number: None,
            firmware_version: Some(firmware.into()),
            iccid: None,
            imsi: None,
            meter_type: None,
            meter_serial_number: None,
        },
    }
}

fn event(pile: &str, kind: &str, firmware_status: Option<&str>) -> WriteOp {
    WriteOp::Event {
        pile: pile.into(),
        kind: kind.into(),
        detail: format!("{kind} of {pile}"),
        firmware_status: firmware_status.map(str::to_owned),
        diagnostics_status: None,
    }
}

fn admit(pile: &str, registration: &str) -> WriteOp {
    WriteOp::AdmitPile {
        id: pile.into(),
        registration: registration.into(),
    }
}

fn connected(pile: &str, connection: i64) -> WriteOp {
    WriteOp::Connected {
        pile: pile.into(),
        node: "n1".into(),
        connection,
    }
}

#[tokio::test]
async fn a_batch_of_many_writes_leaves_the_rows_of_one_write_at_a_time() {
    for (kind, repo) in common::repositories("batches", "storm").await {
        repo.apply(&[admit("OLD", "Accepted")], 500).await.unwrap();
        let mut ops = vec![
            admit("A", "Pending"),
            admit("A", "Accepted"),
            admit("B", "Accepted"),
            admit("OLD", "Pending"),
            boot("A", "1.0"),
            connected("A", 1),
            status("A", 1, "Preparing", 200),
            status("A", 1, "Available", 100),
            status("A", 2, "Charging", 300),
            status("A", 2, "Finishing", 300),
            event("A", "Connected", None),
            event("A", "FirmwareStatus", Some("Installing")),
            boot("A", "2.0"),
            connected("A", 2),
            event("A", "Rebooted", None),
            boot("B", "1.0"),
            // A pile that connects and goes in the same batch is offline; one deleted after its
            // status has no connector left.
            admit("GONE", "Accepted"),
            connected("GONE", 7),
            WriteOp::Disconnected {
                pile: "GONE".into(),
                node: "n1".into(),
                connection: 7,
            },
            admit("DEL", "Accepted"),
            status("DEL", 1, "Available", 100),
            WriteOp::DeletePile { id: "DEL".into() },
        ];
        // Several hundred piles at once: more rows than one statement takes.
        for n in 0..450 {
            let pile = format!("S{n:03}");
            ops.push(admit(&pile, "Accepted"));
            ops.push(boot(&pile, "3.0"));
            ops.push(connected(&pile, n));
            ops.push(status(&pile, 0, "Available", 1_000));
            ops.push(event(&pile, "Connected", None));
        }
        let results = repo.apply(&ops, 1_000).await.unwrap();
        assert_eq!(results.len(), ops.len(), "{kind}");
        assert_eq!(results[0], WriteResult::Affected(1), "{kind}: A added");
        assert_eq!(
            results[1],
            WriteResult::Affected(0),
            "{kind}: A known by then"
        );
        assert_eq!(results[2], WriteResult::Affected(1), "{kind}: B added");
        assert_eq!(
            results[3],
            WriteResult::Affected(0),
            "{kind}: OLD known before"
        );

        let a = repo.pile("A").await.unwrap().unwrap();
        assert_eq!(a.registration, "Pending", "{kind}: the first admission's");
        assert_eq!(
            a.firmware_version.as_deref(),
            Some("2.0"),
            "{kind}: last boot"
        );
        assert_eq!(a.last_boot, Some(1_000), "{kind}");
        assert_eq!(a.last_seen, Some(1_000), "{kind}");
        assert_eq!(a.connection, Some(2), "{kind}: the last connection");
        assert_eq!(a.node.as_deref(), Some("n1"), "{kind}");
        assert_eq!(a.connected_at, Some(1_000), "{kind}");
        assert_eq!(a.firmware_status.as_deref(), Some("Installing"), "{kind}");
        let gone = repo.pile("GONE").await.unwrap().unwrap();
        assert_eq!(gone.connection, None, "{kind}: connected, then gone");
        assert!(repo.pile("DEL").await.unwrap().is_none(), "{kind}");
        assert!(
            repo.connectors(Some("DEL")).await.unwrap().is_empty(),
            "{kind}"
        );
        let old = repo.pile("OLD").await.unwrap().unwrap();
        assert_eq!(old.registration, "Accepted", "{kind}: kept as it was");

        let connectors = repo.connectors(Some("A")).await.unwrap();
        let of = |c: i64| {
            connectors
                .iter()
                .find(|r| r.connector == c)
                .map(|r| (r.status.as_str(), r.time))
        };
        assert_eq!(
            of(1),
            Some(("Preparing", 200)),
            "{kind}: the latest by time"
        );
        assert_eq!(
            of(2),
            Some(("Finishing", 300)),
            "{kind}: same time, later write"
        );
        let history = repo.status_history("A", 10).await.unwrap();
        assert_eq!(history.len(), 4, "{kind}: every status in the history");

        let events = repo.events("A", 10).await.unwrap();
        let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            ["Connected", "FirmwareStatus", "Rebooted"],
            "{kind}: each event once"
        );

        let piles = repo.piles().await.unwrap();
        let storm: Vec<&PileRow> = piles.iter().filter(|p| p.id.starts_with('S')).collect();
        assert_eq!(storm.len(), 450, "{kind}");
        assert!(
            storm
                .iter()
                .all(|p| p.firmware_version.as_deref() == Some("3.0")
                    && p.connection.is_some()
                    && p.last_boot == Some(1_000)),
            "{kind}: every pile of the storm booted and connected"
        );
        let connectors = repo.connectors(None).await.unwrap();
        assert_eq!(
            connectors
                .iter()
                .filter(|c| c.pile.starts_with('S'))
                .count(),
            450,
            "{kind}"
        );
        assert_eq!(repo.events("S449", 10).await.unwrap().len(), 1, "{kind}");
    }
}
