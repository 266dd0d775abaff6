// Two instances of the chat example on one Redis (issue #14): a reply
// started on instance A resumes on instance B, the tokens generated while
// the client was away arrive at once, the producer ran once over both, and
// the AI SDK's resume (`DefaultChatTransport.reconnectToStream`) on B finds
// the chat's active stream that POST /api/chat started on A, and a turn
// that ends never clears a newer turn's active stream.
//   CHAT_BASE_A=http://127.0.0.1:3000 CHAT_BASE_B=http://127.0.0.1:3001 \
//     node node_two_instances.mjs
// Both instances share a REDIS_URL and run with TOKEN_DELAY_MS=100 (run.sh
// starts them so when REDIS_URL is set). Without a shared Redis every check
// here fails: B then knows nothing of A's replies.
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { TEST_TIMEOUT_MS, assert, parseSse, runTests } from './lib.mjs';

const strip = (url) => (url || '').replace(/\/+$/, '');
const A = strip(process.env.CHAT_BASE_A);
const B = strip(process.env.CHAT_BASE_B);
const RUN = `${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
/** The token to leave instance A after. */
const K = 5;
/** How long the client stays away: ~10 tokens at TOKEN_DELAY_MS=100. */
const AWAY_MS = 1000;

/** What examples/chat.rs `reply(prompt)` generates, token by token. */
function replyTokens(prompt) {
  const text = `You asked: "${prompt}". This reply streams one token at a time over `
    + 'Server-Sent Events, and picks up where it stopped if the connection drops.';
  return text.match(/[^ ]* ?/g).filter((t) => t !== '');
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** The events of an SSE response body, each as soon as its block arrives. */
async function* sseEvents(res) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end + 2);
      buffer = buffer.slice(end + 2);
      yield* parseSse(block).events;
    }
  }
}

async function getChat(base, prompt, headers = {}, signal = AbortSignal.timeout(TEST_TIMEOUT_MS)) {
  return fetch(`${base}/chat?prompt=${encodeURIComponent(prompt)}`, { headers, signal });
}

async function generations(base, prompt) {
  const res = await fetch(`${base}/generations?prompt=${encodeURIComponent(prompt)}`, {
    signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
  });
  assert(res.status === 200, `GET ${base}/generations: status ${res.status}`);
  return Number(await res.text());
}

function userMessage(id, text) {
  return { id, role: 'user', parts: [{ type: 'text', text }] };
}

const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');

await runTests('node_two_instances', [
  ['/chat: read on A to token 5, away 1 s, Last-Event-ID: 5 on B gives the rest exactly, the missed tokens at once, generated once', async () => {
    const prompt = `two instances ${RUN} one two three four five six seven eight`;
    const tokens = replyTokens(prompt);
    const n = tokens.length;
    assert(n >= 20, `only ${n} tokens`);

    // The client, on A, to token K.
    const first = new AbortController();
    const resA = await getChat(A, prompt, {}, AbortSignal.any([first.signal, AbortSignal.timeout(TEST_TIMEOUT_MS)]));
    assert(resA.status === 200, `GET ${A}/chat: status ${resA.status}`);
    // A watcher on A reads the whole reply as it is generated: its latest
    // token id is the generator's clock.
    const watcher = { latest: 0, events: [] };
    const resW = await getChat(A, prompt);
    assert(resW.status === 200, `watcher GET ${A}/chat: status ${resW.status}`);
    watcher.done = (async () => {
      for await (const ev of sseEvents(resW)) {
        watcher.events.push(ev);
        if (ev.event === 'token') watcher.latest = Number(ev.id);
      }
    })();
    watcher.done.catch(() => {}); // awaited below; not unhandled if a check fails first
    const seenA = [];
    for await (const ev of sseEvents(resA)) {
      seenA.push(ev);
      if (ev.id === String(K)) break;
    }
    first.abort();
    assert(seenA.length === K && seenA.every((ev, i) => ev.event === 'token' && ev.id === String(i + 1)),
      `on A: ${JSON.stringify(seenA.map((ev) => [ev.event, ev.id]))}, want tokens 1..${K}`);

    // Away while the generator goes on.
    await sleep(AWAY_MS);
    const missed = watcher.latest;
    assert(missed - K >= 6 && missed < n,
      `${missed - K} tokens generated while away (latest ${missed} of ${n}); want at least 6 and a live rest: `
      + 'is TOKEN_DELAY_MS 100 on both instances?');

    // Back, on B.
    const resB = await getChat(B, prompt, { 'Last-Event-ID': String(K) });
    assert(resB.status === 200, `GET ${B}/chat with Last-Event-ID: ${K}: status ${resB.status}`);
    const seenB = [];
    for await (const ev of sseEvents(resB)) seenB.push({ ...ev, clock: watcher.latest });
    await watcher.done;

    // Exactly the rest: tokens K+1..n in order, then `done`, byte-exact.
    const want = [
      ...tokens.slice(K).map((token, i) => ({ event: 'token', id: String(K + 1 + i), data: JSON.stringify({ token }) })),
      { event: 'done', id: String(n + 1), data: '{"finished":true}' },
    ];
    const got = seenB.map(({ event, id, data }) => ({ event, id, data }));
    assert(JSON.stringify(got) === JSON.stringify(want),
      `on B after ${K}: ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`);
    const text = [...seenA, ...seenB].filter((ev) => ev.event === 'token').map((ev) => JSON.parse(ev.data).token).join('');
    assert(text === tokens.join(''), `reply read over A then B ${JSON.stringify(text)}, want ${JSON.stringify(tokens.join(''))}`);
    // The uninterrupted read on A agrees.
    const whole = watcher.events.filter((ev) => ev.event === 'token').map((ev) => JSON.parse(ev.data).token).join('');
    assert(whole === tokens.join(''), `uninterrupted read on A ${JSON.stringify(whole)}`);

    // At once: every token generated before the reconnect (ids K+1..missed)
    // reached the client on B before the generator made two more tokens.
    // Measured against the generator's own clock (the watcher), not the
    // wall clock, so a slow machine slows both sides alike. Paced at the
    // generation rate instead, token `missed` would come (missed - K) >= 6
    // ticks after the reconnect, at a clock of about missed + 5; the slack
    // of two ticks covers a tick that lands while B answers.
    const late = seenB.filter((ev) => ev.event === 'token' && Number(ev.id) <= missed && ev.clock > missed + 2);
    assert(late.length === 0,
      `tokens generated while away were paced, not sent at once: ${late.map((ev) => `token ${ev.id} came after the generator's token ${ev.clock}`).join(', ')} (${missed} tokens were generated at the reconnect)`);

    // One generation over both instances (each counts its own).
    const [onA, onB] = [await generations(A, prompt), await generations(B, prompt)];
    assert(onA + onB === 1, `the reply was generated ${onA} times on A and ${onB} times on B, want once in all`);
  }],
  ['AI SDK: POST /api/chat on A, left after a few parts, reconnectToStream on B reads the whole message; then 204 on both', async () => {
    const prompt = `ai sdk two instances ${RUN} one two three four five six seven eight`;
    const chatId = `chat-two-${RUN}`;
    const res = await fetch(`${A}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: chatId, messages: [userMessage('user-1', prompt)], trigger: 'submit-message' }),
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    assert(res.status === 200, `POST ${A}/api/chat: status ${res.status}`);
    // A few parts (start, start-step, text-start and a delta or two), then
    // the client leaves.
    let deltas = 0;
    for await (const ev of sseEvents(res)) {
      if (JSON.parse(ev.data).type === 'text-delta') deltas += 1;
      if (deltas === 2) break;
    }
    assert(deltas === 2, `the POST stream ended after ${deltas} text deltas`);

    // What useChat({ resume: true }) does on mount, here against B.
    const onB = new DefaultChatTransport({ api: `${B}/api/chat` });
    const onA = new DefaultChatTransport({ api: `${A}/api/chat` });
    const chunks = await onB.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
    assert(chunks, `reconnectToStream on B gave null (204): B did not find the active stream of chat ${chatId} started on A`);
    let last;
    for await (const message of readUIMessageStream({ stream: chunks, terminateOnError: true })) last = message;
    assert(last && last.id === `${chatId}-1`, `message id ${JSON.stringify(last && last.id)}, want ${chatId}-1`);
    const want = replyTokens(prompt).join('');
    const text = textOf(last);
    assert(text === want, `resumed text on B ${JSON.stringify(text)}, want ${JSON.stringify(want)}`);
    const part = last.parts.find((p) => p.type === 'text');
    assert(part.state === 'done', `text part state ${part.state}, want done (text-end seen)`);

    // Finished: neither instance has an active stream for the chat.
    for (const [name, transport] of [['B', onB], ['A', onA]]) {
      const again = await transport.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
      assert(again === null, `a finished reply is still the active stream on ${name} (want 204)`);
    }
  }],
  ['AI SDK: a turn that ends on A does not clear the newer turn started on B', async () => {
    const chatId = `chat-turns-${RUN}`;
    const first = `first turn ${RUN} one two three`;
    // Longer, so it is still being generated when the first turn ends.
    const second = `second turn ${RUN} one two three four five six seven eight nine ten`;
    const post = (base, messages) => fetch(`${base}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: chatId, messages, trigger: 'submit-message' }),
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    const turn1 = await post(A, [userMessage('user-1', first)]);
    assert(turn1.status === 200, `POST ${A}/api/chat: status ${turn1.status}`);
    const parts1 = sseEvents(turn1);
    await parts1.next();
    // The user sends again (regenerates) on B while the first turn runs.
    const turn2 = await post(B, [
      userMessage('user-1', first),
      { id: `${chatId}-1`, role: 'assistant', parts: [{ type: 'text', text: 'cut short' }] },
      userMessage('user-2', second),
    ]);
    assert(turn2.status === 200, `POST ${B}/api/chat: status ${turn2.status}`);
    await turn2.body.cancel();
    // The first turn, read to its end: its producer has cleared what it
    // could by then.
    let last1;
    for await (const ev of parts1) last1 = ev.data;
    assert(last1 === '[DONE]', `the first turn ended with ${JSON.stringify(last1)}`);

    const onA = new DefaultChatTransport({ api: `${A}/api/chat` });
    const chunks = await onA.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
    assert(chunks, 'reconnectToStream on A gave null (204): the chat has no active stream once the first turn ended (the second turn, started on B, was cleared by the first or never seen on A)');
    let last;
    for await (const message of readUIMessageStream({ stream: chunks, terminateOnError: true })) last = message;
    assert(last && last.id === `${chatId}-3`, `resumed message id ${JSON.stringify(last && last.id)}, want ${chatId}-3 (the second turn)`);
    const want = replyTokens(second).join('');
    assert(textOf(last) === want, `resumed text ${JSON.stringify(textOf(last))}, want ${JSON.stringify(want)}`);
    const again = await onA.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
    assert(again === null, 'the second turn, finished, is still the active stream (want 204)');
  }],
], {
  before: () => {
    assert(A && B, 'CHAT_BASE_A and CHAT_BASE_B are not set: run.sh starts two chat instances on REDIS_URL for these checks');
  },
});
