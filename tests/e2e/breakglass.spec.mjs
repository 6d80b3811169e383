// Break-glass: the clinician opens emergency access to patient-2 with a reason; the patient's
// access log then shows the emergency access first, highlighted.
import fs from 'node:fs';
import { run, shot, verifiedHead, importDevKeys, check, DEV_KEYS } from './lib.mjs';

const keys = JSON.parse(fs.readFileSync(DEV_KEYS, 'utf8'));
const patient = keys.accounts.find((a) => a.name === 'patient-2').address;

await run('breakglass', async (page) => {
  await verifiedHead(page);
  await importDevKeys(page, 'clinician');
  await page.getByTestId('tab-clinician').click();
  await page.getByTestId('break-glass-patient').selectOption(patient);
  await page.getByTestId('open-break-glass').click();
  await page.getByTestId('tx-ok').filter({ hasText: 'break-glass: included' }).waitFor({ timeout: 60_000 });
  check(true, 'the clinician opened break-glass (tx in a verified block)');
  await page.getByTestId('patient-readings').waitFor();
  await page.waitForTimeout(8_000);
  await shot(page, 'clinician-break-glass');

  await page.getByTestId('tab-keys').click();
  await page.getByTestId('use-patient-2').click();
  await page.getByTestId('tab-patient').click();
  await page.getByTestId('break-glass').first().waitFor({ timeout: 60_000 });
  const banner = await page.getByTestId('break-glass').first().innerText();
  check(/EMERGENCY ACCESS by clinician/.test(banner), `the patient sees it first: "${banner.slice(0, 80)}…"`);
  const first = page.getByTestId('access-row').first();
  await first.waitFor({ timeout: 60_000 });
  const firstText = await first.innerText();
  check(/BREAK-GLASS/.test(firstText), 'emergency reads are listed first in the access log');
  await shot(page, 'patient-break-glass');
});
