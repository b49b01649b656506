// The control plane's REST API, and the links and slugs around it.

import { ApiError, humanMessage } from './errors.js';

/** @typedef {import('./types.js').ErrorCode} ErrorCode */
/** @typedef {import('./types.js').NodeId} NodeId */
/** @typedef {import('./types.js').RoomView} RoomView */
/** @typedef {import('./types.js').JoinResponse} JoinResponse */
/** @typedef {import('./types.js').MessagesPage} MessagesPage */

/**
 * Options shared by the REST helpers.
 * @typedef {object} ApiOptions
 * @property {typeof fetch} [fetch] Defaults to the global `fetch`.
 * @property {string} [base] Prefix for the `/api/...` paths; default `''`
 *   (same origin).
 * @property {Record<string, string>} [headers] Extra request headers (the
 *   owner key of `lib/passes.js`).
 */

/**
 * Performs one JSON request and returns the parsed body, or throws an
 * `ApiError` with the server's code and a human message.
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 * @param {ApiOptions} opts
 * @returns {Promise<any>}
 */
async function request(method, path, body, opts) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  /** @type {RequestInit} */
  const init = { method, headers: { Accept: 'application/json', ...(opts.headers ?? {}) } };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json', ...(opts.headers ?? {}) };
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await doFetch((opts.base ?? '') + path, init);
  } catch {
    throw new ApiError('network', humanMessage('network'));
  }
  let parsed = null;
  try {
    parsed = await resp.json();
  } catch {
    parsed = null;
  }
  if (!resp.ok) {
    if (parsed && typeof parsed.code === 'string') {
      throw new ApiError(parsed.code, humanMessage(parsed.code, parsed.message), resp.status);
    }
    const code = `http_${resp.status}`;
    throw new ApiError(code, humanMessage(code), resp.status);
  }
  if (parsed === null) {
    throw new ApiError('internal', 'The server sent a response this page cannot read.', resp.status);
  }
  return parsed;
}

export { request as apiRequest };

/**
 * Creates a room: `POST /api/rooms`. An anonymous creator's response
 * carries `owner_key`, shown once: keep it (`lib/passes.js`).
 * @param {string} name 1 to 100 characters.
 * @param {ApiOptions & {access?: import('./types.js').RoomAccess, e2ee?: boolean}} [opts]
 *   `access` defaults to `open` and `e2ee` to false (each is left out of
 *   the body then, for older servers).
 * @returns {Promise<RoomView>}
 */
export function createRoom(name, opts = {}) {
  /** @type {{name: string, access?: string, e2ee?: boolean}} */
  const body = { name };
  if (opts.access && opts.access !== 'open') body.access = opts.access;
  if (opts.e2ee) body.e2ee = true;
  return request('POST', '/api/rooms', body, opts);
}

/**
 * Looks a room up by slug: `GET /api/rooms/{slug}`. Throws an `ApiError`
 * with code `room_not_found` if there is none. With `pass`, the view's
 * `pass_refusal` says why that pass would not admit now.
 * @param {string} slug
 * @param {ApiOptions & {pass?: string | null}} [opts]
 * @returns {Promise<RoomView>}
 */
export function getRoom(slug, opts = {}) {
  const query = opts.pass ? `?pass=${encodeURIComponent(opts.pass)}` : '';
  return request('GET', `/api/rooms/${encodeURIComponent(slug)}${query}`, undefined, opts);
}

/**
 * The optional parts of a join request.
 * @typedef {object} JoinHints
 * @property {string | null} [region] Where the client believes it is
 *   (`eu-west`); the load balancer's region header wins over it.
 * @property {string | null} [rejoinToken] The token of an earlier session in
 *   this room: the new token is then for the same participant id, so the
 *   others see the same person come back.
 * @property {string | null} [rejoinSecret] The `rejoin_secret` that came
 *   with the token given as `rejoinToken`: proof that the asker is the
 *   session that token was issued to, so a leaked token alone cannot take
 *   a seat over. Sent only together with `rejoinToken`.
 * @property {NodeId | null} [unreachableNode] A media node the client could
 *   not reach (or is being moved off); placement avoids it.
 * @property {string | null} [pass] The guest pass of the page's link
 *   (`?pass=`), sent with every join so that a guest also rejoins on it.
 */

