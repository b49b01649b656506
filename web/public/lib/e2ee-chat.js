// Chat in an end-to-end encrypted room, with no DOM. The server cannot
// filter ciphertext, so this side applies chat-rules.js twice: before
// sealing what we send (the same filters and limit as a plain room), and
// again on what we open (a member's client may not have). Messages whose
// epoch key this browser never had (sent before it joined) are shown as
// such, not dropped, so the history keeps its shape. The sealing itself
// (AES-GCM under the epoch's chat key) is e2ee/chat-seal.js, passed in.
// Tested under node (web/test/e2ee-ui.test.mjs).

import { validateChat } from './chat-rules.js';

/** @typedef {import('./types.js').ChatMessage} ChatMessage */

/** Shown instead of a message sealed under a key this browser never had. */
export const BEFORE_JOIN_TEXT = 'Encrypted message from before you joined';
/** Shown instead of a message that is not a valid envelope, fails to open, or opens to text the rules refuse. */
export const UNREADABLE_TEXT = 'Encrypted message that could not be read';
/** The chat panel's notice in an encrypted room. */
export const CHAT_NOTICE = 'Messages sent before you joined cannot be read.';
/** Sending before this browser has a key. */
export const NO_KEY_TEXT = 'Chat is not available until encryption is set up. Try again in a moment.';

/**
 * What opening one envelope gave: the text, or why there is none.
 * @typedef {{ok: true, text: string} | {ok: false, reason: 'no_key' | 'bad'}} Opened
 */

/**
 * The sealing functions of the current key agreement.
 * @typedef {object} ChatCrypto
 * @property {(text: string) => Promise<string | null>} seal The envelope
 *   under the current epoch's chat key, null without a key.
 * @property {(envelope: string, senderPid: string) => Promise<Opened>} open
 */

/**
 * A chat message as shown in an encrypted room: its text is the opened
 * plaintext or one of the notices above.
 * @typedef {ChatMessage & {sealed: 'open' | 'before_join' | 'unreadable'}} OpenedChat
 */

/**
 * Filters and checks what the person typed, as a plain room does, then
 * seals it.
 * @param {string} raw
 * @param {ChatCrypto} crypto
 * @returns {Promise<{ok: true, text: string, envelope: string}
 *   | {ok: false, code: 'chat_empty' | 'chat_too_long' | 'no_key', chars: number}>}
 */
export async function sealOutgoing(raw, crypto) {
  const v = validateChat(raw);
  if (!v.ok) return v;
  const envelope = await crypto.seal(v.text);
  if (envelope === null) return { ok: false, code: 'no_key', chars: v.chars };
  return { ok: true, text: v.text, envelope };
}

/**
 * Opens one committed message. Never throws: a message this browser
 * cannot read is shown as a notice.
 * @param {ChatMessage} m
 * @param {ChatCrypto} crypto
 * @returns {Promise<OpenedChat>}
 */
export async function openIncoming(m, crypto) {
  /** @type {Opened} */
  let opened;
  try {
    opened = await crypto.open(m.text, m.participant_id);
  } catch {
    opened = { ok: false, reason: 'bad' };
  }
  if (!opened.ok) {
    const before = opened.reason === 'no_key';
    return { ...m, text: before ? BEFORE_JOIN_TEXT : UNREADABLE_TEXT, sealed: before ? 'before_join' : 'unreadable' };
  }
  const v = validateChat(opened.text);
  if (!v.ok) return { ...m, text: UNREADABLE_TEXT, sealed: 'unreadable' };
  return { ...m, text: v.text, sealed: 'open' };
}

/**
 * Opens a page of messages, keeping their order.
 * @param {ChatMessage[]} messages
 * @param {ChatCrypto} crypto
 * @returns {Promise<OpenedChat[]>}
 */
export function openAll(messages, crypto) {
  return Promise.all(messages.map((m) => openIncoming(m, crypto)));
}

/**
 * The user-facing reason a message was not sealed.
 * @param {'chat_empty' | 'chat_too_long' | 'no_key'} code
 * @param {number} chars
 * @param {number} max
 * @returns {string}
 */
export function sealRefusal(code, chars, max) {
  if (code === 'chat_empty') return 'Type a message first.';
  if (code === 'chat_too_long') return `Message is too long: ${chars} of ${max} characters.`;
  return NO_KEY_TEXT;
}
