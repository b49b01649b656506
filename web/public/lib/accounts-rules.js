// Rules of the account pages that need no DOM: checking forms before they
// are sent, recognising an avatar by its first bytes, and wording the
// server's refusals. The server checks everything again; these only save a
// round trip and say things plainly.

/** Shortest password the server accepts (limits.rs `MIN_PASSWORD_CHARS`). */
export const MIN_PASSWORD_CHARS = 10;
/** Longest password, in UTF-8 bytes (`MAX_PASSWORD_BYTES`). */
export const MAX_PASSWORD_BYTES = 256;
/** Largest avatar, in bytes (`MAX_AVATAR_BYTES`). */
export const MAX_AVATAR_BYTES = 1024 * 1024;
/** Longest display name, in characters (`MAX_DISPLAY_NAME_CHARS`). */
export const MAX_DISPLAY_NAME_CHARS = 64;

/**
 * What is wrong with a sign-in form, or null if it may be sent.
 * @param {string} email
 * @param {string} password
 * @returns {string | null}
 */
export function signInProblem(email, password) {
  if (!email.trim()) return 'Enter your email.';
  if (!email.includes('@')) return 'Enter your email address, like name@example.com.';
  if (!password) return 'Enter your password.';
  return null;
}

/**
 * What is wrong with a new password (and its repetition), or null. The
 * strength itself is judged by the server, which says why it refuses.
 * @param {string} password
 * @param {string} again
 * @returns {string | null}
 */
export function newPasswordProblem(password, again) {
  if ([...password].length < MIN_PASSWORD_CHARS) {
    return `Use at least ${MIN_PASSWORD_CHARS} characters.`;
  }
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
    return `Use at most ${MAX_PASSWORD_BYTES} bytes.`;
  }
  if (password !== again) return 'The two new passwords differ.';
  return null;
}

/**
 * What is wrong with a display name, or null.
 * @param {string} name
 * @returns {string | null}
 */
export function displayNameProblem(name) {
  const n = name.trim();
  if (!n) return 'Enter a name.';
  if ([...n].length > MAX_DISPLAY_NAME_CHARS) {
    return `The name can be at most ${MAX_DISPLAY_NAME_CHARS} characters.`;
  }
  return null;
}

/**
 * The image type of a file by its first bytes (PNG, JPEG, WebP), as the
 * server decides it, or null.
 * @param {Uint8Array} head At least the first 12 bytes.
 * @returns {'image/png' | 'image/jpeg' | 'image/webp' | null}
 */
export function imageTypeOf(head) {
  const starts = (/** @type {number[]} */ sig, at = 0) => sig.every((b, i) => head[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (starts([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  return null;
}

/**
 * What is wrong with a chosen avatar file, or null if it may be uploaded.
 * @param {number} size In bytes.
 * @param {Uint8Array} head Its first bytes.
 * @returns {string | null}
 */
export function avatarProblem(size, head) {
  if (size === 0) return 'The file is empty.';
  if (size > MAX_AVATAR_BYTES) return 'The picture is larger than 1 MB. Choose a smaller one.';
  if (!imageTypeOf(head)) return 'Choose a PNG, JPEG or WebP picture.';
  return null;
}

/**
 * Words for "try again after `seconds`".
 * @param {number} seconds
 * @returns {string}
 */
export function waitWords(seconds) {
  if (!(seconds > 0)) return 'in a moment';
  if (seconds < 60) return `in ${Math.ceil(seconds)} seconds`;
  const m = Math.ceil(seconds / 60);
  return m === 1 ? 'in 1 minute' : `in ${m} minutes`;
}

/**
 * The message to show for a failed account request. The server words its
 * account refusals for people ("Wrong email or password", why a password
 * is weak, how long to wait), so its message wins when there is one.
 * @param {number} status HTTP status, 0 when the server was not reached.
 * @param {{code?: string, message?: string} | null} body
 * @param {number | null} retryAfterSecs From `Retry-After`.
 * @returns {string}
 */
export function accountErrorText(status, body, retryAfterSecs) {
  if (status === 0) return 'Could not reach the server. Check your connection.';
  const msg = body && typeof body.message === 'string' ? body.message.trim() : '';
  if (status === 429) {
    return msg || `Too many attempts. Try again ${waitWords(retryAfterSecs ?? 0)}.`;
  }
  if (status === 413) return msg || 'That is too large to send.';
  if (status === 401 && !msg) return 'Sign in first.';
  if (status >= 500 && !msg) return 'Something went wrong on the server. Please try again.';
  return msg || 'Something went wrong. Please try again.';
}

/**
 * Where to go after signing in: the `return_to` parameter (the same name
 * the single sign-on route takes) if it is a path on
 * this site, else the home page. An absolute or protocol-relative URL is
 * never followed (an open redirect would let a link send people to a
 * look-alike site after they signed in).
 * @param {string} search `location.search`.
 * @returns {string}
 */
export function nextPath(search) {
  const next = new URLSearchParams(search).get('return_to') ?? '';
  if (next.startsWith('/') && !next.startsWith('//') && !next.includes('\\')) return next;
  return '/';
}
