// A lying relay shows a warning (issue 7). The page's discovery document is rewritten so its
// light client dials a hostile relay (tests/src/bin/lying_relay.rs) instead of the honest one
// that serves the page. The liar forwards every request to the honest relay and, after one
// honest chain head, lies about the head:
// - `--lie signature`: new heads carry a commit signature with a flipped byte → the relay is
//   shown as "not trusted" with the reason, and the head verified before stays on screen;
// - `--lie fork`: a conflicting header at the height the page already trusts, signed with the
//   dev validator's key (an equivocating validator: both headers verify) → the fork banner.
//
// The dashboard uses one relay at a time (the first address of the discovery document that
// answers), so the liar is listed alone: appended after the honest addresses it would never be
// dialed. Needs MEDLEDGER_DEV_KEYS (the dev relay's dev-keys.json: the validator key is in
// node/node_key.json next to it). The lying_relay binary is built with cargo unless
// MEDLEDGER_LYING_RELAY names it.
import { launch, shot, verifiedHead, check, URL, DEV_KEYS } from './lib.mjs';
import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

const TARGET = process.env.CARGO_TARGET_DIR ?? path.resolve('target');
let BIN = process.env.MEDLEDGER_LYING_RELAY;
if (!BIN) {
  execFileSync('cargo', ['build', '--quiet', '-p', 'medledger-tests', '--bin', 'lying_relay'], { stdio: 'inherit' });
  BIN = path.join(TARGET, 'debug', 'lying_relay');
}
if (!DEV_KEYS) throw new Error('set MEDLEDGER_DEV_KEYS to the dev relay\'s dev-keys.json');
const DEV_DATA = path.dirname(path.resolve(DEV_KEYS));

const discovery = await (await fetch(`${URL}/.well-known/medledger.json`)).json();
const UPSTREAM = discovery.multiaddrs.find((a) => a.includes('/ws'));
if (!UPSTREAM) throw new Error(`no WebSocket address in ${JSON.stringify(discovery)}`);

/** Starts the liar; resolves with its addresses once it listens. */
function startLiar(lie) {
  const child = spawn(BIN, ['--upstream', UPSTREAM, '--lie', lie, '--dev-data', DEV_DATA], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (d) => log.push(d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lying_relay did not listen within 60 s:\n${log.join('')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`lying_relay exited (${code}):\n${log.join('')}`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, addrs: JSON.parse(line), log });
    });
  });
}

/** Opens the dashboard with the liar as its only relay; runs `body`; cleans up. */
async function withLiar(lie, body) {
  const liar = await startLiar(lie);
  const { browser, page, logs } = await launch();
  try {
    await page.route('**/.well-known/medledger.json', async (route) => {
      const response = await route.fetch();
      const doc = await response.json();
      doc.multiaddrs = [liar.addrs.ws];
      await route.fulfill({ response, json: doc });
    });
    await page.goto(URL);
    await body(page, liar);
    console.log(`PASS lying relay (${lie})`);
  } catch (e) {
    await shot(page, `lying-relay-${lie}-failure`).catch(() => {});
    console.error(logs.slice(-40).join('\n'));
    console.error(`lying_relay log:\n${liar.log.join('').split('\n').slice(-30).join('\n')}`);
    console.error(`FAIL lying relay (${lie}): ${e.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    liar.child.kill();
  }
}

const headHeight = async (page) => Number((await page.getByTestId('head-height').innerText()).replace('#', ''));

await withLiar('signature', async (page, liar) => {
  const head = await verifiedHead(page);
  check(head > 0, `verified head #${head} through the lying relay (honest so far)`);
  const relay = page.getByTestId('relay');
  const port = /\/tcp\/(\d+)\//.exec(liar.addrs.ws)[1];
  const title = await relay.getAttribute('title');
  check(title.includes(`/tcp/${port}/`), `the page's relay is the liar (${title})`);
  await relay.filter({ hasText: 'not trusted' }).waitFor({ timeout: 45_000 });
  const text = await relay.innerText();
  check(/not trusted: .*(signature|invalid)/i.test(text), `relay marked: "${text}"`);
  const after = await headHeight(page);
  check(after >= head, `the verified head stays on screen (#${after})`);
  check((await page.getByTestId('fork').count()) === 0, 'a bad signature is not reported as a fork');
  await page.getByTestId('conn-halted').waitFor({ timeout: 10_000 });
  check((await page.getByTestId('conn').count()) === 0, 'not shown as live with no trusted relay');
  await shot(page, 'lying-relay-signature');
});

await withLiar('fork', async (page) => {
  const head = await verifiedHead(page);
  check(head > 0, `verified head #${head} through the lying relay (honest so far)`);
  const banner = page.getByTestId('fork');
  await banner.waitFor({ timeout: 45_000 });
  const text = await banner.innerText();
  const m = /FORK at height (\d+)/.exec(text);
  check(m !== null, `fork banner: "${text}"`);
  const forkHeight = Number(m[1]);
  const shown = await headHeight(page);
  check(forkHeight >= head && forkHeight <= shown, `the fork is at a height the page trusted (#${forkHeight})`);
  check(shown >= head, `a verified head is still shown (#${shown})`);
  await page.waitForTimeout(5_000);
  check((await headHeight(page)) === shown, 'no new header is trusted after the fork');
  const halted = await page.getByTestId('conn-halted').innerText();
  check(/halted: fork/.test(halted), `the connection shows the halt, not "live": "${halted}"`);
  check((await page.getByTestId('conn').count()) === 0, 'no green "live" during a fork');
  await shot(page, 'lying-relay-fork');
});
