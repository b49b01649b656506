// The participant's identity key in an end-to-end encrypted room, and the
// MLS credential that binds it to an MLS leaf.
//
// The identity key is a WebCrypto ECDSA P-256 key pair whose private half
// is not extractable: script on the page can sign with it but can never
// read it, so a later XSS cannot copy it elsewhere. The MLS leaf has its
// own Ed25519 signature key (ts-mls keeps that one in memory as bytes);
// the credential carries `sig`, the identity key's signature over the
// leaf's signature key, so that the verification code (built from the
// identity keys, see verify.js) vouches for the MLS leaves too.
//
// Credential bytes (the MLS basic credential's `identity`) are UTF-8 JSON
// `{pid, name, idk, sig}`: idk = base64url(raw P-256 public key, 65 bytes),
// sig = base64url(ECDSA-SHA256 over `credentialMessage(pid, name, mlsKey)`,
// IEEE P1363 r‖s).

import { fromB64url as decode, toB64url } from './b64url.js';

const ECDSA = /** @type {const} */ ({ name: 'ECDSA', namedCurve: 'P-256' });
const SIGN = /** @type {const} */ ({ name: 'ECDSA', hash: 'SHA-256' });
/** Domain separation: this signature means only "this leaf key is mine". */
const CONTEXT = 'veche e2ee credential v1';
/** Longest credential we parse; a real one is about 300 bytes. */
const MAX_CREDENTIAL_BYTES = 2048;

/**
 * @typedef {object} Identity
 * @property {CryptoKey} privateKey Non-extractable.
 * @property {CryptoKey} publicKey
 * @property {Uint8Array} publicRaw The uncompressed public point.
 */

/**
 * @typedef {object} CredentialInfo
 * @property {string} pid Participant id the holder claims.
 * @property {string} name Display name the holder claims.
 * @property {string} idk base64url of the raw identity public key.
 * @property {boolean} ok The signature over the MLS key verifies.
 */

export { toB64url };

/**
 * Unpadded base64url to bytes, for fields that must be base64url (the
 * caller treats a bad one as a broken message, not as absent).
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {Error} when the text is not base64url.
 */
export function fromB64url(text) {
  const bytes = decode(text);
  if (!bytes) throw new Error('not base64url');
  return bytes;
}

/**
 * A new identity key pair; the private key cannot be exported.
 * @returns {Promise<Identity>}
 */
export async function createIdentity() {
  const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey(ECDSA, false, ['sign', 'verify']));
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicRaw };
}

/**
 * What the identity key signs: the context, the claimed pid and name, and
 * the MLS signature public key, length-prefixed so no two inputs collide.
 * @param {string} pid
 * @param {string} name
 * @param {Uint8Array} mlsSignaturePublicKey
 * @returns {Uint8Array}
 */
function credentialMessage(pid, name, mlsSignaturePublicKey) {
  const enc = new TextEncoder();
  const parts = [enc.encode(CONTEXT), enc.encode(pid), enc.encode(name), mlsSignaturePublicKey];
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/**
 * The credential bytes for an MLS leaf whose signature key is
 * `mlsSignaturePublicKey`.
 * @param {Identity} identity
 * @param {string} pid
 * @param {string} name
 * @param {Uint8Array} mlsSignaturePublicKey
 * @returns {Promise<Uint8Array>}
 */
export async function bindCredential(identity, pid, name, mlsSignaturePublicKey) {
  const msg = credentialMessage(pid, name, mlsSignaturePublicKey);
  const sig = new Uint8Array(await crypto.subtle.sign(SIGN, identity.privateKey, /** @type {BufferSource} */ (msg)));
  const json = { pid, name, idk: toB64url(identity.publicRaw), sig: toB64url(sig) };
  return new TextEncoder().encode(JSON.stringify(json));
}

/**
 * Parses credential bytes and checks `sig` against the leaf's MLS
 * signature key. Never throws: anything malformed is `ok: false` (a
 * warning in the UI, not a crash).
 * @param {Uint8Array} bytes
 * @param {Uint8Array} [mlsSignaturePublicKey] The leaf's key; without it
 *   nothing can be checked and `ok` is false.
 * @returns {Promise<CredentialInfo>}
 */
export async function verifyCredential(bytes, mlsSignaturePublicKey) {
  const bad = { pid: '', name: '', idk: '', ok: false };
  if (bytes.length > MAX_CREDENTIAL_BYTES) return bad;
  /** @type {unknown} */
  let json;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return bad;
  }
  if (typeof json !== 'object' || json === null) return bad;
  const { pid, name, idk, sig } = /** @type {Record<string, unknown>} */ (json);
  if (typeof pid !== 'string' || typeof name !== 'string' || typeof idk !== 'string' || typeof sig !== 'string') {
    return bad;
  }
  const info = { pid, name, idk, ok: false };
  if (mlsSignaturePublicKey === undefined) return info;
  try {
    const key = await crypto.subtle.importKey('raw', /** @type {BufferSource} */ (fromB64url(idk)), ECDSA, false, ['verify']);
    const msg = credentialMessage(pid, name, mlsSignaturePublicKey);
    info.ok = await crypto.subtle.verify(SIGN, key, /** @type {BufferSource} */ (fromB64url(sig)), /** @type {BufferSource} */ (msg));
  } catch {
    info.ok = false;
  }
  return info;
}
