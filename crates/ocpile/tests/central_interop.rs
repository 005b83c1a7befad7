//! A charge point built on PyPI's `ocpp` library (2.x) against `ocpile central`: it boots,
//! authorizes, runs a transaction with meter values and replays its StartTransaction and
//! StopTransaction under new message ids: one transaction, one transactionId. Every frame
//! the central sent validates against the official schemas. Needs the library:
//! `scripts/test.sh` installs it and runs this test with `--include-ignored`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::central::{databases, start_central};
use common::state_dir;
use serde_json::{json, Value};

/// The official OCPP 1.6 material: `$OCPP16_DIR`, or `../shared/ocpp16` beside the checkout.
pub fn ocpp16_dir() -> std::path::PathBuf {
    std::env::var("OCPP16_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
        })
}

/// The official schemas, loaded as the pile's tests load them.
#[path = "../../pile/tests/common/schemas.rs"]
#[allow(dead_code)]
mod schemas;

/// Checks every frame the central sent to a pile (its message log, direction out).
pub fn check_sent_frames(log: &Value) -> usize {
    let schemas = schemas::Schemas::load();
    let mut checked = 0;
    for m in log
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
    {
        let frame: Value = serde_json::from_str(m["frame"].as_str().unwrap()).unwrap();
        let action = m["action"]
            .as_str()
            .expect("an action on every frame we send");
        let (name, payload) = match frame[0].as_i64() {
            Some(2) => (action.to_owned(), &frame[3]),
            Some(3) => (format!("{action}Response"), &frame[2]),
            _ => continue,
        };
        if let Err(e) = schemas.check(&name, payload) {
            panic!("{e}");
        }
        checked += 1;
    }
    checked
}

#[test]
#[ignore = "needs PyPI's ocpp; scripts/test.sh installs it and runs this test"]
fn a_pypi_charge_point_replays_its_transaction_and_gets_one() {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with ocpp 2.x and websockets");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/pypi_charge_point.py"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (i, db) in databases("interop").into_iter().enumerate() {
        let data = state_dir(&format!("central-interop{i}"));
        let central = start_central(&data, db.as_deref(), &["--admission", "open"]);
        runtime.block_on(central.ok(
            "POST",
            "/api/id-tags",
            Some(json!({"id_tag": "PYCARD", "status": "Accepted", "parent_id_tag": "PYFLEET"})),
        ));
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(script)
            .arg(central.ocpp_url())
            .arg("PY-CP")
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let mut results = BTreeMap::new();
        let mut done = false;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            println!("{line}");
            if let Some(rest) = line.strip_prefix("RESULT ") {
                let (name, value) = rest.split_once(' ').unwrap();
                results.insert(
                    name.to_owned(),
                    serde_json::from_str::<Value>(value).unwrap(),
                );
            }
            done |= line == "DONE";
        }
        assert!(
            child.wait().unwrap().success(),
            "the charge point exits cleanly"
        );
        assert!(done, "the charge point finished: {results:?}");
        assert_eq!(results["boot"], "Accepted");
        assert_eq!(results["authorize"], "Accepted");
        assert_eq!(
            results["start_again"], results["start"],
            "one transactionId"
        );
        assert_eq!(results["stop_again"], "Accepted");
        assert_eq!(
            results["stop_unknown"],
            Value::Null,
            "no idTag, no idTagInfo"
        );
        let tx = results["start"].as_i64().unwrap();

        runtime.block_on(async {
            let all = central
                .ok("GET", "/api/transactions?pile=PY-CP", None)
                .await;
            let all = all.as_array().unwrap();
            assert_eq!(
                all.len(),
                2,
                "the transaction and the reconciled one: {all:?}"
            );
            let t = all.iter().find(|t| t["id"] == tx).unwrap();
            assert_eq!(
                (
                    t["meter_start"].as_i64(),
                    t["meter_stop"].as_i64(),
                    t["energy_wh"].as_i64()
                ),
                (Some(1000), Some(2000), Some(1000))
            );
            assert_eq!(
                t["stop"], "2026-01-01T10:10:00.000Z",
                "the first stop counts"
            );
            let r = all.iter().find(|t| t["id"] == 424242).unwrap();
            assert_eq!(
                (
                    r["reconciled"].as_bool(),
                    r["connector"].is_null(),
                    r["meter_stop"].as_i64()
                ),
                (Some(true), true, Some(3000))
            );
            let mv = central
                .ok("GET", &format!("/api/transactions/{tx}/meter-values"), None)
                .await;
            assert_eq!(mv.as_array().unwrap().len(), 1, "stored once: {mv}");
            let deviations = central.ok("GET", "/api/piles/PY-CP/deviations", None).await;
            assert!(
                deviations
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["kind"] == "TimestampFormat" && d["action"] == "StatusNotification"),
                "{deviations}"
            );
            // Its configuration was read: three keys, none of the vendor's (asked for four at a
            // time, as its GetConfigurationMaxKeys says).
            let config = central
                .until("/api/piles/PY-CP/configuration", "the configuration", |c| {
                    c["keys"].as_array().is_some_and(|k| k.len() == 3)
                })
                .await;
            assert_eq!(config["keys"][0]["key"], "GetConfigurationMaxKeys");
            let vendor = central.ok("GET", "/api/piles/PY-CP/vendor", None).await;
            assert_eq!(
                (
                    vendor["heartbeat_interval"].as_i64(),
                    vendor["websocket"].is_null()
                ),
                (Some(300), true)
            );
            let pile = central.ok("GET", "/api/piles/PY-CP", None).await;
            assert_eq!(
                (pile["vendor"].as_str(), pile["model"].as_str()),
                (Some("PyVendor"), Some("PyModel"))
            );
            // The log is written in batches: wait until the last answer is in it.
            let log = central
                .until(
                    "/api/piles/PY-CP/messages?limit=1000",
                    "the whole log",
                    |l| {
                        l.as_array().is_some_and(|a| {
                            a.iter()
                                .filter(|m| m["action"] == "StopTransaction")
                                .count()
                                == 6
                        })
                    },
                )
                .await;
            let checked = check_sent_frames(&log);
            assert!(checked >= 10, "{checked} frames checked");
        });
    }
}

