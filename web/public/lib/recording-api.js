// The recordings routes of the REST API (docs/protocol.md, "Recordings"),
// the shapes they answer with, and the links the pages build from them:
// a share token from the page's URL passed through, the owner key of the
// room sent as covers and passes send it. DOM-free; tested under node
// (web/test/recording-api.test.mjs).

import { apiRequest } from './rest.js';
import { ApiError, humanMessage } from './errors.js';
import { ownerKeyName, withOwnerKey } from './passes.js';

/** @typedef {import('./rest.js').ApiOptions} ApiOptions */

/**
 * One recorded file (`FileView` in protocol/src/recording.rs).
 * @typedef {object} FileView
 * @property {string} file_id
 * @property {string} participant_id
 * @property {string} display_name
 * @property {'camera' | 'screen'} source
 * @property {number} offset_ms Where it starts on the recording's timeline.
 * @property {number} duration_ms
 * @property {number} bytes
 * @property {number} segments
 * @property {'writing' | 'complete' | 'interrupted'} state
 * @property {string} url Relative; carries `?share=` minted for the viewer.
 */

/**
 * One recording (`RecordingView`).
 * @typedef {object} RecordingView
 * @property {string} id
 * @property {number} room_id
 * @property {string} room_slug
 * @property {string} room_name
 * @property {number} started_at_ms
 * @property {number | null} stopped_at_ms
 * @property {string} started_by_name
 * @property {'recording' | 'finishing' | 'ready'} state
 * @property {number} duration_ms The common timeline's length.
 * @property {number} bytes
 * @property {FileView[]} files By offset.
 * @property {boolean} can_manage The viewer may share and delete it.
 * @property {boolean} export_available
 * @property {string} [export_url] If the server names the export link.
 */

/**
 * A page of the list (`RecordingPage`).
 * @typedef {object} RecordingPage
 * @property {RecordingView[]} recordings Newest first.
 * @property {number | null} next_before Pass as `before` for the next page.
 */

/**
 * A share link (`ShareLink`).
 * @typedef {object} ShareLink
 * @property {string} url The player page with `?share=`, relative.
 * @property {number} expires_at_ms
 */

/** The recordings routes' prefix (`API_RECORDINGS`). */
export const API_RECORDINGS = '/api/recordings';
/** The query parameter carrying a share token (`SHARE_QUERY`). */
export const SHARE_QUERY = 'share';
/** Longest a share link may work, in hours (`limits::recording::SHARE_MAX_HOURS`). */
export const SHARE_MAX_HOURS = 720;

/** Recording ids are "r" and 16 lowercase hex digits. */
const RECORDING_ID = /^r[0-9a-f]{16}$/;

/**
 * The recording id of a player page path, `/recordings/{id}`, or null.
 * @param {string} pathname
 * @returns {string | null}
 */
export function recordingIdFromPath(pathname) {
  const m = /^\/recordings\/([^/]+)\/?$/.exec(pathname);
  return m && RECORDING_ID.test(m[1]) ? m[1] : null;
}

/**
 * What a recordings page reads from its URL: the share token (`?share=`)
 * and the room it was opened for (`?room=`), each null when absent.
 * @param {string} search `location.search`.
 * @returns {{share: string | null, room: string | null}}
 */
export function pageParams(search) {
  const q = new URLSearchParams(search);
  return { share: q.get(SHARE_QUERY) || null, room: q.get('room') || null };
}

/**
 * `path` with `name=value` added to its query.
 * @param {string} path
 * @param {string} name
 * @param {string} value
 * @returns {string}
 */
