// SFrame for media: RFC 9605 known answers, the key ring's epochs and
// grace window, the frame pipe's clear prefix and drop-on-no-key, and the
// worker over real WHATWG streams. Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeHeader, decodeHeader, nonceFor, sealFrame, parseFrame, openFrame, SFrameError, concat,
} from '../public/e2ee/sframe.js';
import { sframeKeyMaterial, deriveKeySalt, hkdf } from '../public/e2ee/sframe-kdf.js';
import { KeyRing, kidFor, kidParts, GRACE_MS, MAX_SENDERS_PER_EPOCH } from '../public/e2ee/sframe-keys.js';
import { FramePipe, newCounters, KEYFRAME_REQUEST_INTERVAL_MS } from '../public/e2ee/frame-pipe.js';
import { WorkerCore } from '../public/e2ee/worker-core.js';

/** @param {string} h */
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
/** @param {Uint8Array} b */
const toHex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

// RFC 9605 Appendix C.1: every KID × CTR value below encodes to the
// header at [kid index][ctr index]. Taken from the RFC's source
// (github.com/sframe-wg/sframe, test-vectors/test-vectors.json).
const VALUES = [0x0n, 0x1n, 0xffn, 0x100n, 0xffffn, 0x10000n, 0xffffffn, 0x1000000n, 0xffffffffn, 0x100000000n, 0xffffffffffn, 0x10000000000n, 0xffffffffffffn, 0x1000000000000n, 0xffffffffffffffn, 0x100000000000000n, 0xffffffffffffffffn];
const HEADERS = [
  ['00', '01', '08ff', '090100', '09ffff', '0a010000', '0affffff', '0b01000000', '0bffffffff', '0c0100000000', '0cffffffffff', '0d010000000000', '0dffffffffffff', '0e01000000000000', '0effffffffffffff', '0f0100000000000000', '0fffffffffffffffff'],
  ['10', '11', '18ff', '190100', '19ffff', '1a010000', '1affffff', '1b01000000', '1bffffffff', '1c0100000000', '1cffffffffff', '1d010000000000', '1dffffffffffff', '1e01000000000000', '1effffffffffffff', '1f0100000000000000', '1fffffffffffffffff'],
  ['80ff', '81ff', '88ffff', '89ff0100', '89ffffff', '8aff010000', '8affffffff', '8bff01000000', '8bffffffffff', '8cff0100000000', '8cffffffffffff', '8dff010000000000', '8dffffffffffffff', '8eff01000000000000', '8effffffffffffffff', '8fff0100000000000000', '8fffffffffffffffffff'],
  ['900100', '910100', '980100ff', '9901000100', '990100ffff', '9a0100010000', '9a0100ffffff', '9b010001000000', '9b0100ffffffff', '9c01000100000000', '9c0100ffffffffff', '9d0100010000000000', '9d0100ffffffffffff', '9e010001000000000000', '9e0100ffffffffffffff', '9f01000100000000000000', '9f0100ffffffffffffffff'],
  ['90ffff', '91ffff', '98ffffff', '99ffff0100', '99ffffffff', '9affff010000', '9affffffffff', '9bffff01000000', '9bffffffffffff', '9cffff0100000000', '9cffffffffffffff', '9dffff010000000000', '9dffffffffffffffff', '9effff01000000000000', '9effffffffffffffffff', '9fffff0100000000000000', '9fffffffffffffffffffff'],
  ['a0010000', 'a1010000', 'a8010000ff', 'a90100000100', 'a9010000ffff', 'aa010000010000', 'aa010000ffffff', 'ab01000001000000', 'ab010000ffffffff', 'ac0100000100000000', 'ac010000ffffffffff', 'ad010000010000000000', 'ad010000ffffffffffff', 'ae01000001000000000000', 'ae010000ffffffffffffff', 'af0100000100000000000000', 'af010000ffffffffffffffff'],
  ['a0ffffff', 'a1ffffff', 'a8ffffffff', 'a9ffffff0100', 'a9ffffffffff', 'aaffffff010000', 'aaffffffffffff', 'abffffff01000000', 'abffffffffffffff', 'acffffff0100000000', 'acffffffffffffffff', 'adffffff010000000000', 'adffffffffffffffffff', 'aeffffff01000000000000', 'aeffffffffffffffffffff', 'afffffff0100000000000000', 'afffffffffffffffffffffff'],
  ['b001000000', 'b101000000', 'b801000000ff', 'b9010000000100', 'b901000000ffff', 'ba01000000010000', 'ba01000000ffffff', 'bb0100000001000000', 'bb01000000ffffffff', 'bc010000000100000000', 'bc01000000ffffffffff', 'bd01000000010000000000', 'bd01000000ffffffffffff', 'be0100000001000000000000', 'be01000000ffffffffffffff', 'bf010000000100000000000000', 'bf01000000ffffffffffffffff'],
  ['b0ffffffff', 'b1ffffffff', 'b8ffffffffff', 'b9ffffffff0100', 'b9ffffffffffff', 'baffffffff010000', 'baffffffffffffff', 'bbffffffff01000000', 'bbffffffffffffffff', 'bcffffffff0100000000', 'bcffffffffffffffffff', 'bdffffffff010000000000', 'bdffffffffffffffffffff', 'beffffffff01000000000000', 'beffffffffffffffffffffff', 'bfffffffff0100000000000000', 'bfffffffffffffffffffffffff'],
  ['c00100000000', 'c10100000000', 'c80100000000ff', 'c901000000000100', 'c90100000000ffff', 'ca0100000000010000', 'ca0100000000ffffff', 'cb010000000001000000', 'cb0100000000ffffffff', 'cc01000000000100000000', 'cc0100000000ffffffffff', 'cd0100000000010000000000', 'cd0100000000ffffffffffff', 'ce010000000001000000000000', 'ce0100000000ffffffffffffff', 'cf01000000000100000000000000', 'cf0100000000ffffffffffffffff'],
  ['c0ffffffffff', 'c1ffffffffff', 'c8ffffffffffff', 'c9ffffffffff0100', 'c9ffffffffffffff', 'caffffffffff010000', 'caffffffffffffffff', 'cbffffffffff01000000', 'cbffffffffffffffffff', 'ccffffffffff0100000000', 'ccffffffffffffffffffff', 'cdffffffffff010000000000', 'cdffffffffffffffffffffff', 'ceffffffffff01000000000000', 'ceffffffffffffffffffffffff', 'cfffffffffff0100000000000000', 'cfffffffffffffffffffffffffff'],
  ['d0010000000000', 'd1010000000000', 'd8010000000000ff', 'd90100000000000100', 'd9010000000000ffff', 'da010000000000010000', 'da010000000000ffffff', 'db01000000000001000000', 'db010000000000ffffffff', 'dc0100000000000100000000', 'dc010000000000ffffffffff', 'dd010000000000010000000000', 'dd010000000000ffffffffffff', 'de01000000000001000000000000', 'de010000000000ffffffffffffff', 'df0100000000000100000000000000', 'df010000000000ffffffffffffffff'],
  ['d0ffffffffffff', 'd1ffffffffffff', 'd8ffffffffffffff', 'd9ffffffffffff0100', 'd9ffffffffffffffff', 'daffffffffffff010000', 'daffffffffffffffffff', 'dbffffffffffff01000000', 'dbffffffffffffffffffff', 'dcffffffffffff0100000000', 'dcffffffffffffffffffffff', 'ddffffffffffff010000000000', 'ddffffffffffffffffffffffff', 'deffffffffffff01000000000000', 'deffffffffffffffffffffffffff', 'dfffffffffffff0100000000000000', 'dfffffffffffffffffffffffffffff'],
  ['e001000000000000', 'e101000000000000', 'e801000000000000ff', 'e9010000000000000100', 'e901000000000000ffff', 'ea01000000000000010000', 'ea01000000000000ffffff', 'eb0100000000000001000000', 'eb01000000000000ffffffff', 'ec010000000000000100000000', 'ec01000000000000ffffffffff', 'ed01000000000000010000000000', 'ed01000000000000ffffffffffff', 'ee0100000000000001000000000000', 'ee01000000000000ffffffffffffff', 'ef010000000000000100000000000000', 'ef01000000000000ffffffffffffffff'],
  ['e0ffffffffffffff', 'e1ffffffffffffff', 'e8ffffffffffffffff', 'e9ffffffffffffff0100', 'e9ffffffffffffffffff', 'eaffffffffffffff010000', 'eaffffffffffffffffffff', 'ebffffffffffffff01000000', 'ebffffffffffffffffffffff', 'ecffffffffffffff0100000000', 'ecffffffffffffffffffffffff', 'edffffffffffffff010000000000', 'edffffffffffffffffffffffffff', 'eeffffffffffffff01000000000000', 'eeffffffffffffffffffffffffffff', 'efffffffffffffff0100000000000000', 'efffffffffffffffffffffffffffffff'],
  ['f00100000000000000', 'f10100000000000000', 'f80100000000000000ff', 'f901000000000000000100', 'f90100000000000000ffff', 'fa0100000000000000010000', 'fa0100000000000000ffffff', 'fb010000000000000001000000', 'fb0100000000000000ffffffff', 'fc01000000000000000100000000', 'fc0100000000000000ffffffffff', 'fd0100000000000000010000000000', 'fd0100000000000000ffffffffffff', 'fe010000000000000001000000000000', 'fe0100000000000000ffffffffffffff', 'ff01000000000000000100000000000000', 'ff0100000000000000ffffffffffffffff'],
  ['f0ffffffffffffffff', 'f1ffffffffffffffff', 'f8ffffffffffffffffff', 'f9ffffffffffffffff0100', 'f9ffffffffffffffffffff', 'faffffffffffffffff010000', 'faffffffffffffffffffffff', 'fbffffffffffffffff01000000', 'fbffffffffffffffffffffffff', 'fcffffffffffffffff0100000000', 'fcffffffffffffffffffffffffff', 'fdffffffffffffffff010000000000', 'fdffffffffffffffffffffffffffff', 'feffffffffffffffff01000000000000', 'feffffffffffffffffffffffffffffff', 'ffffffffffffffffff0100000000000000', 'ffffffffffffffffffffffffffffffffff'],
];