/// A charge point script on PyPI's ocpp, its output printed and kept; killed when the test
/// ends, also when it fails.
struct PyChargePoint {
    child: std::process::Child,
    output: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl PyChargePoint {
    fn start(python: &str, script: &str, csms: &str, identity: &str) -> PyChargePoint {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(script)
            .arg(csms)
            .arg(identity)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().unwrap();
        let output = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .inspect(|l| println!("{l}"))
                .collect::<Vec<String>>()
        });
        PyChargePoint {
            child,
            output: Some(output),
        }
    }

    /// Waits for it to exit, which it must do cleanly; the lines it printed.
    fn finish(mut self) -> Vec<String> {
        assert!(
            self.child.wait().unwrap().success(),
            "the charge point exits cleanly"
        );
        self.output.take().unwrap().join().unwrap()
    }
}

impl Drop for PyChargePoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs PyPI's ocpp; scripts/test.sh installs it and runs this test"]
fn a_campaign_upgrades_a_pypi_charge_point() {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with ocpp 2.x and websockets");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/pypi_firmware_pile.py"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = state_dir("central-interop-campaign");
    let central = start_central(&data, None, &["--admission", "open"]);
    let pile = PyChargePoint::start(&python, script, &central.ocpp_url(), "PY-FW");
    runtime.block_on(async {
        central
            .until("/api/piles/PY-FW", "the PyPI pile booted", |p| {
                p["firmware_version"] == "py-1.0" && p["connected"] == true
            })
            .await;
        let (code, image) = central
            .post_bytes("/api/firmware?name=py-2.0.bin", &[7u8; 10_000])
            .await;
        assert_eq!(code, 201, "{image}");
        assert_eq!(image["target"], "bin");
        let campaign = central
            .ok(
                "POST",
                "/api/campaigns",
                Some(json!({"firmware": [image["id"]], "piles": ["PY-FW"]})),
            )
            .await;
        let path = format!("/api/campaigns/{}", campaign["id"]);
        let done = central
            .until(&path, "the campaign finished", |c| c["state"] == "finished")
            .await;
        let pile = &done["piles"][0];
        assert_eq!(pile["result"], "succeeded", "{done}");
        assert_eq!(pile["from_version"], "py-1.0");
        assert_eq!(pile["to_version"], "py-2.0.bin");
        // It knows no GetFirmwareUpgradePercentages: no progress but the statuses'.
        assert_eq!(pile["percent"], 100);
        let view = central.ok("GET", "/api/piles/PY-FW", None).await;
        assert_eq!(view["firmware_version"], "py-2.0.bin");
    });
    let lines = pile.finish();
    assert!(lines.iter().any(|l| l == "DONE"), "{lines:?}");
    let notified: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT FirmwareStatusNotification "))
        .collect();
    assert_eq!(
        notified,
        ["Downloading", "Downloaded", "Installing", "Installed"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "EVENT ChangeAvailability 0 Operative"),
        "{lines:?}"
    );
}

