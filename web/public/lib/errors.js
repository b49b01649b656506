// Errors with a machine-readable code, and the one place that turns codes
// into words for people.

import { MAX_CHAT_CHARS } from './limits.js';

/** @typedef {import('./types.js').ErrorCode} ErrorCode */

/** An error from the REST API or the node, with a machine-readable code. */
export class ApiError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} message Safe to show to people.
   * @param {number} [status] The HTTP status, when there was a response.
   */
  constructor(code, message, status = 0) {
    super(message);
    this.name = 'ApiError';
    /** @type {ErrorCode} */
    this.code = code;
    /** @type {number} */
    this.status = status;
  }
}

/**
 * The one place that turns an error code into words for people. The
 * server's own message is used where it is more specific than ours.
 * @param {ErrorCode} code
 * @param {string} [serverMessage]
 * @returns {string}
 */
export function humanMessage(code, serverMessage) {
  switch (code) {
    case 'room_not_found':
      return 'This meeting link is not valid';
    case 'token_invalid':
    case 'token_expired':
      return 'Your session expired. Rejoining…';
    case 'forbidden':
      return serverMessage || 'You are not allowed to do that here.';
    case 'chat_empty':
      return 'Type a message first.';
    case 'chat_too_long':
      return `Message is too long: the limit is ${MAX_CHAT_CHARS} characters.`;
    case 'rate_limited':
      return 'You are sending messages too fast. Wait a moment and try again.';
    case 'too_large':
      return 'That is too large to send.';
    case 'unavailable':
      return 'The service is temporarily unavailable. Please try again in a moment.';
    case 'internal':
      return 'Something went wrong on the server. Please try again.';
    case 'network':
      return 'Could not reach the server. Check your connection.';
    case 'bad_request':
      return serverMessage || 'The request was not valid.';
    default:
      return serverMessage || 'Something went wrong. Please try again.';
  }
}

/**
 * True if retrying the same request later may succeed.
 * @param {ErrorCode} code
 * @returns {boolean}
 */
export function isRetryable(code) {
  return (
    code === 'network' ||
    code === 'unavailable' ||
    code === 'internal' ||
    code === 'rate_limited' ||
    /^http_5\d\d$/.test(code)
  );
}

/**
 * What to tell someone when `getUserMedia` fails.
 * @param {'audio' | 'video'} kind
 * @param {{name?: string} | null | undefined} error The DOMException.
 * @returns {string}
 */
export function describeMediaError(kind, error) {
  const device = kind === 'audio' ? 'Microphone' : 'Camera';
  const lower = kind === 'audio' ? 'microphone' : 'camera';
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${device} blocked: allow it in your browser's site settings, or join without it`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${lower} found`;
    case 'NotReadableError':
    case 'AbortError':
      return `Your ${lower} is in use by another app, or could not be started`;
    case 'NotSupportedError':
    case 'TypeError':
      return `${device} unavailable: open this page over https`;
    default:
      return `Could not start your ${lower}`;
  }
}
