// Shared helpers for the client end-to-end tests.

export const BASE = (process.env.BASE || 'http://127.0.0.1:3000').replace(/\/+$/, '');
/** Where examples/openai.rs listens. */
export const OPENAI_BASE = (process.env.OPENAI_BASE || 'http://127.0.0.1:3000').replace(/\/+$/, '');
/** What examples/openai.rs answers to `prompt`. */
export const openaiReply = (prompt) => `You said: ${prompt}`;
/** The message of the error that a prompt with `please fail` gets from examples/openai.rs. */
export const OPENAI_FAIL_MESSAGE = 'The model failed mid-reply, as the prompt asked.';
export const TEST_TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS || 20000);

/** Minimal SSE parser (WHATWG rules, enough for the chat contract). */
export function parseSse(text) {
  const events = [];
  let retry = null;
  let sawRetryFirst = null;
  for (const block of text.replace(/\r\n?/g, '\n').split('\n\n')) {
    if (!block.trim()) continue;
    const ev = { event: 'message', id: null, data: [] };
    let hasField = false;
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'retry') {
        retry = Number(value);
        if (sawRetryFirst === null) sawRetryFirst = events.length === 0 && !hasField;
      } else if (field === 'event') { ev.event = value; hasField = true; }
      else if (field === 'id') { ev.id = value; hasField = true; }
      else if (field === 'data') { ev.data.push(value); hasField = true; }
    }
    if (ev.data.length) events.push({ ...ev, data: ev.data.join('\n') });
  }
  return { events, retry, retryFirst: !!sawRetryFirst };
}

/** Fetch /chat?prompt=... directly and return the expected tokens and reply. */
export async function fetchExpected(prompt) {
  const res = await fetch(`${BASE}/chat?prompt=${encodeURIComponent(prompt)}`, {
    signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
  });
  if (res.status !== 200) throw new Error(`GET /chat?prompt=${prompt}: status ${res.status}`);
  const { events } = parseSse(await res.text());
  const tokens = events.filter((e) => e.event === 'token');
  const done = events.filter((e) => e.event === 'done');
  if (tokens.length === 0) throw new Error('direct /chat returned no token events');
  tokens.forEach((t, i) => {
    if (t.id !== String(i + 1)) throw new Error(`direct /chat: token ${i + 1} has id ${t.id}`);
  });
  if (done.length !== 1 || done[0].id !== String(tokens.length + 1)) {
    throw new Error(`direct /chat: expected one done event with id ${tokens.length + 1}, got ${JSON.stringify(done)}`);
  }
  const words = tokens.map((t) => JSON.parse(t.data).token);
  return { tokens: words, reply: words.join(''), n: words.length };
}

/** Run named async checks, each with a timeout; print results; exit non-zero on failure. */
export async function runTests(suite, tests, { before, after } = {}) {
  let passed = 0;
  let failed = 0;
  let ctx;
  try {
    ctx = before ? await before() : undefined;
    for (const [name, fn] of tests) {
      const t0 = Date.now();
      let timer;
      try {
        await Promise.race([
          fn(ctx),
          new Promise((_, rej) => {
            timer = setTimeout(() => rej(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS);
          }),
        ]);
        passed++;
        console.log(`ok   ${suite}: ${name} (${Date.now() - t0} ms)`);
      } catch (err) {
        failed++;
        let msg = String(err && err.message ? err.message : err);
        if (msg.length > 800) msg = `${msg.slice(0, 800)}... (${msg.length} chars)`;
        console.log(`FAIL ${suite}: ${name}: ${msg}`);
      } finally {
        clearTimeout(timer);
      }
    }
  } catch (err) {
    failed++;
    console.log(`FAIL ${suite}: setup: ${err && err.stack ? err.stack : err}`);
  } finally {
    if (after) {
      try { await after(ctx); } catch (err) { console.log(`warn ${suite}: teardown: ${err}`); }
    }
  }
  console.log(`${suite}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
