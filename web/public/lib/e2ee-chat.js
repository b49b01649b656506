// Chat in an end-to-end encrypted room, with no DOM. The server cannot
// filter ciphertext, so this side applies chat-rules.js twice: before
// sealing what we send (the same filters and limit as a plain room), and
// again on what we open (a member's client may not have). Messages whose
// epoch key this browser never had (sent before it joined) are shown as
// such, not dropped, so the history keeps its shape. The sealing itself
// (AES-GCM under the epoch's chat key) is e2ee/chat-seal.js, passed in.
// Tested under node (web/test/e2ee-ui.test.mjs).

import { validateChat } from './chat-rules.js';
import { SealError, chatKey, open, seal } from '../e2ee/chat-seal.js';

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
 *   under the current epoch's chat key, null without a key; throws
 *   `SealError` when the envelope would be too large.
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
  /** @type {string | null} */
  let envelope;
  try {
    envelope = await crypto.seal(v.text);
  } catch (e) {
    // Within the character limit, but too many bytes once sealed (emoji).
    if (e instanceof SealError) return { ok: false, code: 'chat_too_long', chars: v.chars };
    throw e;
  }
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

/** Most epochs whose chat key a call keeps (oldest dropped first). */
export const MAX_CHAT_EPOCHS = 512;
/** How long opening waits for a newer epoch's key than ours (a message can overtake its commit between nodes), in ms. */
export const FUTURE_EPOCH_WAIT_MS = 3000;

/**
 * The chat keys of every epoch this browser was in during the call: what
 * we send is sealed under the current one; what we receive is opened
 * under the one it names. A message for a newer epoch of our group, or
 * any message while we wait for our first key (a message can overtake the
 * welcome that lets us read it), waits briefly for a key.
 */
export class ChatKeyRing {
  /** @param {() => number} [now] */
  constructor(now = () => Date.now()) {
    this.now = now;
    /** @type {Map<string, Promise<CryptoKey>>} By `group:epoch`, oldest first. */
    this.keys = new Map();
    /** @type {{group: number, epoch: number} | null} */
    this.current = null;
    /** @type {string | null} Our participant id (the AAD of what we seal). */
    this.self = null;
    /** @type {Set<() => void>} Openers waiting for a newer epoch. */
    this.waiters = new Set();
    /** @type {(group: number, epoch: number) => void} Told the epoch of every envelope opened (a later one than ours means a missed commit). */
    this.onSeen = () => {};
  }

  /**
   * A new epoch: derives its chat key and seals under it from now on.
   * @param {number} group
   * @param {number} epoch
   * @param {Uint8Array} exporter
   * @param {string} self Our participant id.
   */
  install(group, epoch, exporter, self) {
    const id = `${group}:${epoch}`;
    if (!this.keys.has(id)) this.keys.set(id, chatKey(exporter));
    while (this.keys.size > MAX_CHAT_EPOCHS) this.keys.delete(/** @type {string} */ (this.keys.keys().next().value));
    this.current = { group, epoch };
    this.self = self;
    for (const w of [...this.waiters]) w();
  }

  /** We have no key any more (removed, rejoining): sending stops; old messages still open. */
  lost() {
    this.current = null;
  }

  /**
   * @param {number} group
   * @param {number} epoch
   * @returns {boolean} A key for this epoch may still come.
   */
  mayCome(group, epoch) {
    if (this.current === null) return true;
    return this.current.group === group ? epoch > this.current.epoch : group > this.current.group;
  }

  /**
   * The key of an epoch, waiting a little for one newer than ours.
   * @param {number} group
   * @param {number} epoch
   * @returns {Promise<CryptoKey | null>}
   */
  async keyFor(group, epoch) {
    this.onSeen(group, epoch);
    const id = `${group}:${epoch}`;
    const ahead = () => this.mayCome(group, epoch);
    if (!this.keys.has(id) && ahead()) {
      await new Promise((resolve) => {
        const done = () => {
          if (this.keys.has(id) || !ahead()) finish();
        };
        const finish = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve(undefined);
        };
        const timer = setTimeout(finish, FUTURE_EPOCH_WAIT_MS);
        this.waiters.add(done);
      });
    }
    return (await this.keys.get(id)) ?? null;
  }

  /** @returns {ChatCrypto} Sealing under the current epoch, opening under any held. */
  crypto() {
    return {
      seal: async (text) => {
        const at = this.current;
        const self = this.self;
        if (at === null || self === null) return null;
        const key = await this.keys.get(`${at.group}:${at.epoch}`);
        if (!key) return null;
        return seal(text, key, { group: at.group, epoch: at.epoch, sender: self });
      },
      open: async (envelope, sender) => {
        const r = await open(envelope, (g, e) => this.keyFor(g, e), sender);
        if (r.ok) return { ok: true, text: r.text };
        return { ok: false, reason: r.code === 'no_key' ? 'no_key' : 'bad' };
      },
    };
  }
}