/// A signed campaign to a PyPI charge point: it is sent SignedUpdateFirmware with the demo
/// signer's signing certificate (issued by the signer's manufacturer root) and a signature
/// that verifies over the image it downloads, and reports with SignedFirmwareStatusNotification
/// of that requestId until the campaign succeeds.
#[test]
#[ignore = "needs PyPI's ocpp; scripts/test.sh installs it and runs this test"]
fn a_signed_campaign_upgrades_a_pypi_charge_point() {
    use base64::Engine;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with ocpp 2.x and websockets");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/pypi_firmware_pile.py"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = state_dir("central-interop-signed-campaign");
    let central = start_central(&data, None, &["--admission", "open"]);
    let pile = PyChargePoint::start(&python, script, &central.ocpp_url(), "PY-SFW");
    let image: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let root = runtime.block_on(async {
        central
            .until("/api/piles/PY-SFW", "the PyPI pile booted", |p| {
                p["firmware_version"] == "py-1.0" && p["connected"] == true
            })
            .await;
        let demo = central
            .ok("POST", "/api/security/firmware-signer/demo", None)
            .await;
        let shown = central
            .ok("GET", "/api/security/firmware-signer", None)
            .await;
        assert_eq!(shown, demo);
        let root = demo["root"].clone();
        let (code, fw) = central
            .post_bytes("/api/firmware?name=py-3.0.bin", &image)
            .await;
        assert_eq!(code, 201, "{fw}");
        let campaign = central
            .ok(
                "POST",
                "/api/campaigns",
                Some(json!({"firmware": [fw["id"]], "piles": ["PY-SFW"], "signed": true})),
            )
            .await;
        let path = format!("/api/campaigns/{}", campaign["id"]);
        let done = central
            .until(&path, "the campaign finished", |c| c["state"] == "finished")
            .await;
        let pile = &done["piles"][0];
        assert_eq!(pile["result"], "succeeded", "{done}");
        assert_eq!(pile["status"], "Installed");
        assert_eq!(pile["to_version"], "py-3.0.bin");
        // Every frame the central sent it valid by the official schemas, SignedUpdateFirmware's
        // by the security whitepaper's (the log is written in batches: until its answer is in).
        let log = central
            .until(
                "/api/piles/PY-SFW/messages?limit=1000",
                "the SignedUpdateFirmware's answer in the log",
                |l| {
                    l.as_array().is_some_and(|a| {
                        a.iter().any(|m| {
                            m["action"] == "SignedUpdateFirmware" && m["direction"] == "in"
                        })
                    })
                },
            )
            .await;
        assert!(check_sent_frames(&log) >= 3);
        root.as_str().unwrap().to_owned()
    });
    let lines = pile.finish();
    assert!(lines.iter().any(|l| l == "DONE"), "{lines:?}");
    let update: Value = lines
        .iter()
        .find_map(|l| l.strip_prefix("EVENT SignedUpdateFirmware "))
        .map(|j| serde_json::from_str(j).unwrap())
        .expect("a SignedUpdateFirmware");
    let firmware = &update["firmware"];
    let der = |pem: &str| {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    };
    let (root_der, cert_der) = (
        der(&root),
        der(firmware["signing_certificate"].as_str().unwrap()),
    );
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    let (_, cert) = X509Certificate::from_der(&cert_der).unwrap();
    cert.verify_signature(Some(root.public_key()))
        .expect("the signing certificate chains to the manufacturer root");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(firmware["signature"].as_str().unwrap())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(&image, &signature)
    .expect("the signature verifies over the image");
    let notified: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT SignedFirmwareStatusNotification "))
        .collect();
    assert_eq!(
        notified,
        [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed"
        ]
    );
}

