// The verification code people compare out loud (or side by side) to know
// nobody sits in the middle of their key agreement: a hash of the MLS
// epoch authenticator and of who is in the group. Every honest member of
// the same epoch computes the same code; a different member list, a
// different identity key, or a different group state gives another.

import { fromB64url } from './b64url.js';

/** 64 emoji, one per 6 bits: distinct shapes and colours, with names for
 * screen readers. */
export const EMOJI = Object.freeze([
  ['🐶', 'dog'], ['🐱', 'cat'], ['🦁', 'lion'], ['🐴', 'horse'], ['🦄', 'unicorn'], ['🐷', 'pig'],
  ['🐘', 'elephant'], ['🐰', 'rabbit'], ['🐼', 'panda'], ['🐓', 'rooster'], ['🐧', 'penguin'], ['🐢', 'turtle'],
  ['🐟', 'fish'], ['🐙', 'octopus'], ['🦋', 'butterfly'], ['🌷', 'tulip'], ['🌳', 'tree'], ['🌵', 'cactus'],
  ['🍄', 'mushroom'], ['🌏', 'globe'], ['🌙', 'moon'], ['☁️', 'cloud'], ['🔥', 'fire'], ['🍌', 'banana'],
  ['🍎', 'apple'], ['🍓', 'strawberry'], ['🌽', 'corn'], ['🍕', 'pizza'], ['🎂', 'cake'], ['❤️', 'heart'],
  ['😀', 'smiley'], ['🤖', 'robot'], ['🎩', 'hat'], ['👓', 'glasses'], ['🔧', 'wrench'], ['🎅', 'santa'],
  ['👍', 'thumbs up'], ['☂️', 'umbrella'], ['⌛', 'hourglass'], ['⏰', 'clock'], ['🎁', 'gift'], ['💡', 'light bulb'],
  ['📕', 'book'], ['✏️', 'pencil'], ['📎', 'paperclip'], ['✂️', 'scissors'], ['🔒', 'lock'], ['🔑', 'key'],
  ['🔨', 'hammer'], ['☎️', 'telephone'], ['🏁', 'flag'], ['🚂', 'train'], ['🚲', 'bicycle'], ['✈️', 'aeroplane'],
  ['🚀', 'rocket'], ['🏆', 'trophy'], ['⚽', 'football'], ['🎸', 'guitar'], ['🎺', 'trumpet'], ['🔔', 'bell'],
  ['⚓', 'anchor'], ['🎧', 'headphones'], ['📁', 'folder'], ['📌', 'pin'],
]);

/** How many emoji the emoji rendering shows (6 bits each: 48 bits). */
export const EMOJI_COUNT = 8;

/**
 * A group member as the code sees it.
 * @typedef {object} Member
 * @property {string} pid The participant id.
 * @property {Uint8Array | ArrayBuffer | string} idk The raw P-256 public
 *   identity key, as bytes or as the credential's base64url.
 */

/**
 * The code in both renderings.
 * @typedef {object} VerificationCode
 * @property {string} digits "1234 5678 9012 3456 7890"
 * @property {string[]} groups The five groups of four digits.
 * @property {string[]} emoji EMOJI_COUNT emoji.
 * @property {string[]} emojiNames Their names, for aria-labels.
 */

const utf8 = new TextEncoder();

/**
 * `u32(len) ‖ bytes`, so no two lists share an encoding.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
function framed(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/**
 * @param {Uint8Array | ArrayBuffer | string} idk
 * @returns {Uint8Array}
 */
function idkBytes(idk) {
  if (typeof idk !== 'string') return new Uint8Array(idk);
  const b = fromB64url(idk);
  if (!b) throw new TypeError('an identity key given as text must be base64url');
  return b;
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * The canonical encoding of a member list: sorted by participant id, then
 * identity key (bytewise), each as framed(pid UTF-8) ‖ framed(idk), behind
 * a framed count. Order of the input does not matter.
 * @param {Member[]} members
 * @returns {Uint8Array}
 */
export function canonicalMembers(members) {
  const rows = members
    .map((m) => ({ pid: utf8.encode(m.pid), idk: idkBytes(m.idk) }))
    .sort((a, b) => compareBytes(a.pid, b.pid) || compareBytes(a.idk, b.idk))
    .flatMap((r) => [framed(r.pid), framed(r.idk)]);
  const count = new Uint8Array(4);
  new DataView(count.buffer).setUint32(0, members.length);
  return concatAll([count, ...rows]);
}

/**
 * @param {Uint8Array[]} parts
 * @returns {Uint8Array}
 */
function concatAll(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The verification code: SHA-256(framed(epochAuthenticator) ‖
 * canonicalMembers(members)). Digits: five big-endian u32s of the hash,
 * each mod 10000. Emoji: the next 48 bits, 6 at a time.
 * @param {Uint8Array | ArrayBuffer} epochAuthenticator MLS epoch_authenticator.
 * @param {Member[]} members Everyone in the group, ourselves included.
 * @returns {Promise<VerificationCode>}
 */
export async function verificationCode(epochAuthenticator, members) {
  const input = concatAll([framed(new Uint8Array(epochAuthenticator)), canonicalMembers(members)]);
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (input)));
  const view = new DataView(hash.buffer);
  const groups = [0, 1, 2, 3, 4].map((i) => String(view.getUint32(i * 4) % 10000).padStart(4, '0'));
  let bits = 0n;
  for (const b of hash.subarray(20, 26)) bits = (bits << 8n) | BigInt(b);
  /** @type {string[]} */
  const emoji = [];
  /** @type {string[]} */
  const emojiNames = [];
  for (let i = EMOJI_COUNT - 1; i >= 0; i--) {
    const [e, name] = EMOJI[Number((bits >> BigInt(i * 6)) & 63n)];
    emoji.push(e);
    emojiNames.push(name);
  }
  return { digits: groups.join(' '), groups, emoji, emojiNames };
}

/**
 * A stable id of a membership set (no epoch in it), for remembering "Mark
 * as verified" per (group, members): hex SHA-256 of canonicalMembers.
 * @param {Member[]} members
 * @returns {Promise<string>}
 */
export async function membershipId(members) {
  const hash = await crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (canonicalMembers(members)));
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
