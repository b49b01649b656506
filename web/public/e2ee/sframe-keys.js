// The SFrame key ring: which key a KID names, and which key and counter we
// send with. Pure apart from WebCrypto: time comes in as `now`
// (milliseconds, any monotonic clock), there are no timers.
//
// KID layout: KID = epoch × 2^16 + leaf, where `epoch` is the MLS epoch the
// key belongs to and `leaf` the sender's MLS leaf index. So a receiver
// knows from the header alone whose key and which epoch a frame needs, and
// two senders (or two epochs) never share a key. Epochs are kept below
// 2^37 so a KID stays an exact JavaScript number too (< 2^53).

import { hkdf, importHkdf, senderBaseKey, deriveKeySalt } from './sframe-kdf.js';

/** How long the receive keys of a replaced epoch stay usable, in ms:
 * frames the sender encrypted just before it applied the commit still
 * decode, so a key change shows no black-out. */
export const GRACE_MS = 5000;
/** Bits of the KID that hold the sender's leaf index. */
export const LEAF_BITS = 16;
/** Largest leaf index a KID can carry. */
export const MAX_LEAF = (1 << LEAF_BITS) - 1;
/** Largest epoch a KID can carry. */
export const MAX_EPOCH = 2 ** 37 - 1;
/** Length of the MLS exporter secret an epoch is installed from. */
export const EXPORTER_BYTES = 32;
/** Most senders whose receive keys one epoch caches; a KID naming a new
 * leaf beyond this gets no key, so forged KIDs cannot grow memory. */
export const MAX_SENDERS_PER_EPOCH = 1024;
/** Most replaced epochs kept in their grace window at once. */
const MAX_RETIRED = 4;

/**
 * The KID of the sender at `leaf` in `epoch`.
 * @param {number} epoch
 * @param {number} leaf
 * @returns {bigint}
 */
export function kidFor(epoch, leaf) {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new RangeError(`an SFrame epoch is an integer in 0..${MAX_EPOCH}`);
  }
  if (!Number.isInteger(leaf) || leaf < 0 || leaf > MAX_LEAF) {
    throw new RangeError(`an SFrame leaf is an integer in 0..${MAX_LEAF}`);
  }
  return (BigInt(epoch) << BigInt(LEAF_BITS)) | BigInt(leaf);
}

/**
 * The epoch and leaf a KID names.
 * @param {bigint} kid
 * @returns {{epoch: number, leaf: number}}
 */
export function kidParts(kid) {
  return { epoch: Number(kid >> BigInt(LEAF_BITS)), leaf: Number(kid & BigInt(MAX_LEAF)) };
}

/**
 * What we send with for one frame.
 * @typedef {object} SendSlot
 * @property {bigint} kid
 * @property {bigint} ctr Never handed out twice for one KID.
 * @property {import('./sframe.js').SFrameKey} key
 */

/**
 * One epoch's keys.
 * @typedef {object} EpochKeys
 * @property {number} epoch
 * @property {number} myLeaf
 * @property {CryptoKey} exporter The exporter secret as a non-extractable HKDF key.
 * @property {Uint8Array} fingerprint A hash of the exporter, to spot a repeated install.
 * @property {bigint} sendKid
 * @property {import('./sframe.js').SFrameKey} sendKey
 * @property {bigint} ctr The next counter to send with.
 * @property {Map<number, Promise<import('./sframe.js').SFrameKey>>} recv
 */

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Receive and send keys per epoch and sender, with a grace window. */
export class KeyRing {
  /** @type {EpochKeys | null} */
  #current = null;
  /** @type {{keys: EpochKeys, expires: number}[]} */
  #retired = [];
  /** Installs run one after another, in the order they were asked for. */
  /** @type {Promise<unknown>} */
  #chain = Promise.resolve();

