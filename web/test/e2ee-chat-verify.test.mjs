// Sealed chat envelopes and the verification code. Run with
// `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  seal, open, chatKey, parseEnvelope, isSealed, SealError, MAX_SEALED_CHAT_BYTES, OPEN_FAILURES,
} from '../public/e2ee/chat-seal.js';
import { verificationCode, membershipId, EMOJI } from '../public/e2ee/verify.js';
import { hkdf } from '../public/e2ee/sframe-kdf.js';
import { toB64url, fromB64url } from '../public/e2ee/b64url.js';
import { MAX_CHAT_CHARS } from '../public/lib/limits.js';

/**
 * protocol/src/e2ee.rs `check_sealed_chat`, transcribed rule for rule
 * (size, prefix, u32 group, u64 epoch, base64url body of 38+ characters),
 * so an envelope this client makes is one the server takes.
 * @param {string} text
 */
function rustCheckSealedChat(text) {
  if (new TextEncoder().encode(text).length > 22 * 1024) return 'too_large';
  if (!text.startsWith('e2ee1:')) return 'not_sealed';
  const [g, e, ...rest] = text.slice(6).split(':');
  const body = rest.join(':');
  const u = /^\+?\d+$/;
  const group = g !== undefined && u.test(g) && BigInt(g) <= 0xffffffffn;
  const epoch = e !== undefined && u.test(e) && BigInt(e) <= 0xffffffffffffffffn;
  if (!group || !epoch || body.length < 38 || !/^[A-Za-z0-9_-]+$/.test(body)) return 'not_sealed';
  return 'ok';
}

const exporter = (/** @type {number} */ seed) => new Uint8Array(32).fill(seed);

describe('sealed chat', () => {
  test('an envelope has the server-checked shape and opens to the text', async () => {
    const key = await chatKey(exporter(1));
    const env = await seal('hello, Ада 👋', key, { group: 2, epoch: 17, sender: 'p-alice' });
    assert.match(env, /^e2ee1:2:17:[A-Za-z0-9_-]+$/);
    assert.equal(rustCheckSealedChat(env), 'ok');
    assert.equal(isSealed(env), true);
    const r = await open(env, (g, e) => (g === 2 && e === 17 ? key : undefined), 'p-alice');
    assert.deepEqual(r, { ok: true, text: 'hello, Ада 👋', group: 2, epoch: 17 });
  });

  test('even an empty message makes an envelope the server accepts', async () => {
    const env = await seal('', await chatKey(exporter(1)), { group: 0, epoch: 0, sender: 'p' });
    assert.equal(rustCheckSealedChat(env), 'ok');
  });

  test('the longest chat the rules allow still fits the sealed size limit', async () => {
    const key = await chatKey(exporter(1));
    const env = await seal('😀'.repeat(MAX_CHAT_CHARS), key, { group: 4294967295, epoch: 2 ** 53 - 1, sender: 'p' });
    assert.ok(env.length <= MAX_SEALED_CHAT_BYTES);
    assert.equal(rustCheckSealedChat(env), 'ok');
    await assert.rejects(seal('x'.repeat(MAX_SEALED_CHAT_BYTES), key, { group: 1, epoch: 1, sender: 'p' }), SealError);
  });

  test('the chat key is HKDF(exporter, "veche chat") and differs per epoch', async () => {
    const env = await seal('hi', await chatKey(exporter(1)), { group: 1, epoch: 1, sender: 'p' });
    const raw = await hkdf(exporter(1), 'veche chat', 128);
    const byHand = await crypto.subtle.importKey('raw', /** @type {BufferSource} */ (raw), 'AES-GCM', false, ['decrypt']);
    assert.equal((await open(env, () => byHand, 'p')).ok, true);
    const r = await open(env, async () => chatKey(exporter(2)), 'p');
    assert.deepEqual(r, { ok: false, code: 'failed', message: OPEN_FAILURES.failed });
  });

  test('an envelope for an epoch we never had says there is no key for that epoch', async () => {
    const env = await seal('before you joined', await chatKey(exporter(1)), { group: 1, epoch: 3, sender: 'p' });
    const r = await open(env, () => null, 'p');
    assert.deepEqual(r, { ok: false, code: 'no_key', message: 'no key for that epoch' });
  });

  test('relabelling the epoch or the sender, or flipping a bit, makes it fail', async () => {
    const key = await chatKey(exporter(1));
    const env = await seal('pay Bob', key, { group: 1, epoch: 3, sender: 'alice' });
    const any = () => key;
    assert.equal((await open(env.replace('e2ee1:1:3:', 'e2ee1:1:4:'), any, 'alice')).ok, false);
    assert.equal((await open(env.replace('e2ee1:1:3:', 'e2ee1:2:3:'), any, 'alice')).ok, false);
    assert.equal((await open(env, any, 'mallory')).ok, false);
    const p = parseEnvelope(env);
    assert.ok(p);
    p.body[20] ^= 1;
    const flipped = `e2ee1:1:3:${toB64url(p.body)}`;
    assert.deepEqual(await open(flipped, any, 'alice'), { ok: false, code: 'failed', message: OPEN_FAILURES.failed });
  });

  test('text that is not an envelope is malformed, not a decrypt attempt', async () => {
    let asked = 0;
    const lookup = () => { asked++; return undefined; };
    for (const bad of ['hello', 'e2ee1:1:1:short', 'e2ee1:x:1:' + 'A'.repeat(40), 'e2ee1:1:1:' + 'A'.repeat(40) + '=',
      'e2ee1:01:1:' + 'A'.repeat(40), 'e2ee1:1:1:' + 'A'.repeat(MAX_SEALED_CHAT_BYTES)]) {
      assert.deepEqual(await open(bad, lookup, 'p'), { ok: false, code: 'malformed', message: OPEN_FAILURES.malformed }, bad.slice(0, 30));
    }
    assert.equal(asked, 0);
    assert.equal(fromB64url('AB'), null, 'stray low bits are not a second spelling');
  });
});

