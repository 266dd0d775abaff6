// End-to-end check of the chat example's /chat stream with the npm
// `eventsource` client (fetch-based, WHATWG reconnect semantics).
//   BASE=http://127.0.0.1:3000 node node_eventsource.mjs
import { EventSource } from 'eventsource';
import { BASE, TEST_TIMEOUT_MS, assert, fetchExpected, parseSse, runTests } from './lib.mjs';

const PROMPT = 'hi';
const DROP_AFTER = 3;
const RETRY_MS = 300;

/** Stream url with EventSource until `done`; record every request it made. */
function collect(url) {
  return new Promise((resolve, reject) => {
    const requests = [];
    const tokens = [];
    let errors = 0;
    let opens = 0;
    const es = new EventSource(url, {
      fetch: (input, init) => {
        const headers = Object.fromEntries(
          Object.entries(init.headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
        requests.push({ at: Date.now(), lastEventId: headers['last-event-id'] });
        return fetch(input, init);
      },
    });
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`no done event within ${TEST_TIMEOUT_MS - 2000} ms; tokens ids so far `
        + `${JSON.stringify(tokens.map((t) => t.id))}, ${requests.length} requests, ${errors} errors`));
    }, TEST_TIMEOUT_MS - 2000);
    es.addEventListener('open', () => { opens += 1; });
    es.addEventListener('error', (e) => {
      errors += 1;
      // A clean end of stream is reported as an error followed by a reconnect;
      // a CLOSED state means the library gave up.
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        reject(new Error(`EventSource closed on error: ${e.message ?? ''} code=${e.code ?? ''}`));
      }
    });
    es.addEventListener('token', (e) => {
      tokens.push({ id: e.lastEventId, token: JSON.parse(e.data).token });
    });
    es.addEventListener('done', (e) => {
      es.close();
      clearTimeout(timer);
      resolve({ tokens, requests, errors, opens, doneId: e.lastEventId, done: JSON.parse(e.data) });
    });
  });
}

function checkStream(got, expected) {
  const ids = got.tokens.map((t) => t.id);
  const want = Array.from({ length: expected.n }, (_, i) => String(i + 1));
  assert(JSON.stringify(ids) === JSON.stringify(want), `token ids ${JSON.stringify(ids)}, want 1..${expected.n} each once`);
  const reply = got.tokens.map((t) => t.token).join('');
  assert(reply === expected.reply, `reply ${JSON.stringify(reply)}, want ${JSON.stringify(expected.reply)}`);
  assert(got.doneId === String(expected.n + 1), `done event id ${got.doneId}, want ${expected.n + 1}`);
  assert(got.done && got.done.finished === true, `done data ${JSON.stringify(got.done)}, want {"finished":true}`);
}

const chatUrl = (extra = '') => `${BASE}/chat?prompt=${encodeURIComponent(PROMPT)}${extra}`;
let expected;

await runTests('node_eventsource', [
  ['A: full stream', async () => {
    expected = await fetchExpected(PROMPT);
    const got = await collect(chatUrl());
    checkStream(got, expected);
    assert(got.requests.length === 1, `expected 1 request, saw ${got.requests.length}`);
    assert(got.errors === 0, `saw ${got.errors} error events on an undisturbed stream`);
  }],
  ['B: drop_after reconnect resumes with Last-Event-ID', async () => {
    expected ??= await fetchExpected(PROMPT);
    assert(expected.n > DROP_AFTER, `reply for "${PROMPT}" has only ${expected.n} tokens; need more than ${DROP_AFTER}`);
    const got = await collect(chatUrl(`&drop_after=${DROP_AFTER}&retry_ms=${RETRY_MS}`));
    checkStream(got, expected);
    const seen = JSON.stringify(got.requests.map((r) => r.lastEventId ?? null));
    assert(got.requests.length === 2, `expected 2 requests (initial + reconnect), saw ${got.requests.length}: last-event-ids ${seen}`);
    assert(got.requests[0].lastEventId === undefined, `first request sent Last-Event-ID ${got.requests[0].lastEventId}`);
    assert(got.requests[1].lastEventId === String(DROP_AFTER),
      `reconnect sent Last-Event-ID ${JSON.stringify(got.requests[1].lastEventId)}, want "${DROP_AFTER}"`);
    assert(got.opens === 2, `expected 2 open events, saw ${got.opens}`);
    const gap = got.requests[1].at - got.requests[0].at;
    assert(gap < 2500, `reconnect came ${gap} ms after the first request; retry_ms=${RETRY_MS} not honoured?`);
  }],
  ['C: Last-Event-ID n sends only done', async () => {
    expected ??= await fetchExpected(PROMPT);
    const res = await fetch(chatUrl(), {
      headers: { 'Last-Event-ID': String(expected.n) },
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    assert(res.status === 200, `status ${res.status}, want 200`);
    const { events } = parseSse(await res.text());
    assert(events.length === 1 && events[0].event === 'done' && events[0].id === String(expected.n + 1),
      `events ${JSON.stringify(events)}, want only done with id ${expected.n + 1}`);
  }],
  ['D: Last-Event-ID n+1 gives 204 No Content', async () => {
    expected ??= await fetchExpected(PROMPT);
    const res = await fetch(chatUrl(), {
      headers: { 'Last-Event-ID': String(expected.n + 1) },
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    const body = await res.text();
    assert(res.status === 204, `status ${res.status}, want 204 (body ${JSON.stringify(body.slice(0, 200))})`);
  }],
]);
