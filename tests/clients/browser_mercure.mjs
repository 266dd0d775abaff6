// End-to-end check of examples/mercure.rs with real browser EventSources
// (Debian's Chromium driven by playwright-core) and Node's fetch publishing
// with HS256 bearer tokens.
//   MERCURE_BASE=http://127.0.0.1:3002 MERCURE_PUBLISHER_JWT_KEY=... node browser_mercure.mjs
import { createHmac, randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { TEST_TIMEOUT_MS, assert, runTests } from './lib.mjs';
import { LAUNCH_OPTIONS } from './chromium.mjs';

const BASE = (process.env.MERCURE_BASE || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const HUB = `${BASE}/.well-known/mercure`;
const PUBLISHER_KEY = process.env.MERCURE_PUBLISHER_JWT_KEY;
const SUBSCRIBER_KEY = process.env.MERCURE_SUBSCRIBER_JWT_KEY || PUBLISHER_KEY;
const BOOKS = 'https://example.com/books';
const END = 'https://example.com/end';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** An HS256 JWS with these claims (exp an hour ahead unless given). */
function jwt(key, claims, typ = 'at+jwt') {
  const body = `${b64({ alg: 'HS256', typ })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}
const detail = (actions, topics) => ({
  type: 'https://mercure.rocks/authorization-detail',
  actions,
  topics: topics.map(([match, match_type]) => (match_type ? { match, match_type } : { match })),
});
const PUBLISHER = jwt(PUBLISHER_KEY, { authorization_details: [detail(['publish'], [['*']])] });
// The older claim, for the subscriber: private updates of books.
const READER = jwt(SUBSCRIBER_KEY, { mercure: { subscribe: [`${BOOKS}/{id}`] } }, 'JWT');

async function publish(fields) {
  const body = new URLSearchParams();
  for (const [k, v] of fields) body.append(k, v);
  const res = await fetch(HUB, {
    method: 'POST',
    headers: { authorization: `Bearer ${PUBLISHER}` },
    body,
    signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
  });
  const text = await res.text();
  assert(res.status === 200, `publish ${body}: status ${res.status}: ${text}`);
  assert((res.headers.get('content-type') || '').startsWith('text/plain'),
    `publish answered ${res.headers.get('content-type')}`);
  return text;
}

// Runs in the page: opens one EventSource per named query, records what each
// delivers, and resolves when every one is open.
function openSources(queries) {
  window.__got = {};
  window.__sources = {};
  return Promise.all(Object.entries(queries).map(([name, query]) => new Promise((resolve, reject) => {
    const got = (window.__got[name] = []);
    const es = new EventSource(`/.well-known/mercure?${query}`);
    window.__sources[name] = es;
    const record = (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId });
    es.onmessage = record;
    es.addEventListener('book', record);
    es.onopen = () => resolve();
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) reject(new Error(`${name} closed`)); };
  })));
}

async function received(page, names) {
  await page.waitForFunction((names) => names.every(
    (n) => window.__got[n].some((e) => e.data === 'end'),
  ), names, { timeout: TEST_TIMEOUT_MS - 2000, polling: 50 });
  return page.evaluate(() => { for (const es of Object.values(window.__sources)) es.close(); return window.__got; });
}

const q = (pairs) => { const p = new URLSearchParams(); for (const [k, v] of pairs) p.append(k, v); return p.toString(); };
const show = (v) => JSON.stringify(v);

const MULTILINE = 'line 1\nline 2\n\n  indented: {"x": 1}\n';
let ids;

await runTests('browser_mercure', [
  ['matching, non-matching, URL pattern, private, multi-line data, the publisher id', async ({ browser }) => {
    const anonymous = await browser.newContext();
    const reader = await browser.newContext();
    await reader.addCookies([{ name: 'mercureAuthorization', value: READER, url: BASE }]);
    const pages = [await anonymous.newPage(), await reader.newPage()];
    for (const page of pages) await page.goto(`${BASE}/`, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
    await pages[0].evaluate(openSources, {
      exact: q([['match', `${BOOKS}/1`], ['match', END]]),
      pattern: q([['match_urlpattern', `${BOOKS}/:id`], ['match', END]]),
      other: q([['match', 'https://example.com/other'], ['match', END]]),
    });
    await pages[1].evaluate(openSources, {
      reader: q([['match_urlpattern', `${BOOKS}/:id`], ['match', END]]),
    });
    const custom = `urn:uuid:${randomUUID()}`;
    ids = {
      custom,
      one: await publish([['topic', `${BOOKS}/1`], ['data', MULTILINE], ['id', custom], ['type', 'book']]),
      two: await publish([['topic', `${BOOKS}/2`], ['data', 'two']]),
      secret: await publish([['topic', `${BOOKS}/3`], ['data', 'SECRET'], ['private', 'on']]),
      end: await publish([['topic', END], ['data', 'end']]),
    };
    assert(ids.one === custom, `publish returned ${ids.one}, want the publisher's id ${custom}`);
    const one = { type: 'book', data: MULTILINE, id: custom };
    const two = { type: 'message', data: 'two', id: ids.two };
    const secret = { type: 'message', data: 'SECRET', id: ids.secret };
    const end = { type: 'message', data: 'end', id: ids.end };
    const got = { ...(await received(pages[0], ['exact', 'pattern', 'other'])), ...(await received(pages[1], ['reader'])) };
    const want = { exact: [one, end], pattern: [one, two, end], other: [end], reader: [one, two, secret, end] };
    for (const name of Object.keys(want)) {
      assert(show(got[name]) === show(want[name]), `${name} received ${show(got[name])}, want ${show(want[name])}`);
    }
    await anonymous.close();
    await reader.close();
  }],
  ['resuming from the publisher id (last_event_id) replays what follows, never the private update', async ({ browser }) => {
    assert(ids, 'the first check did not publish');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/`, { waitUntil: 'load', timeout: TEST_TIMEOUT_MS });
    await page.evaluate(openSources, {
      resumed: q([['match_urlpattern', `${BOOKS}/:id`], ['match', END], ['last_event_id', ids.custom]]),
      stolen: q([['match_urlpattern', `${BOOKS}/:id`], ['match', END], ['last_event_id', ids.secret]]),
    });
    const got = await received(page, ['resumed', 'stolen']);
    const want = {
      resumed: [{ type: 'message', data: 'two', id: ids.two }, { type: 'message', data: 'end', id: ids.end }],
      stolen: [{ type: 'message', data: 'end', id: ids.end }],
    };
    for (const name of Object.keys(want)) {
      assert(show(got[name]) === show(want[name]), `${name} received ${show(got[name])}, want ${show(want[name])}`);
    }
    await context.close();
  }],
], {
  before: async () => {
    assert(PUBLISHER_KEY, 'MERCURE_PUBLISHER_JWT_KEY is not set');
    const browser = await chromium.launch(LAUNCH_OPTIONS);
    return { browser };
  },
  after: async (ctx) => {
    if (ctx) await ctx.browser.close().catch(() => {});
  },
});
