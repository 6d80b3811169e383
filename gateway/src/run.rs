//! Running many patients at once, faster than real time (issue 7 item 4).
//!
//! # Simulated clock
//! Commitments may not describe the future (the ledger refuses a time range ending more than
//! `MAX_CLOCK_DRIFT_MS` after block time), so simulated time never passes the wall clock. The
//! simulation starts `backfill` in the past and runs at `speed` times real time until it has
//! caught up, then follows the wall clock: history first, then live data.
//! `sim_now = min(origin + speed × elapsed, wall now[, end])`.
//!
//! # Tasks
//! [`Gateway::start`] spawns one task per patient ([`PatientWorker`]: set up, then every tick
//! seal due windows and flush the spool) and returns a handle; [`Gateway::stop`] ends them.
//! A relay that is down only delays sending: sealing goes on into the spool.

use crate::chain::{ChainError, RelayClient};
use crate::keys::{generated_patients, load_dev_patients, KeyError, PatientIdentity};
use crate::patient::{PatientWorker, Stats, WorkerConfig, WorkerError};
use crate::spool::{Spool, SpoolError};
use ledger::types::TimeMs;
use rand::SeedableRng as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Everything `medledger-gateway run` is told.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Relay base URL, e.g. `http://127.0.0.1:8080`.
    pub relay: String,
    pub patients: usize,
    /// Simulated seconds per real second while catching up.
    pub speed: f64,
    pub spool: PathBuf,
    /// The relay's `dev-keys.json`: its demo patients are simulated first.
    pub keys: Option<PathBuf>,
    /// How far in the past the simulation starts (first run only; later runs resume).
    pub backfill_ms: u64,
    /// Stop simulating at this time (tests); `None`: run on live.
    pub sim_end: Option<TimeMs>,
    /// Time between two steps of a patient.
    pub tick: Duration,
    pub worker: WorkerConfig,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("cannot reach the relay: {0}")]
    Relay(#[from] ChainError),
    #[error("{keys} is for chain {keys_chain:?} but the relay serves {relay_chain:?}")]
    ChainMismatch {
        keys: PathBuf,
        keys_chain: String,
        relay_chain: String,
    },
    #[error("--speed must be a positive number, got {0}")]
    BadSpeed(f64),
}

/// Milliseconds since the Unix epoch now.
pub fn wall_now() -> TimeMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The simulated clock (module docs).
#[derive(Clone, Debug)]
pub struct SimClock {
    origin: TimeMs,
    started: Instant,
    speed: f64,
    end: Option<TimeMs>,
}

impl SimClock {
    pub fn new(origin: TimeMs, speed: f64, end: Option<TimeMs>) -> Self {
        SimClock {
            origin,
            started: Instant::now(),
            speed,
            end,
        }
    }

    /// Pure form: the simulated time `elapsed_ms` after start when the wall clock says `wall`.
    pub fn at(&self, elapsed_ms: u64, wall: TimeMs) -> TimeMs {
        let ran = self
            .origin
            .saturating_add((elapsed_ms as f64 * self.speed) as u64);
        let now = ran.min(wall);
        self.end.map_or(now, |end| now.min(end))
    }

