// As the demo patient-1 (keys imported from the relay's dev-keys.json): the patient view lists
// verified devices, decrypted readings in charts (each batch checked against its commitment),
// consents, the access log and alert rules; a verified mark opens its proof summary.
import { run, shot, verifiedHead, importDevKeys, check } from './lib.mjs';

await run('patient', async (page) => {
  await verifiedHead(page);
  await importDevKeys(page, 'patient-1');
  await page.getByTestId('tab-patient').click();
  await page.getByTestId('patient-view').waitFor();
  await page.getByTestId('role').waitFor({ timeout: 30_000 });
  check((await page.getByTestId('role').innerText()) === 'Patient', 'the chain says this account is a patient');
  await page.getByTestId('device-row').first().waitFor({ timeout: 30_000 });
  const devices = await page.getByTestId('device-row').count();
  check(devices >= 1, `${devices} devices listed`);
  // Readings: decrypted batches that match their commitments, drawn as charts.
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=chart-points]')]
    .some((e) => Number(e.innerText) > 0), null, { timeout: 90_000 });
  const points = await page.$$eval('[data-testid=chart-points]', (els) => els.map((e) => Number(e.innerText)));
  check(points.some((n) => n > 0), `chart points per vital sign: ${points.join(', ')}`);
  check((await page.getByTestId('batch-bad').count()) === 0, 'no batch failed its commitment check');
  await page.getByTestId('alert-rule').first().waitFor({ timeout: 30_000 });
  check(true, 'an alert rule is listed');
  // The gateway's simulated hypoglycaemia raises a glucose alert on chain.
  await page.getByTestId('alert').first().waitFor({ timeout: 120_000 });
  check(/Glucose/.test(await page.getByTestId('alert').first().innerText()), 'a glucose alert is listed');
  // Our own reads of the blobs are in the access log, as the chain recorded them.
  await page.getByTestId('access-row').first().waitFor({ timeout: 60_000 });
  check((await page.getByTestId('access-row').count()) > 0, 'access log lists reads');
  // A verified mark opens the proof summary.
  await page.getByTestId('verified').first().click();
  const proof = await page.getByTestId('proof').first().innerText();
  check(/proven at height \d+ against state root [0-9a-f]{64} with a \d+-byte Merkle proof/.test(proof), `proof summary: ${proof.slice(0, 60)}…`);
  await shot(page, 'patient-view');
});