// RFC 9605 Appendix C.3, cipher suite 0x0004 (AES_128_GCM_SHA256_128).
const C3 = {
  kid: 0x123n,
  ctr: 0x4567n,
  baseKey: '000102030405060708090a0b0c0d0e0f',
  key: 'd34f547f4ca4f9a7447006fe7fcbf768',
  salt: '75234edefe07819026751816',
  metadata: '4945544620534672616d65205747',
  nonce: '75234edefe07819026755d71',
  pt: '64726166742d696574662d736672616d652d656e63',
  ct: '9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb',
};

describe('RFC 9605 known answers', () => {
  test('every header of Appendix C.1 encodes and decodes exactly', () => {
    assert.equal(HEADERS.length * HEADERS[0].length, 289);
    VALUES.forEach((kid, i) => {
      VALUES.forEach((ctr, j) => {
        const want = HEADERS[i][j];
        assert.equal(toHex(encodeHeader(kid, ctr)), want, `kid ${kid} ctr ${ctr}`);
        const d = decodeHeader(concat(hex(want), hex('abcdef')));
        assert.deepEqual(d, { kid, ctr, length: want.length / 2 });
      });
    });
  });

  test('a header cut short is refused, not read past its end', () => {
    assert.equal(decodeHeader(new Uint8Array(0)), null);
    assert.equal(decodeHeader(hex('99012345')), null);
    assert.equal(decodeHeader(hex('8f01')), null);
    assert.throws(() => parseFrame(hex('9901234567' + '00'.repeat(15))), SFrameError);
    assert.throws(() => encodeHeader(1n << 64n, 0n), RangeError);
  });

  test('the suite 0x0004 vector of Appendix C.3: key, salt, nonce and ciphertext', async () => {
    const m = await sframeKeyMaterial(hex(C3.baseKey), C3.kid);
    assert.equal(toHex(m.key), C3.key);
    assert.equal(toHex(m.salt), C3.salt);
    assert.equal(toHex(nonceFor(m.salt, C3.ctr)), C3.nonce);
    const k = await deriveKeySalt(hex(C3.baseKey), C3.kid);
    const ct = await sealFrame(k, C3.kid, C3.ctr, hex(C3.metadata), hex(C3.pt));
    assert.equal(toHex(ct), C3.ct);
    const opened = await openFrame(k, parseFrame(hex(C3.ct)), hex(C3.metadata));
    assert.equal(toHex(opened), C3.pt);
  });

  test('the C.3 ciphertext does not open with other metadata, header or key', async () => {
    const k = await deriveKeySalt(hex(C3.baseKey), C3.kid);
    const other = await deriveKeySalt(hex('ff' + C3.baseKey.slice(2)), C3.kid);
    const f = parseFrame(hex(C3.ct));
    const wrongMeta = hex(C3.metadata);
    wrongMeta[0] ^= 1;
    await assert.rejects(openFrame(k, f, wrongMeta), { code: 'auth' });
    await assert.rejects(openFrame(other, f, hex(C3.metadata)), { code: 'auth' });
    // Same KID, CTR one higher, encoded the same length: the header is AAD.
    const bumped = hex(C3.ct);
    bumped[4] ^= 1;
    await assert.rejects(openFrame(k, parseFrame(bumped), hex(C3.metadata)), { code: 'auth' });
  });
});

