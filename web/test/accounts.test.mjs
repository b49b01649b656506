// The account pages' rules and their REST calls, without a browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  signInProblem, newPasswordProblem, displayNameProblem, imageTypeOf, avatarProblem,
  accountErrorText, nextPath, waitWords, MAX_AVATAR_BYTES,
} from '../public/lib/accounts-rules.js';
import { signIn, uploadAvatar, signOutEverywhere, AccountError } from '../public/lib/accounts-api.js';

/**
 * A fetch that answers `status` with `body` and records what it was asked.
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function answering(status, body, headers = {}) {
  /** @type {{url: string, init: RequestInit}[]} */
  const calls = [];
  /** @param {any} url @param {any} init */
  const fn = async (url, init) => {
    calls.push({ url, init });
    return {
      ok: status >= 200 && status < 300,
      status,
      headers: new Headers(headers),
      json: async () => body,
    };
  };
  return { fetch: /** @type {typeof fetch} */ (/** @type {unknown} */ (fn)), calls };
}

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

test('a sign-in form needs an email address and a password', () => {
  assert.equal(signInProblem('', 'x'), 'Enter your email.');
  assert.match(signInProblem('ada', 'x') ?? '', /email address/);
  assert.equal(signInProblem('ada@example.com', ''), 'Enter your password.');
  assert.equal(signInProblem('ada@example.com', 'pw'), null);
});

test('a new password must be long enough and typed the same twice', () => {
  assert.match(newPasswordProblem('short', 'short') ?? '', /at least 10/);
  assert.match(newPasswordProblem('x'.repeat(257), 'x'.repeat(257)) ?? '', /at most 256/);
  assert.match(newPasswordProblem('tangerine ocelot', 'tangerine ocelo') ?? '', /differ/);
  assert.equal(newPasswordProblem('tangerine ocelot', 'tangerine ocelot'), null);
});

test('a display name is trimmed and bounded', () => {
  assert.equal(displayNameProblem('   '), 'Enter a name.');
  assert.match(displayNameProblem('é'.repeat(65)) ?? '', /64/);
  assert.equal(displayNameProblem('  Ada Lovelace '), null);
});

test('an avatar is recognised by its first bytes, not its name', () => {
  assert.equal(imageTypeOf(PNG), 'image/png');
  assert.equal(imageTypeOf(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  assert.equal(imageTypeOf(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 ')), 'image/webp');
  assert.equal(imageTypeOf(new TextEncoder().encode('hello, I am a .png')), null);
  assert.equal(avatarProblem(12, PNG), null);
  assert.match(avatarProblem(MAX_AVATAR_BYTES + 1, PNG) ?? '', /1 MB/);
  assert.match(avatarProblem(20, new TextEncoder().encode('plain text')) ?? '', /PNG, JPEG or WebP/);
  assert.equal(avatarProblem(0, PNG), 'The file is empty.');
});

test('the server\'s own words are shown for account refusals', () => {
  assert.equal(accountErrorText(401, { code: 'unauthorized', message: 'Wrong email or password' }, null),
    'Wrong email or password');
  assert.equal(accountErrorText(429, null, 120), 'Too many attempts. Try again in 2 minutes.');
  assert.match(accountErrorText(0, null, null), /reach the server/);
  assert.equal(accountErrorText(500, null, null), 'Something went wrong on the server. Please try again.');
  assert.equal(waitWords(30), 'in 30 seconds');
  assert.equal(waitWords(60), 'in 1 minute');
});

test('after signing in only a path on this site is followed', () => {
  assert.equal(nextPath('?return_to=/profile'), '/profile');
  assert.equal(nextPath('?return_to=//evil.example/x'), '/');
  assert.equal(nextPath('?return_to=https://evil.example/'), '/');
  assert.equal(nextPath('?return_to=/\\evil.example'), '/');
  assert.equal(nextPath(''), '/');
});

test('signing in posts the email and password as JSON', async () => {
  const f = answering(200, { user: { id: 1 }, sign_in: { password: true } });
  const me = await signIn('ada@example.com', 'pw', { fetch: f.fetch });
  assert.equal(me.user?.id, 1);
  assert.equal(f.calls[0].url, '/api/auth/login');
  assert.equal(f.calls[0].init.method, 'POST');
  assert.deepEqual(JSON.parse(String(f.calls[0].init.body)), { email: 'ada@example.com', password: 'pw' });
});

test('a refused sign-in throws the server\'s message, and 429 keeps its status', async () => {
  const f = answering(429, { code: 'rate_limited', message: 'Too many failed sign-ins for this account; try again in 15 minutes' }, { 'Retry-After': '900' });
  await assert.rejects(signIn('a@b.c', 'x', { fetch: f.fetch }), (err) => {
    assert.ok(err instanceof AccountError);
    assert.equal(err.status, 429);
    assert.match(err.message, /try again in 15 minutes/);
    return true;
  });
});

test('an avatar is sent as the raw file, not as JSON', async () => {
  const f = answering(200, { id: 1, avatar_url: '/api/users/1/avatar?v=k' });
  const blob = new Blob([PNG], { type: 'image/png' });
  await uploadAvatar(blob, { fetch: f.fetch });
  assert.equal(f.calls[0].url, '/api/profile/avatar');
  assert.equal(f.calls[0].init.body, blob);
  assert.equal(/** @type {any} */ (f.calls[0].init.headers)['Content-Type'], undefined);
});

test('signing out everywhere is a POST without a body', async () => {
  const f = answering(200, { sessions_ended: 3 });
  assert.deepEqual(await signOutEverywhere({ fetch: f.fetch }), { sessions_ended: 3 });
  assert.equal(f.calls[0].init.method, 'POST');
  assert.equal(f.calls[0].init.body, undefined);
});
