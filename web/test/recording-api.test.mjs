// The recordings pages' requests and links (lib/recording-api.js) and the
// list's rows and paging (lib/recording-list.js). Run with
// `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  deleteRecording,
  downloadUrl,
  exportUrl,
  getRecording,
  listPath,
  listRecordings,
  ownerOptionsFor,
  pageParams,
  recordingIdFromPath,
  refusalText,
  shareRecording,
} from '../public/lib/recording-api.js';
import { mergePage, peopleIn, playerHref, rowOf, stateLabel } from '../public/lib/recording-list.js';
import { ApiError } from '../public/lib/errors.js';
import { RECORDING_ID as ID, recordedFile as file } from './fakes.mjs';

/** @typedef {import('../public/lib/recording-api.js').RecordingView} RecordingView */
/** @typedef {import('../public/lib/recording-api.js').FileView} FileView */

/**
 * @param {Partial<RecordingView>} over
 * @returns {RecordingView}
 */
function view(over = {}) {
  return {
    id: ID,
    room_id: 1,
    room_slug: 'AbCdEfGhIjKlMnOpQrStUv',
    room_name: 'Weekly',
    started_at_ms: 1_765_000_000_000,
    stopped_at_ms: 1_765_000_600_000,
    started_by_name: 'Ann',
    state: 'ready',
    duration_ms: 600_000,
    bytes: 2000,
    files: [file(), file({ source: 'screen' }), file({ participant_id: 'p2', display_name: 'Bo' })],
    can_manage: true,
    export_available: true,
    ...over,
  };
}

/**
 * A fetch that records its calls and answers `status` with `body`.
 * @param {number} status
 * @param {unknown} [body]
 */
function fakeFetch(status, body) {
  /** @type {{url: string, init: any}[]} */
  const calls = [];
  /** @type {any} */
  const fetch = async (/** @type {string} */ url, /** @type {any} */ init) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  };
  return { fetch, calls };
}

describe('pages and links', () => {
  test('the player page path gives the recording id, and nothing else passes', () => {
    assert.equal(recordingIdFromPath(`/recordings/${ID}`), ID);
    assert.equal(recordingIdFromPath(`/recordings/${ID}/`), ID);
    assert.equal(recordingIdFromPath('/recordings/../etc'), null);
    assert.equal(recordingIdFromPath('/recordings/R0123456789ABCDEF'), null);
    assert.equal(recordingIdFromPath('/recordings'), null);
  });

  test('the page keeps its share token and room', () => {
    assert.deepEqual(pageParams('?share=abc.def&room=AbC'), { share: 'abc.def', room: 'AbC' });
    assert.deepEqual(pageParams(''), { share: null, room: null });
  });

  test('the list asks for one room and pages with next_before', () => {
    assert.equal(listPath({}), '/api/recordings');
    assert.equal(listPath({ room: 'AbC', before: 1765, limit: 50 }), '/api/recordings?room=AbC&before=1765&limit=50');
    assert.equal(playerHref(ID, null), `/recordings/${ID}`);
    assert.equal(playerHref(ID, 'AbC'), `/recordings/${ID}?room=AbC`);
  });

  test('downloads ask for an attachment; the export carries a share token a link can use', () => {
    assert.equal(downloadUrl('/api/recordings/r/files/f?share=t'), '/api/recordings/r/files/f?share=t&download=1');
    assert.equal(downloadUrl('/api/recordings/r/files/f'), '/api/recordings/r/files/f?download=1');
    assert.equal(exportUrl(view(), 'page.token'), `/api/recordings/${ID}/export?share=page.token`);
    assert.equal(exportUrl(view(), null), `/api/recordings/${ID}/export?share=minted`);
    assert.equal(exportUrl(view({ files: [] }), null), `/api/recordings/${ID}/export`);
    assert.equal(exportUrl(view({ export_url: '/x' }), 'p'), '/x', 'the server\'s link wins');
  });

  test('the owner key of the room the page was opened for is sent', () => {
    const storage = { getItem: (/** @type {string} */ k) => (k === 'veche.ownerKey.AbC' ? 'key-1' : null) };
    assert.deepEqual(ownerOptionsFor('AbC', storage), { headers: { 'X-Veche-Owner-Key': 'key-1' } });
    assert.deepEqual(ownerOptionsFor('Other', storage), {});
    assert.deepEqual(ownerOptionsFor(null, storage), {});
    const broken = { getItem: () => { throw new Error('private mode'); } };
    assert.deepEqual(ownerOptionsFor('AbC', broken), {});
  });
});

