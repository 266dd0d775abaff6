// End-to-end checks of examples/mcp.rs with the official MCP TypeScript SDK
// (`@modelcontextprotocol/sdk`, `Client` + `StreamableHTTPClientTransport`):
// a tool call that lasts several CLOSE_AFTER windows is closed early by the
// server with a lone `retry` line, and the SDK resumes it with `GET` and
// `Last-Event-ID` until the result; then the transport's protocol edges
// (sessions, versions, origins) with plain fetch.
//   MCP_BASE=http://127.0.0.1:3000 MCP_CLOSE_AFTER_MS=1000 MCP_RETRY_MS=100 node node_mcp.mjs
// The example must run with the same CLOSE_AFTER_MS and RETRY_MS.
//
// Every request the SDK makes goes through the transport's `fetch` option,
// which records it and tees each event stream's raw bytes: the checks read
// what was on the wire, so they cannot pass unless the streams really were
// closed early and resumed.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assert, runTests } from './lib.mjs';

const MCP_BASE = (process.env.MCP_BASE || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const URL_ = new URL(`${MCP_BASE}/mcp`);
const CLOSE_AFTER_MS = Number(process.env.MCP_CLOSE_AFTER_MS || 1000);
const RETRY_MS = Number(process.env.MCP_RETRY_MS || 100);
// A call over three windows (6 steps of 600 ms against 1000 + 100 ms):
// two resumes at least, with a window's worth of slack for a slow machine.
const STEPS = 6;
const DELAY_MS = Math.max(50, Math.floor(CLOSE_AFTER_MS * 0.6));
const MIN_RESUMES = 2;

/** One client over a transport whose requests are recorded in `requests`. */
async function connect() {
  const requests = [];
  const recordingFetch = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const entry = {
      method: init.method || 'GET',
      lastEventId: headers.get('last-event-id'),
      session: headers.get('mcp-session-id'),
      version: headers.get('mcp-protocol-version'),
      rpc: init.body ? JSON.parse(init.body) : null,
    };
    requests.push(entry);
    const answered = fetch(url, init);
    // The SDK does not wait for every request (the GET after
    // `notifications/initialized`): `answered` lets a check wait.
    entry.answered = answered.then((response) => {
      entry.status = response.status;
      entry.contentType = response.headers.get('content-type');
      if (entry.contentType === 'text/event-stream') entry.body = response.clone().text();
    }, () => {});
    const response = await answered;
    await entry.answered;
    return response;
  };
  const transport = new StreamableHTTPClientTransport(URL_, { fetch: recordingFetch });
  const client = new Client({ name: 'axum-sse-node-mcp', version: '1.0.0' });
  const errors = [];
  await client.connect(transport);
  transport.onerror = (err) => errors.push(err);
  return { client, transport, requests, errors };
}

/** The ids of the events of raw SSE `text` (the `id:` lines, in order). */
const ids = (text) => [...text.matchAll(/^id: ?(.*)$/gm)].map((m) => m[1]);

/**
 * Calls slow_count and checks, from the recorded wire, that its answer came
 * over one POST stream and `minResumes` or more GETs, each closed early with
 * a lone `retry` line except the last, each resumed after the previous
 * one's last id, with no id twice.
 */
