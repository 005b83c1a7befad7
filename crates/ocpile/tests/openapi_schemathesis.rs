//! The API against its own OpenAPI document: schemathesis (PyPI) reads `/api/openapi.json`
//! from a running `ocpile central` with two piles and an idTag registered, and sends it
//! generated requests, valid ones and malformed ones. No answer may be a server error, every
//! answer must have a documented status, content type and schema, and malformed input must be
//! refused. Needs schemathesis: `scripts/test.sh` installs it and runs this test with
//! `--include-ignored`. `interop/schemathesis_hooks.py` keeps a CPython 3.11 parser error in
//! Hypothesis's statistics from ending the run.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::central::{start_central, TOKEN};
use common::state_dir;
use serde_json::json;

/// How long schemathesis may generate requests; the run ends a little after.
const BUDGET_S: u64 = 100;

#[test]
#[ignore = "needs PyPI's schemathesis; scripts/test.sh installs it and runs this test"]
fn the_api_answers_as_its_openapi_document_says() {
    let python = std::env::var("OCPILE_INTEROP_PYTHON")
        .expect("OCPILE_INTEROP_PYTHON: a python with schemathesis 4.x");
    let data = state_dir("central-schemathesis");
    // Commands to piles that are not connected answer 409 at once; a short timeout keeps any
    // other wait short.
    let mut central = start_central(
        &data,
        None,
        &["--admission", "approve", "--command-timeout", "1"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        central
            .ok("POST", "/api/piles", Some(json!({"id": "CP001"})))
            .await;
        central
            .ok(
                "POST",
                "/api/piles",
                Some(json!({"id": "CP002", "password": "correct-horse-1"})),
            )
            .await;
        central.accept_id_tag("CARD1").await;
    });

    let work = state_dir("schemathesis-work");
    std::fs::create_dir_all(&work).unwrap();
    let mut child = Command::new(&python)
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("http://{}/api/openapi.json", central.addr))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
        ])
        .args(["--max-examples", "20"])
        .args(["--max-time", &BUDGET_S.to_string()])
        .args(["--request-timeout", "5"])
        .args(["--workers", "2"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env(
            "SCHEMATHESIS_HOOKS",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/schemathesis_hooks.py"
            ),
        )
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis starts");
    // Read the output on threads so that a full pipe never blocks the run.
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(BUDGET_S + 80);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let report = format!("{stdout}\n{stderr}");
    let status = status.unwrap_or_else(|| panic!("schemathesis overran its time:\n{report}"));
    assert!(
        status.success(),
        "schemathesis failed ({status}):\n{report}"
    );
    // It tested every operation of the document but the document itself, and the central
    // lived through it.
    let document = runtime.block_on(central.ok("GET", "/api/openapi.json", None));
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert_eq!(tested, Some(operations - 1), "{report}");
    assert!(
        central.child.try_wait().unwrap().is_none(),
        "the central died"
    );
    let piles = runtime.block_on(central.ok("GET", "/api/piles", None));
    assert!(piles.as_array().is_some_and(|p| !p.is_empty()), "{piles}");
    central.kill();
}
