// SFrame (RFC 9605): the header codec and the AEAD step for cipher suite
// AES_128_GCM_SHA256_128 (0x0004), on WebCrypto, so it runs the same in a
// page, an RTCRtpScriptTransform worker and Node. Key and salt come from
// sframe-kdf.js; which key a KID names is sframe-keys.js's business.
//
// An SFrame ciphertext is `header ‖ AEAD(key, nonce, aad, plaintext)`,
// where the header carries KID and CTR, nonce = salt XOR CTR and
// aad = header ‖ metadata (RFC 9605 §4.4.3). Veche's metadata is the
// clear prefix of the media frame (frame-pipe.js); docs/e2ee.md, "Frame
// format", has the whole layout.

/** The one cipher suite Veche uses: AES_128_GCM_SHA256_128. */
export const SUITE_AES_128_GCM_SHA256_128 = 0x0004;
/** AEAD.Nk of the suite, in bytes. */
export const KEY_BYTES = 16;
/** AEAD.Nn of the suite, in bytes. */
export const NONCE_BYTES = 12;
/** AEAD.Nt of the suite, in bytes: the full 128-bit GCM tag. */
export const TAG_BYTES = 16;
/** Largest value a header field can carry (8 bytes). */
export const MAX_FIELD = (1n << 64n) - 1n;

/** Why an SFrame ciphertext was refused. */
export class SFrameError extends Error {
  /**
   * @param {'malformed' | 'auth'} code `malformed`: the bytes are not an
   *   SFrame ciphertext; `auth`: the AEAD check failed (wrong key, or the
   *   header, metadata or ciphertext was changed).
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'SFrameError';
    /** @type {'malformed' | 'auth'} */
    this.code = code;
  }
}

/**
 * The minimal big-endian bytes of `v` (at least one byte).
 * @param {bigint} v
 * @returns {number[]}
 */
function minimalBytes(v) {
  /** @type {number[]} */
  const out = [];
  do {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  return out;
}

/**
 * Encodes the SFrame header for `kid` and `ctr` (RFC 9605 §4.3): values
 * 0–7 ride in the config byte, larger ones follow it in the fewest bytes.
 * @param {bigint} kid
 * @param {bigint} ctr
 * @returns {Uint8Array}
 */
export function encodeHeader(kid, ctr) {
  if (kid < 0n || kid > MAX_FIELD || ctr < 0n || ctr > MAX_FIELD) {
    throw new RangeError('SFrame KID and CTR are unsigned 64-bit values');
  }
  let config = 0;
  /** @type {number[]} */
  const tail = [];
  if (kid < 8n) {
    config |= Number(kid) << 4;
  } else {
    const b = minimalBytes(kid);
    config |= 0x80 | ((b.length - 1) << 4);
    tail.push(...b);
  }
  if (ctr < 8n) {
    config |= Number(ctr);
  } else {
    const b = minimalBytes(ctr);
    config |= 0x08 | (b.length - 1);
    tail.push(...b);
  }
  return Uint8Array.from([config, ...tail]);
}

/**
 * Reads the SFrame header at the start of `bytes`.
 * @param {Uint8Array} bytes
 * @returns {{kid: bigint, ctr: bigint, length: number} | null} null when
 *   `bytes` is too short for the header it announces.
 */
export function decodeHeader(bytes) {
  if (bytes.length < 1) return null;
  const config = bytes[0];
  let at = 1;
  /**
   * @param {boolean} extended
   * @param {number} field
   * @returns {bigint | null}
   */
  const read = (extended, field) => {
    if (!extended) return BigInt(field);
    const len = field + 1;
    if (at + len > bytes.length) return null;
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(bytes[at + i]);
    at += len;
    return v;
  };
  const kid = read((config & 0x80) !== 0, (config >> 4) & 0x07);
  if (kid === null) return null;
  const ctr = read((config & 0x08) !== 0, config & 0x07);
  if (ctr === null) return null;
  return { kid, ctr, length: at };
}

/**
 * The AEAD nonce: `salt` XOR `ctr` as a big-endian integer of Nn bytes.
 * @param {Uint8Array} salt
 * @param {bigint} ctr
 * @returns {Uint8Array}
 */
export function nonceFor(salt, ctr) {
  const nonce = Uint8Array.from(salt);
  let v = ctr;
  for (let i = NONCE_BYTES - 1; i >= 0 && v > 0n; i--) {
    nonce[i] ^= Number(v & 0xffn);
    v >>= 8n;
  }
  return nonce;
}

/**
 * `a ‖ b` as one new array.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {Uint8Array}
 */
export function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * The key and salt of one KID: the output of the RFC's derive_key_salt.
 * @typedef {object} SFrameKey
 * @property {CryptoKey} key AES-GCM, 128 bits, encrypt and decrypt.
 * @property {Uint8Array} salt Nn bytes.
 */

/**
 * Encrypts one frame: returns `header ‖ ciphertext ‖ tag`. The caller
 * guarantees (KID, CTR) is never used twice with the same key.
 * @param {SFrameKey} k
 * @param {bigint} kid
 * @param {bigint} ctr
 * @param {Uint8Array} metadata Authenticated, not encrypted, not included.
 * @param {Uint8Array} plaintext
 * @returns {Promise<Uint8Array>}
 */
export async function sealFrame(k, kid, ctr, metadata, plaintext) {
  const header = encodeHeader(kid, ctr);
  const ct = await crypto.subtle.encrypt(
    {
      name: 'AES-GCM',
      iv: /** @type {BufferSource} */ (nonceFor(k.salt, ctr)),
      additionalData: /** @type {BufferSource} */ (concat(header, metadata)),
      tagLength: TAG_BYTES * 8,
    },
    k.key,
    /** @type {BufferSource} */ (plaintext),
  );
  return concat(header, new Uint8Array(ct));
}

/**
 * An SFrame ciphertext split at its header.
 * @typedef {object} ParsedFrame
 * @property {bigint} kid
 * @property {bigint} ctr
 * @property {Uint8Array} header The header bytes as received (they are AAD).
 * @property {Uint8Array} body Ciphertext ‖ tag.
 */

/**
 * Splits an SFrame ciphertext into header fields and body, so the caller
 * can look the KID up before decrypting.
 * @param {Uint8Array} bytes
 * @returns {ParsedFrame}
 * @throws {SFrameError} `malformed` if there is no room for header and tag.
 */
export function parseFrame(bytes) {
  const h = decodeHeader(bytes);
  if (!h || bytes.length < h.length + TAG_BYTES) {
    throw new SFrameError('malformed', 'too short for an SFrame ciphertext');
  }
  return {
    kid: h.kid,
    ctr: h.ctr,
    header: bytes.subarray(0, h.length),
    body: bytes.subarray(h.length),
  };
}

/**
 * Decrypts a parsed frame with the key its KID named.
 * @param {SFrameKey} k
 * @param {ParsedFrame} f
 * @param {Uint8Array} metadata Must equal what the sender authenticated.
 * @returns {Promise<Uint8Array>} The plaintext.
 * @throws {SFrameError} `auth` if the AEAD check fails.
 */
export async function openFrame(k, f, metadata) {
  try {
    const pt = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: /** @type {BufferSource} */ (nonceFor(k.salt, f.ctr)),
        additionalData: /** @type {BufferSource} */ (concat(f.header, metadata)),
        tagLength: TAG_BYTES * 8,
      },
      k.key,
      /** @type {BufferSource} */ (f.body),
    );
    return new Uint8Array(pt);
  } catch {
    throw new SFrameError('auth', 'the frame does not authenticate under this key');
  }
}