async function callAndCheckResumes(ctx, { withProgress, minResumes }) {
  const { client, transport, requests } = ctx;
  const from = requests.length;
  const progress = [];
  const options = { timeout: 60000 };
  if (withProgress) options.onprogress = (p) => progress.push(p);
  const result = await client.callTool(
    { name: 'slow_count', arguments: { n: STEPS, delay_ms: DELAY_MS } },
    undefined,
    options,
  );
  assert(
    JSON.stringify(result) === JSON.stringify({ content: [{ type: 'text', text: `counted to ${STEPS}` }] }),
    `result ${JSON.stringify(result)}`,
  );
  if (withProgress) {
    const want = Array.from({ length: STEPS }, (_, i) => ({ progress: i + 1, total: STEPS }));
    assert(JSON.stringify(progress) === JSON.stringify(want), `progress ${JSON.stringify(progress)}`);
  }

  const mine = requests.slice(from);
  const post = mine[0];
  assert(post && post.method === 'POST' && post.rpc.method === 'tools/call', `first request ${JSON.stringify(post)}`);
  assert(post.status === 200 && post.contentType === 'text/event-stream', `POST answered ${post.status} ${post.contentType}`);
  const gets = mine.slice(1);
  assert(
    gets.every((g) => g.method === 'GET' && g.lastEventId && g.status === 200),
    `after the POST: ${JSON.stringify(gets.map(({ method, lastEventId, status }) => ({ method, lastEventId, status })))}`,
  );
  assert(gets.length >= minResumes, `${gets.length} GETs with Last-Event-ID, want at least ${minResumes}: the stream was not closed early and resumed`);

  const streams = [post, ...gets];
  const bodies = await Promise.all(streams.map((s) => s.body));
  // The POST's stream opens with the priming event: an id and empty data.
  assert(/^data:\nid: [^\n]+\n\n/.test(bodies[0]), `POST stream starts ${JSON.stringify(bodies[0].slice(0, 80))}`);
  const lone = `\n\nretry: ${RETRY_MS}\n`;
  const seen = new Set();
  bodies.forEach((body, i) => {
    const last = i === bodies.length - 1;
    // Closed early: the last block ends, then a lone retry line and no
    // blank line after it. The last stream ends with the result instead.
    if (!last) assert(body.endsWith(lone), `stream ${i} ends ${JSON.stringify(body.slice(-60))}, want a lone retry line`);
    else assert(body.includes(`"result":`) && body.endsWith('\n\n') && !body.includes('retry:'), `last stream ${JSON.stringify(body)}`);
    const streamIds = ids(body);
    assert(streamIds.length > 0, `stream ${i} carried no id: ${JSON.stringify(body)}`);
    for (const id of streamIds) {
      assert(id.startsWith(`${transport.sessionId}:`), `id ${id} does not name session ${transport.sessionId}`);
      assert(!seen.has(id), `id ${id} sent twice`);
      seen.add(id);
    }
    if (!last) {
      const next = streams[i + 1].lastEventId;
      assert(next === streamIds.at(-1), `GET ${i + 1} resumed after ${next}, want ${streamIds.at(-1)}`);
    }
  });
  return { lastId: ids(bodies.at(-1)).at(-1), gets };
}

/** A raw request to /mcp. */
function raw(method, headers, body) {
  const text = body === undefined || typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(URL_, { method, headers, body: text });
}
const JSON_AND_SSE = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const LIST = { jsonrpc: '2.0', id: 9, method: 'tools/list' };

