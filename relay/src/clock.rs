//! Wall-clock time comes in from outside (STYLE §4): the blob service judges request times
//! against a [`Clock`], so tests can pin "now" with [`FixedClock`].

use ledger::types::TimeMs;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time in ms since the Unix epoch.
pub trait Clock: Debug + Send + Sync + 'static {
    fn now_ms(&self) -> TimeMs;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> TimeMs {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as TimeMs)
            .unwrap_or(0)
    }
}

/// A clock that says what it is told (tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    pub fn new(now_ms: TimeMs) -> Self {
        FixedClock(AtomicU64::new(now_ms))
    }

    pub fn set(&self, now_ms: TimeMs) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> TimeMs {
        self.0.load(Ordering::SeqCst)
    }
}
