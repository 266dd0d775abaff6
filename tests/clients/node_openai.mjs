// End-to-end checks of examples/openai.rs with the official `openai` npm
// SDK: Chat Completions and Responses, streamed (raw iterators and the
// stream helpers), and an error mid-stream surfacing as `OpenAI.APIError`.
//   OPENAI_BASE=http://127.0.0.1:3000 node node_openai.mjs
import OpenAI from 'openai';
import { OPENAI_BASE, OPENAI_FAIL_MESSAGE, TEST_TIMEOUT_MS, assert, openaiReply, runTests } from './lib.mjs';

const PROMPT = 'stream these words back to me';
const EXPECTED = openaiReply(PROMPT);
const FAILING = 'please fail after a few words';

const client = new OpenAI({ baseURL: `${OPENAI_BASE}/v1`, apiKey: 'x', maxRetries: 0, timeout: TEST_TIMEOUT_MS });
const messages = (content) => [{ role: 'user', content }];

/** Runs `read(got)` and expects an OpenAI.APIError after some tokens. */
async function expectApiError(read) {
  const got = [];
  try {
    await read(got);
  } catch (err) {
    assert(err instanceof OpenAI.APIError, `threw ${err && err.constructor && err.constructor.name}: ${err}, want OpenAI.APIError`);
    assert(String(err.message).includes(OPENAI_FAIL_MESSAGE), `APIError message ${JSON.stringify(err.message)}`);
    assert(got.length >= 1, 'the error came before any token');
    assert(openaiReply(FAILING).startsWith(got.join('')), `tokens before the error ${JSON.stringify(got)}`);
    return;
  }
  throw new Error(`no APIError; got ${JSON.stringify(got)}`);
}

function checkResponseEvents(events) {
  const types = events.map((e) => e.type);
  const seqs = events.map((e) => e.sequence_number);
  assert(JSON.stringify(seqs) === JSON.stringify(seqs.map((_, i) => i)), `sequence numbers ${JSON.stringify(seqs)}`);
  assert(types[0] === 'response.created' && types.at(-1) === 'response.completed', `event types ${JSON.stringify(types)}`);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
  assert(deltas.length > 3, `only ${deltas.length} deltas: the reply did not stream`);
  assert(deltas.join('') === EXPECTED, `deltas ${JSON.stringify(deltas.join(''))}, want ${JSON.stringify(EXPECTED)}`);
  const done = events.find((e) => e.type === 'response.output_text.done');
  assert(done && done.text === EXPECTED, `output_text.done ${JSON.stringify(done)}`);
}

await runTests('node_openai', [
  ['raw stream: ids on every event, heartbeats inside the reply, no block without data', async () => {
    const res = await fetch(`${OPENAI_BASE}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'echo', stream: true, messages: messages(PROMPT) }),
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    assert(res.status === 200, `status ${res.status}`);
    const raw = await res.text();
    const blocks = raw.replace(/\r\n?/g, '\n').split('\n\n').filter((b) => b !== '');
    const events = [];
    let comments = 0;
    for (const block of blocks) {
      const lines = block.split('\n');
      comments += lines.filter((l) => l.startsWith(':')).length;
      const data = lines.filter((l) => l.startsWith('data:'));
      // Loose parsers (the Python SDK's among them) dispatch such a block
      // as an empty event.
      assert(data.length > 0, `a block without data: ${JSON.stringify(block)} in ${JSON.stringify(raw.slice(0, 300))}`);
      const id = lines.find((l) => l.startsWith('id:'));
      events.push({ id: id && id.replace(/^id: ?/, ''), data: data.map((l) => l.replace(/^data: ?/, '')).join('\n') });
    }
    const ids = JSON.stringify(events.map((e) => e.id));
    assert(ids === JSON.stringify(events.map((_, i) => String(i))), `event ids ${ids}`);
    assert(events.at(-1).data === '[DONE]', `last event ${JSON.stringify(events.at(-1))}`);
    const tokens = EXPECTED.split(' ').length;
    assert(comments >= tokens - 1, `${comments} heartbeat comments for ${tokens} tokens: `
      + 'the test setup (HEARTBEAT_MS below TOKEN_DELAY_MS) no longer puts heartbeats inside replies');
  }],
  ['chat completions, stream', async () => {
    const stream = await client.chat.completions.create({ model: 'echo', messages: messages(PROMPT), stream: true });
    let text = '';
    let finish = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      assert(chunk.object === 'chat.completion.chunk', `chunk object ${chunk.object}`);
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
      }
    }
    assert(text === EXPECTED, `text ${JSON.stringify(text)}, want ${JSON.stringify(EXPECTED)}`);
    assert(finish === 'stop', `finish_reason ${finish}`);
    assert(chunks > 3, `only ${chunks} chunks`);
  }],
  ['chat completions, stream() helper finalContent', async () => {
    const runner = client.chat.completions.stream({ model: 'echo', messages: messages(PROMPT) });
    const deltas = [];
    runner.on('content', (delta) => deltas.push(delta));
    const content = await runner.finalContent();
    assert(content === EXPECTED, `finalContent ${JSON.stringify(content)}`);
    assert(deltas.join('') === EXPECTED, `content deltas ${JSON.stringify(deltas)}`);
  }],
  ['chat completions, error mid-stream throws APIError', () => expectApiError(async (got) => {
    const stream = await client.chat.completions.create({ model: 'echo', messages: messages(FAILING), stream: true });
    for await (const chunk of stream) {
      for (const choice of chunk.choices) if (choice.delta.content) got.push(choice.delta.content);
    }
  })],
  ['responses, stream', async () => {
    const stream = await client.responses.create({ model: 'echo', input: PROMPT, stream: true });
    const events = [];
    for await (const event of stream) events.push(event);
    checkResponseEvents(events);
    assert(events.at(-1).response.status === 'completed', `status ${events.at(-1).response.status}`);
  }],
  ['responses, stream() helper finalResponse', async () => {
    const stream = client.responses.stream({ model: 'echo', input: [{ role: 'user', content: PROMPT }] });
    const deltas = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert(final.output_text === EXPECTED, `final output_text ${JSON.stringify(final.output_text)}`);
    assert(deltas.join('') === EXPECTED, `deltas ${JSON.stringify(deltas)}`);
  }],
  ['responses, error mid-stream throws APIError', () => expectApiError(async (got) => {
    const stream = await client.responses.create({ model: 'echo', input: FAILING, stream: true });
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') got.push(event.delta);
    }
  })],
]);