/** @param {number} n @param {number} seed */
const bytes = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
const AUTH = bytes(32, 1);
const MEMBERS = [
  { pid: 'p-ada', idk: bytes(65, 2) },
  { pid: 'p-bob', idk: bytes(65, 3) },
  { pid: 'p-cyd', idk: bytes(65, 4) },
];

describe('verification code', () => {
  test('it is five groups of four digits and eight emoji with names', async () => {
    const c = await verificationCode(AUTH, MEMBERS);
    assert.match(c.digits, /^\d{4} \d{4} \d{4} \d{4} \d{4}$/);
    assert.deepEqual(c.groups, c.digits.split(' '));
    assert.equal(c.emoji.length, 8);
    c.emoji.forEach((e, i) => assert.ok(EMOJI.some(([x, n]) => x === e && n === c.emojiNames[i])));
  });

  test('the same inputs in any order, bytes or base64url, give the same code', async () => {
    const a = await verificationCode(AUTH, MEMBERS);
    const shuffled = [MEMBERS[2], { pid: MEMBERS[0].pid, idk: toB64url(MEMBERS[0].idk) }, MEMBERS[1]];
    const b = await verificationCode(AUTH.buffer.slice(0), shuffled);
    assert.deepEqual(b, a);
  });

  test('a different epoch authenticator, member, identity key or pid gives a different code', async () => {
    const base = (await verificationCode(AUTH, MEMBERS)).digits;
    const variants = [
      await verificationCode(bytes(32, 9), MEMBERS),
      await verificationCode(AUTH, MEMBERS.slice(0, 2)),
      await verificationCode(AUTH, [...MEMBERS, { pid: 'p-dee', idk: bytes(65, 5) }]),
      await verificationCode(AUTH, [MEMBERS[0], MEMBERS[1], { pid: 'p-cyd', idk: bytes(65, 6) }]),
      await verificationCode(AUTH, [MEMBERS[0], MEMBERS[1], { pid: 'p-cye', idk: MEMBERS[2].idk }]),
      // Swapping two members' keys keeps the multiset of keys and pids.
      await verificationCode(AUTH, [{ pid: 'p-ada', idk: MEMBERS[1].idk }, { pid: 'p-bob', idk: MEMBERS[0].idk }, MEMBERS[2]]),
    ];
    for (const v of variants) assert.notEqual(v.digits, base);
    assert.equal(new Set(variants.map((v) => v.digits)).size, variants.length);
  });

  test('moving bytes between a pid and its key changes the code', async () => {
    const a = await verificationCode(AUTH, [{ pid: 'ab', idk: new Uint8Array([0x63]) }]);
    const b = await verificationCode(AUTH, [{ pid: 'a', idk: new Uint8Array([0x62, 0x63]) }]);
    assert.notEqual(a.digits, b.digits);
  });

  test('the membership id ignores order and the epoch, and follows membership', async () => {
    const id = await membershipId(MEMBERS);
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await membershipId([...MEMBERS].reverse()), id);
    assert.notEqual(await membershipId(MEMBERS.slice(1)), id);
  });

  test('an identity key that is not base64url is refused', async () => {
    await assert.rejects(verificationCode(AUTH, [{ pid: 'p', idk: 'not base64!' }]), TypeError);
  });
});
