// Chat rules (a mirror of protocol/src/chat.rs, so the UI can refuse early)
// and the merged, ordered chat history.

import { MAX_CHAT_CHARS } from './limits.js';

/** @typedef {import('./types.js').ChatMessage} ChatMessage */

// C0/C1 controls except newline and tab, and the bidi overrides/isolates.
const STRIPPED_RE = /(?![\n\t])[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

/**
 * Filters chat text the way the server does: CRLF to LF, strips control and
 * bidi-override characters, trims.
 * @param {string} raw
 * @returns {string}
 */
export function filterChatText(raw) {
  return raw.replace(/\r\n/g, '\n').replace(STRIPPED_RE, '').trim();
}

/**
 * Length of a string in Unicode code points, the unit of the chat limit.
 * @param {string} s
 * @returns {number}
 */
export function codePointLength(s) {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Validates a chat message before sending it.
 * @param {string} raw
 * @returns {{ok: true, text: string, chars: number} | {ok: false, code: 'chat_empty' | 'chat_too_long', chars: number}}
 */
export function validateChat(raw) {
  const text = filterChatText(raw);
  const chars = codePointLength(text);
  if (chars === 0) return { ok: false, code: 'chat_empty', chars };
  if (chars > MAX_CHAT_CHARS) return { ok: false, code: 'chat_too_long', chars };
  return { ok: true, text, chars };
}

/**
 * Chat messages seen so far, kept sorted by id and free of duplicates, so
 * that history pages, live messages and re-fetches after a reconnect merge
 * into one ordered list.
 */
export class ChatHistory {
  constructor() {
    /** @type {number[]} Ascending. */
    this.ids = [];
    /** @type {Map<number, ChatMessage>} */
    this.byId = new Map();
  }

  /** @returns {number} */
  get size() {
    return this.ids.length;
  }

  /** @returns {number | null} The id of the oldest message held. */
  get oldestId() {
    return this.ids.length ? this.ids[0] : null;
  }

  /**
   * @param {number} id
   * @returns {boolean}
   */
  has(id) {
    return this.byId.has(id);
  }

  /**
   * Adds messages, skipping ones already held. Returns the new ones in
   * ascending id order, each with the index it was inserted at, so a view
   * can insert its element before the element currently at that index.
   * @param {ChatMessage[]} messages
   * @returns {{message: ChatMessage, index: number}[]}
   */
  add(messages) {
    const sorted = [...messages].sort((a, b) => a.id - b.id);
    /** @type {{message: ChatMessage, index: number}[]} */
    const added = [];
    for (const m of sorted) {
      if (this.byId.has(m.id)) continue;
      let lo = 0;
      let hi = this.ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.ids[mid] < m.id) lo = mid + 1;
        else hi = mid;
      }
      this.ids.splice(lo, 0, m.id);
      this.byId.set(m.id, m);
      added.push({ message: m, index: lo });
    }
    return added;
  }
}
