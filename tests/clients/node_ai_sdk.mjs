// End-to-end checks of the chat example's POST /api/chat with the Vercel
// AI SDK's own client side (npm `ai`): `DefaultChatTransport` sends the
// request exactly as `useChat` does and parses the UI message stream,
// `readUIMessageStream` builds the assistant message from it.
//   BASE=http://127.0.0.1:3000 node node_ai_sdk.mjs
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { BASE, TEST_TIMEOUT_MS, assert, fetchExpected, runTests } from './lib.mjs';

const PROMPT = 'hi';
const transport = new DefaultChatTransport({ api: `${BASE}/api/chat` });

function userMessage(id, text) {
  return { id, role: 'user', parts: [{ type: 'text', text }] };
}

/**
 * Sends `text` as a new user message; returns the assistant's last snapshot.
 * Every snapshot also goes to `seen`.
 */
async function ask(text, { onError, seen = [] } = {}) {
  const chunks = await transport.sendMessages({
    chatId: 'chat-1',
    messages: [userMessage('user-1', text)],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS),
  });
  let last;
  let snapshots = 0;
  for await (const message of readUIMessageStream({ stream: chunks, onError, terminateOnError: true })) {
    last = message;
    snapshots += 1;
    seen.push(message);
  }
  return { message: last, snapshots };
}

const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');

await runTests('node_ai_sdk', [
  ['header x-vercel-ai-ui-message-stream: v1', async () => {
    const res = await fetch(`${BASE}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'chat-1', messages: [userMessage('user-1', PROMPT)], trigger: 'submit-message' }),
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    await res.body?.cancel();
    assert(res.status === 200, `status ${res.status}`);
    assert(res.headers.get('x-vercel-ai-ui-message-stream') === 'v1',
      `x-vercel-ai-ui-message-stream ${res.headers.get('x-vercel-ai-ui-message-stream')}`);
    assert((res.headers.get('content-type') || '').startsWith('text/event-stream'), `content-type ${res.headers.get('content-type')}`);
  }],
  ['whole reply, text exactly equal', async () => {
    const expected = await fetchExpected(PROMPT);
    const { message, snapshots } = await ask(PROMPT);
    assert(message && message.role === 'assistant', `last message ${JSON.stringify(message)}`);
    assert(message.id === 'chat-1-1', `message id ${JSON.stringify(message.id)}, want "chat-1-1" from the start part`);
    const text = textOf(message);
    assert(text === expected.reply, `text ${JSON.stringify(text)}, want ${JSON.stringify(expected.reply)}`);
    const part = message.parts.find((p) => p.type === 'text');
    assert(part.state === 'done', `text part state ${part.state}, want done (text-end seen)`);
    assert(snapshots > expected.n, `${snapshots} snapshots for ${expected.n} tokens: the reply did not stream`);
  }],
  ['error part mid-stream reaches onError and ends the stream with it', async () => {
    const errors = [];
    let threw;
    let partial;
    const seen = [];
    try {
      partial = await ask('please fail', { onError: (e) => errors.push(e), seen });
    } catch (err) {
      threw = err;
    }
    assert(threw instanceof Error && threw.message === 'The reply failed, as the prompt asked.',
      `threw ${threw}, want the errorText as an Error`);
    assert(errors.length === 1 && errors[0] === threw, `onError saw ${errors.length} errors`);
    assert(partial === undefined, 'the stream ended normally');
    const before = seen.length ? textOf(seen.at(-1)) : '';
    assert(before === 'You asked: "please ', `text before the error ${JSON.stringify(before)}, want three tokens`);
  }],
  ['resume: a reply the client left mid-way is read whole from GET /api/chat/{id}/stream', async () => {
    // A long prompt, so the reply is still being generated when the client
    // comes back; a chat id of this run's own.
    const prompt = `resume ${'word '.repeat(60).trim()}`;
    const chatId = `chat-resume-${Date.now()}`;
    const res = await fetch(`${BASE}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: chatId, messages: [userMessage('user-1', prompt)], trigger: 'submit-message' }),
      signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
    });
    assert(res.status === 200, `POST status ${res.status}`);
    // Read the first bytes, then leave (a reload, a lost network).
    const reader = res.body.getReader();
    await reader.read();
    await reader.cancel();
    // What useChat({ resume: true }) does on mount.
    const chunks = await transport.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
    assert(chunks, 'reconnectToStream gave null (204): the chat had no active stream');
    let last;
    for await (const message of readUIMessageStream({ stream: chunks, terminateOnError: true })) last = message;
    const expected = await fetchExpected(prompt);
    assert(last && last.id === `${chatId}-1`, `message id ${JSON.stringify(last && last.id)}`);
    const text = textOf(last);
    assert(text === expected.reply, `resumed text ${JSON.stringify(text)}, want ${JSON.stringify(expected.reply)}`);
    // Complete: the chat has no active stream any more.
    const again = await transport.reconnectToStream({ chatId, abortSignal: AbortSignal.timeout(TEST_TIMEOUT_MS) });
    assert(again === null, 'a finished reply is still the active stream (want 204)');
  }],
  ['resume: a chat with no active stream answers 204 (null)', async () => {
    const none = await transport.reconnectToStream({ chatId: `never-${Date.now()}` });
    assert(none === null, 'reconnectToStream of an unknown chat did not give null');
  }],
]);
