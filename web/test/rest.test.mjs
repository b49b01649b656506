// The REST helpers and links (lib/rest.js). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiError,
  buildJoinBody,
  createRoom,
  fetchMessages,
  getRoom,
  isRetryable,
  join,
  resolveWsUrl,
  slugFromLink,
  slugFromPath,
} from '../public/protocol.js';
import { SLUG, fakeFetch } from './fakes.mjs';

describe('REST helpers', () => {
  test('createRoom posts the name and returns the room', async () => {
    const room = { id: 7, slug: SLUG, name: 'Standup', link: `https://x/r/${SLUG}`, created_at_ms: 1 };
    const f = fakeFetch(() => ({ status: 201, body: room }));
    assert.deepEqual(await createRoom('Standup', { fetch: f }), room);
    assert.equal(f.calls[0].url, '/api/rooms');
    assert.equal(f.calls[0].init.method, 'POST');
    assert.equal(f.calls[0].init.headers['Content-Type'], 'application/json');
    assert.deepEqual(f.calls[0].body, { name: 'Standup' });
  });

  test('join posts display_name to the room path', async () => {
    const resp = { token: 't', ws_url: '/media/ws', participant_id: 'p1', node_id: 2, expires_at_ms: 9, room: {} };
    const f = fakeFetch(() => ({ status: 200, body: resp }));
    assert.deepEqual(await join(SLUG, 'Ann', { fetch: f, base: 'http://h' }), resp);
    assert.equal(f.calls[0].url, `http://h/api/rooms/${SLUG}/join`);
    assert.deepEqual(f.calls[0].body, { display_name: 'Ann' });
  });

  test('join sends region, rejoin_token with its rejoin_secret and unreachable_node when given, and nothing else', async () => {
    const resp = { token: 't2', ws_url: '/media/ws', participant_id: 'p1', node_id: 5, expires_at_ms: 9, room: {}, rejoin_secret: 's2' };
    const f = fakeFetch(() => ({ status: 200, body: resp }));
    const got = await join(SLUG, 'Ann', {
      fetch: f,
      region: 'eu-west',
      rejoinToken: 'v1.old.sig',
      rejoinSecret: 'old-secret',
      unreachableNode: 3,
    });
    assert.equal(got.node_id, 5);
    assert.equal(got.rejoin_secret, 's2', 'the new secret comes back with the new token');
    assert.deepEqual(f.calls[0].body, {
      display_name: 'Ann',
      region: 'eu-west',
      rejoin_token: 'v1.old.sig',
      rejoin_secret: 'old-secret',
      unreachable_node: 3,
    });
    await join(SLUG, 'Ann', { fetch: f, region: null, rejoinToken: null, unreachableNode: null });
    assert.deepEqual(f.calls[1].body, { display_name: 'Ann' }, 'null hints are left out');
  });

  test('join body: absent, null and empty hints are omitted; node 0 is kept', () => {
    assert.deepEqual(buildJoinBody('Ann'), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', {}), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', { region: '', rejoinToken: '', unreachableNode: undefined }), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', { unreachableNode: 0 }), { display_name: 'Ann', unreachable_node: 0 });
    assert.deepEqual(buildJoinBody('Ann', { rejoinToken: 'v1.a.b' }), { display_name: 'Ann', rejoin_token: 'v1.a.b' });
    assert.deepEqual(
      buildJoinBody('Ann', { rejoinSecret: 'orphan' }),
      { display_name: 'Ann' },
      'a secret without the token it belongs to is never sent',
    );
    assert.deepEqual(buildJoinBody('Ann', { rejoinToken: 'v1.a.b', rejoinSecret: 'sec' }), {
      display_name: 'Ann',
      rejoin_token: 'v1.a.b',
      rejoin_secret: 'sec',
    });
    assert.deepEqual(
      Object.keys(buildJoinBody('Ann', /** @type {any} */ ({ fetch: () => {}, base: 'http://h', region: 'x' }))),
      ['display_name', 'region'],
      'REST options never leak into the body (the server refuses unknown fields)',
    );
  });

  test('fetchMessages adds before only when given', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { messages: [], has_more: false } }));
    await fetchMessages(SLUG, null, { fetch: f });
    await fetchMessages(SLUG, 42, { fetch: f });
    assert.equal(f.calls[0].url, `/api/rooms/${SLUG}/messages`);
    assert.equal(f.calls[1].url, `/api/rooms/${SLUG}/messages?before=42`);
    assert.equal(f.calls[0].init.method, 'GET');
  });

  test('a JSON error body becomes an ApiError with the code and a human message', async () => {
    const f = fakeFetch(() => ({ status: 404, body: { code: 'room_not_found', message: 'no room abc' } }));
    await assert.rejects(getRoom(SLUG, { fetch: f }), (e) => {
      assert.ok(e instanceof ApiError);
      assert.ok(e instanceof Error);
      assert.equal(e.code, 'room_not_found');
      assert.equal(e.status, 404);
      assert.equal(e.message, 'This meeting link is not valid');
      return true;
    });
  });

  test('bad_request keeps the server message, which says what to fix', async () => {
    const f = fakeFetch(() => ({ status: 400, body: { code: 'bad_request', message: 'display_name must be 1 to 64 characters' } }));
    await assert.rejects(join(SLUG, '', { fetch: f }), { code: 'bad_request', message: 'display_name must be 1 to 64 characters' });
  });

  test('a non-JSON error and a network failure still give a code', async () => {
    const f = fakeFetch(() => ({ status: 502, body: '<html>bad gateway</html>' }));
    await assert.rejects(getRoom(SLUG, { fetch: f }), (/** @type {any} */ e) => e.code === 'http_502' && e.status === 502 && isRetryable(e.code));
    const down = async () => {
      throw new TypeError('Failed to fetch');
    };
    await assert.rejects(getRoom(SLUG, { fetch: down }), (/** @type {any} */ e) => e.code === 'network' && /reach the server/.test(e.message));
  });

  test('slugs are escaped in paths', async () => {
    const f = fakeFetch(() => ({ status: 200, body: {} }));
    await getRoom('a/b?c', { fetch: f });
    assert.equal(f.calls[0].url, '/api/rooms/a%2Fb%3Fc');
  });
});

