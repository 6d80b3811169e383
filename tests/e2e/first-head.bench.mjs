// Time from page open to the first verified head (issue 6 benchmark, goal ≤ 1 s), for a fresh
// browser profile (trust from genesis) and after a reload (trust resumed from IndexedDB).
// Usage: MEDLEDGER_URL=http://127.0.0.1:8080 node tests/e2e/first-head.bench.mjs
import { launch, URL } from './lib.mjs';

const { browser, page } = await launch();
const times = [];
for (const label of ['fresh profile', 'reload 1', 'reload 2', 'reload 3']) {
  const started = Date.now();
  if (label === 'fresh profile') {
    await page.goto(URL);
  } else {
    await page.reload();
  }
  await page.getByTestId('head-height').waitFor({ timeout: 60_000 });
  const ms = Date.now() - started;
  times.push(ms);
  console.log(`${label}: first verified head after ${ms} ms`);
}
await browser.close();
