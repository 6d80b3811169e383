//! The two things the transport needs from an async runtime, per target: spawning the swarm
//! task and sleeping. Natively that is tokio (what libp2p's `with_tokio` runs on); in the
//! browser there is one thread, so the task is a local future on the JS event loop and
//! timers are JS timeouts (futures-timer's `wasm-bindgen` backend).

use futures::future::{self, Either};
use std::future::Future;
use std::pin::{pin, Pin};
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
pub(super) type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;
#[cfg(target_arch = "wasm32")]
pub(super) type Sleep = Pin<Box<dyn Future<Output = ()>>>;

#[cfg(not(target_arch = "wasm32"))]
pub(super) fn sleep(duration: Duration) -> Sleep {
    Box::pin(tokio::time::sleep(duration))
}

#[cfg(target_arch = "wasm32")]
pub(super) fn sleep(duration: Duration) -> Sleep {
    Box::pin(futures_timer::Delay::new(duration))
}

/// Runs `task` in the background. Natively this needs a tokio runtime.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

#[cfg(target_arch = "wasm32")]
pub(super) fn spawn(task: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

/// `fut`'s output, or `None` if `limit` passes first.
pub(super) async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    match future::select(pin!(fut), sleep(limit)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}
