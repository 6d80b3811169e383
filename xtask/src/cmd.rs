//! Running external commands: each one is printed before it runs (`$ cargo test --workspace`),
//! and a non-zero exit becomes an error that names the command.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The workspace root: the parent of this crate's directory.
pub fn root() -> PathBuf {
    let xtask_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// A command from a line such as `"cargo test --workspace"`, run from the workspace root.
/// The line is split on whitespace; there is no shell and no quoting.
pub fn new(line: &str) -> Command {
    let mut words = line.split_whitespace();
    let mut cmd = Command::new(words.next().expect("a command line names a program"));
    cmd.args(words).current_dir(root());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Whether `name` is one of the variables `cargo run` sets for xtask itself. A nested cargo
/// must not see them: build scripts such as ring's rerun when `CARGO_PKG_NAME` or
/// `CARGO_MANIFEST_DIR` change, so a build under `cargo xtask` and the same build from a shell
/// would each recompile ring and everything above it (rustls, libp2p's TLS and QUIC…).
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
        )
}

/// Prints the command, runs it with inherited output, and fails if it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs the command silently and returns its stdout if it exits zero (for presence checks).
pub fn stdout(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command as a shell user would type it, with any environment it sets in front.
fn display(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())));
    let program = std::iter::once(cmd.get_program().to_string_lossy().into_owned());
    let args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
    envs.chain(program).chain(args).collect::<Vec<_>>().join(" ")
}

/// A minimal HTTP/1.0 GET returning the body of a 200 answer (xtask stays dependency-light:
/// no HTTP client crate).
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    // The server may answer a 1.0 request as HTTP/1.0 or HTTP/1.1.
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}
