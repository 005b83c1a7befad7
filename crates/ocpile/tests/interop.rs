//! PyPI's `ocpp` library (2.x) as the central system sends every example frame of the FAQ that
//! the pile covers and checks the documented answers (`tests/interop/faq_central.py`).
//! Needs that library: `scripts/test.sh` installs it and runs this test with `--ignored`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs PyPI's ocpp; scripts/test.sh installs it and runs this test"]
fn faq_examples_against_a_pypi_ocpp_central_system() {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with ocpp 2.x and websockets");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/faq_central.py");
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut central = Command::new(python)
        .arg("-u")
        .arg(script)
        .arg(&control)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut lines = BufReader::new(central.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the central prints its port").unwrap();
    let port: u16 = first
        .strip_prefix("PORT ")
        .expect("PORT line")
        .parse()
        .unwrap();

    // The FAQ's server name is pinned to a closed local port: the pile tries it, fails, and
    // falls back, without any traffic leaving this machine.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let state = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let mut pile = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args([
            "pile",
            "--id",
            "SN-INTEROP",
            "--csms",
            &format!("ws://127.0.0.1:{port}/ocpp/"),
            "--settings-fallback",
            "3",
            "--control",
            &control,
        ])
        .args([
            "--resolve",
            &format!("cpam3.x-cheng.net:443={closed}"),
            "--resolve",
            &format!("cpam3.x-cheng.net:80={closed}"),
        ])
        .arg("--state")
        .arg(&state)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpile starts");

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut report = Vec::new();
    for line in lines {
        let line = line.unwrap();
        println!("{line}");
        report.push(line);
        assert!(Instant::now() < deadline, "the interop run takes too long");
    }
    let status = central.wait().unwrap();
    let _ = pile.kill();
    let _ = pile.wait();
    let failures: Vec<&String> = report.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(status.success(), "{report:#?}");
    assert!(
        report.iter().filter(|l| l.starts_with("PASS")).count() >= 38,
        "{report:#?}"
    );
}
