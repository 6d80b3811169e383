//! `cargo xtask setup`: install what the project needs, skipping what is already there.
//!
//! Each [`Tool`] says how to tell it is present and how to install it. Running setup twice
//! installs nothing the second time.

use anyhow::{bail, Result};

use crate::cmd;

/// One thing the project needs on the machine.
struct Tool {
    name: &'static str,
    present: fn() -> bool,
    /// Command lines run in order, from the workspace root, when the tool is missing.
    install: &'static [&'static str],
}

/// Needed by `cargo xtask test` and `demo` today.
const BASE: &[Tool] = &[
    Tool {
        name: "rustfmt",
        present: || succeeds("cargo fmt --version"),
        install: &["rustup component add rustfmt"],
    },
    Tool {
        name: "clippy",
        present: || succeeds("cargo clippy --version"),
        install: &["rustup component add clippy"],
    },
    Tool {
        name: "rustup target wasm32-unknown-unknown",
        present: || {
            let installed = cmd::stdout(&mut cmd::new("rustup target list --installed"));
            installed.is_some_and(|out| out.lines().any(|l| l.trim() == "wasm32-unknown-unknown"))
        },
        install: &["rustup target add wasm32-unknown-unknown"],
    },
    // The relay's S3 blob-store test runs against a real S3-compatible server (moto).
    Tool {
        name: "moto[server] (PyPI)",
        present: || succeeds("python3 -m moto.server --help"),
        install: &["python3 -m pip install --quiet moto[server]"],
    },
    // The gateway's FHIR export test validates with a third-party FHIR R4 validator.
    Tool {
        name: "fhir.resources (PyPI)",
        present: || succeeds("python3 -c __import__('fhir.resources.R4B.bundle')"),
        install: &["python3 -m pip install --quiet fhir.resources"],
    },
];

/// For the dashboard and the browser tests (`setup --browser`, and `cargo xtask test`).
const BROWSER: &[Tool] = &[
    // Both tools are built unoptimised (`--debug`): trunk only drives cargo and copies files,
    // and wasm-bindgen's extra seconds per build are far less than the optimised builds'
    // install time on a fresh 2-core machine (measured: trunk 5.4 min instead of ~14 with its
    // fat LTO; wasm-bindgen-cli 1.6 min instead of ~7; wasm-bindgen then takes 4.4 s instead
    // of 0.8 s on the release dashboard, 8 s instead of 1.4 s on the 53 MB browser test).
    Tool {
        name: "trunk 0.21.14",
        present: || prints("trunk --version", "0.21.14"),
        install: &["cargo install --locked --debug --config profile.dev.debug=0 trunk@0.21.14"],
    },
    Tool {
        name: "wasm-bindgen-cli 0.2.108",
        present: || prints("wasm-bindgen --version", "0.2.108"),
        install: &["cargo install --locked --debug --config profile.dev.debug=0 wasm-bindgen-cli@0.2.108"],
    },
    Tool {
        name: "chromium + chromium-driver (apt)",
        present: || succeeds("chromium --version") && succeeds("chromedriver --version"),
        install: &["apt-get update", "apt-get install -y chromium chromium-driver"],
    },
    Tool {
        name: "playwright-core (npm)",
        present: || {
            cmd::root()
                .join("node_modules/playwright-core/package.json")
                .is_file()
        },
        install: &["npm install --no-save --no-package-lock playwright-core"],
    },
];

/// Only for packaging the light client's JavaScript API as an npm package (`setup --js-api`):
/// no test or demo step needs it, and it is ~5 minutes of a fresh machine's install time.
const JS_API: &[Tool] = &[Tool {
    name: "wasm-pack",
    present: || succeeds("wasm-pack --version"),
    install: &["cargo install --locked wasm-pack"],
}];

/// Installs every missing base tool, plus the browser tools if `browser` is set and
/// wasm-pack if `js_api` is.
pub fn run(browser: bool, js_api: bool) -> Result<()> {
    let browser_tools = if browser { BROWSER } else { &[] };
    let js_api_tools = if js_api { JS_API } else { &[] };
    for tool in BASE.iter().chain(browser_tools).chain(js_api_tools) {
        if (tool.present)() {
            println!("ok: {} already present", tool.name);
            continue;
        }
        println!("installing {}", tool.name);
        for line in tool.install {
            cmd::run(&mut cmd::new(line))?;
        }
        if !(tool.present)() {
            bail!(
                "{} is still missing after installing it (is ~/.cargo/bin on PATH?)",
                tool.name
            );
        }
    }
    Ok(())
}

/// Whether the command line runs and exits zero.
fn succeeds(line: &str) -> bool {
    cmd::stdout(&mut cmd::new(line)).is_some()
}

/// Whether the command line exits zero and its output contains `text`.
fn prints(line: &str, text: &str) -> bool {
    cmd::stdout(&mut cmd::new(line)).is_some_and(|out| out.contains(text))
}
