//! The `medledger-node` binary as an operator uses it: help, init, show-address, localnet,
//! and a clear failure when a home has no genesis yet.

use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_medledger-node");

fn node(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("running medledger-node")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn help_names_every_command() {
    let help = node(&["--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    for command in ["init", "localnet", "start", "show-address"] {
        assert!(text.contains(command), "--help lacks {command}:\n{text}");
    }
}

#[test]
fn init_keeps_the_key_and_show_address_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("validator");
    let first = node(&["init", "--home", path(&home), "--moniker", "clinic-a"]);
    assert!(first.status.success(), "{first:?}");
    let shown = node(&["show-address", "--home", path(&home)]);
    assert!(shown.status.success());
    let address = stdout(&shown).trim().to_owned();
    assert_eq!(address.len(), 64, "a hex Ed25519 public key: {address}");
    assert!(stdout(&first).contains(&address));
    // A second init must not replace the validator's key.
    let again = node(&["init", "--home", path(&home)]);
    assert!(again.status.success());
    assert!(stdout(&again).contains(&address));
}

#[test]
fn localnet_creates_homes_sharing_one_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let made = node(&[
        "localnet",
        "--dir",
        path(dir.path()),
        "--validators",
        "3",
        "--extra",
        "1",
    ]);
    assert!(made.status.success(), "{made:?}");
    let genesis: Vec<Vec<u8>> = (0..4)
        .map(|i| std::fs::read(dir.path().join(format!("node{i}/genesis.json"))).unwrap())
        .collect();
    assert!(genesis.windows(2).all(|pair| pair[0] == pair[1]));
    let text = String::from_utf8_lossy(&genesis[0]);
    for i in 0..3 {
        let shown = node(&[
            "show-address",
            "--home",
            path(&dir.path().join(format!("node{i}"))),
        ]);
        let address = stdout(&shown).trim().to_owned();
        assert!(text.contains(&address), "validator {i} missing from the genesis");
    }
    let extra = node(&["show-address", "--home", path(&dir.path().join("node3"))]);
    assert!(
        !text.contains(stdout(&extra).trim()),
        "the extra home holds no power"
    );
}

#[test]
fn start_without_a_genesis_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("fresh");
    assert!(node(&["init", "--home", path(&home)]).status.success());
    let start = node(&["start", "--home", path(&home)]);
    assert!(!start.status.success());
    let error = String::from_utf8_lossy(&start.stderr);
    assert!(error.contains("genesis"), "unclear error: {error}");
}