/// A PyPI charge point on a site: the site's fail-safe TxDefaultProfile when it boots, its
/// transaction's TxProfile when it starts (at its ChargeProfileMaxStackLevel, the whole
/// capacity since it is alone), each as it came over the wire valid by the official schema,
/// each answered Accepted and recorded so.
#[test]
#[ignore = "needs PyPI's ocpp; scripts/test.sh installs it and runs this test"]
fn a_pypi_charge_point_on_a_site_gets_valid_charging_profiles() {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with ocpp 2.x and websockets");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/pypi_site_pile.py"
    );
    let schemas = schemas::Schemas::load();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (i, db) in databases("interop_site").into_iter().enumerate() {
        let data = state_dir(&format!("central-interop-site{i}"));
        let central = start_central(&data, db.as_deref(), &["--admission", "open"]);
        let site = runtime.block_on(async {
            central.accept_id_tag("PYCARD").await;
            central
                .ok("POST", "/api/piles", Some(json!({"id": "PY-SITE"})))
                .await;
            let site = central
                .ok(
                    "POST",
                    "/api/sites",
                    Some(json!({"name": "PyPI yard", "capacity_a": 32, "failsafe_a": 6})),
                )
                .await;
            let site = site["id"].as_i64().unwrap();
            central
                .ok("PUT", &format!("/api/sites/{site}/piles/PY-SITE"), None)
                .await;
            site
        });
        let output = Command::new(&python)
            .arg("-u")
            .arg(script)
            .arg(central.ocpp_url())
            .arg("PY-SITE")
            .stderr(Stdio::inherit())
            .output()
            .expect("python runs");
        let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .inspect(|l| println!("{l}"))
            .map(str::to_owned)
            .collect();
        assert!(output.status.success(), "the charge point exits cleanly");
        assert!(lines.iter().any(|l| l == "DONE"), "{lines:?}");
        let results: BTreeMap<&str, Value> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .map(|r| {
                let (name, value) = r.split_once(' ').unwrap();
                (name, serde_json::from_str(value).unwrap())
            })
            .collect();
        assert_eq!(results["boot"], "Accepted");
        assert_eq!(results["default_limit"], 6.0, "the fail-safe");
        assert_eq!(results["tx_limit"], 32.0, "alone: the whole capacity");
        assert_eq!(results["stop"], "Accepted");
        let tx = results["start"].as_i64().unwrap();

        // Every SetChargingProfile it got, as it came, is valid by the official schema.
        let profiles: Vec<Value> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("PROFILE "))
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
        for p in &profiles {
            if let Err(e) = schemas.check("SetChargingProfile", p) {
                panic!("{e}");
            }
        }
        let purpose = |p: &Value| p["csChargingProfiles"]["chargingProfilePurpose"].clone();
        let default = profiles
            .iter()
            .find(|p| purpose(p) == "TxDefaultProfile")
            .expect("a TxDefaultProfile at boot");
        assert_eq!(default["connectorId"], 0, "{default}");
        let own = profiles
            .iter()
            .find(|p| purpose(p) == "TxProfile")
            .expect("a TxProfile on start");
        assert_eq!(
            (
                own["connectorId"].as_i64(),
                own["csChargingProfiles"]["transactionId"].as_i64(),
                own["csChargingProfiles"]["stackLevel"].as_i64(),
                own["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"].as_str()
            ),
            (Some(1), Some(tx), Some(3), Some("A")),
            "{own}"
        );

        runtime.block_on(async {
            // The central recorded each answered Accepted, and decided the session's grant.
            let commands = central
                .until(
                    "/api/piles/PY-SITE/commands",
                    "every answer recorded",
                    |c| {
                        c.as_array()
                            .is_some_and(|c| c.iter().all(|c| !c["outcome"].is_null()))
                    },
                )
                .await;
            let sent: Vec<&Value> = commands
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["action"] == "SetChargingProfile")
                .collect();
            assert_eq!(sent.len(), profiles.len(), "{commands}");
            for c in &sent {
                assert_eq!(c["result"]["response"]["status"], "Accepted", "{c}");
            }
            let log = central
                .ok("GET", &format!("/api/sites/{site}/allocations"), None)
                .await;
            assert!(
                log.as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["transaction"] == tx && a["granted_a"] == 32.0),
                "{log}"
            );
        });
    }
}