/** @param {number} seed */
const exporter = (seed) => new Uint8Array(32).fill(seed).buffer;

/**
 * A VP8-like frame: `n` bytes counting up from `first`.
 * @param {'key' | 'delta' | undefined} type
 * @param {number} n
 * @param {number} [first]
 */
function frame(type, n, first = 0) {
  const data = Uint8Array.from({ length: n }, (_, i) => (first + i) & 0xff).buffer;
  return type ? { type, data } : { data };
}

/**
 * A sender (leaf `from`) and receiver (leaf `to`) with epoch `epoch` installed.
 * @param {number} epoch
 * @param {number} [seed]
 */
async function pair(epoch = 3, seed = 7) {
  const alice = new KeyRing();
  const bob = new KeyRing();
  await alice.install(epoch, exporter(seed), 1, 0);
  await bob.install(epoch, exporter(seed), 2, 0);
  const ac = newCounters();
  const bc = newCounters();
  return { alice, bob, ac, bc, send: new FramePipe(alice, ac), recv: new FramePipe(bob, bc) };
}

describe('key ring', () => {
  test('a KID names the epoch and the sender leaf', () => {
    assert.equal(kidFor(5, 3), 5n * 65536n + 3n);
    assert.deepEqual(kidParts(kidFor(123456, 65535)), { epoch: 123456, leaf: 65535 });
    assert.throws(() => kidFor(0, 65536), RangeError);
    assert.throws(() => kidFor(2 ** 37, 0), RangeError);
  });

  test('each sender of an epoch has its own base key from the exporter', async () => {
    const { alice, bob } = await pair();
    const a = alice.nextSend();
    const b = bob.nextSend();
    assert.ok(a && b);
    assert.equal(a.kid, kidFor(3, 1));
    assert.equal(b.kid, kidFor(3, 2));
    const ex = new Uint8Array(exporter(7));
    const base1 = await hkdf(ex, 'veche sframe sender 1', 128);
    const m = await sframeKeyMaterial(base1, kidFor(3, 1));
    assert.notDeepEqual(a.key.salt, b.key.salt);
    assert.deepEqual(a.key.salt, m.salt);
  });

  test('counters never repeat for one send key, across interleaved callers', async () => {
    const ring = new KeyRing();
    assert.equal(ring.nextSend(), null);
    await ring.install(1, exporter(1), 0, 0);
    const ctrs = Array.from({ length: 100 }, () => ring.nextSend()?.ctr);
    assert.equal(new Set(ctrs).size, 100);
    assert.equal(ctrs[0], 0n);
  });

  test('installing the same epoch again keeps the counter; a new epoch restarts it', async () => {
    const ring = new KeyRing();
    await ring.install(1, exporter(1), 0, 0);
    ring.nextSend();
    ring.nextSend();
    assert.equal(await ring.install(1, new Uint8Array(exporter(1)), 0, 10), false);
    assert.equal(ring.nextSend()?.ctr, 2n);
    assert.equal(await ring.install(2, exporter(2), 0, 20), true);
    assert.equal(ring.epoch, 2);
    const next = ring.nextSend();
    assert.equal(next?.kid, kidFor(2, 0));
    assert.equal(next?.ctr, 0n);
  });

  test('an exporter of the wrong size is refused and changes nothing', async () => {
    const ring = new KeyRing();
    await ring.install(1, exporter(1), 0, 0);
    await assert.rejects(ring.install(2, new Uint8Array(16), 0, 0), RangeError);
    assert.equal(ring.epoch, 1);
  });

  test('forged KIDs cannot make one epoch derive keys without bound', async () => {
    const ring = new KeyRing();
    await ring.install(1, exporter(1), 0, 0);
    for (let leaf = 1; leaf < MAX_SENDERS_PER_EPOCH; leaf++) await ring.receiveKey(kidFor(1, leaf), 0);
    assert.ok(await ring.receiveKey(kidFor(1, 5), 0), 'known senders still have keys');
    assert.equal(await ring.receiveKey(kidFor(1, MAX_SENDERS_PER_EPOCH + 5), 0), null);
  });
});