describe('URLs and links', () => {
  test('relative ws_url resolves against the page with ws:/wss:', () => {
    assert.equal(resolveWsUrl('/media/ws', 'http://127.0.0.1:8080/r/x'), 'ws://127.0.0.1:8080/media/ws');
    assert.equal(resolveWsUrl('/media/ws', 'https://meet.example/r/x?y=1'), 'wss://meet.example/media/ws');
    assert.equal(resolveWsUrl('wss://node2.example/ws', 'https://meet.example/r/x'), 'wss://node2.example/ws');
    assert.equal(resolveWsUrl('https://node2.example/ws', 'http://meet.example/'), 'wss://node2.example/ws');
  });

  test('slugFromLink accepts links, paths and bare slugs', () => {
    assert.equal(slugFromLink(`https://meet.example/r/${SLUG}`), SLUG);
    assert.equal(slugFromLink(`  https://meet.example/r/${SLUG}?name=x  `), SLUG);
    assert.equal(slugFromLink(`/r/${SLUG}`), SLUG);
    assert.equal(slugFromLink(`meet.example/r/${SLUG}#top`), SLUG);
    assert.equal(slugFromLink(SLUG), SLUG);
    assert.equal(slugFromLink('https://meet.example/r/short'), null);
    assert.equal(slugFromLink('hello'), null);
    assert.equal(slugFromLink(`https://x/r/${SLUG}extra`), null);
  });

  test('slugFromPath reads the room page path', () => {
    assert.equal(slugFromPath(`/r/${SLUG}`), SLUG);
    assert.equal(slugFromPath(`/r/${SLUG}/`), SLUG);
    assert.equal(slugFromPath('/'), null);
    assert.equal(slugFromPath('/r/%E0%A4%A'), null);
  });
});