await runTests('node_mcp', [
  ['initialize: a session id, the JSON answer, the GET stream refused with 405', async (ctx) => {
    assert(/^[0-9a-f]{32}$/.test(ctx.transport.sessionId || ''), `session id ${ctx.transport.sessionId}`);
    assert(ctx.client.getServerVersion()?.name === 'axum-sse-mcp-example', `server ${JSON.stringify(ctx.client.getServerVersion())}`);
    const [init, initialized] = ctx.requests;
    assert(init.rpc.method === 'initialize' && init.status === 200 && init.contentType === 'application/json', `initialize ${JSON.stringify(init)}`);
    assert(initialized.rpc.method === 'notifications/initialized' && initialized.status === 202, `initialized ${JSON.stringify(initialized)}`);
    assert(initialized.session === ctx.transport.sessionId && initialized.version === '2025-11-25', `initialized headers ${JSON.stringify(initialized)}`);
    // The SDK opens it without waiting: wait for it (up to 5 s).
    let get;
    for (let i = 0; i < 100 && !(get = ctx.requests.find((r) => r.method === 'GET')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await get?.answered;
    assert(get && get.lastEventId === null && get.status === 405, `standalone GET ${JSON.stringify(get)}`);
  }],
  ['tools/list', async ({ client }) => {
    const { tools } = await client.listTools();
    assert(tools.length === 1 && tools[0].name === 'slow_count', `tools ${JSON.stringify(tools)}`);
    assert(JSON.stringify(tools[0].inputSchema.required) === '["n"]', `schema ${JSON.stringify(tools[0].inputSchema)}`);
  }],
  [`slow_count over ${STEPS * DELAY_MS} ms: closed every ${CLOSE_AFTER_MS} ms with retry ${RETRY_MS}, resumed with Last-Event-ID, progress exact`, async (ctx) => {
    const { lastId } = await callAndCheckResumes(ctx, { withProgress: true, minResumes: MIN_RESUMES });
    // Read to its end: a resume after the last event is 204.
    const after = await raw('GET', { accept: 'text/event-stream', 'mcp-session-id': ctx.transport.sessionId, 'last-event-id': lastId });
    assert(after.status === 204, `GET after the last event: ${after.status}`);
  }],
  ['slow_count without a progress token: resumed the same way', async (ctx) => {
    await callAndCheckResumes(ctx, { withProgress: false, minResumes: MIN_RESUMES });
  }],
  ['two calls at once: each resumes its own stream', async (ctx) => {
    // One client with two calls in flight: each stream's ids name its own
    // response, and each GET resumes the one it was cut from.
    const from = ctx.requests.length;
    const [a, b] = await Promise.all([0, 1].map(() => ctx.client.callTool({ name: 'slow_count', arguments: { n: 3, delay_ms: DELAY_MS } })));
    for (const r of [a, b]) assert(r.content[0].text === 'counted to 3', `result ${JSON.stringify(r)}`);
    const gets = ctx.requests.slice(from).filter((r) => r.method === 'GET');
    const responses = new Set(gets.map((g) => g.lastEventId.split('/')[0]));
    assert(responses.size === 2, `GETs resumed ${responses.size} responses: ${JSON.stringify(gets.map((g) => g.lastEventId))}`);
  }],
  ['protocol edges: 400 without a session, 404 for an unknown one, 400 for a version, batch or stream not ours, 403 for a foreign Origin, 406', async (ctx) => {
    const session = ctx.transport.sessionId;
    const cases = [
      ['no Mcp-Session-Id', raw('POST', JSON_AND_SSE, LIST), 400],
      ['unknown session', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': 'f'.repeat(32) }, LIST), 404],
      ['unsupported version', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session, 'mcp-protocol-version': '1999-01-01' }, LIST), 400],
      ['supported version', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' }, LIST), 200],
      ['foreign Origin', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session, origin: 'https://evil.example' }, LIST), 403],
      ['Accept without text/event-stream', raw('POST', { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': session }, LIST), 406],
      ['a batch', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session }, [LIST]), 400],
      ['not JSON', raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session }, '{"jsonrpc":'), 400],
      ['a stream of another session', raw('GET', { accept: 'text/event-stream', 'mcp-session-id': session, 'last-event-id': `${'0'.repeat(32)}:0/x.1` }), 400],
      ['GET without a session', raw('GET', { accept: 'text/event-stream', 'last-event-id': `${session}:0/x.1` }), 400],
    ];
    for (const [name, request, want] of cases) {
      const response = await request;
      await response.arrayBuffer();
      assert(response.status === want, `${name}: ${response.status}, want ${want}`);
    }
  }],
  ['terminateSession: DELETE ends the session, later requests are 404', async (ctx) => {
    const session = ctx.transport.sessionId;
    await ctx.transport.terminateSession();
    const response = await raw('POST', { ...JSON_AND_SSE, 'mcp-session-id': session }, LIST);
    assert(response.status === 404, `after DELETE: ${response.status}`);
  }],
], {
  before: connect,
  after: async (ctx) => {
    if (ctx && ctx.errors.length) console.log(`note node_mcp: transport errors: ${ctx.errors.map(String).join('; ')}`);
    await ctx?.client.close();
  },
});