describe('frame pipe', () => {
  test('a VP8 keyframe keeps 10 clear bytes, a delta frame 3, audio 1, and all round-trip', async () => {
    const { send, recv, ac, bc } = await pair();
    for (const [type, clear] of /** @type {const} */ ([['key', 10], ['delta', 3], [undefined, 1]])) {
      const f = frame(type, 200, 40);
      const plain = new Uint8Array(f.data.slice(0));
      assert.equal(await send.encrypt(f), true);
      const wire = new Uint8Array(f.data);
      assert.deepEqual(wire.subarray(0, clear), plain.subarray(0, clear), `${type}: prefix in clear`);
      assert.notDeepEqual(wire.subarray(clear, 200), plain.subarray(clear), `${type}: rest encrypted`);
      assert.equal(wire.length, 200 + 4 + 16, `${type}: header kid 0x30001 (4 bytes) + tag`);
      const r = await recv.decrypt(f, 1);
      assert.equal(r.keep, true);
      assert.deepEqual(new Uint8Array(f.data), plain);
    }
    assert.equal(ac.encrypted, 3);
    assert.equal(bc.decrypted, 3);
    assert.equal(ac.plaintext_out + bc.plaintext_out, 0);
  });

  test('with no send key a frame is dropped, never passed in clear', async () => {
    const counters = newCounters();
    const pipe = new FramePipe(new KeyRing(), counters);
    const f = frame('key', 100);
    const before = f.data;
    assert.equal(await pipe.encrypt(f), false);
    assert.equal(f.data, before);
    assert.equal(counters.dropped_no_key, 1);
    assert.equal(counters.encrypted, 0);
    assert.equal(counters.plaintext_out, 0);
  });

  test('a frame shorter than its clear prefix is not sent', async () => {
    const { send, ac } = await pair();
    assert.equal(await send.encrypt(frame('key', 9)), false);
    assert.equal(await send.encrypt(frame(undefined, 0)), false);
    assert.equal(ac.dropped_malformed, 2);
  });

  test('a receiver without the epoch drops the frame and counts it as no key', async () => {
    const { send } = await pair(3);
    const late = new KeyRing();
    await late.install(2, exporter(7), 4, 0);
    const c = newCounters();
    const f = frame('delta', 50);
    await send.encrypt(f);
    const r = await new FramePipe(late, c).decrypt(f, 0);
    assert.equal(r.keep, false);
    assert.equal(c.dropped_no_key, 1);
    assert.equal(c.decrypted, 0);
  });

  test('a tampered clear prefix, a flipped ciphertext bit or plaintext input all fail', async () => {
    const { send, recv, bc } = await pair();
    for (const at of [1, 20, 60]) {
      const f = frame('delta', 64);
      await send.encrypt(f);
      const bytes = new Uint8Array(f.data);
      bytes[at] ^= 0x40;
      assert.equal((await recv.decrypt(f, 0)).keep, false, `byte ${at} flipped`);
    }
    const plainVp8 = frame('delta', 64);
    assert.equal((await recv.decrypt(plainVp8, 0)).keep, false);
    assert.equal(bc.decrypt_failed + bc.dropped_no_key, 4);
    assert.equal(bc.decrypted, 0);
  });

  test('a frame from another group (same epoch number, other exporter) fails', async () => {
    const { send } = await pair(3, 7);
    const { recv, bc } = await pair(3, 8);
    const f = frame('key', 64);
    await send.encrypt(f);
    assert.equal((await recv.decrypt(f, 0)).keep, false);
    assert.equal(bc.decrypt_failed, 1);
  });

  test('after a gap the receiver asks for a keyframe, at most once a second, until one decodes', async () => {
    const { send, recv } = await pair();
    const garbage = frame('delta', 30);
    assert.equal((await recv.decrypt(garbage, 0)).needKeyframe, true);
    assert.equal((await recv.decrypt(frame('delta', 30), 10)).needKeyframe, false, 'rate-limited');
    const d = frame('delta', 30);
    await send.encrypt(d);
    const mid = await recv.decrypt(d, KEYFRAME_REQUEST_INTERVAL_MS + 5);
    assert.equal(mid.keep, true);
    assert.equal(mid.needKeyframe, true, 'a delta after a gap still cannot be decoded');
    const k = frame('key', 30);
    await send.encrypt(k);
    assert.equal((await recv.decrypt(k, 5000)).needKeyframe, false);
    const d2 = frame('delta', 30);
    await send.encrypt(d2);
    assert.equal((await recv.decrypt(d2, 9000)).needKeyframe, false);
  });

  test('audio never asks for keyframes', async () => {
    const { recv } = await pair();
    assert.equal((await recv.decrypt(frame(undefined, 30), 0)).needKeyframe, false);
  });
});

