// lib/covers.js: the checks a cover file passes before upload, in the
// server's words, and the requests it makes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_COVER_BYTES,
  coverFileProblem,
  coverImagePath,
  coverTextProblem,
  cssUrl,
  hasCover,
  megabytes,
  myRooms,
  setCoverText,
  uploadCoverImage,
} from '../public/lib/covers.js';

test('a file of another type is refused with the server\'s sentence', () => {
  assert.equal(coverFileProblem({ type: 'image/gif', size: 10 }), 'The cover must be a PNG, JPEG or WebP image');
  assert.equal(coverFileProblem({ type: 'text/plain', size: 10 }), 'The cover must be a PNG, JPEG or WebP image');
  assert.equal(coverFileProblem({ type: '', size: 10 }), 'The cover must be a PNG, JPEG or WebP image');
});

test('a file over 2 MB is refused with its size, rounded up', () => {
  assert.equal(coverFileProblem({ type: 'image/png', size: 3_250_000 }), 'The cover image is 3.1 MB; the limit is 2 MB');
  assert.equal(megabytes(MAX_COVER_BYTES + 1), '2.1');
  assert.equal(coverFileProblem({ type: 'image/webp', size: MAX_COVER_BYTES }), null);
  assert.equal(coverFileProblem({ type: 'image/jpg', size: 100 }), null);
  assert.equal(coverFileProblem({ type: 'image/png', size: 0 }), 'No cover image was sent');
});

test('an over-long title or description is refused before sending', () => {
  assert.equal(coverTextProblem('x'.repeat(101), ''), 'The cover title is longer than 100 characters');
  assert.equal(coverTextProblem('ok', 'y'.repeat(1001)), 'The cover description is longer than 1000 characters');
  assert.equal(coverTextProblem('  ok  ', 'fine'), null);
});

test('urls are built and quoted so that none breaks out of CSS', () => {
  assert.equal(coverImagePath('abc'), '/api/rooms/abc/cover/image');
  assert.equal(cssUrl('/api/rooms/a/cover/image?v=1'), 'url("/api/rooms/a/cover/image?v=1")');
  assert.equal(cssUrl('x") ; y'), 'url("x%22) ; y")');
  assert.equal(hasCover(undefined), false);
  assert.equal(hasCover({ title: '', description: '' }), false);
  assert.equal(hasCover({ title: 'T', description: '' }), true);
});

test('an upload sends the raw file with its type and the owner key, and shows a refusal as sent', async () => {
  /** @type {any[]} */
  const calls = [];
  /** @type {any} */
  const fetch = async (/** @type {string} */ url, /** @type {any} */ init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify({ code: 'bad_request', message: 'The file is not a valid PNG image' }), { status: 400 });
  };
  const file = new Blob(['not an image'], { type: 'image/png' });
  await assert.rejects(
    uploadCoverImage('abc', file, { fetch, headers: { 'X-Veche-Owner-Key': 'k' } }),
    { message: 'The file is not a valid PNG image' },
  );
  assert.equal(calls[0].url, '/api/rooms/abc/cover/image');
  assert.equal(calls[0].init.method, 'PUT');
  assert.equal(calls[0].init.headers['Content-Type'], 'image/png');
  assert.equal(calls[0].init.headers['X-Veche-Owner-Key'], 'k');
  assert.equal(calls[0].init.body, file);
  await assert.rejects(
    uploadCoverImage('abc', new Blob(['x'], { type: 'text/plain' }), { fetch }),
    { message: 'The cover must be a PNG, JPEG or WebP image' },
  );
  assert.equal(calls.length, 1, 'a wrong type is never sent');
});

test('the text and the owner\'s rooms go through the JSON API', async () => {
  /** @type {any[]} */
  const calls = [];
  /** @type {any} */
  const fetch = async (/** @type {string} */ url, /** @type {any} */ init) => {
    calls.push({ url, init });
    const body = url === '/api/me/rooms' ? { rooms: [{ slug: 's', name: 'n' }] } : { slug: 's', cover: { title: 'T', description: '' } };
    return new Response(JSON.stringify(body), { status: 200 });
  };
  const room = await setCoverText('s', { title: 'T', description: '' }, { fetch });
  assert.equal(room.cover?.title, 'T');
  assert.equal(calls[0].init.method, 'PUT');
  assert.deepEqual(JSON.parse(calls[0].init.body), { title: 'T', description: '' });
  const rooms = await myRooms({ fetch });
  assert.equal(rooms[0].slug, 's');
});
