// Erasure end to end, in two browsers: patient-3 ($MEDLEDGER_PATIENT) grants the clinician a
// primary-provider consent; the clinician (own browser profile) reads a batch sealed after it;
// the patient reads the same batch, then erases it (EraseData in a verified block); the
// dashboard shows it erased with its proof (erased_at, proven at a height); a new read by the
// patient and the clinician's "read again" are both refused by the relay ("… was erased").
// Needs a gateway sealing new batches (e.g. `medledger-gateway run --window-minutes 1`).
import fs from 'node:fs';
import { URL, run, shot, verifiedHead, importDevKeys, check, DEV_KEYS } from './lib.mjs';

const keys = JSON.parse(fs.readFileSync(DEV_KEYS, 'utf8'));
const clinician = keys.accounts.find((a) => a.name === 'clinician').address;
const PATIENT = process.env.MEDLEDGER_PATIENT ?? 'patient-3';

async function revokeAll(page) {
  await page.getByTestId('consents').getByText('Who may read your data').waitFor({ timeout: 60_000 });
  for (let i = 0; i < 8; i++) {
    const before = await page.getByTestId('revoke-consent').count();
    if (before === 0) break;
    await page.getByTestId('revoke-consent').first().click();
    await page.getByTestId('tx-ok').filter({ hasText: 'revoke consent: included' }).waitFor({ timeout: 60_000 });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=revoke-consent]').length < n,
      before, { timeout: 30_000 });
  }
}

await run('erasure', async (patient) => {
  await verifiedHead(patient);
  await importDevKeys(patient, PATIENT);
  await patient.getByTestId('tab-patient').click();
  await revokeAll(patient);
  await patient.getByTestId('grantee-select').selectOption(clinician);
  await patient.getByTestId('grant').click();
  await patient.getByTestId('tx-ok').filter({ hasText: 'grant consent: included' }).waitFor({ timeout: 60_000 });
  check(true, `${PATIENT} granted the clinician a consent`);

  // The clinician, in a browser profile of its own.
  const context = await patient.context().browser().newContext({ viewport: { width: 1280, height: 1000 } });
  const doctor = await context.newPage();
  try {
    await doctor.goto(URL);
    await verifiedHead(doctor);
    await importDevKeys(doctor, 'clinician');
    await doctor.getByTestId('tab-clinician').click();
    const row = doctor.getByTestId('patient-row').filter({ hasText: PATIENT }).filter({ has: doctor.getByTestId('open-patient') });
    await row.first().waitFor({ timeout: 60_000 });
    await row.first().getByTestId('open-patient').click();
    const readings = doctor.getByTestId('patient-readings');
    await readings.locator('summary').click();
    // Only batches sealed after the grant are wrapped for the clinician.
    const ok = readings.getByTestId('batch-row').filter({ has: doctor.getByTestId('batch-ok') });
    await ok.first().waitFor({ timeout: 420_000 });
    const id = await ok.first().getAttribute('data-id');
    check(true, `the clinician read batch ${id.slice(0, 12)} under the consent`);

    const data = patient.getByTestId('data-row').and(patient.locator(`[data-id="${id}"]`));
    await data.waitFor({ timeout: 60_000 });
    await data.getByTestId('read-batch').click();
    await data.getByTestId('read-ok').waitFor({ timeout: 60_000 });
    check(true, `${PATIENT} reads the batch before erasure: ${await data.getByTestId('read-ok').innerText()}`);
    await data.getByTestId('erase-batch').click();
    await patient.getByTestId('tx-ok').filter({ hasText: 'erased: included' }).waitFor({ timeout: 60_000 });
    check(true, `${PATIENT} erased the batch (EraseData in a verified block)`);
    await data.getByTestId('erased').filter({ hasText: 'height' }).waitFor({ timeout: 60_000 });
    const proof = await data.getByTestId('erased').innerText();
    check(proof.includes('erased_at'), `the dashboard shows the erasure with its proof: ${proof}`);
    await data.getByTestId('verified').click();
    await data.getByTestId('proof').waitFor();
    check(true, `proof: ${await data.getByTestId('proof').innerText()}`);
    await data.getByTestId('read-batch').click();
    await data.getByTestId('read-refused').filter({ hasText: 'was erased' }).waitFor({ timeout: 60_000 });
    check(true, `${PATIENT}'s own read is refused: ${await data.getByTestId('read-refused').innerText()}`);
    await shot(patient, 'erasure');

    const same = readings.getByTestId('batch-row').and(doctor.locator(`[data-id="${id}"]`));
    await same.getByTestId('read-again').click();
    await same.getByTestId('batch-bad').filter({ hasText: 'was erased' }).waitFor({ timeout: 60_000 });
    check(true, `the clinician's read is refused too: ${await same.getByTestId('batch-bad').innerText()}`);
    await shot(doctor, 'erasure-clinician');
  } finally {
    await context.close();
  }
  await revokeAll(patient);
  check(true, 'the consent is revoked again');
});