describe('epochs and forward secrecy at the frame layer', () => {
  test('the previous epoch decrypts during the grace window, not after it', async () => {
    const { send, bob, recv } = await pair(3);
    const old = frame('delta', 80);
    await send.encrypt(old);
    const copy = () => ({ type: /** @type {'delta'} */ ('delta'), data: old.data.slice(0) });
    await bob.install(4, exporter(9), 2, 1000);
    assert.equal((await recv.decrypt(copy(), 1000 + GRACE_MS - 1)).keep, true, 'inside the grace window');
    assert.equal((await recv.decrypt(copy(), 1000 + GRACE_MS)).keep, false, 'after it');
  });

  test('a frame sealed with epoch n keys cannot be opened with only epoch n+1 keys', async () => {
    const { send } = await pair(3, 7);
    const f = frame('key', 80);
    await send.encrypt(f);
    const joiner = new KeyRing();
    await joiner.install(4, exporter(9), 5, 0);
    const c = newCounters();
    const r = await new FramePipe(joiner, c).decrypt({ type: 'key', data: f.data.slice(0) }, 0);
    assert.equal(r.keep, false);
    assert.equal(c.dropped_no_key, 1);
    // Even a receiver that forges the KID to point at its epoch n+1 key fails.
    const forged = new Uint8Array(f.data.slice(0));
    const parsed = parseFrame(forged.subarray(10));
    const kid4 = kidFor(4, kidParts(parsed.kid).leaf);
    const reheaded = concat(concat(forged.subarray(0, 10), encodeHeader(kid4, parsed.ctr)), parsed.body);
    const r2 = await new FramePipe(joiner, c).decrypt({ type: 'key', data: /** @type {ArrayBuffer} */ (reheaded.buffer) }, 0);
    assert.equal(r2.keep, false);
    assert.equal(c.decrypt_failed, 1);
  });

  test('the sender switches to the new epoch at once; clear() drops every key', async () => {
    const { alice, send, bob, recv } = await pair(3);
    await alice.install(4, exporter(9), 1, 100);
    await bob.install(4, exporter(9), 2, 100);
    const f = frame('delta', 40);
    await send.encrypt(f);
    assert.equal(kidParts(parseFrame(new Uint8Array(f.data).subarray(3)).kid).epoch, 4);
    assert.equal((await recv.decrypt({ type: 'delta', data: f.data.slice(0) }, 200)).keep, true);
    bob.clear();
    assert.equal((await recv.decrypt(f, 200)).keep, false);
    alice.clear();
    assert.equal(await send.encrypt(frame('delta', 40)), false);
  });

  test('epochs installed back to back all stay readable for their grace window', async () => {
    const { send, alice, bob, recv } = await pair(3);
    const f3 = frame('delta', 40);
    await send.encrypt(f3);
    await alice.install(4, exporter(4), 1, 10);
    await bob.install(4, exporter(4), 2, 10);
    const f4 = frame('delta', 40);
    await send.encrypt(f4);
    await bob.install(5, exporter(5), 2, 20);
    assert.equal((await recv.decrypt(f3, 30)).keep, true);
    assert.equal((await recv.decrypt(f4, 30)).keep, true);
  });
});

