//! The `ocpile` binary as a user runs it.

use std::process::Command;

fn ocpile(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ocpile runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn frame_shows_the_callerror_a_bad_frame_gets() {
    let (ok, out) = ocpile(&["frame", r#"[2,"abc","Reset",{"type":"Warm"}]"#]);
    assert!(ok);
    assert!(
        out.starts_with(r#"answer: [4,"abc","PropertyConstraintViolation","#),
        "{out}"
    );

    let (ok, out) = ocpile(&["frame", "--lenient", r#"[2,"abc","Reset",{"type":"Warm"}]"#]);
    assert!(ok);
    assert!(out.contains("CALL Reset id abc"), "{out}");
    assert!(
        out.contains(r#"deviation: UnknownEnumValue: ResetType: unknown value "Warm""#),
        "{out}"
    );

    let (_, out) = ocpile(&[
        "frame",
        r#"[2,"x","BootNotification",{"chargePointVendor":"V"}]"#,
    ]);
    assert!(out.contains("OccurenceConstraintViolation"), "{out}");
}

/// Every subcommand's help says what it does, and every option what it is.
#[test]
fn every_subcommand_and_option_has_its_help() {
    let subcommands = ["bench", "central", "demo", "fleet", "frame", "pile", "send"];
    let (ok, top) = ocpile(&["--help"]);
    assert!(ok);
    for sub in subcommands {
        assert!(
            top.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} is listed: {top}"
        );
        let (ok, help) = ocpile(&[sub, "-h"]);
        assert!(ok, "{sub} -h");
        let about = help.lines().next().unwrap_or_default();
        assert!(
            !about.is_empty() && !about.starts_with("Usage"),
            "{sub}: {help}"
        );
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let option = line.trim_start();
            if !option.starts_with('-') || option.starts_with("-h, --help") {
                continue;
            }
            // `--name <VALUE>  What it is [default: ...]`, or the text on the next line.
            let text = match option.split_once("  ") {
                Some((_, t)) => t.trim(),
                None => lines
                    .get(i + 1)
                    .map(|l| l.trim())
                    .filter(|l| !l.starts_with('-'))
                    .unwrap_or_default(),
            };
            assert!(
                !text.is_empty() && !text.starts_with('['),
                "{sub}: {option:?} has no help"
            );
        }
    }
    let (_, demo) = ocpile(&["demo", "-h"]);
    assert!(demo.contains("fleet of virtual piles"), "{demo}");
    assert!(!demo.contains("loopback"), "{demo}");
    let (_, bench) = ocpile(&["bench", "--help"]);
    assert!(!bench.contains("issue"), "{bench}");
}
