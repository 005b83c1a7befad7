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