/**
 * @typedef {{display_name: string, region?: string, rejoin_token?: string,
 *   rejoin_secret?: string, unreachable_node?: NodeId, pass?: string}} JoinBody
 */

/**
 * The body of `POST /api/rooms/{slug}/join`. Absent, null and empty hints
 * are left out, because the control plane refuses unknown fields and
 * older ones know only `display_name`.
 * @param {string} displayName
 * @param {JoinHints} [hints]
 * @returns {JoinBody}
 */
export function buildJoinBody(displayName, hints = {}) {
  /** @type {JoinBody} */
  const body = { display_name: displayName };
  if (typeof hints.region === 'string' && hints.region) body.region = hints.region;
  if (typeof hints.rejoinToken === 'string' && hints.rejoinToken) {
    body.rejoin_token = hints.rejoinToken;
    if (typeof hints.rejoinSecret === 'string' && hints.rejoinSecret) body.rejoin_secret = hints.rejoinSecret;
  }
  if (typeof hints.unreachableNode === 'number' && Number.isFinite(hints.unreachableNode)) {
    body.unreachable_node = hints.unreachableNode;
  }
  if (typeof hints.pass === 'string' && hints.pass) body.pass = hints.pass;
  return body;
}

/**
 * Asks to join a room: `POST /api/rooms/{slug}/join`. Returns a fresh,
 * short-lived token for the media node at `ws_url` (`node_id`).
 * @param {string} slug
 * @param {string} displayName 1 to 64 characters.
 * @param {ApiOptions & JoinHints} [opts] `region`, `rejoinToken` and
 *   `unreachableNode` go into the body (see `buildJoinBody`); `fetch` and
 *   `base` as for every REST helper.
 * @returns {Promise<JoinResponse>}
 */
export function join(slug, displayName, opts = {}) {
  return request(
    'POST',
    `/api/rooms/${encodeURIComponent(slug)}/join`,
    buildJoinBody(displayName, opts),
    opts,
  );
}

/**
 * True if a join request that carried `rejoin_token` was refused because
 * of it (the token is too old, not valid here, or came without its
 * `rejoin_secret`: `unauthorized`): ask again without it, as a new
 * participant.
 * @param {ErrorCode} code
 * @returns {boolean}
 */
export function rejoinRefused(code) {
  return code === 'token_invalid' || code === 'token_expired' || code === 'unauthorized' || code === 'bad_request';
}

/**
 * Fetches a page of chat history, oldest first: the newest 100 messages, or
 * the 100 before message id `before`.
 * @param {string} slug
 * @param {number | null} [before]
 * @param {ApiOptions} [opts]
 * @returns {Promise<MessagesPage>}
 */
export function fetchMessages(slug, before = null, opts = {}) {
  const query = before === null || before === undefined ? '' : `?before=${encodeURIComponent(before)}`;
  return request('GET', `/api/rooms/${encodeURIComponent(slug)}/messages${query}`, undefined, opts);
}

/**
 * Resolves the `ws_url` of a join response against the page URL, turning
 * `http:` into `ws:` and `https:` into `wss:`.
 * @param {string} wsUrl Absolute (`wss://node/ws`) or relative (`/media/ws`).
 * @param {string | URL} pageUrl Usually `location.href`.
 * @returns {string}
 */
export function resolveWsUrl(wsUrl, pageUrl) {
  const url = new URL(wsUrl, pageUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.href;
}

const SLUG_RE = /^[A-Za-z0-9_-]{22}$/;

/**
 * True if `s` has the shape of a room slug (22 base64url characters).
 * @param {string} s
 * @returns {boolean}
 */
export function isSlug(s) {
  return SLUG_RE.test(s);
}

/**
 * Extracts a room slug from what someone pasted: a full link
 * (`https://host/r/<slug>?x`), a path (`/r/<slug>`) or a bare slug.
 * @param {string} text
 * @returns {string | null} The slug, or null if there is none.
 */
export function slugFromLink(text) {
  const t = text.trim();
  if (isSlug(t)) return t;
  const m = /(?:^|\/)r\/([A-Za-z0-9_-]{22})(?:[/?#]|$)/.exec(t);
  return m ? m[1] : null;
}

/**
 * The room slug from a room page path, `/r/<slug>`.
 * @param {string} pathname
 * @returns {string | null}
 */
export function slugFromPath(pathname) {
  const m = /^\/r\/([^/]+)\/?$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}