    pub fn now(&self) -> TimeMs {
        self.at(self.started.elapsed().as_millis() as u64, wall_now())
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    pub stats: Arc<Stats>,
    pub spool: Spool,
    pub clock: SimClock,
    /// Each patient's next window start (updated by its task).
    pub cursors: Arc<Vec<AtomicU64>>,
    pub patients: Vec<PatientIdentity>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Connects, retrying while the relay is not up yet.
async fn connect(relay: &str, patience: Duration) -> Result<RelayClient, ChainError> {
    let deadline = Instant::now() + patience;
    loop {
        match RelayClient::connect(relay).await {
            Ok(client) => return Ok(client),
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                debug!(error = %e, "relay not reachable yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Gateway {
    /// Loads the patients, connects to the relay and starts one task per patient.
    pub async fn start(config: RunConfig) -> Result<Gateway, RunError> {
        if !(config.speed.is_finite() && config.speed > 0.0) {
            return Err(RunError::BadSpeed(config.speed));
        }
        let spool = Spool::open(&config.spool)?;
        let client = connect(&config.relay, Duration::from_secs(60)).await?;

        let mut patients = Vec::new();
        if let Some(path) = &config.keys {
            let (chain, dev) = load_dev_patients(path)?;
            if chain != client.chain_id() {
                return Err(RunError::ChainMismatch {
                    keys: path.clone(),
                    keys_chain: chain,
                    relay_chain: client.chain_id().to_owned(),
                });
            }
            patients.extend(dev.into_iter().take(config.patients));
        }
        let missing = config.patients.saturating_sub(patients.len());
        if missing > 0 {
            patients.extend(generated_patients(spool.root(), missing)?);
        }

        let stats = Arc::new(Stats::default());
        let start = wall_now().saturating_sub(config.backfill_ms);
        let mut workers = Vec::new();
        for identity in &patients {
            workers.push(PatientWorker::new(
                identity.clone(),
                &spool,
                config.worker.clone(),
                stats.clone(),
                start,
            )?);
        }
        let origin = workers
            .iter()
            .map(PatientWorker::next_window)
            .min()
            .unwrap_or(start);
        let clock = SimClock::new(origin, config.speed, config.sim_end);
        let cursors: Arc<Vec<AtomicU64>> =
            Arc::new(workers.iter().map(|w| AtomicU64::new(w.next_window())).collect());
        info!(
            relay = client.base_url(),
            chain = client.chain_id(),
            patients = workers.len(),
            speed = config.speed,
            from = origin,
            "gateway starting"
        );

        let (stop, stopped) = watch::channel(false);
        let tasks = workers
            .into_iter()
            .enumerate()
            .map(|(i, worker)| {
                tokio::spawn(patient_loop(
                    worker,
                    i,
                    client.clone(),
                    spool.clone(),
                    clock.clone(),
                    config.tick,
                    stats.clone(),
                    cursors.clone(),
                    stopped.clone(),
                ))
            })
            .collect();
        Ok(Gateway {
            stats,
            spool,
            clock,
            cursors,
            patients,
            stop,
            tasks,
        })
    }

    /// Every patient has sealed up to `t` and the spool is empty.
    pub fn drained_until(&self, t: TimeMs) -> bool {
        self.cursors.iter().all(|c| c.load(Ordering::Relaxed) >= t) && self.spool.pending_count() == 0
    }

    /// One line for humans: simulated time, counts, what waits in the spool.
    pub fn progress_line(&self) -> String {
        let s = &self.stats;
        let sim = self.clock.now();
        let lag_min = wall_now().saturating_sub(sim) / 60_000;
        format!(
            "sim {} (−{}h{:02}m) | patients ready {}/{} | readings {} | batches sealed {} committed {} spooled {} failed {} | alerts {} | errors {}",
            format_time(sim),
            lag_min / 60,
            lag_min % 60,
            Stats::get(&s.patients_ready),
            self.patients.len(),
            Stats::get(&s.readings_sealed),
            Stats::get(&s.batches_sealed),
            Stats::get(&s.batches_committed),
            self.spool.pending_count(),
            Stats::get(&s.batches_failed),
            Stats::get(&s.alerts_raised),
            Stats::get(&s.errors),
        )
    }

    /// Stops every patient task (in-flight work is safe in the spool).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                error!(error = %e, "patient task panicked");
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms, without a calendar crate.
pub fn format_time(ms: TimeMs) -> String {
    let t = UtcTime::of(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// The UTC calendar date and time of day of a time in ms since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl UtcTime {
    pub fn of(ms: TimeMs) -> UtcTime {
        let secs = ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn patient_loop(
    mut worker: PatientWorker,
    index: usize,
    client: RelayClient,
    spool: Spool,
    clock: SimClock,
    tick: Duration,
    stats: Arc<Stats>,
    cursors: Arc<Vec<AtomicU64>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut rng = rand::rngs::StdRng::from_entropy();
    // Quiet retries while the relay is away; one warning when it goes and one when it is back.
    let mut relay_down = false;
    let mut backoff = tick;
    loop {
        let result = step(&mut worker, &client, &spool, &clock, &mut rng).await;
        if let Some(c) = cursors.get(index) {
            c.store(worker.next_window(), Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                if relay_down {
                    info!(
                        patient = worker.name(),
                        "relay reachable again; sending the spool"
                    );
                    relay_down = false;
                }
                backoff = tick;
            }
            Err(e) if e.is_fatal() => {
                error!(patient = worker.name(), error = %e, "patient stopped");
                stats.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) if e.is_transient() => {
                if !relay_down {
                    warn!(patient = worker.name(), error = %e, "relay unavailable; readings stay in the spool");
                    relay_down = true;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                warn!(patient = worker.name(), error = %e, "step failed; retrying");
                stats.errors.fetch_add(1, Ordering::Relaxed);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
    }
}

/// One step of one patient: set up if needed, refresh rules and consents, seal, send.
async fn step(
    worker: &mut PatientWorker,
    client: &RelayClient,
    spool: &Spool,
    clock: &SimClock,
    rng: &mut rand::rngs::StdRng,
) -> Result<(), WorkerError> {
    if !worker.is_ready() {
        worker.setup(client).await?;
    }
    // Sealing needs current rules and consents; if the relay is down, the last known ones
    // are used, so the readings still reach the spool.
    let refreshed = worker.refresh(client, wall_now()).await;
    worker.seal_due(clock.now(), wall_now(), spool, rng)?;
    refreshed?;
    worker.flush(client, spool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sim_clock_runs_fast_until_it_meets_the_wall_clock() {
        let clock = SimClock::new(1_000_000, 60.0, None);
        assert_eq!(clock.at(0, 5_000_000), 1_000_000);
        assert_eq!(clock.at(10_000, 5_000_000), 1_600_000);
        assert_eq!(
            clock.at(1_000_000, 5_000_000),
            5_000_000,
            "never ahead of the wall clock"
        );
        let bounded = SimClock::new(1_000_000, 60.0, Some(1_200_000));
        assert_eq!(bounded.at(10_000, 5_000_000), 1_200_000);
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time(1_767_225_600_000), "2026-01-01 00:00");
        assert_eq!(format_time(951_825_600_000 + 3_723_000), "2000-02-29 13:02");
    }
}
