// The account routes of the REST API (see docs/protocol.md, "Accounts").
// Every call resolves to the parsed body or throws an `AccountError`
// carrying words for people (`accounts-rules.js`).

import { accountErrorText } from './accounts-rules.js';

/**
 * A user as the server shows them.
 * @typedef {object} UserView
 * @property {number} id
 * @property {string} email
 * @property {string} display_name
 * @property {boolean} is_admin
 * @property {string} [avatar_url]
 * @property {boolean} sso
 */

/**
 * `GET /api/me`.
 * @typedef {object} Me
 * @property {UserView | null} user
 * @property {{password: boolean, sso_provider?: string}} sign_in
 */

/** A failed account request, with a message to show as is. */
export class AccountError extends Error {
  /**
   * @param {string} message
   * @param {number} status HTTP status, 0 if the server was not reached.
   * @param {string} code The server's error code, or ''.
   */
  constructor(message, status, code) {
    super(message);
    this.name = 'AccountError';
    this.status = status;
    this.code = code;
  }
}

/**
 * @typedef {object} Options
 * @property {typeof fetch} [fetch] Defaults to the global `fetch`.
 */

/**
 * One request. `body` is sent as JSON, or as is when it is a Blob.
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 * @param {Options} opts
 * @returns {Promise<any>}
 */
async function call(method, path, body, opts) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  /** @type {RequestInit} */
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (typeof Blob !== 'undefined' && body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await doFetch(path, init);
  } catch {
    throw new AccountError(accountErrorText(0, null, null), 0, 'network');
  }
  let parsed = null;
  try {
    parsed = await resp.json();
  } catch {
    parsed = null;
  }
  if (!resp.ok) {
    const retry = Number(resp.headers?.get?.('Retry-After') ?? '');
    const code = parsed && typeof parsed.code === 'string' ? parsed.code : '';
    throw new AccountError(accountErrorText(resp.status, parsed, Number.isFinite(retry) ? retry : null), resp.status, code);
  }
  return parsed;
}

/** @param {Options} [opts] @returns {Promise<Me>} */
export const me = (opts = {}) => call('GET', '/api/me', undefined, opts);

/**
 * @param {string} email
 * @param {string} password
 * @param {Options} [opts]
 * @returns {Promise<Me>}
 */
export const signIn = (email, password, opts = {}) =>
  call('POST', '/api/auth/login', { email, password }, opts);

/** @param {Options} [opts] @returns {Promise<unknown>} */
export const signOut = (opts = {}) => call('POST', '/api/auth/logout', undefined, opts);

/** @param {Options} [opts] @returns {Promise<{sessions_ended: number}>} */
export const signOutEverywhere = (opts = {}) => call('POST', '/api/auth/logout-all', undefined, opts);

/** @param {Options} [opts] @returns {Promise<UserView>} */
export const profile = (opts = {}) => call('GET', '/api/profile', undefined, opts);

/**
 * @param {string} displayName
 * @param {Options} [opts]
 * @returns {Promise<UserView>}
 */
export const updateProfile = (displayName, opts = {}) =>
  call('PUT', '/api/profile', { display_name: displayName }, opts);

/**
 * @param {string} current
 * @param {string} next
 * @param {Options} [opts]
 * @returns {Promise<UserView>}
 */
export const changePassword = (current, next, opts = {}) =>
  call('PUT', '/api/profile/password', { current, new: next }, opts);

/**
 * @param {Blob} image
 * @param {Options} [opts]
 * @returns {Promise<UserView>}
 */
export const uploadAvatar = (image, opts = {}) => call('POST', '/api/profile/avatar', image, opts);

/** @param {Options} [opts] @returns {Promise<UserView>} */
export const removeAvatar = (opts = {}) => call('DELETE', '/api/profile/avatar', undefined, opts);
