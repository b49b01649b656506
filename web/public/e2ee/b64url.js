// Unpadded base64url (RFC 4648 §5), the encoding every opaque E2EE field
// uses on the wire. Works the same in a page, a worker and Node.

/**
 * Encodes bytes as unpadded base64url.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toB64url(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Decodes unpadded base64url; null if `text` is not that (padding, `+`,
 * `/`, whitespace or an impossible length are refused, so one value has
 * one spelling).
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function fromB64url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  // atob ignores stray low bits in the last character: refuse them.
  return toB64url(out) === text ? out : null;
}
