// Room owners, access rules and guest passes (lib/passes.js, and the parts
// of lib/rest.js they use). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  OWNER_KEY_HEADER,
  SIGN_IN_PATH,
  createPass,
  createRoom,
  getRoom,
  join,
  listPasses,
  localInputToMs,
  msToLocalInput,
  needsPass,
  ownerKeyName,
  parseLinks,
  participantLabel,
  passFormError,
  refusalFor,
  revokePass,
  statusLabel,
  withOwnerKey,
} from '../public/protocol.js';
import { SLUG, fakeFetch } from './fakes.mjs';

const HOUR = 3_600_000;
/**
 * A room view.
 * @param {Partial<import('../public/lib/types.js').RoomView>} [over]
 * @returns {import('../public/lib/types.js').RoomView}
 */
const room = (over = {}) => ({ id: 1, slug: SLUG, name: 'Board', link: '', created_at_ms: 0, access: 'open', you_own: false, ...over });

describe('owners and passes over REST', () => {
  test('a room is created with its access rule, and open rooms send none for older servers', async () => {
    const f = fakeFetch(() => ({ status: 201, body: room() }));
    await createRoom('Board', { fetch: f, access: 'signed_in_or_pass' });
    await createRoom('Board', { fetch: f, access: 'open' });
    assert.deepEqual(f.calls[0].body, { name: 'Board', access: 'signed_in_or_pass' });
    assert.deepEqual(f.calls[1].body, { name: 'Board' });
  });

  test('owner actions carry the owner key header, and only when there is a key', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { passes: [] } }));
    await listPasses(SLUG, withOwnerKey('k3y', { fetch: f }));
    await listPasses(SLUG, withOwnerKey(null, { fetch: f }));
    assert.equal(f.calls[0].url, `/api/rooms/${SLUG}/passes`);
    assert.equal(f.calls[0].init.headers[OWNER_KEY_HEADER], 'k3y');
    assert.equal(f.calls[1].init.headers[OWNER_KEY_HEADER], undefined);
  });

  test('a pass is created, listed and revoked on the room paths', async () => {
    const f = fakeFetch(() => ({ status: 200, body: {} }));
    await createPass(SLUG, { label: 'Ann', valid_from_ms: 1, valid_until_ms: 2 }, { fetch: f });
    await revokePass(SLUG, 7, { fetch: f });
    assert.equal(f.calls[0].init.method, 'POST');
    assert.deepEqual(f.calls[0].body, { label: 'Ann', valid_from_ms: 1, valid_until_ms: 2 });
    assert.equal(f.calls[1].init.method, 'DELETE');
    assert.equal(f.calls[1].url, `/api/rooms/${SLUG}/passes/7`);
  });

  test('the link pass goes into every join and into the room lookup', async () => {
    const f = fakeFetch(() => ({ status: 200, body: {} }));
    await join(SLUG, 'Ann', { fetch: f, pass: 'tok', rejoinToken: 'r', rejoinSecret: 's' });
    await getRoom(SLUG, { fetch: f, pass: 'tok' });
    assert.deepEqual(f.calls[0].body, { display_name: 'Ann', pass: 'tok', rejoin_token: 'r', rejoin_secret: 's' });
    assert.equal(f.calls[1].url, `/api/rooms/${SLUG}?pass=tok`);
  });
});

describe('decisions', () => {
  test('an anonymous visitor of a members-only room is refused with a sign-in link back here', () => {
    const r = refusalFor(room({ access: 'signed_in' }), false, `/r/${SLUG}`);
    assert.equal(r?.title, 'This meeting is for signed-in members of the organisation');
    assert.equal(r?.signIn, `${SIGN_IN_PATH}?return_to=${encodeURIComponent(`/r/${SLUG}`)}`);
    assert.equal(refusalFor(room({ access: 'signed_in' }), true, '/'), null, 'members pass');
    assert.equal(refusalFor(room({ access: 'signed_in', you_own: true }), false, '/'), null, 'the owner-key holder passes');
    assert.equal(refusalFor(room(), false, '/'), null, 'open rooms refuse no one');
  });

  test('a pass that does not admit now is shown plainly, without a sign-in offer', () => {
    const text = 'This pass expired on 16 Apr 2026, 13:41 UTC.';
    const r = refusalFor(room({ access: 'signed_in_or_pass', pass_refusal: text }), false, '/');
    assert.equal(r?.text, text);
    assert.equal(r?.signIn, null);
  });

  test('a pass is needed only by anonymous non-owners of members-or-pass rooms without one', () => {
    const r = room({ access: 'signed_in_or_pass' });
    assert.equal(needsPass(r, false, null), true);
    assert.equal(needsPass(r, false, 'tok'), false);
    assert.equal(needsPass(r, true, null), false);
    assert.equal(needsPass({ ...r, you_own: true }, false, null), false);
    assert.equal(needsPass(room(), false, null), false);
  });

  test('the pass form refuses empty labels, backward, too long and past windows', () => {
    const now = Date.UTC(2026, 3, 16, 13, 41);
    assert.equal(passFormError('Ann', now, now + HOUR, now), null);
    assert.match(passFormError(' ', now, now + HOUR, now) ?? '', /label/);
    assert.match(passFormError('x'.repeat(101), now, now + HOUR, now) ?? '', /100 characters/);
    assert.match(passFormError('Ann', NaN, now, now) ?? '', /starts and ends/);
    assert.match(passFormError('Ann', now, now, now) ?? '', /end after it starts/);
    assert.match(passFormError('Ann', now, now + 367 * 24 * HOUR, now) ?? '', /366 days/);
    assert.match(passFormError('Ann', now - 2 * HOUR, now - HOUR, now) ?? '', /already have expired/);
  });

  test('datetime-local values round-trip through instants in local time', () => {
    const ms = new Date(2026, 3, 16, 13, 41).getTime();
    assert.equal(msToLocalInput(ms), '2026-04-16T13:41');
    assert.equal(localInputToMs('2026-04-16T13:41'), ms);
    assert.ok(Number.isNaN(localInputToMs('')));
    assert.ok(Number.isNaN(localInputToMs('16/04/2026')));
  });

  test('names in the list are marked as guest and as you', () => {
    assert.equal(participantLabel('Ann', false, true), 'Ann (guest)');
    assert.equal(participantLabel('Ann', true, true), 'Ann (guest) (you)');
    assert.equal(participantLabel('Bob', false, false), 'Bob');
  });

  test('statuses read as words and stored links survive garbage', () => {
    assert.deepEqual(['scheduled', 'active', 'expired', 'revoked'].map((s) => statusLabel(/** @type {any} */ (s))), [
      'Scheduled',
      'Active',
      'Expired',
      'Revoked',
    ]);
    assert.deepEqual(parseLinks('{"3":"https://x/r/a?pass=b"}'), { 3: 'https://x/r/a?pass=b' });
    assert.deepEqual(parseLinks('not json'), {});
    assert.deepEqual(parseLinks('[1]'), {});
    assert.equal(ownerKeyName(SLUG), `veche.ownerKey.${SLUG}`);
  });
});
