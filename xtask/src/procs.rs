//! Long-running child processes for `localnet` and `demo`: each gets a name and a log file,
//! all are watched, and Ctrl-C (or SIGTERM) stops them with SIGTERM, then SIGKILL after a
//! grace period, so nodes close their stores instead of being orphaned.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Supervisor {
    children: Vec<(String, Child, PathBuf)>,
    stop: Arc<AtomicBool>,
}

impl Supervisor {
    /// Installs the Ctrl-C handler (once per process).
    pub fn new() -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
        Ok(Supervisor {
            children: Vec::new(),
            stop,
        })
    }

    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(&mut self, name: &str, cmd: &mut Command, log: &Path) -> Result<u32> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = cmd
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        println!("{name}: pid {pid}, log {}", log.display());
        self.children.push((name.to_string(), child, log.to_owned()));
        Ok(pid)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Reports children that exited on their own; returns when Ctrl-C is pressed.
    pub fn wait_for_ctrl_c(&mut self) {
        let mut reported = vec![false; self.children.len()];
        while !self.stopping() {
            for (i, (name, child, log)) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    if !reported[i] {
                        println!("{name} exited ({status}); see {}", log.display());
                        reported[i] = true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// SIGTERM to all (last started first), then SIGKILL whoever is still up after 10 s.
    pub fn stop_all(&mut self) {
        for (_, child, _) in self.children.iter().rev() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for (name, mut child, _) in self.children.drain(..).rev() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        println!("{name} did not stop in time; killed");
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}
