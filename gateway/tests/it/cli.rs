//! The `medledger-gateway` binary's command line.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_medledger-gateway");

#[test]
fn help_explains_every_flag() {
    let output = Command::new(BINARY).args(["run", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--relay",
        "--patients",
        "--speed",
        "--spool",
        "--keys",
        "--window-minutes",
        "--backfill-hours",
        "--no-default-rules",
        "--tick-ms",
    ] {
        assert!(help.contains(flag), "run --help does not mention {flag}:\n{help}");
    }
    let top = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(String::from_utf8(top.stdout).unwrap().contains("Quick start"));
}

#[test]
fn bad_input_is_a_readable_error_not_a_panic() {
    let output = Command::new(BINARY)
        .args(["run", "--relay", "http://127.0.0.1:9", "--speed", "0", "--spool"])
        .arg(std::env::temp_dir().join("medledger-gateway-cli-test"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--speed must be a positive number"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
