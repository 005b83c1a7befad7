//! The security extension's rows on SQLite and PostgreSQL: a security event stored once, the
//! events listed newest first by pile, type and time, the certificates signed and the piles'
//! answers to them.

use central::store::security::{FROM_CENTRAL, FROM_PILE};
use central::store::{CertificateRow, SecurityEventRow};

mod common;

fn event(
    pile: &str,
    time: i64,
    kind: &str,
    tech_info: Option<&str>,
    source: &str,
) -> SecurityEventRow {
    SecurityEventRow {
        pile: pile.into(),
        time,
        kind: kind.into(),
        tech_info: tech_info.map(str::to_owned),
        source: source.into(),
        received_at: 9_000,
    }
}

#[tokio::test]
async fn security_events_and_certificates() {
    for (db, repo) in common::repositories("store_security", "rows").await {
        let a = event("A", 1_000, "FirmwareUpdated", Some("1.0"), FROM_PILE);
        assert!(repo.record_security_event(&a).await.unwrap(), "{db}");
        // The same again (after a reconnect, received later): one row.
        let again = SecurityEventRow {
            received_at: 9_999,
            ..a.clone()
        };
        assert!(!repo.record_security_event(&again).await.unwrap(), "{db}");
        // Another techInfo at the same time is another event.
        let b = event("A", 1_000, "FirmwareUpdated", Some("2.0"), FROM_PILE);
        assert!(repo.record_security_event(&b).await.unwrap(), "{db}");
        let c = event(
            "A",
            2_000,
            "SignCertificateRejected",
            Some("weak"),
            FROM_CENTRAL,
        );
        let d = event("B", 1_500, "ResetOrReboot", None, FROM_PILE);
        for e in [&c, &d] {
            assert!(repo.record_security_event(e).await.unwrap(), "{db}");
        }
        let all = repo.security_events(None, None, None, 100).await.unwrap();
        let times: Vec<(String, i64)> = all.iter().map(|e| (e.pile.clone(), e.time)).collect();
        assert_eq!(
            times,
            [
                ("A".into(), 2_000),
                ("B".into(), 1_500),
                ("A".into(), 1_000),
                ("A".into(), 1_000)
            ],
            "{db}"
        );
        assert_eq!(all[0], c, "{db}");
        assert_eq!(all[1], d, "{db}");
        let of_a = repo
            .security_events(Some("A"), None, Some(2_000), 100)
            .await
            .unwrap();
        assert_eq!(of_a.len(), 2, "{db}");
        assert!(
            of_a.iter()
                .all(|e| e.time == 1_000 && e.received_at == 9_000),
            "{db}"
        );
        let refused = repo
            .security_events(Some("A"), Some("SignCertificateRejected"), None, 100)
            .await
            .unwrap();
        assert_eq!(refused, std::slice::from_ref(&c), "{db}");
        assert_eq!(
            repo.security_events(None, None, None, 1).await.unwrap(),
            [c],
            "{db}"
        );

        let cert = |serial: &str, signed_at: i64| CertificateRow {
            serial: serial.into(),
            pile: "A".into(),
            not_before: signed_at - 300_000,
            not_after: signed_at + 365 * 86_400_000,
            signed_at,
            certificate: format!("PEM {serial}"),
            delivery: None,
        };
        repo.put_certificate(&cert("01AB", 10_000)).await.unwrap();
        repo.put_certificate(&cert("02CD", 20_000)).await.unwrap();
        assert!(
            repo.certificate_delivered("01AB", "Accepted")
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !repo
                .certificate_delivered("FFFF", "Accepted")
                .await
                .unwrap(),
            "{db}"
        );
        let listed = repo.certificates("A", 100).await.unwrap();
        assert_eq!(
            listed,
            [
                cert("02CD", 20_000),
                CertificateRow {
                    delivery: Some("Accepted".into()),
                    ..cert("01AB", 10_000)
                },
            ],
            "{db}"
        );
        assert!(
            repo.certificates("B", 100).await.unwrap().is_empty(),
            "{db}"
        );
    }
}

/// Two nodes starting at once on one database generate a CA each, and both sign with the one
/// stored first; a later start reads it back.
#[tokio::test]
async fn every_node_of_a_database_has_the_same_ca() {
    let (a, b) = common::two_nodes("store_security", "ca").await;
    let options = central::Options::new(common::fresh_dir("store-security-ca"));
    let now = 1_800_000_000_000;
    let (ca_a, ca_b) = tokio::join!(
        central::security::ca::load(&options, &*a, now),
        central::security::ca::load(&options, &*b, now)
    );
    let (ca_a, ca_b) = (ca_a.unwrap(), ca_b.unwrap());
    assert_eq!(ca_a.certificate_pem(), ca_b.certificate_pem());
    let again = central::security::ca::load(&options, &*a, now)
        .await
        .unwrap();
    assert_eq!(again.certificate_der(), ca_a.certificate_der());
    let stored = a.setting("security_ca").await.unwrap().unwrap();
    assert!(
        stored.starts_with(ca_a.certificate_pem().trim_end())
            && stored.contains("-----BEGIN PRIVATE KEY-----"),
        "{stored}"
    );
}
