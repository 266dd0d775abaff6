// Headless Chromium for the browser checks: a fresh profile per run, with
// the page's EventSource instrumented before the page's own scripts run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** How every check starts Debian's Chromium (CHROMIUM: another binary). */
export const LAUNCH_OPTIONS = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000, // a cold start on a loaded 2-core machine can take a while
};

// Runs in the page before its own scripts: wraps EventSource so the test can
// see every token id the browser delivered, and how often it opened and
// failed, without the page's cooperation.
function instrumentEventSource() {
  const Orig = window.EventSource;
  const log = { ids: [], opens: 0, errors: 0 };
  window.__sseLog = log;
  window.EventSource = class extends Orig {
    constructor(url, init) {
      super(url, init);
      this.addEventListener('token', (e) => log.ids.push(e.lastEventId));
      this.addEventListener('open', () => { log.opens += 1; });
      this.addEventListener('error', () => { log.errors += 1; });
    }
  };
}

/** A persistent browser context on a temporary profile: `runTests`' `before`. */
export async function openChromium() {
  const userDataDir = await mkdtemp(join(tmpdir(), 'axum-sse-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, LAUNCH_OPTIONS);
  await context.addInitScript(instrumentEventSource);
  return { context, userDataDir };
}

/** Closes what `openChromium` opened and removes its profile: `runTests`' `after`. */
export async function closeChromium(ctx) {
  if (!ctx) return;
  await ctx.context.close().catch(() => {});
  await rm(ctx.userDataDir, { recursive: true, force: true });
}