export function withQuery(path, name, value) {
  const sep = path.includes('?') ? '&' : '?';
  return `${path}${sep}${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
}

/**
 * Request options that prove ownership of room `slug` when this browser
 * keeps its owner key (an anonymous creator's, in localStorage), for the
 * pages opened from that room.
 * @param {string | null} slug
 * @param {Pick<Storage, 'getItem'> | null} storage
 * @param {ApiOptions} [opts]
 * @returns {ApiOptions}
 */
export function ownerOptionsFor(slug, storage, opts = {}) {
  if (!slug || !storage) return opts;
  let key = null;
  try {
    key = storage.getItem(ownerKeyName(slug));
  } catch {
    key = null;
  }
  return withOwnerKey(key, opts);
}

/**
 * The list's path: every recording the caller may see, or one room's
 * (`room`), newest first, before `before` (ms) when paging.
 * @param {{room?: string | null, before?: number | null, limit?: number | null}} q
 * @returns {string}
 */
export function listPath(q) {
  let path = API_RECORDINGS;
  if (q.room) path = withQuery(path, 'room', q.room);
  if (typeof q.before === 'number') path = withQuery(path, 'before', String(q.before));
  if (typeof q.limit === 'number') path = withQuery(path, 'limit', String(q.limit));
  return path;
}

/**
 * One page of recordings: `GET /api/recordings?room=&before=`.
 * @param {{room?: string | null, before?: number | null, limit?: number | null}} q
 * @param {ApiOptions} [opts]
 * @returns {Promise<RecordingPage>}
 */
export async function listRecordings(q, opts = {}) {
  const body = await apiRequest('GET', listPath(q), undefined, opts);
  return {
    recordings: Array.isArray(body?.recordings) ? body.recordings : [],
    next_before: typeof body?.next_before === 'number' ? body.next_before : null,
  };
}

/**
 * The path of one recording, with the page's share token.
 * @param {string} id
 * @param {string | null} share
 * @param {string} [tail] `/share`, `/export`...
 * @returns {string}
 */
export function recordingPath(id, share, tail = '') {
  const path = `${API_RECORDINGS}/${encodeURIComponent(id)}${tail}`;
  return share ? withQuery(path, SHARE_QUERY, share) : path;
}

/**
 * One recording: `GET /api/recordings/{id}` (with `?share=` when the page
 * was opened from a share link).
 * @param {string} id
 * @param {string | null} share
 * @param {ApiOptions} [opts]
 * @returns {Promise<RecordingView>}
 */
export function getRecording(id, share, opts = {}) {
  return apiRequest('GET', recordingPath(id, share), undefined, opts);
}

/**
 * A link anyone may watch the recording with for `hours`:
 * `POST /api/recordings/{id}/share`.
 * @param {string} id
 * @param {number} hours 1 to `SHARE_MAX_HOURS`.
 * @param {ApiOptions} [opts]
 * @returns {Promise<ShareLink>}
 */
export function shareRecording(id, hours, opts = {}) {
  const valid_hours = Math.max(1, Math.min(SHARE_MAX_HOURS, Math.round(hours)));
  return apiRequest('POST', recordingPath(id, null, '/share'), { valid_hours }, opts);
}

/**
 * Deletes a recording and its files: `DELETE /api/recordings/{id}` (204,
 * no body). Throws an `ApiError` with the server's sentence when refused.
 * @param {string} id
 * @param {ApiOptions} [opts]
 * @returns {Promise<void>}
 */
export async function deleteRecording(id, opts = {}) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  let resp;
  try {
    resp = await doFetch((opts.base ?? '') + recordingPath(id, null), {
      method: 'DELETE',
      headers: { Accept: 'application/json', ...(opts.headers ?? {}) },
    });
  } catch {
    throw new ApiError('network', humanMessage('network'));
  }
  if (resp.ok) return;
  /** @type {any} */
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const code = body && typeof body.code === 'string' ? body.code : `http_${resp.status}`;
  throw new ApiError(code, humanMessage(code, body?.message), resp.status);
}

/**
 * The share token in a URL's query, or null.
 * @param {string} url Relative or absolute.
 * @returns {string | null}
 */
export function shareOf(url) {
  try {
    return new URL(url, 'http://x').searchParams.get(SHARE_QUERY) || null;
  } catch {
    return null;
  }
}

/**
 * The "Download everything as one file" link: the server's, or
 * `/api/recordings/{id}/export` with a share token (the page's, or the one
 * the server minted into the file links for this viewer, since a link
 * cannot send the owner key header).
 * @param {RecordingView} view
 * @param {string | null} pageShare
 * @returns {string}
 */
export function exportUrl(view, pageShare) {
  if (typeof view.export_url === 'string' && view.export_url) return view.export_url;
  const share = pageShare ?? view.files.map((f) => shareOf(f.url)).find((s) => s) ?? null;
  return recordingPath(view.id, share, '/export');
}

/**
 * A file's download link: its URL with `download=1` (the server then names
 * the file, `<room>-<name>-camera.webm`).
 * @param {string} url
 * @returns {string}
 */
export function downloadUrl(url) {
  return withQuery(url, 'download', '1');
}

/**
 * Why a page of recordings cannot be shown, for a refusal: what to say,
 * and whether signing in may help (401).
 * @param {unknown} err
 * @returns {{text: string, signIn: boolean}}
 */
export function refusalText(err) {
  const e = /** @type {Partial<ApiError>} */ (err ?? {});
  if (e.status === 401 || e.code === 'unauthorized') {
    return { text: 'Sign in to see recordings. Only a room\'s owner, the person who started a recording and administrators can see them, or anyone with a share link.', signIn: true };
  }
  if (e.status === 403 || e.code === 'forbidden') {
    return { text: 'You may not see this. Only the room\'s owner, the person who started the recording and administrators can, or anyone with a share link.', signIn: false };
  }
  if (e.status === 404 || e.code === 'not_found') {
    return { text: 'This recording does not exist. It may have been deleted.', signIn: false };
  }
  return { text: e.message || 'The recordings could not be loaded. Please try again.', signIn: false };
}
