//! `cargo xtask test`: every check CI runs, in the order a developer wants them.
//!
//! All steps run even when one fails, so one run shows everything that is broken. The last
//! line is `N passed, M failed`; CI reads it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{cmd, setup};

/// The checks: a name for the summary and the command that runs it.
///
/// Every cargo command selects the whole workspace and runs with Clippy as the workspace's
/// compiler (see [`with_shared_build`]): cargo resolves features per selection, so `-p relay` or
/// `--exclude tests` after a `--workspace` build recompiles most of the dependency graph with
/// other features. One selection means one build; the build step is also the lint step, and
/// the later steps and the test harnesses reuse its binaries ([`BINARIES`]).
const STEPS: &[(&str, &str)] = &[
    ("format", "cargo fmt --all -- --check"),
    ("build + clippy (all targets, -D warnings)", BUILD),
    // Unit and integration tests, and the node-process tests of tests/ (which hold a lock
    // so that one network runs at a time).
    (
        "tests (unit, integration, node processes)",
        "cargo test --workspace --no-fail-fast",
    ),
];

/// Builds every target of the workspace, including the binaries the later steps start.
const BUILD: &str = "cargo test --workspace --all-targets --no-run";

/// The binaries the test harnesses would otherwise build with a narrower cargo selection:
/// (environment variable the harness reads, binary in target/debug).
const BINARIES: &[(&str, &str)] = &[
    ("MEDLEDGER_NODE_BIN", "medledger-node"),
    ("MEDLEDGER_RELAY_BIN", "medledger-relay"),
    ("MEDLEDGER_GATEWAY_BIN", "medledger-gateway"),
    ("MEDLEDGER_LYING_RELAY", "lying_relay"),
];

/// Makes Clippy compile the workspace's own crates (dependencies stay plain rustc), failing
/// on any warning. `cargo clippy` does exactly this, but for `cargo check`, whose metadata-only
/// artifacts no test can reuse: linting inside the test build saves a whole second compile of
/// two libp2p versions and Malachite (~5 minutes on 2 cores). Cargo tracks the wrapper, so a
/// later plain `cargo test` rebuilds only our crates. The harness binaries are passed along.
fn with_shared_build(mut cmd: Command) -> Result<Command> {
    let sysroot =
        cmd::stdout(&mut cmd::new("rustc --print sysroot")).context("rustc --print sysroot failed")?;
    let driver = PathBuf::from(sysroot.trim()).join("bin/clippy-driver");
    if !driver.is_file() {
        bail!("{} is missing (rustup component add clippy)", driver.display());
    }
    // cargo-clippy's own protocol: arguments joined by this separator.
    cmd.env("RUSTC_WORKSPACE_WRAPPER", driver)
        .env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__");
    let debug = cmd::target_dir().join("debug");
    for (variable, binary) in BINARIES {
        cmd.env(variable, debug.join(binary));
    }
    Ok(cmd)
}

/// A cargo (or trunk, which runs cargo) command line with Clippy as the workspace compiler.
fn shared_build(line: &str) -> Result<Command> {
    with_shared_build(cmd::new(line))
}

/// The step that needs a running relay (see [`browser_light_client`]).
const BROWSER_STEP: &str = "light client browser test (headless Chromium, relay process)";
/// The dashboard's Playwright specs against a relay and a gateway (see [`dashboard_e2e`]).
const DASHBOARD_STEP: &str = "dashboard e2e (Playwright, relay + gateway processes)";

/// Runs every step, or with `only` those whose name contains it.
pub fn run(skip_setup: bool, only: Option<&str>) -> Result<()> {
    if !skip_setup {
        // With the browser tools: the light client's browser test needs chromium,
        // chromedriver and wasm-bindgen-test-runner.
        setup::run(true, false)?;
    }
    let selected = |name: &str| only.is_none_or(|text| name.contains(text));
    let mut summary = Vec::new();
    for (name, line) in STEPS.iter().filter(|(name, _)| selected(name)) {
        let command = |line: &str| {
            if line.starts_with("cargo fmt") {
                Ok(cmd::new(line))
            } else {
                shared_build(line)
            }
        };
        summary.push(step(name, || cmd::run(&mut command(line)?)));
    }
    if selected(BROWSER_STEP) {
        summary.push(step(BROWSER_STEP, browser_light_client));
    }
    if selected(DASHBOARD_STEP) {
        summary.push(step(DASHBOARD_STEP, dashboard_e2e));
    }

    println!("\nsummary:");
    for (name, ok, secs) in &summary {
        println!("  {:<6} {name} ({secs:.1}s)", if *ok { "ok" } else { "FAILED" });
    }
    let passed = summary.iter().filter(|(_, ok, _)| *ok).count();
    let failed = summary.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        // Exit here rather than return an error, so the count stays the very last line.
        std::process::exit(1);
    }
    Ok(())
}

/// Runs one step, printing its error; returns its name, whether it passed, and its seconds.
fn step(name: &str, run: impl FnOnce() -> Result<()>) -> (&str, bool, f32) {
    let start = Instant::now();
    let result = run();
    let secs = start.elapsed().as_secs_f32();
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
    }
    (name, result.is_ok(), secs)
}

