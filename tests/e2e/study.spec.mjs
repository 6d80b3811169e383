// Research study end to end: the demo researcher opens a glucose study (reward R, escrow E)
// from the dashboard; patient-1 and patient-2 (whose CGM batches the gateway commits) join
// with a research consent and deliver; each one's verified balance rises by exactly R, the
// study's escrow falls to E - 2R; the researcher downloads the dataset and every NDJSON line
// parses as a FHIR Observation with the study's LOINC code. A third patient with no matching
// data (a fresh patient account made in the browser: no device data) sees why and cannot join.
// Needs a gateway committing the demo patients' data (see README.md).
import fs from 'node:fs';
import { run, shot, verifiedHead, importDevKeys, check } from './lib.mjs';

const REWARD = 100;
const ESCROW = 1000;
const GLUCOSE = '99504-3';
const TITLE = `Glucose variability e2e ${Date.now()}`;

async function actAs(page, name, tab) {
  await page.getByTestId('tab-keys').click();
  await page.getByTestId(`use-${name}`).click();
  await page.getByTestId(tab).click();
}

async function balance(page) {
  await page.getByTestId('balance').waitFor({ timeout: 60_000 });
  return Number(await page.getByTestId('balance').innerText());
}

async function waitBalance(page, expected) {
  await page.waitForFunction((n) => {
    const el = document.querySelector('[data-testid=balance]');
    return el && Number(el.innerText) === n;
  }, expected, { timeout: 90_000 });
}

function studyRow(page) {
  return page.getByTestId('study-row').filter({ hasText: TITLE });
}

// Waits for a `tx-ok` message containing `text`, printing each new progress message on the
// way (a delivery has many steps) and failing at once on a `tx-error`.
async function waitOutcome(page, text, timeout) {
  const until = Date.now() + timeout;
  let last = '';
  while (Date.now() < until) {
    const error = page.getByTestId('tx-error');
    if (await error.count()) throw new Error(`FAILED: ${await error.first().innerText()}`);
    const ok = await page.getByTestId('tx-ok').allInnerTexts();
    const now = ok.join(' | ');
    if (now !== last) {
      console.log(`  … ${now}`);
      last = now;
    }
    if (ok.some((m) => m.includes(text))) return;
    await page.waitForTimeout(1000);
  }
  throw new Error(`FAILED: no "${text}" within ${timeout / 1000} s (last: ${last})`);
}

async function joinAndDeliver(page, patient) {
  await actAs(page, patient, 'tab-patient');
  await page.getByTestId('studies').waitFor();
  const before = await balance(page);
  const row = studyRow(page);
  await row.getByTestId('study-match').filter({ hasText: 'matches' }).waitFor({ timeout: 180_000 });
  check(true, `${patient}'s data matches the study: ${await row.getByTestId('study-match').innerText()}`);
  await row.getByTestId('join-study').click();
  await waitOutcome(page, 'joined: included', 120_000);
  check(true, `${patient} joined (research consent + JoinStudy in verified blocks)`);
  await row.getByTestId('deliver-study').waitFor({ timeout: 60_000 });
  await row.getByTestId('deliver-study').click();
  await waitOutcome(page, 'is released to you', 480_000);
  check(true, `${patient} delivered: ${await page.getByTestId('tx-ok').filter({ hasText: 'is released to you' }).innerText()}`);
  await waitBalance(page, before + REWARD);
  check(true, `${patient}'s verified balance rose by exactly the reward: ${before} → ${before + REWARD}`);
  await row.getByTestId('study-paid').waitFor({ timeout: 60_000 });
  check((await row.getByTestId('deliver-study').count()) === 0, `${patient} cannot deliver twice`);
}

