// Consent end to end: a patient ($MEDLEDGER_PATIENT, default patient-1) grants the clinician a primary-provider consent; the
// clinician's view then lists the patient and shows readings decrypted within the consent's
// scope; the patient's access log lists the clinician's reads; revocation removes the
// patient from the clinician's readable list. Needs a gateway sealing new batches
// (e.g. `medledger-gateway run --window-minutes 1`).
import fs from 'node:fs';
import { run, shot, verifiedHead, importDevKeys, check, DEV_KEYS } from './lib.mjs';

const keys = JSON.parse(fs.readFileSync(DEV_KEYS, 'utf8'));
const clinician = keys.accounts.find((a) => a.name === 'clinician').address;
const PATIENT = process.env.MEDLEDGER_PATIENT ?? 'patient-1';

async(use) => {};

async function actAs(page, name, tab) {
  await page.getByTestId('tab-keys').click();
  await page.getByTestId(`use-${name}`).click();
  await page.getByTestId(tab).click();
}

await run('consent', async (page) => {
  await verifiedHead(page);
  await importDevKeys(page, PATIENT);
  await page.getByTestId('tab-patient').click();
  await page.getByTestId('grant-form').waitFor();
  // Start clean: revoke consents left active by an earlier run.
  await page.getByTestId('consents').getByText('Who may read your data').waitFor({ timeout: 30_000 });
  for (let i = 0; i < 5; i++) {
    const before = await page.getByTestId('revoke-consent').count();
    if (before === 0) break;
    await page.getByTestId('revoke-consent').first().click();
    await page.getByTestId('tx-ok').filter({ hasText: 'revoke consent: included' }).waitFor({ timeout: 60_000 });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=revoke-consent]').length < n,
      before, { timeout: 30_000 });
  }
  await page.getByTestId('grantee-select').selectOption(clinician);
  await page.getByTestId('grant').click();
  await page.getByTestId('tx-ok').filter({ hasText: 'grant consent: included' }).waitFor({ timeout: 60_000 });
  check(true, 'the patient granted a consent (tx in a verified block)');
  await page.getByTestId('consent-status').filter({ hasText: 'active' }).first().waitFor({ timeout: 30_000 });
  check(true, 'the consent is listed as active');

  await actAs(page, 'clinician', 'tab-clinician');
  await page.getByTestId('patient-row').first().waitFor({ timeout: 30_000 });
  await page.getByTestId('open-patient').first().click();
  await page.getByTestId('patient-readings').waitFor();
  // Only batches sealed after the grant are wrapped for the clinician.
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=patient-readings] [data-testid=chart-points]')]
    .some((e) => Number(e.innerText) > 0), null, { timeout: 420_000 });
  const points = await page.$$eval('[data-testid=patient-readings] [data-testid=chart-points]', (els) => els.map((e) => e.innerText));
  check(true, `the clinician sees the patient's readings: ${points.join(', ')}`);
  await shot(page, 'clinician-view');
  // A note, sealed in the browser for the patient and committed on chain.
  const note = `e2e note ${Date.now()}`;
  await page.getByTestId('note-text').fill(note);
  await page.getByTestId('write-note').click();
  await page.getByTestId('tx-ok').filter({ hasText: 'note committed' }).waitFor({ timeout: 60_000 });
  check(true, 'the clinician wrote a note');

  await actAs(page, PATIENT, 'tab-patient');
  await page.getByTestId('access-row').filter({ hasText: 'clinician' }).first().waitFor({ timeout: 60_000 });
  check(true, "the patient's access log lists the clinician's reads");
  await page.getByTestId('note').filter({ hasText: note }).waitFor({ timeout: 60_000 });
  check(true, 'the patient reads the note, decrypted in the browser');
  await shot(page, 'patient-access-log');
  await page.getByTestId('revoke-consent').first().click();
  await page.getByTestId('tx-ok').filter({ hasText: 'revoke consent: included' }).waitFor({ timeout: 60_000 });
  check(true, 'the patient revoked the consent');

  await actAs(page, 'clinician', 'tab-clinician');
  await page.waitForFunction((name) => {
    const rows = [...document.querySelectorAll('[data-testid=patient-row]')].filter((r) => r.innerText.includes(name));
    return rows.length > 0 && rows.every((r) => !r.querySelector('[data-testid=open-patient]'));
  }, PATIENT, { timeout: 30_000 });
  const rows = page.getByTestId('patient-row').filter({ hasText: PATIENT });
  check((await rows.filter({ hasText: 'revoked' }).count()) > 0, `${PATIENT}'s consent is listed as revoked`);
  check(true, `${PATIENT} can no longer be opened`);
  await page.waitForFunction(() => !document.querySelector('[data-testid=patient-readings]'), null, { timeout: 30_000 });
  check(true, 'the readings are gone after revocation');
  await shot(page, 'clinician-after-revoke');
});