/// Starts `medledger-relay --dev` (fresh data, any free ports), reads its browser addresses
/// from the discovery document, and runs light-client/tests/browser.rs in headless Chromium
/// against them (the addresses are compiled into the test). The relay is stopped afterwards,
/// also when the test fails.
fn browser_light_client() -> Result<()> {
    cmd::run(&mut shared_build(BUILD)?)?;
    let relay = RelayProcess::start()?;
    let discovery = relay.discovery()?;
    let chromedriver = cmd::stdout(&mut cmd::new("which chromedriver"))
        .map(|path| path.trim().to_owned())
        .filter(|path| !path.is_empty())
        .context("chromedriver is not on PATH (cargo xtask setup --browser installs it)")?;
    let mut test =
        shared_build("cargo test -p medledger-light-client --target wasm32-unknown-unknown --test browser")?;
    test.env("MEDLEDGER_RELAY_WEBRTC", discovery.addr("/webrtc-direct/")?)
        .env("MEDLEDGER_RELAY_WS", discovery.addr("/ws/")?)
        .env("MEDLEDGER_RELAY_ACCOUNT", &discovery.storage_node)
        .env("CHROMEDRIVER", chromedriver)
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120");
    let result = cmd::run(&mut test);
    if result.is_err() {
        eprintln!("relay log: {}", relay.log.display());
    }
    result
}

/// Builds the dashboard (trunk, dev profile) and serves it from `medledger-relay --dev` with a
/// gateway simulating the demo patients, then runs tests/e2e/*.spec.mjs (playwright-core,
/// Debian Chromium) against it; screenshots go to target/screenshots.
fn dashboard_e2e() -> Result<()> {
    cmd::run(&mut cmd::new("cargo fetch"))?;
    // The dev profile: the release build's LTO over one codegen unit is minutes of CI time;
    // the demo and the bundle-size bench build the release.
    cmd::run(shared_build("trunk build")?.env("TRUNK_OFFLINE", "true"))?;
    cmd::run(&mut shared_build(BUILD)?)?;
    let relay = RelayProcess::start()?;
    relay.discovery()?;
    let target = cmd::target_dir();
    let spool = relay.data.join("gateway-spool");
    let keys = relay.data.join("dev-keys.json");
    let gateway_log = relay.data.with_file_name("gateway.log");
    let mut gateway = Command::new(target.join("debug/medledger-gateway"))
        .args(["run", "--relay", &format!("http://127.0.0.1:{}", relay.http)])
        .arg("--keys")
        .arg(&keys)
        .args([
            "--patients",
            "3",
            "--speed",
            "120",
            "--window-minutes",
            "1",
            "--backfill-hours",
            "2",
        ])
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&gateway_log)?)
        .spawn()
        .context("starting medledger-gateway")?;
    let mut result = Ok(());
    for spec in [
        "dashboard",
        "patient",
        "consent",
        "breakglass",
        "study",
        "erasure",
        "lying-relay",
    ] {
        let mut node = with_shared_build(cmd::new(&format!("node tests/e2e/{spec}.spec.mjs")))?;
        node.env("MEDLEDGER_URL", format!("http://127.0.0.1:{}", relay.http))
            .env("MEDLEDGER_DEV_KEYS", &keys)
            .env("MEDLEDGER_SCREENSHOTS", target.join("screenshots"));
        if let Err(e) = cmd::run(&mut node) {
            eprintln!(
                "relay log: {}; gateway log: {}",
                relay.log.display(),
                gateway_log.display()
            );
            result = Err(e);
            break;
        }
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    result
}

/// How long the relay may take to serve its discovery document with its libp2p addresses.
const RELAY_START: Duration = Duration::from_secs(60);

/// A `medledger-relay --dev` child process, stopped and its data removed when dropped.
struct RelayProcess {
    child: Child,
    http: u16,
    data: PathBuf,
    log: PathBuf,
}

/// What the browser test needs from `/.well-known/medledger.json`.
struct Discovery {
    multiaddrs: Vec<String>,
    storage_node: String,
}

impl Discovery {
    fn addr(&self, kind: &str) -> Result<&str> {
        self.multiaddrs
            .iter()
            .find(|a| a.contains(kind))
            .map(String::as_str)
            .with_context(|| {
                format!(
                    "no {kind} address in the discovery document: {:?}",
                    self.multiaddrs
                )
            })
    }
}

impl RelayProcess {
    fn start() -> Result<RelayProcess> {
        let dir = cmd::root().join("target/xtask-browser-relay");
        let data = dir.join("data");
        // A fresh chain each run: the test only needs a live one.
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("relay.log");
        let http = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let target = cmd::target_dir();
        let mut relay = Command::new(target.join("debug/medledger-relay"));
        relay
            .arg("--dev")
            .arg("--data")
            .arg(&data)
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args([
                "--p2p-host",
                "127.0.0.1",
                "--p2p-tcp",
                "0",
                "--p2p-ws",
                "0",
                "--p2p-webrtc",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        println!("$ {relay:?} 2> {}", log.display());
        let child = relay.spawn().context("starting medledger-relay")?;
        Ok(RelayProcess {
            child,
            http,
            data,
            log,
        })
    }

    /// Polls the discovery document until it lists the WebRTC and WebSocket addresses.
    fn discovery(&self) -> Result<Discovery> {
        let start = Instant::now();
        loop {
            if let Some(discovery) = self.try_discovery() {
                if discovery.multiaddrs.len() >= 2 {
                    return Ok(discovery);
                }
            }
            if start.elapsed() > RELAY_START {
                bail!(
                    "the relay served no discovery document within {RELAY_START:?}; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn try_discovery(&self) -> Option<Discovery> {
        let body = cmd::http_get(&format!("127.0.0.1:{}", self.http), "/.well-known/medledger.json")?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(Discovery {
            multiaddrs: doc["multiaddrs"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            storage_node: doc["storage_node"].as_str()?.to_owned(),
        })
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
