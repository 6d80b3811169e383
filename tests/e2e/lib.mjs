// Shared helpers for the dashboard specs: plain node scripts on playwright-core with Debian's
// Chromium. Run against a relay serving dist/ (default http://127.0.0.1:8080, or $MEDLEDGER_URL).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const URL = process.env.MEDLEDGER_URL ?? 'http://127.0.0.1:8080';
export const SHOTS = process.env.MEDLEDGER_SCREENSHOTS ?? path.resolve('target/screenshots');
/** The relay's dev-keys.json (demo accounts), needed by specs that act as a demo account. */
export const DEV_KEYS = process.env.MEDLEDGER_DEV_KEYS;

export async function launch() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const logs = [];
  // MEDLEDGER_CONSOLE=1 streams the page's console as it happens (for a spec that hangs);
  // otherwise the last lines are printed only on failure.
  const live = process.env.MEDLEDGER_CONSOLE === '1';
  const log = (line) => {
    logs.push(line);
    if (live) console.log(`${new Date().toISOString()} ${line}`);
  };
  page.on('console', (m) => log(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log(`[pageerror] ${e.stack ?? e.message}`));
  return { browser, page, logs };
}

export async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

/** Waits until the status bar shows a verified head; returns its height. */
export async function verifiedHead(page, timeout = 60_000) {
  await page.getByTestId('head-height').waitFor({ timeout });
  const text = await page.getByTestId('head-height').innerText();
  return Number(text.replace('#', ''));
}

/** Imports every demo account of dev-keys.json and selects `name`. */
export async function importDevKeys(page, name) {
  if (!DEV_KEYS) throw new Error('set MEDLEDGER_DEV_KEYS to the relay\'s dev-keys.json');
  await page.getByTestId('tab-keys').click();
  await page.getByTestId('import-text').fill(fs.readFileSync(DEV_KEYS, 'utf8'));
  await page.getByTestId('import').click();
  await page.getByTestId(`use-${name}`).click();
}

export function check(condition, message) {
  if (!condition) throw new Error(`FAILED: ${message}`);
  console.log(`ok - ${message}`);
}

/** Runs `body`, prints the page's console on failure, always closes the browser. */
export async function run(name, body) {
  const { browser, page, logs } = await launch();
  try {
    await page.goto(URL);
    await body(page);
    console.log(`PASS ${name}`);
  } catch (e) {
    await shot(page, `${name}-failure`).catch(() => {});
    console.error(logs.slice(-40).join('\n'));
    console.error(`FAIL ${name}: ${e.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
