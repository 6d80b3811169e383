//! The light-client benchmarks of issue 6 in headless Chromium (wasm): headers verified per
//! second with 4 and 100 validators (compare with the native bench for the wasm/native ratio),
//! the 100,000-block skip, and the wasm heap after following 100,000 blocks. Results are
//! printed as `BENCH name value` lines; `cargo xtask bench --only light-client` runs this in
//! release mode and prints them beside the native table.
#![cfg(target_arch = "wasm32")]

use light_client::testing::{client_at_block_1, follow, SyntheticChain};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn now_ms() -> f64 {
    web_sys_performance().unwrap_or_else(js_sys::Date::now)
}

fn web_sys_performance() -> Option<f64> {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok()?;
    let now = js_sys::Reflect::get(&performance, &"now".into()).ok()?;
    let now: js_sys::Function = now.dyn_into().ok()?;
    now.call0(&performance).ok()?.as_f64()
}

fn heap_bytes() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let buffer: js_sys::ArrayBuffer = memory.buffer().unchecked_into();
    buffer.byte_length() as f64
}

async fn headers_per_second(validators: usize, count: u64) -> f64 {
    let chain = SyntheticChain::new(validators, count + 1);
    let heads: Vec<_> = (2..=count + 1).map(|h| chain.signed(h)).collect();
    let mut client = client_at_block_1(&chain).await;
    let started = now_ms();
    let verified = follow(&mut client, heads).await;
    let secs = (now_ms() - started) / 1e3;
    assert_eq!(verified as u64, count);
    count as f64 / secs
}

#[wasm_bindgen_test]
async fn bench_headers_per_second() {
    for (validators, count) in [(4usize, 1_000u64), (100, 100)] {
        let rate = headers_per_second(validators, count).await;
        console_log!("BENCH wasm_headers_per_second_{validators} {rate:.0}");
    }
}

#[wasm_bindgen_test]
async fn bench_skip_100k() {
    let chain = SyntheticChain::new(4, 100_000);
    chain.header(100_000);
    let started = now_ms();
    let mut client = client_at_block_1(&chain).await;
    let head = client.sync().await.map(|h| h.height());
    let ms = now_ms() - started;
    assert_eq!(head.ok(), Some(100_000));
    console_log!("BENCH wasm_skip_100k_ms {ms:.2}");
}

#[wasm_bindgen_test]
async fn bench_heap_after_following_100k_blocks() {
    let before = heap_bytes();
    // One validator: the heap is about what the client keeps, not about signature counts.
    let chain = SyntheticChain::new(1, 100_001);
    let mut client = client_at_block_1(&chain).await;
    let mut verified = 0;
    // Made and followed in slices so the test itself never holds 100,000 headers.
    for start in (2..=100_001u64).step_by(5_000) {
        let heads: Vec<_> = (start..(start + 5_000).min(100_002))
            .map(|h| chain.signed(h))
            .collect();
        verified += follow(&mut client, heads).await;
    }
    assert_eq!(verified, 100_000);
    let after = heap_bytes();
    console_log!("BENCH wasm_heap_mib_before {:.1}", before / 1048576.0);
    console_log!("BENCH wasm_heap_mib_after_100k {:.1}", after / 1048576.0);
    console_log!("BENCH wasm_trusted_headers_after_100k {}", client.trusted_count());
}
