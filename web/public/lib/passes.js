// Room owners, access rules and guest passes: the REST calls and the
// decisions the pages make about them, with no DOM, so they run under node.
//
// An anonymous creator's owner key is the one secret the browser keeps in
// localStorage (keyed by slug): it is what makes this browser the room's
// owner, like a host link, and it is sent only as the `X-Veche-Owner-Key`
// header to this origin. Pass links are kept the same way, because the
// server keeps only their hash and shows each link once.

import { apiRequest } from './rest.js';

/** @typedef {import('./types.js').RoomView} RoomView */
/** @typedef {import('./types.js').RoomAccess} RoomAccess */
/** @typedef {import('./rest.js').ApiOptions} RestOptions */

/** The request header that carries an owner key. */
export const OWNER_KEY_HEADER = 'X-Veche-Owner-Key';
/** Longest pass label, in characters (`limits::passes::MAX_LABEL_CHARS`). */
export const MAX_PASS_LABEL_CHARS = 100;
/** Longest pass window (`limits::passes::MAX_WINDOW_MS`): 366 days. */
export const MAX_PASS_WINDOW_MS = 366 * 24 * 3600 * 1000;
/** Where the sign-in page is; `return_to` brings the visitor back. */
export const SIGN_IN_PATH = '/signin';

/**
 * The access choices of the create form, in the order shown.
 * @type {{value: RoomAccess, label: string}[]}
 */
export const ACCESS_CHOICES = [
  { value: 'open', label: 'Open: anyone with the link' },
  { value: 'signed_in', label: 'Signed-in members only' },
  { value: 'signed_in_or_pass', label: 'Signed-in members or guests with a pass' },
];

/**
 * A pass as its room's owner sees it.
 * @typedef {object} PassView
 * @property {number} id
 * @property {string} label
 * @property {number} valid_from_ms
 * @property {number} valid_until_ms
 * @property {'scheduled' | 'active' | 'expired' | 'revoked'} status
 * @property {number} created_at_ms
 * @property {number} [revoked_at_ms]
 */

/**
 * `POST /api/rooms/{slug}/passes` response.
 * @typedef {object} CreatedPass
 * @property {PassView} pass
 * @property {string} link Shown once: keep it.
 */

/**
 * The localStorage key of a room's owner key.
 * @param {string} slug
 * @returns {string}
 */
export function ownerKeyName(slug) {
  return `veche.ownerKey.${slug}`;
}

/**
 * The localStorage key of the pass links this browser created for a room
 * (a JSON object from pass id to link).
 * @param {string} slug
 * @returns {string}
 */
export function passLinksName(slug) {
  return `veche.passLinks.${slug}`;
}

/**
 * Options with the owner key header added, when there is a key.
 * @template T
 * @param {string | null | undefined} ownerKey
 * @param {T & RestOptions} opts
 * @returns {T & RestOptions}
 */
export function withOwnerKey(ownerKey, opts) {
  if (!ownerKey) return opts;
  return { ...opts, headers: { ...(opts.headers ?? {}), [OWNER_KEY_HEADER]: ownerKey } };
}

/**
 * Creates a guest pass.
 * @param {string} slug
 * @param {{label: string, valid_from_ms: number, valid_until_ms: number}} pass
 * @param {RestOptions} [opts]
 * @returns {Promise<CreatedPass>}
 */
export function createPass(slug, pass, opts = {}) {
  return apiRequest('POST', `/api/rooms/${encodeURIComponent(slug)}/passes`, pass, opts);
}

/**
 * Lists a room's passes, oldest first.
 * @param {string} slug
 * @param {RestOptions} [opts]
 * @returns {Promise<{passes: PassView[]}>}
 */
export function listPasses(slug, opts = {}) {
  return apiRequest('GET', `/api/rooms/${encodeURIComponent(slug)}/passes`, undefined, opts);
}

/**
 * Revokes a pass at once.
 * @param {string} slug
 * @param {number} id
 * @param {RestOptions} [opts]
 * @returns {Promise<PassView>}
 */
