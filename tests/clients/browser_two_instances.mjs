// Two instances of the chat example on one Redis, in a real browser
// (Debian's Chromium driven by playwright-core): the chat page opened on
// instance A, then, mid-reply, loaded on instance B (a reload that a load
// balancer sends elsewhere), shows the whole reply, generated once.
//   CHAT_BASE_A=http://127.0.0.1:3000 CHAT_BASE_B=http://127.0.0.1:3001 \
//     node browser_two_instances.mjs
// run.sh starts both on REDIS_URL with TOKEN_DELAY_MS=100.
import { TEST_TIMEOUT_MS, assert, runTests } from './lib.mjs';
import { closeChromium, openChromium } from './chromium.mjs';

const strip = (url) => (url || '').replace(/\/+$/, '');
const A = strip(process.env.CHAT_BASE_A);
const B = strip(process.env.CHAT_BASE_B);

/** What examples/chat.rs `reply(prompt)` generates, token by token. */
function replyTokens(prompt) {
  const text = `You asked: "${prompt}". This reply streams one token at a time over `
    + 'Server-Sent Events, and picks up where it stopped if the connection drops.';
  return text.match(/[^ ]* ?/g).filter((t) => t !== '');
}

async function generations(base, prompt) {
  const res = await fetch(`${base}/generations?prompt=${encodeURIComponent(prompt)}`, {
    signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
  });
  assert(res.status === 200, `GET ${base}/generations: status ${res.status}`);
  return Number(await res.text());
}

await runTests('browser_two_instances', [
  ['page on A, loaded again on B mid-reply: the whole reply, generated once', async ({ context }) => {
    const prompt = `browser two instances ${Date.now()} one two three four five six seven eight`;
    const tokens = replyTokens(prompt);
    const page = await context.newPage();
    try {
      const path = `/?prompt=${encodeURIComponent(prompt)}`;
      await page.goto(A + path, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
      await page.waitForFunction(() => window.__sseLog && window.__sseLog.ids.length >= 3, null,
        { timeout: TEST_TIMEOUT_MS - 2000, polling: 10 });
      const before = await page.evaluate(() => ({ ids: window.__sseLog.ids.length, done: document.body.dataset.done }));
      assert(before.done !== '1' && before.ids < tokens.length, 'the reply was done before the page moved to B');
      await page.goto(B + path, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
      await page.waitForFunction(() => document.body && document.body.dataset.done === '1', null,
        { timeout: TEST_TIMEOUT_MS - 2000, polling: 50 });
      const reply = await page.locator('#reply').textContent();
      const ids = await page.evaluate(() => window.__sseLog.ids);
      assert(reply === tokens.join(''), `#reply on B is ${JSON.stringify(reply)}, want ${JSON.stringify(tokens.join(''))}`);
      const want = tokens.map((_, i) => String(i + 1));
      assert(JSON.stringify(ids) === JSON.stringify(want), `token ids on B: ${JSON.stringify(ids)}, want 1..${tokens.length} each once`);
      const [onA, onB] = [await generations(A, prompt), await generations(B, prompt)];
      assert(onA + onB === 1, `the reply was generated ${onA} times on A and ${onB} times on B, want once in all`);
    } finally {
      await page.close();
    }
  }],
], {
  before: async () => {
    assert(A && B, 'CHAT_BASE_A and CHAT_BASE_B are not set: run.sh starts two chat instances on REDIS_URL for these checks');
    return openChromium();
  },
  after: closeChromium,
});
