// Room covers: the checks a file passes before it is uploaded (the same
// rules and sentences as the server's, protocol/src/cover.rs, so a person
// sees one message whichever side refused), and the cover routes of the
// REST API. DOM-free; the page's part is ui/cover.js.

import { apiRequest } from './rest.js';
import { ApiError, humanMessage } from './errors.js';

/** @typedef {import('./types.js').RoomView} RoomView */
/** @typedef {import('./types.js').CoverView} CoverView */
/** @typedef {import('./rest.js').ApiOptions} ApiOptions */

/** Largest cover image, in bytes (`limits::covers::MAX_BYTES`). */
export const MAX_COVER_BYTES = 2 * 1024 * 1024;
/** Longest cover title, in code points. */
export const MAX_COVER_TITLE_CHARS = 100;
/** Longest cover description, in code points. */
export const MAX_COVER_DESCRIPTION_CHARS = 1000;
/** The image types a cover may be. */
export const COVER_TYPES = Object.freeze(['image/png', 'image/jpeg', 'image/webp']);

/**
 * `bytes` in MB with one decimal, rounded up, as the server words it.
 * @param {number} bytes
 * @returns {string}
 */
export function megabytes(bytes) {
  const tenths = Math.ceil((bytes * 10) / (1024 * 1024));
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
}

/**
 * Why `file` cannot be a cover, in the server's words, or null when it may
 * be uploaded (the server still decodes it).
 * @param {{type: string, size: number}} file
 * @returns {string | null}
 */
export function coverFileProblem(file) {
  const type = file.type === 'image/jpg' ? 'image/jpeg' : file.type;
  if (!COVER_TYPES.includes(type)) return 'The cover must be a PNG, JPEG or WebP image';
  if (file.size > MAX_COVER_BYTES) {
    return `The cover image is ${megabytes(file.size)} MB; the limit is ${MAX_COVER_BYTES / (1024 * 1024)} MB`;
  }
  if (file.size === 0) return 'No cover image was sent';
  return null;
}

/**
 * Why the cover's text cannot be saved, or null.
 * @param {string} title
 * @param {string} description
 * @returns {string | null}
 */
export function coverTextProblem(title, description) {
  if ([...title.trim()].length > MAX_COVER_TITLE_CHARS) {
    return `The cover title is longer than ${MAX_COVER_TITLE_CHARS} characters`;
  }
  if ([...description.trim()].length > MAX_COVER_DESCRIPTION_CHARS) {
    return `The cover description is longer than ${MAX_COVER_DESCRIPTION_CHARS} characters`;
  }
  return null;
}

/**
 * The path of a room's cover text.
 * @param {string} slug
 */
export function coverPath(slug) {
  return `/api/rooms/${encodeURIComponent(slug)}/cover`;
}

/**
 * The path of a room's cover image (uploads and removal; the view's
 * `image_url` is the versioned one to show).
 * @param {string} slug
 */
export function coverImagePath(slug) {
  return `${coverPath(slug)}/image`;
}

/**
 * A CSS `background-image` value showing `url`, quoted so that no URL can
 * break out of it.
 * @param {string} url
 * @returns {string}
 */
export function cssUrl(url) {
  return `url("${url.replace(/["\\\n\r]/g, (c) => encodeURIComponent(c))}")`;
}

/**
 * Whether a cover has anything to show.
 * @param {CoverView | undefined | null} cover
 * @returns {cover is CoverView}
 */
export function hasCover(cover) {
  return !!cover && !!(cover.title || cover.description || cover.image_url);
}

/**
 * Sets a room's cover text: `PUT /api/rooms/{slug}/cover`.
 * @param {string} slug
 * @param {{title: string, description: string}} text
 * @param {ApiOptions} [opts]
 * @returns {Promise<RoomView>}
 */
export function setCoverText(slug, text, opts = {}) {
  return apiRequest('PUT', coverPath(slug), text, opts);
}

/**
 * Removes a room's cover image: `DELETE /api/rooms/{slug}/cover/image`.
 * @param {string} slug
 * @param {ApiOptions} [opts]
 * @returns {Promise<RoomView>}
 */
export function removeCoverImage(slug, opts = {}) {
  return apiRequest('DELETE', coverImagePath(slug), undefined, opts);
}

/**
 * Uploads a cover image (`PUT /api/rooms/{slug}/cover/image`, the raw
 * bytes with their type), after the same checks as the server's; a
 * refusal throws an `ApiError` whose message is the sentence to show.
 * @param {string} slug
 * @param {Blob} file
 * @param {ApiOptions} [opts]
 * @returns {Promise<RoomView>}
 */
export async function uploadCoverImage(slug, file, opts = {}) {
  const problem = coverFileProblem(file);
  if (problem) throw new ApiError('bad_request', problem);
  const doFetch = opts.fetch ?? globalThis.fetch;
  let resp;
  try {
    resp = await doFetch((opts.base ?? '') + coverImagePath(slug), {
      method: 'PUT',
      headers: { Accept: 'application/json', 'Content-Type': file.type, ...(opts.headers ?? {}) },
      body: file,
    });
  } catch {
    throw new ApiError('network', humanMessage('network'));
  }
  /** @type {any} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const code = body && typeof body.code === 'string' ? body.code : `http_${resp.status}`;
    const message = body && typeof body.message === 'string' ? body.message : humanMessage(code);
    throw new ApiError(code, message, resp.status);
  }
  return body;
}

/**
 * One of the signed-in user's rooms (`GET /api/me/rooms`).
 * @typedef {object} MyRoom
 * @property {string} slug
 * @property {string} name
 * @property {string} link
 * @property {number} created_at_ms
 * @property {CoverView} [cover]
 */

/**
 * The rooms the signed-in user owns, newest first.
 * @param {ApiOptions} [opts]
 * @returns {Promise<MyRoom[]>}
 */
export async function myRooms(opts = {}) {
  const body = await apiRequest('GET', '/api/me/rooms', undefined, opts);
  return Array.isArray(body?.rooms) ? body.rooms : [];
}
