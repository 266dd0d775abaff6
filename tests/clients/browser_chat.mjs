// End-to-end check of the chat example's page in a real browser (Debian's
// Chromium driven by playwright-core; no browser download).
//   BASE=http://127.0.0.1:3000 node browser_chat.mjs
import { BASE, TEST_TIMEOUT_MS, assert, fetchExpected, runTests } from './lib.mjs';
import { closeChromium, openChromium } from './chromium.mjs';

const PROMPT = 'hi';
const DROP_AFTER = 3;
const RETRY_MS = 300;

/** Open BASE + path, wait for the page's done marker, return what happened. */
async function openChat(context, path) {
  const page = await context.newPage();
  const chatRequests = [];
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.pathname === '/chat') {
      chatRequests.push({ at: Date.now(), url: req.url(), headers: req.allHeaders() });
    }
  });
  try {
    await page.goto(BASE + path, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
    try {
      await page.waitForFunction(() => document.body && document.body.dataset.done === '1', null, {
        timeout: TEST_TIMEOUT_MS - 2000,
        polling: 50,
      });
    } catch (err) {
      const partial = await page.locator('#reply').textContent().catch(() => '?');
      throw new Error(`page never set body.dataset.done="1" (reply so far: ${JSON.stringify(partial)}; `
        + `/chat requests: ${chatRequests.length}; console: ${JSON.stringify(consoleLines)})`);
    }
    const reply = await page.locator('#reply').textContent();
    const log = await page.evaluate(() => window.__sseLog);
    for (const r of chatRequests) r.headers = await r.headers;
    return { reply, log, chatRequests };
  } finally {
    await page.close();
  }
}

function checkIds(log, n) {
  const want = Array.from({ length: n }, (_, i) => String(i + 1));
  assert(JSON.stringify(log.ids) === JSON.stringify(want),
    `token ids seen by the browser: ${JSON.stringify(log.ids)}, want 1..${n} each once`);
}

let expected;

await runTests('browser_chat', [
  ['A: full reply rendered', async ({ context }) => {
    expected = await fetchExpected(PROMPT);
    const { reply, log, chatRequests } = await openChat(context, `/?prompt=${encodeURIComponent(PROMPT)}`);
    assert(reply === expected.reply, `#reply is ${JSON.stringify(reply)}, want ${JSON.stringify(expected.reply)}`);
    assert(log, 'EventSource instrumentation did not run (page did not use window.EventSource?)');
    checkIds(log, expected.n);
    assert(chatRequests.length === 1, `expected exactly 1 /chat request, saw ${chatRequests.length}`);
    const u = new URL(chatRequests[0].url);
    assert(u.searchParams.get('prompt') === PROMPT, `page requested ${chatRequests[0].url}`);
  }],
  ['B: reconnect after drop resumes with Last-Event-ID', async ({ context }) => {
    expected ??= await fetchExpected(PROMPT);
    assert(expected.n > DROP_AFTER, `reply for "${PROMPT}" has only ${expected.n} tokens; need more than ${DROP_AFTER}`);
    const { reply, log, chatRequests } = await openChat(context,
      `/?prompt=${encodeURIComponent(PROMPT)}&drop_after=${DROP_AFTER}&retry_ms=${RETRY_MS}`);
    assert(reply === expected.reply, `#reply is ${JSON.stringify(reply)}, want ${JSON.stringify(expected.reply)}`);
    checkIds(log, expected.n);
    const summary = chatRequests.map((r) => `${r.url} [last-event-id: ${r.headers['last-event-id'] ?? '-'}]`).join(', ');
    assert(chatRequests.length === 2, `expected 2 /chat requests (initial + 1 reconnect), saw ${chatRequests.length}: ${summary}`);
    const [first, second] = chatRequests;
    assert(new URL(first.url).searchParams.get('drop_after') === String(DROP_AFTER),
      `page did not pass drop_after on to /chat: ${first.url}`);
    assert(new URL(first.url).searchParams.get('retry_ms') === String(RETRY_MS),
      `page did not pass retry_ms on to /chat: ${first.url}`);
    assert(first.headers['last-event-id'] === undefined,
      `first /chat request already had last-event-id: ${first.headers['last-event-id']}`);
    assert(second.headers['last-event-id'] === String(DROP_AFTER),
      `reconnect sent last-event-id ${JSON.stringify(second.headers['last-event-id'])}, want "${DROP_AFTER}"`);
    const gap = second.at - first.at;
    assert(gap < 2500, `reconnect came ${gap} ms after the first request; retry_ms=${RETRY_MS} not honoured?`);
  }],
  ['C: reload mid-reply, the reply completes, generated once', async ({ context }) => {
    // A long prompt, so the reply is still being generated at the reload.
    const prompt = `reload ${Date.now()} ${'word '.repeat(60).trim()}`;
    const page = await context.newPage();
    try {
      await page.goto(`${BASE}/?prompt=${encodeURIComponent(prompt)}`, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
      await page.waitForFunction(() => window.__sseLog && window.__sseLog.ids.length >= 3, null,
        { timeout: TEST_TIMEOUT_MS - 2000, polling: 10 });
      const before = await page.evaluate(() => ({ ids: window.__sseLog.ids.length, done: document.body.dataset.done }));
      assert(before.done !== '1', 'the reply was done before the reload');
      await page.reload({ waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
      await page.waitForFunction(() => document.body && document.body.dataset.done === '1', null,
        { timeout: TEST_TIMEOUT_MS - 2000, polling: 50 });
      const reply = await page.locator('#reply').textContent();
      const log = await page.evaluate(() => window.__sseLog);
      const want = await fetchExpected(prompt);
      assert(reply === want.reply, `#reply after the reload is ${JSON.stringify(reply)}, want ${JSON.stringify(want.reply)}`);
      checkIds(log, want.n);
      const runs = await (await fetch(`${BASE}/generations?prompt=${encodeURIComponent(prompt)}`)).text();
      assert(runs === '1', `the reply was generated ${runs} times, want once`);
    } finally {
      await page.close();
    }
  }],
], {
  before: openChromium,
  after: closeChromium,
});
