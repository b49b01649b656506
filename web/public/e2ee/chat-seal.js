// Sealed chat in an end-to-end encrypted room: the text the server relays
// and stores is `e2ee1:{group}:{epoch}:{base64url(nonce ‖ ciphertext ‖ tag)}`
// (protocol/src/e2ee.rs, check_sealed_chat). The key is the epoch's chat
// key, HKDF(exporter, "veche chat"); AES-GCM with a random 12-byte nonce
// and AAD = `e2ee1:{group}:{epoch}:` ‖ sender participant id, so a relayed
// envelope cannot be replayed under another epoch or another sender's name.

import { hkdf, importHkdf } from './sframe-kdf.js';
import { toB64url, fromB64url } from './b64url.js';

/** The envelope's version prefix (SEALED_CHAT_PREFIX in Rust). */
export const SEALED_PREFIX = 'e2ee1:';
/** Longest envelope the server accepts (limits::e2ee::MAX_SEALED_CHAT_BYTES). */
export const MAX_SEALED_CHAT_BYTES = 22 * 1024;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();

/**
 * Why an envelope did not open.
 * @typedef {{ok: false, code: 'malformed' | 'no_key' | 'failed', message: string}} OpenFailure
 */
/**
 * An opened envelope.
 * @typedef {{ok: true, text: string, group: number, epoch: number}} Opened
 */

/** The user-facing text of each failure. */
export const OPEN_FAILURES = Object.freeze({
  malformed: 'not an encrypted message',
  no_key: 'no key for that epoch',
  failed: 'could not be decrypted: wrong key or changed in transit',
});

/** Thrown by {@link seal} for text the server would refuse once sealed. */
export class SealError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SealError';
  }
}

/**
 * The chat key of an epoch: HKDF-SHA256(exporter, "veche chat"), 128-bit
 * AES-GCM, non-extractable.
 * @param {ArrayBuffer | Uint8Array} exporter The epoch's 32-byte exporter
 *   secret (the same one SFrame keys come from).
 * @returns {Promise<CryptoKey>}
 */
export async function chatKey(exporter) {
  const ikm = await importHkdf(new Uint8Array(exporter));
  const raw = await hkdf(ikm, 'veche chat', 128);
  const key = await crypto.subtle.importKey('raw', /** @type {BufferSource} */ (raw), 'AES-GCM', false, [
    'encrypt',
    'decrypt',
  ]);
  raw.fill(0);
  return key;
}

/**
 * @param {number} group
 * @param {number} epoch
 * @param {string} sender
 */
function aadFor(group, epoch, sender) {
  return utf8.encode(`${SEALED_PREFIX}${group}:${epoch}:${sender}`);
}

/**
 * Seals chat text (already filtered by the chat rules) for the room.
 * @param {string} text
 * @param {CryptoKey} key The chat key of `epoch`.
 * @param {{group: number, epoch: number, sender: string}} at The group and
 *   epoch the key belongs to, and our participant id.
 * @returns {Promise<string>} The envelope to send as `chat.text`.
 * @throws {SealError} If the envelope would exceed MAX_SEALED_CHAT_BYTES.
 */
export async function seal(text, key, at) {
  if (!Number.isInteger(at.group) || at.group < 0 || at.group > 0xffffffff) {
    throw new RangeError('group is a u32');
  }
  if (!Number.isSafeInteger(at.epoch) || at.epoch < 0) throw new RangeError('epoch is a non-negative integer');
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      {
        name: 'AES-GCM',
        iv: nonce,
        additionalData: /** @type {BufferSource} */ (aadFor(at.group, at.epoch, at.sender)),
        tagLength: TAG_BYTES * 8,
      },
      key,
      /** @type {BufferSource} */ (utf8.encode(text)),
    ),
  );
  const body = new Uint8Array(NONCE_BYTES + ct.length);
  body.set(nonce, 0);
  body.set(ct, NONCE_BYTES);
  const envelope = `${SEALED_PREFIX}${at.group}:${at.epoch}:${toB64url(body)}`;
  if (envelope.length > MAX_SEALED_CHAT_BYTES) {
    throw new SealError('this message is too long to send encrypted');
  }
  return envelope;
}

/**
 * Reads an envelope's labels without opening it.
 * @param {string} envelope
 * @returns {{group: number, epoch: number, body: Uint8Array} | null} null if
 *   it is not a well-formed envelope.
 */
export function parseEnvelope(envelope) {
  if (envelope.length > MAX_SEALED_CHAT_BYTES) return null;
  const m = /^e2ee1:(0|[1-9]\d{0,9}):(0|[1-9]\d{0,15}):([A-Za-z0-9_-]{38,})$/.exec(envelope);
  if (!m) return null;
  const group = Number(m[1]);
  const epoch = Number(m[2]);
  const body = fromB64url(m[3]);
  if (group > 0xffffffff || !Number.isSafeInteger(epoch) || !body || body.length < NONCE_BYTES + TAG_BYTES) {
    return null;
  }
  return { group, epoch, body };
}

/**
 * True if `text` has the envelope's shape (what the server checks).
 * @param {string} text
 */
export function isSealed(text) {
  return parseEnvelope(text) !== null;
}

/**
 * Opens an envelope.
 * @param {string} envelope
 * @param {(group: number, epoch: number) => CryptoKey | null | undefined
 *   | Promise<CryptoKey | null | undefined>} keyLookup The chat key we hold
 *   for that group and epoch, if any.
 * @param {string} sender The participant id the server says sent it.
 * @returns {Promise<Opened | OpenFailure>}
 */
export async function open(envelope, keyLookup, sender) {
  const p = parseEnvelope(envelope);
  if (!p) return { ok: false, code: 'malformed', message: OPEN_FAILURES.malformed };
  const key = await keyLookup(p.group, p.epoch);
  if (!key) return { ok: false, code: 'no_key', message: OPEN_FAILURES.no_key };
  try {
    const pt = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: /** @type {BufferSource} */ (p.body.subarray(0, NONCE_BYTES)),
        additionalData: /** @type {BufferSource} */ (aadFor(p.group, p.epoch, sender)),
        tagLength: TAG_BYTES * 8,
      },
      key,
      /** @type {BufferSource} */ (p.body.subarray(NONCE_BYTES)),
    );
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(pt), group: p.group, epoch: p.epoch };
  } catch {
    return { ok: false, code: 'failed', message: OPEN_FAILURES.failed };
  }
}
