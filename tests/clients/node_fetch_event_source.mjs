// End-to-end checks of examples/openai.rs with `@microsoft/fetch-event-source`,
// the usual way to read a POST-started event stream in a browser: a chat
// completion read whole, resumed by hand with Last-Event-ID, and resumed by
// the library itself after the connection is cut mid-reply.
//   OPENAI_BASE=http://127.0.0.1:3000 node node_fetch_event_source.mjs
import { fetchEventSource } from '@microsoft/fetch-event-source';
import { OPENAI_BASE, TEST_TIMEOUT_MS, assert, openaiReply, runTests } from './lib.mjs';

// The library is written for browsers: it reads `window` and `document`
// (page visibility). Node has neither; these stand-ins are all it uses.
globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

const PROMPT = 'stream these words back to me';
const EXPECTED = openaiReply(PROMPT);
const TOKENS = EXPECTED.split(/(?<= )/); // one token per word, space kept
const URL = `${OPENAI_BASE}/v1/chat/completions`;
const BODY = JSON.stringify({ model: 'echo', stream: true, messages: [{ role: 'user', content: PROMPT }] });

/**
 * Streams the chat completion with fetchEventSource; resolves with every
 * message, each request's Last-Event-ID, and the errors it retried after.
 */
function collect({ headers = {}, fetch = globalThis.fetch } = {}) {
  return new Promise((resolve, reject) => {
    const messages = [];
    const requests = [];
    const errors = [];
    const ctrl = new AbortController();
    const timer = setTimeout(() => {
      ctrl.abort();
      reject(new Error(`no [DONE] within ${TEST_TIMEOUT_MS - 2000} ms; ${messages.length} messages, `
        + `${requests.length} requests, errors ${JSON.stringify(errors)}`));
    }, TEST_TIMEOUT_MS - 2000);
    fetchEventSource(URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: BODY,
      signal: ctrl.signal,
      openWhenHidden: true,
      fetch: (input, init) => {
        requests.push({ lastEventId: init.headers['last-event-id'] });
        return fetch(input, init);
      },
      onmessage: (msg) => {
        messages.push({ id: msg.id, event: msg.event, data: msg.data });
        if (msg.data === '[DONE]') {
          clearTimeout(timer);
          ctrl.abort();
          resolve({ messages, requests, errors });
        }
      },
      onerror: (err) => {
        errors.push(String(err));
        if (errors.length > 3) throw err; // give up: rejects the promise
        return 100; // retry soon, rather than after the advised 3 s
      },
    }).catch((err) => { clearTimeout(timer); reject(err); });
  });
}

/** The chunks' text; every message must be a chunk or the final [DONE]. */
function textOf(messages) {
  let text = '';
  for (const [i, msg] of messages.entries()) {
    if (msg.data === '[DONE]') {
      assert(i === messages.length - 1, `[DONE] at ${i} of ${messages.length}`);
      continue;
    }
    let chunk;
    try {
      chunk = JSON.parse(msg.data);
    } catch {
      throw new Error(`message ${i} (id ${JSON.stringify(msg.id)}) is not JSON: ${JSON.stringify(msg.data)}`);
    }
    assert(chunk.object === 'chat.completion.chunk', `message ${i}: ${msg.data}`);
    for (const choice of chunk.choices) text += choice.delta.content ?? '';
  }
  return text;
}

function checkIds(messages, first) {
  const ids = messages.map((m) => m.id);
  const want = messages.map((_, i) => String(first + i));
  assert(JSON.stringify(ids) === JSON.stringify(want), `ids ${JSON.stringify(ids)}, want ${JSON.stringify(want)}`);
}

/** A fetch whose first response is cut right after the event with id `cutAfter`. */
function cuttingFetch(cutAfter) {
  let calls = 0;
  return async (input, init) => {
    const res = await fetch(input, init);
    calls += 1;
    if (calls > 1) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let seen = ''; // the text read so far
    let passed = 0; // how much of it went on to the library
    const body = new ReadableStream({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) { controller.close(); return; }
        seen += decoder.decode(value, { stream: true });
        const at = seen.search(new RegExp(`(^|\\n)id: ${cutAfter}\\n`));
        const end = at < 0 ? -1 : seen.indexOf('\n\n', at + 1);
        if (end < 0) {
          controller.enqueue(encoder.encode(seen.slice(passed)));
          passed = seen.length;
          return;
        }
        // Pass on the stream up to the end of that event, then fail.
        controller.enqueue(encoder.encode(seen.slice(passed, end + 2)));
        await reader.cancel();
        controller.error(new TypeError('connection cut by the test'));
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

await runTests('node_fetch_event_source', [
  ['POST stream, whole reply', async () => {
    const got = await collect();
    const text = textOf(got.messages);
    assert(text === EXPECTED, `text ${JSON.stringify(text)}, want ${JSON.stringify(EXPECTED)}`);
    checkIds(got.messages, 0);
    assert(got.requests.length === 1 && got.errors.length === 0,
      `${got.requests.length} requests, errors ${JSON.stringify(got.errors)}`);
  }],
  ['POST with Last-Event-ID: 3 continues after the third token', async () => {
    const got = await collect({ headers: { 'last-event-id': '3' } });
    const text = textOf(got.messages);
    const want = TOKENS.slice(3).join('');
    assert(text === want, `text ${JSON.stringify(text)}, want ${JSON.stringify(want)}`);
    checkIds(got.messages, 4);
  }],
  ['connection cut after id 3: the library resumes with Last-Event-ID', async () => {
    const got = await collect({ fetch: cuttingFetch(3) });
    const text = textOf(got.messages);
    assert(text === EXPECTED, `text ${JSON.stringify(text)}, want ${JSON.stringify(EXPECTED)}`);
    checkIds(got.messages, 0);
    const sent = JSON.stringify(got.requests.map((r) => r.lastEventId ?? null));
    assert(sent === JSON.stringify([null, '3']), `requests' Last-Event-ID ${sent}, want [null,"3"]`);
  }],
]);
