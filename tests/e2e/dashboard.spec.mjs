// The page reaches a verified head and follows the chain live; the status bar says how the
// head was verified and through which relay; a reload resumes from the trust in IndexedDB.
import { run, shot, verifiedHead, check } from './lib.mjs';

await run('dashboard', async (page) => {
  const first = await verifiedHead(page);
  check(first > 0, `verified head at height ${first}`);
  const how = await page.getByTestId('head-how').innerText();
  check(/signed by \d+ of \d+ voting power/.test(how), `status says how: "${how}"`);
  check(how.startsWith('✔'), 'signers hold more than 2/3 of the power');
  const relay = await page.getByTestId('relay').first().innerText();
  check(/via (WebRTC-direct|WebSocket)/.test(relay), `relay shown: "${relay}"`);
  check((await page.getByTestId('fork').count()) === 0, 'no fork warning');
  await page.waitForFunction(
    (h) => Number(document.querySelector('[data-testid=head-height]')?.innerText.replace('#', '')) > h,
    first, { timeout: 30_000 });
  const later = await verifiedHead(page);
  check(later > first, `head follows the chain live (${first} → ${later})`);
  await shot(page, 'dashboard-head');
  await page.reload();
  const resumed = await verifiedHead(page);
  check(resumed >= later, `after a reload the head is verified again (${resumed})`);
});
