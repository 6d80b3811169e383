// The light client's JavaScript API (wasm-pack build of light-client) in headless Chromium:
// connect via the relay's discovery + genesis, sync, a proven balance and access log, then a
// reload that resumes from IndexedDB. The page must be served by the relay (same origin):
//   wasm-pack build light-client --dev --target web --mode no-install --out-dir ../target/light-client-pkg
//   mkdir -p dist/lc && cp target/light-client-pkg/light_client{.js,_bg.wasm} tests/e2e/js-api/test.html dist/lc/
//   MEDLEDGER_URL=http://127.0.0.1:8080 MEDLEDGER_ACCOUNT=<hex> node tests/e2e/js-api.spec.mjs
import { run, check, URL } from './lib.mjs';

const account = process.env.MEDLEDGER_ACCOUNT;
await run('js-api', async (page) => {
  for (const pass of ['first load', 'reload']) {
    if (pass === 'first load') {
      await page.goto(`${URL}/lc/test.html?account=${account}`);
    } else {
      await page.reload();
    }
    await page.waitForSelector('#out[data-done="1"]', { timeout: 60_000 });
    const text = await page.locator('#out').innerText();
    check(!text.startsWith('ERROR'), `${pass}: ${text}`);
    const result = JSON.parse(text);
    check(result.height > 0 && result.signedPower * 3 > result.totalPower * 2, `${pass}: verified head ${result.height}`);
    check(result.balance.proofBytes > 0, `${pass}: balance proven with ${result.balance.proofBytes} proof bytes`);
  }
});
