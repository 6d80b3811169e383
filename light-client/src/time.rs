//! The two things the client needs from the platform's clock: the time, and a pause.

use ledger::types::TimeMs;

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> TimeMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimeMs)
}

#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> TimeMs {
    js_sys::Date::now() as TimeMs
}

/// Waits `ms` without blocking the thread (a browser timer in wasm).
pub async fn sleep_ms(ms: u64) {
    futures_timer::Delay::new(std::time::Duration::from_millis(ms)).await
}