describe('worker', () => {
  /**
   * Runs `frames` through a worker track and returns what came out.
   * @param {WorkerCore} core
   * @param {'send' | 'recv'} side
   * @param {{data: ArrayBuffer, type?: 'key' | 'delta'}[]} frames
   */
  async function through(core, side, frames) {
    /** @type {any[]} */
    const out = [];
    const readable = new ReadableStream({
      start(c) {
        for (const f of frames) c.enqueue(f);
        c.close();
      },
    });
    const writable = new WritableStream({ write: (f) => { out.push(f); } });
    // Settles once the track's readable is drained and closed.
    await core.onMessage({ type: 'stream', side, kind: 'video', id: 't1', readable, writable });
    return out;
  }

  test('frames before the first epoch are dropped; after it they round-trip between two workers', async () => {
    /** @type {any[]} */
    const aMsgs = [];
    const a = new WorkerCore((m) => aMsgs.push(m), () => 0);
    const b = new WorkerCore(() => {}, () => 0);
    assert.deepEqual(await through(a, 'send', [frame('key', 50)]), []);
    await a.onMessage({ type: 'epoch', epoch: 1, exporter: exporter(3), myLeaf: 0 });
    await b.onMessage({ type: 'epoch', epoch: 1, exporter: exporter(3), myLeaf: 1 });
    assert.deepEqual(aMsgs.at(-1), { type: 'epoch', epoch: 1, installed: true });
    const sent = await through(a, 'send', [frame('key', 50), frame('delta', 50)]);
    assert.equal(sent.length, 2);
    const got = await through(b, 'recv', sent);
    assert.deepEqual(got.map((f) => new Uint8Array(f.data)), [frame('key', 50), frame('delta', 50)].map((f) => new Uint8Array(f.data)));
    await a.onMessage({ type: 'stats', id: 9 });
    assert.deepEqual(aMsgs.at(-1), {
      type: 'stats', id: 9, epoch: 1,
      counters: { encrypted: 2, decrypted: 0, dropped_no_key: 1, decrypt_failed: 0, dropped_malformed: 0, plaintext_out: 0 },
    });
  });

  test('a receiver that cannot decrypt tells the page it needs a keyframe', async () => {
    /** @type {any[]} */
    const msgs = [];
    const w = new WorkerCore((m) => msgs.push(m), () => 0);
    await w.onMessage({ type: 'epoch', epoch: 1, exporter: exporter(3), myLeaf: 1 });
    await through(w, 'recv', [frame('delta', 40), frame('delta', 40)]);
    assert.deepEqual(msgs.filter((m) => m.type === 'keyframe'), [{ type: 'keyframe', side: 'recv', kind: 'video', id: 't1' }]);
  });

  test('a new epoch makes every sending track produce a keyframe; a receiver gap sends a keyframe request', async () => {
    const w = new WorkerCore(() => {}, () => 0);
    const calls = { generate: 0, request: 0 };
    /** @type {ReadableStreamDefaultController<any> | undefined} */
    let open;
    const sending = w.attach({
      readable: new ReadableStream({ start(c) { open = c; } }),
      writable: new WritableStream(),
      options: { side: 'send', kind: 'video' },
      generateKeyFrame: async () => { calls.generate++; },
    });
    await w.onMessage({ type: 'epoch', epoch: 1, exporter: exporter(3), myLeaf: 0 });
    await w.onMessage({ type: 'epoch', epoch: 1, exporter: exporter(3), myLeaf: 0 });
    await w.onMessage({ type: 'epoch', epoch: 2, exporter: exporter(4), myLeaf: 0 });
    assert.equal(calls.generate, 2, 'once per new epoch, not for a repeated install');
    open?.close();
    await sending;
    await w.attach({
      readable: new ReadableStream({ start(c) { c.enqueue(frame('delta', 30)); c.close(); } }),
      writable: new WritableStream(),
      options: { side: 'recv', kind: 'video' },
      sendKeyFrameRequest: async () => { calls.request++; },
    });
    assert.equal(calls.request, 1);
  });

  test('an ill-formed epoch message is refused with an error, keys unchanged', async () => {
    /** @type {any[]} */
    const msgs = [];
    const w = new WorkerCore((m) => msgs.push(m), () => 0);
    await w.onMessage({ type: 'epoch', epoch: 1, exporter: Array(32).fill(1), myLeaf: 0 });
    await w.onMessage({ type: 'epoch', epoch: 1, exporter: new ArrayBuffer(31), myLeaf: 0 });
    assert.deepEqual(msgs.map((m) => m.type), ['error', 'error']);
    assert.equal(w.ring.epoch, null);
  });
});
