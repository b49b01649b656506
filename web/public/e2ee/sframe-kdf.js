// Key derivation for SFrame and the other per-epoch keys, all HKDF-SHA256
// (RFC 5869) through WebCrypto. Each WebCrypto HKDF call is
// Expand(Extract(salt, ikm), info, L); the RFC 9605 labels and Veche's own
// labels are below, and docs/e2ee.md lists them.

import { KEY_BYTES, NONCE_BYTES, SUITE_AES_128_GCM_SHA256_128 } from './sframe.js';

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/**
 * HKDF-SHA256 with an empty salt unless one is given: `bits` output bits.
 * @param {Uint8Array | CryptoKey} ikm Raw input keying material, or an
 *   HKDF CryptoKey imported from it (so a secret need not stay in memory).
 * @param {Uint8Array | string} info A string is UTF-8 encoded.
 * @param {number} bits
 * @param {Uint8Array} [salt]
 * @returns {Promise<Uint8Array>}
 */
export async function hkdf(ikm, info, bits, salt = EMPTY) {
  const key = ikm instanceof Uint8Array ? await importHkdf(ikm) : ikm;
  const out = await crypto.subtle.deriveBits(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: /** @type {BufferSource} */ (salt),
      info: /** @type {BufferSource} */ (typeof info === 'string' ? utf8.encode(info) : info),
    },
    key,
    bits,
  );
  return new Uint8Array(out);
}

/**
 * Imports a secret as a non-extractable HKDF key.
 * @param {Uint8Array} secret
 * @returns {Promise<CryptoKey>}
 */
export function importHkdf(secret) {
  return crypto.subtle.importKey('raw', /** @type {BufferSource} */ (secret), 'HKDF', false, [
    'deriveBits',
  ]);
}

/**
 * `label ‖ uint64(kid) ‖ uint16(suite)`, the RFC 9605 §4.4.2 label.
 * @param {string} label
 * @param {bigint} kid
 * @param {number} suite
 * @returns {Uint8Array}
 */
function sframeLabel(label, kid, suite) {
  const l = utf8.encode(label);
  const out = new Uint8Array(l.length + 10);
  out.set(l, 0);
  const view = new DataView(out.buffer);
  view.setBigUint64(l.length, kid);
  view.setUint16(l.length + 8, suite);
  return out;
}

/**
 * RFC 9605 derive_key_salt, as raw bytes: sframe_secret =
 * HKDF-Extract("", base_key); key and salt are HKDF-Expand of it with
 * "SFrame 1.0 Secret key " / "SFrame 1.0 Secret salt " ‖ KID ‖ suite.
 * Only tests need the raw key; use {@link deriveKeySalt}.
 * @param {Uint8Array} baseKey
 * @param {bigint} kid
 * @param {number} [suite]
 * @returns {Promise<{key: Uint8Array, salt: Uint8Array}>}
 */
export async function sframeKeyMaterial(baseKey, kid, suite = SUITE_AES_128_GCM_SHA256_128) {
  const ikm = await importHkdf(baseKey);
  const [key, salt] = await Promise.all([
    hkdf(ikm, sframeLabel('SFrame 1.0 Secret key ', kid, suite), KEY_BYTES * 8),
    hkdf(ikm, sframeLabel('SFrame 1.0 Secret salt ', kid, suite), NONCE_BYTES * 8),
  ]);
  return { key, salt };
}

/**
 * RFC 9605 derive_key_salt for suite 0x0004, with the key imported as a
 * non-extractable AES-GCM key.
 * @param {Uint8Array} baseKey
 * @param {bigint} kid
 * @returns {Promise<import('./sframe.js').SFrameKey>}
 */
export async function deriveKeySalt(baseKey, kid) {
  const m = await sframeKeyMaterial(baseKey, kid);
  const key = await crypto.subtle.importKey(
    'raw',
    /** @type {BufferSource} */ (m.key),
    'AES-GCM',
    false,
    ['encrypt', 'decrypt'],
  );
  m.key.fill(0);
  return { key, salt: m.salt };
}

/**
 * The SFrame base key of the sender at MLS leaf `leaf` in an epoch:
 * HKDF(exporter, "veche sframe sender " ‖ decimal leaf), Nk bytes. Each
 * sender has its own key, so two senders never share a (key, nonce).
 * @param {Uint8Array | CryptoKey} exporter The epoch's 32-byte MLS
 *   exporter secret ("veche sframe"), raw or as an HKDF key.
 * @param {number} leaf
 * @returns {Promise<Uint8Array>}
 */
export function senderBaseKey(exporter, leaf) {
  return hkdf(exporter, `veche sframe sender ${leaf}`, KEY_BYTES * 8);
}