describe('requests', () => {
  test('a recording is fetched with the page\'s share token and the owner key', async () => {
    const f = fakeFetch(200, view());
    const v = await getRecording(ID, 'tok', { fetch: f.fetch, headers: { 'X-Veche-Owner-Key': 'k' } });
    assert.equal(v.room_name, 'Weekly');
    assert.equal(f.calls[0].url, `/api/recordings/${ID}?share=tok`);
    assert.equal(f.calls[0].init.headers['X-Veche-Owner-Key'], 'k');
  });

  test('a page of the list comes back with its next_before, or null on the last', async () => {
    const f = fakeFetch(200, { recordings: [view()], next_before: 17 });
    assert.equal((await listRecordings({ room: 'AbC', before: 99 }, { fetch: f.fetch })).next_before, 17);
    assert.equal(f.calls[0].url, '/api/recordings?room=AbC&before=99');
    const last = fakeFetch(200, { recordings: [] });
    assert.deepEqual(await listRecordings({}, { fetch: last.fetch }), { recordings: [], next_before: null });
  });

  test('a share link is asked for a whole number of hours within the limit', async () => {
    const f = fakeFetch(200, { url: `/recordings/${ID}?share=x`, expires_at_ms: 5 });
    await shareRecording(ID, 100_000, { fetch: f.fetch });
    assert.equal(f.calls[0].url, `/api/recordings/${ID}/share`);
    assert.equal(f.calls[0].init.method, 'POST');
    assert.deepEqual(JSON.parse(f.calls[0].init.body), { valid_hours: 720 });
  });

  test('a deletion accepts 204 with no body and shows a refusal in the server\'s words', async () => {
    const ok = fakeFetch(204);
    await deleteRecording(ID, { fetch: ok.fetch });
    assert.equal(ok.calls[0].init.method, 'DELETE');
    const no = fakeFetch(403, { code: 'forbidden', message: 'only the room\'s owner can delete its recordings' });
    await assert.rejects(deleteRecording(ID, { fetch: no.fetch }), { code: 'forbidden', message: 'only the room\'s owner can delete its recordings', status: 403 });
  });

  test('401 offers to sign in; 403 and 404 say why plainly', () => {
    assert.equal(refusalText(new ApiError('unauthorized', 'x', 401)).signIn, true);
    assert.match(refusalText(new ApiError('unauthorized', 'x', 401)).text, /^Sign in/);
    const forbidden = refusalText(new ApiError('forbidden', 'x', 403));
    assert.equal(forbidden.signIn, false);
    assert.match(forbidden.text, /owner/);
    assert.match(refusalText({ status: 404 }).text, /does not exist/);
    assert.equal(refusalText(new ApiError('network', 'Could not reach the server.')).text, 'Could not reach the server.');
  });
});

describe('the list', () => {
  test('a row shows the room, the date, the length, the people and the state', () => {
    const row = rowOf(view(), 'AbC', () => 'DATE');
    assert.deepEqual(row, { id: ID, room: 'Weekly', date: 'DATE', duration: '10 min', people: 2, state: 'Ready', href: `/recordings/${ID}?room=AbC` });
    assert.equal(peopleIn(view({ files: [] })), 0);
    assert.equal(stateLabel(view({ state: 'recording' })), 'Recording now');
    assert.equal(stateLabel(view({ state: 'finishing' })), 'Finishing');
    assert.equal(stateLabel(view({ files: [file({ state: 'interrupted' })] })), 'Ready (1 file cut short)');
  });

  test('"Load more" appends older recordings, newest first, none twice', () => {
    const a = view({ id: 'ra000000000000000', started_at_ms: 300 });
    const b = view({ id: 'rb000000000000000', started_at_ms: 200 });
    const c = view({ id: 'rc000000000000000', started_at_ms: 100 });
    assert.deepEqual(mergePage([a, b], [b, c]).map((r) => r.id), [a.id, b.id, c.id]);
    assert.deepEqual(mergePage([], [c, a]).map((r) => r.id), [a.id, c.id]);
  });
});