await run('study', async (page) => {
  await verifiedHead(page);
  await importDevKeys(page, 'researcher');
  await page.getByTestId('tab-researcher').click();
  await page.getByTestId('open-study-form').waitFor();
  const researcherBefore = await balance(page);
  await page.getByTestId('study-title-input').fill(TITLE);
  await page.getByTestId('study-reward').fill(String(REWARD));
  await page.getByTestId('study-escrow').fill(String(ESCROW));
  await page.getByTestId('open-study').click();
  await page.getByTestId('tx-ok').filter({ hasText: 'study opened: included' }).waitFor({ timeout: 90_000 });
  check(true, 'the researcher opened a study (study key made in the browser, tx in a verified block)');
  const card = page.getByTestId('my-study').filter({ hasText: TITLE });
  await card.waitFor({ timeout: 60_000 });
  await waitBalance(page, researcherBefore - ESCROW);
  check(true, `the escrow left the researcher's verified balance: ${researcherBefore} → ${researcherBefore - ESCROW}`);
  check(Number(await card.getByTestId('escrow-remaining').innerText()) === ESCROW, `escrow remaining ${ESCROW}`);

  // The study key is in the key backup.
  await page.getByTestId('tab-keys').click();
  await page.getByTestId('key-row').filter({ hasText: 'researcher' }).getByText('export backup').click();
  const backup = JSON.parse(await page.getByTestId('backup').inputValue());
  check(Array.isArray(backup.study_keys) && backup.study_keys.length >= 1, 'the key backup holds the study key');

  await joinAndDeliver(page, 'patient-1');
  await joinAndDeliver(page, 'patient-2');
  await shot(page, 'patient-studies');

  // A patient without matching data: a fresh account (no device data) cannot join.
  await page.getByTestId('tab-keys').click();
  const outsider = `outsider-${Date.now() % 100000}`;
  await page.getByTestId('new-key-name').fill(outsider);
  await page.getByTestId('create-key').click();
  await page.getByTestId('tab-patient').click();
  await page.getByTestId('register-patient').click();
  await page.getByTestId('role').filter({ hasText: 'Patient' }).waitFor({ timeout: 90_000 });
  const row = studyRow(page);
  await row.getByTestId('join-reason').waitFor({ timeout: 120_000 });
  check(await row.getByTestId('join-study').isDisabled(), 'the non-matching patient\'s Join button is disabled');
  const reason = await row.getByTestId('join-reason').innerText();
  check(reason.includes('cannot join'), `the reason is shown: ${reason}`);
  await shot(page, 'study-no-match');

  await actAs(page, 'researcher', 'tab-researcher');
  const mine = page.getByTestId('my-study').filter({ hasText: TITLE });
  await page.waitForFunction(({ title, escrow }) => {
    const c = [...document.querySelectorAll('[data-testid=my-study]')].find((e) => e.innerText.includes(title));
    return c && Number(c.querySelector('[data-testid=escrow-remaining]').innerText) === escrow
      && Number(c.querySelector('[data-testid=participants]').innerText) === 2
      && Number(c.querySelector('[data-testid=paid-count]').innerText) === 2;
  }, { title: TITLE, escrow: ESCROW - 2 * REWARD }, { timeout: 60_000 });
  check(true, `escrow fell by exactly two rewards: ${ESCROW} → ${ESCROW - 2 * REWARD}; 2 participants, 2 paid`);
  check((await mine.getByTestId('contributor-row').count()) === 2, 'two pseudonymous contributors listed');

  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    mine.getByTestId('download-dataset').click(),
  ]);
  const text = fs.readFileSync(await download.path(), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  check(lines.length > 0, `the dataset has ${lines.length} NDJSON lines (${download.suggestedFilename()})`);
  for (const line of lines) {
    const o = JSON.parse(line);
    if (o.resourceType !== 'Observation') throw new Error(`FAILED: not an Observation: ${line.slice(0, 120)}`);
    const codes = (o.code?.coding ?? []).map((c) => c.code);
    if (!codes.includes(GLUCOSE)) throw new Error(`FAILED: an Observation without the study's code: ${line.slice(0, 160)}`);
  }
  check(true, `every line is a FHIR Observation with LOINC ${GLUCOSE}`);
  const summary = await mine.getByTestId('dataset-summary').innerText();
  check(summary.includes(`${lines.length} Observations`), `the view agrees: ${summary}`);
  check((await mine.locator('.bad').count()) === 0, 'no delivery was refused by the checks');
  await shot(page, 'researcher-view');
});
