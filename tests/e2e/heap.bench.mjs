// The dashboard's memory over a long run of live data (issue 7 benchmark: the heap stays flat,
// old readings are windowed, not accumulated). Opens the page as the demo patient-1 on the
// patient view (live charts, decrypted batches, access log) against a running demo network,
// then every MEDLEDGER_SAMPLE_SECS (default 60) for MEDLEDGER_MINUTES (default 60) forces a
// garbage collection and records the JS heap in use and the size of the wasm linear memory
// (it can grow but never shrinks), plus the verified head and the chart points drawn.
// Prints a table and the growth per hour over the second half of the run.
// Usage: MEDLEDGER_URL=http://127.0.0.1:8080 MEDLEDGER_DEV_KEYS=.../dev-keys.json \
//        node tests/e2e/heap.bench.mjs
import { launch, verifiedHead, importDevKeys, shot } from './lib.mjs';

const minutes = Number(process.env.MEDLEDGER_MINUTES ?? 60);
const sampleSecs = Number(process.env.MEDLEDGER_SAMPLE_SECS ?? 60);
const mib = (bytes) => bytes / (1024 * 1024);

const { browser, page, logs } = await launch();
// The wasm linear memory is not in the JS heap: keep a handle on it as the page instantiates
// the module (it can grow, never shrink, so its size is the wasm high-water mark).
await page.addInitScript(() => {
  const keep = (result) => {
    const instance = result.instance ?? result;
    const memory = instance?.exports?.memory;
    if (memory instanceof WebAssembly.Memory) window.__medledgerWasmMemory = memory;
    return result;
  };
  const { instantiate, instantiateStreaming } = WebAssembly;
  WebAssembly.instantiate = (...args) => instantiate(...args).then(keep);
  WebAssembly.instantiateStreaming = (...args) => instantiateStreaming(...args).then(keep);
});
try {
  await page.goto(process.env.MEDLEDGER_URL ?? 'http://127.0.0.1:8080');
  await verifiedHead(page);
  await importDevKeys(page, 'patient-1');
  await page.getByTestId('tab-patient').click();
  await page.getByTestId('patient-view').waitFor();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.enable');
  const samples = [];
  const started = Date.now();
  for (;;) {
    await cdp.send('HeapProfiler.collectGarbage');
    const usage = await cdp.send('Runtime.getHeapUsage');
    const wasmBytes = await page.evaluate(() => window.__medledgerWasmMemory?.buffer.byteLength ?? 0);
    const height = await page.getByTestId('head-height').innerText().catch(() => '?');
    const points = await page
      .$$eval('[data-testid=chart-points]', (els) => els.map((e) => Number(e.innerText)).reduce((a, b) => a + b, 0))
      .catch(() => 0);
    const minute = (Date.now() - started) / 60_000;
    const sample = {
      minute,
      jsUsed: usage.usedSize,
      wasm: wasmBytes,
      height,
      points,
    };
    samples.push(sample);
    console.log(
      `${minute.toFixed(1).padStart(5)} min  JS heap ${mib(sample.jsUsed).toFixed(2)} MiB  ` +
        `wasm memory ${mib(sample.wasm).toFixed(2)} MiB  head ${height}  chart points ${points}`,
    );
    if (minute >= minutes) break;
    await page.waitForTimeout(sampleSecs * 1000);
  }
  await shot(page, 'heap-bench-end');
  // Least-squares slope over the second half: the first minutes fill the windows by design.
  const half = samples.filter((s) => s.minute >= minutes / 2);
  const slope = (key) => {
    const n = half.length;
    if (n < 2) return NaN;
    const mx = half.reduce((a, s) => a + s.minute, 0) / n;
    const my = half.reduce((a, s) => a + s[key], 0) / n;
    const num = half.reduce((a, s) => a + (s.minute - mx) * (s[key] - my), 0);
    const den = half.reduce((a, s) => a + (s.minute - mx) ** 2, 0);
    return (num / den) * 60;
  };
  const first = samples[0];
  const last = samples[samples.length - 1];
  console.log('\n| measure | start | end | growth per hour, 2nd half |');
  console.log('|---|---:|---:|---:|');
  console.log(`| JS heap in use (MiB) | ${mib(first.jsUsed).toFixed(2)} | ${mib(last.jsUsed).toFixed(2)} | ${mib(slope('jsUsed')).toFixed(2)} |`);
  console.log(`| wasm linear memory (MiB) | ${mib(first.wasm).toFixed(2)} | ${mib(last.wasm).toFixed(2)} | ${mib(slope('wasm')).toFixed(2)} |`);
  console.log(`| verified head | ${first.height} | ${last.height} | |`);
} catch (e) {
  console.error(logs.slice(-40).join('\n'));
  console.error(`FAIL heap bench: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