  /**
   * Makes `epoch` current from its exporter secret: we send with our own
   * leaf's key from now on, with the counter at 0; the epoch it replaces
   * keeps decrypting until `now + GRACE_MS`. Installing the same epoch
   * with the same exporter and leaf again changes nothing (and does not
   * reset the counter, which would reuse nonces). Installing the same
   * epoch number with a different exporter (a new group) replaces it
   * outright, since their KIDs would collide.
   * @param {number} epoch
   * @param {ArrayBuffer | Uint8Array} exporter 32 bytes.
   * @param {number} myLeaf
   * @param {number} now
   * @returns {Promise<boolean>} false if it was already current.
   */
  install(epoch, exporter, myLeaf, now) {
    // Copied now: the caller may reuse its buffer before the install runs.
    const secret = new Uint8Array(exporter instanceof ArrayBuffer ? exporter.slice(0) : exporter.slice());
    const run = this.#chain.then(() => this.#install(epoch, secret, myLeaf, now));
    this.#chain = run.catch(() => {});
    return run;
  }

  /**
   * @param {number} epoch
   * @param {Uint8Array} secret Our own copy; wiped when done.
   * @param {number} myLeaf
   * @param {number} now
   */
  async #install(epoch, secret, myLeaf, now) {
    if (secret.length !== EXPORTER_BYTES) {
      throw new RangeError(`an SFrame exporter secret is ${EXPORTER_BYTES} bytes`);
    }
    const sendKid = kidFor(epoch, myLeaf);
    const fingerprint = await hkdf(secret, 'veche sframe fingerprint', 128);
    const cur = this.#current;
    if (cur && cur.epoch === epoch && cur.myLeaf === myLeaf && sameBytes(cur.fingerprint, fingerprint)) {
      secret.fill(0);
      return false;
    }
    const key = await importHkdf(secret);
    const base = await senderBaseKey(key, myLeaf);
    secret.fill(0);
    const sendKey = await deriveKeySalt(base, sendKid);
    /** @type {EpochKeys} */
    const keys = {
      epoch,
      myLeaf,
      exporter: key,
      fingerprint,
      sendKid,
      sendKey,
      ctr: 0n,
      recv: new Map([[myLeaf, Promise.resolve(sendKey)]]),
    };
    // Swap only now, after every await: a frame sent meanwhile used the
    // old epoch whole, never a mix.
    this.#prune(now);
    const prev = this.#current;
    this.#retired = this.#retired.filter((r) => r.keys.epoch !== epoch);
    if (prev && prev.epoch !== epoch) {
      this.#retired.unshift({ keys: prev, expires: now + GRACE_MS });
      this.#retired.length = Math.min(this.#retired.length, MAX_RETIRED);
    }
    this.#current = keys;
    return true;
  }

  /** The current epoch, or null before the first install. */
  get epoch() {
    return this.#current ? this.#current.epoch : null;
  }

  /**
   * Our send key and a fresh counter for one frame, or null when we have
   * no key (then the frame must be dropped, never sent in clear).
   * @returns {SendSlot | null}
   */
  nextSend() {
    const cur = this.#current;
    if (!cur) return null;
    const ctr = cur.ctr;
    cur.ctr += 1n;
    return { kid: cur.sendKid, ctr, key: cur.sendKey };
  }

  /**
   * The key a received frame's KID names, or null if we do not hold it
   * (an epoch we never had, or one whose grace window ended).
   * @param {bigint} kid
   * @param {number} now
   * @returns {Promise<import('./sframe.js').SFrameKey | null>}
   */
  async receiveKey(kid, now) {
    const { epoch, leaf } = kidParts(kid);
    this.#prune(now);
    const keys = [this.#current, ...this.#retired.map((r) => r.keys)].find((k) => k?.epoch === epoch);
    if (!keys) return null;
    let key = keys.recv.get(leaf);
    if (!key) {
      if (keys.recv.size >= MAX_SENDERS_PER_EPOCH) return null;
      key = senderBaseKey(keys.exporter, leaf).then((base) => deriveKeySalt(base, kid));
      keys.recv.set(leaf, key);
    }
    return key;
  }

  /** Forgets every key (we left the group or were removed from it). */
  clear() {
    this.#current = null;
    this.#retired = [];
  }

  /** @param {number} now */
  #prune(now) {
    this.#retired = this.#retired.filter((r) => r.expires > now);
  }
}