export function revokePass(slug, id, opts = {}) {
  return apiRequest('DELETE', `/api/rooms/${encodeURIComponent(slug)}/passes/${id}`, undefined, opts);
}

/**
 * How a status reads in the list.
 * @param {PassView['status']} status
 * @returns {string}
 */
export function statusLabel(status) {
  switch (status) {
    case 'scheduled':
      return 'Scheduled';
    case 'active':
      return 'Active';
    case 'expired':
      return 'Expired';
    case 'revoked':
      return 'Revoked';
    default:
      return String(status);
  }
}

/**
 * The instant of a `datetime-local` input's value, in this browser's time
 * zone; NaN when empty or malformed.
 * @param {string} value e.g. `2026-04-16T13:41`
 * @returns {number}
 */
export function localInputToMs(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return NaN;
  return new Date(value).getTime();
}

/**
 * A `datetime-local` value for an instant, in this browser's time zone.
 * @param {number} ms
 * @returns {string}
 */
export function msToLocalInput(ms) {
  const d = new Date(ms);
  /** @param {number} n */
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/**
 * Checks the create-pass form; the server checks again.
 * @param {string} label
 * @param {number} from
 * @param {number} until
 * @param {number} now
 * @returns {string | null} What is wrong, in words, or null.
 */
export function passFormError(label, from, until, now) {
  const l = label.trim();
  if (!l) return 'Give the pass a label, e.g. who it is for.';
  if ([...l].length > MAX_PASS_LABEL_CHARS) return `The label can be at most ${MAX_PASS_LABEL_CHARS} characters.`;
  if (Number.isNaN(from) || Number.isNaN(until)) return 'Choose when the pass starts and ends.';
  if (until <= from) return 'The pass must end after it starts.';
  if (until - from > MAX_PASS_WINDOW_MS) return 'A pass can be valid for at most 366 days.';
  if (until <= now) return 'That pass would already have expired.';
  return null;
}

/**
 * What the room page must say instead of offering to join, if anything:
 * a members-only room to an anonymous visitor (who may sign in), or a pass
 * that does not admit now.
 * @param {RoomView} room
 * @param {boolean} signedIn
 * @param {string} returnTo The page to come back to after signing in.
 * @returns {{title: string, text: string, signIn: string | null} | null}
 */
export function refusalFor(room, signedIn, returnTo) {
  if (signedIn || room.you_own) return null;
  const signIn = `${SIGN_IN_PATH}?return_to=${encodeURIComponent(returnTo)}`;
  if (room.pass_refusal) {
    return { title: 'This guest pass does not work now', text: room.pass_refusal, signIn: null };
  }
  if (room.access === 'signed_in') {
    return { title: 'This meeting is for signed-in members of the organisation', text: 'Sign in to join.', signIn };
  }
  return null;
}

/**
 * Whether the person may need a pass and has none: a members-or-pass
 * room, anonymous, not the owner, no pass in the link. They may still sign
 * in; the join would say the same.
 * @param {RoomView} room
 * @param {boolean} signedIn
 * @param {string | null} pass
 * @returns {boolean}
 */
export function needsPass(room, signedIn, pass) {
  return room.access === 'signed_in_or_pass' && !signedIn && !room.you_own && !pass;
}

/**
 * A name as the participant list shows it: "(guest)" marks a guest, "(you)"
 * the viewer.
 * @param {string} name
 * @param {boolean} you
 * @param {boolean} guest
 * @returns {string}
 */
export function participantLabel(name, you, guest) {
  return `${name}${guest ? ' (guest)' : ''}${you ? ' (you)' : ''}`;
}

/**
 * Reads the remembered pass links of a room.
 * @param {string | null} stored The localStorage value.
 * @returns {Record<string, string>}
 */
export function parseLinks(stored) {
  if (!stored) return {};
  try {
    const v = JSON.parse(stored);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}
