// The chat panel: history, live messages, sending with a "Sending…"
// placeholder until the message is committed, and messages typed while the
// call is reconnecting (queued by the call core and sent on reconnect, or
// shown as "Not sent").

import * as proto from '../protocol.js';
import { $ } from './dom.js';
import { app } from './state.js';

/** @typedef {import('../protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('../protocol.js').ErrorMessage} ErrorMessage */

const COUNTER_FROM = proto.MAX_CHAT_CHARS - 500;

/**
 * What the chat view asks of the call.
 * @typedef {object} ChatHooks
 * @property {(text: string, clientMsgId: string) => void} send Send now or
 *   queue until reconnected.
 * @property {() => number | null} currentSession The joined session, if any.
 * @property {((messages: ChatMessage[]) => Promise<(ChatMessage & {sealed?: string})[]>) | null} open
 *   Encrypted rooms: turns committed envelopes into what is shown
 *   (lib/e2ee-chat.js); null in a plain room.
 */

/** @type {ChatHooks} */
export const chatHooks = {
  send: () => {},
  currentSession: () => null,
  open: null,
};

/** The chat panel's state. */
export const chat = {
  history: new proto.ChatHistory(),
  hasMore: false,
  loadingOlder: false,
  open: false,
  unread: 0,
  /**
   * Typed but not yet committed, by client_msg_id. `dataset.session` is the
   * session it was sent on; absent while it waits for a connection.
   * @type {Map<string, HTMLLIElement>}
   */
  pending: new Map(),
};
/** @returns {string} */
export function newClientMsgId() {
  if (typeof globalThis.crypto?.randomUUID === 'function') return crypto.randomUUID();
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

export async function loadHistory() {
  try {
    const first = chat.history.size === 0;
    const page = await proto.fetchMessages(/** @type {string} */ (app.slug));
    await addMessages(page.messages, !first);
    if (first) chat.hasMore = page.has_more;
    // Anything still pending after a reconnect was probably lost.
    // (Messages queued while reconnecting were sent on this session.)
    const current = chatHooks.currentSession();
    for (const [id, li] of chat.pending) {
      const sentOn = li.dataset.session;
      if (current !== null && sentOn !== undefined && sentOn !== String(current)) chatFailed(id);
    }
    renderChatMeta();
    if (first) scrollChatToBottom();
  } catch (e) {
    showChatError(`Could not load earlier messages. ${/** @type {Error} */ (e).message}`);
  }
}

export async function loadOlder() {
  if (chat.loadingOlder || !chat.hasMore || chat.history.oldestId === null) return;
  chat.loadingOlder = true;
  const scroll = $('chat-scroll');
  try {
    const page = await proto.fetchMessages(/** @type {string} */ (app.slug), chat.history.oldestId);
    const opened = chatHooks.open ? await chatHooks.open(page.messages) : page.messages;
    const before = scroll.scrollHeight;
    addMessages(opened, false, true);
    chat.hasMore = page.has_more;
    scroll.scrollTop += scroll.scrollHeight - before;
  } catch (e) {
    showChatError(`Could not load older messages. ${/** @type {Error} */ (e).message}`);
  } finally {
    chat.loadingOlder = false;
    renderChatMeta();
  }
}

/**
 * Adds committed messages in id order, dropping duplicates and the
 * matching "sending" placeholders. In an encrypted room they are opened
 * first (so this resolves later); `opened` says they already were.
 * @param {ChatMessage[]} messages
 * @param {boolean} countUnread
 * @param {boolean} [opened]
 * @returns {Promise<void>}
 */
export function addMessages(messages, countUnread, opened = false) {
  if (chatHooks.open && !opened) {
    return chatHooks.open(messages).then((shown) => {
      addMessages(shown, countUnread, true);
    });
  }
  const list = $('chat-messages');
  const scroll = $('chat-scroll');
  const atBottom = scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < 40;
  let newest = false;
  for (const { message, index } of chat.history.add(messages)) {
    const own = message.client_msg_id ? chat.pending.has(message.client_msg_id) : false;
    if (message.client_msg_id && own) {
      chat.pending.get(message.client_msg_id)?.remove();
      chat.pending.delete(message.client_msg_id);
    }
    list.insertBefore(renderMessage(message), list.children[index] ?? null);
    if (index === chat.history.size - 1) newest = true;
    const mine = own || message.participant_id === app.roomState.participantId;
    if (countUnread && !mine && !chat.open) chat.unread += 1;
  }
  if (newest && atBottom) scrollChatToBottom();
  renderChatMeta();
  return Promise.resolve();
}

/**
 * @param {ChatMessage & {sealed?: string}} m
 * @returns {HTMLLIElement}
 */
function renderMessage(m) {
  const li = document.createElement('li');
  li.className = 'chat-message';
  // An encrypted message this browser could not read: shown as a notice.
  if (m.sealed && m.sealed !== 'open') li.classList.add('sealed');
  li.dataset.id = String(m.id);
  if (m.participant_id === app.roomState.participantId) li.classList.add('own');
  const meta = document.createElement('div');
  meta.className = 'chat-meta';
  const author = document.createElement('span');
  author.className = 'chat-author';
  author.textContent = m.display_name;
  const time = document.createElement('time');
  const when = new Date(m.sent_at_ms);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  meta.append(author, ' ', time);
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = m.text; // Never innerHTML: chat text is untrusted.
  li.append(meta, text);
  return li;
}

export function sendChat() {
  const input = $('chat-input');
  const v = proto.validateChat(input.value);
  if (!v.ok) {
    showChatError(
      v.code === 'chat_empty'
        ? 'Type a message first.'
        : `Message is too long: ${v.chars} of ${proto.MAX_CHAT_CHARS} characters.`,
    );
    return;
  }
  const id = newClientMsgId();
  const li = document.createElement('li');
  li.className = 'chat-message own pending';
  li.dataset.text = v.text;
  const meta = document.createElement('div');
  meta.className = 'chat-meta';
  const author = document.createElement('span');
  author.className = 'chat-author';
  author.textContent = app.displayName;
  const status = document.createElement('span');
  status.className = 'chat-status';
  status.textContent = 'Waiting for connection…';
  meta.append(author, ' ', status);
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = v.text;
  li.append(meta, text);
  $('chat-pending').append(li);
  chat.pending.set(id, li);
  chatHooks.send(v.text, id);
  input.value = '';
  updateCounter();
  showChatError(null);
  scrollChatToBottom();
}

/** @param {string | null} text */
export function showChatError(text) {
  const el = $('chat-error');
  el.hidden = !text;
  el.textContent = text ?? '';
}

export function updateCounter() {
  const n = proto.codePointLength(proto.filterChatText($('chat-input').value));
  const el = $('chat-counter');
  el.textContent = n >= COUNTER_FROM ? `${n} / ${proto.MAX_CHAT_CHARS}` : '';
  el.classList.toggle('over', n > proto.MAX_CHAT_CHARS);
}

export function scrollChatToBottom() {
  const scroll = $('chat-scroll');
  scroll.scrollTop = scroll.scrollHeight;
}

export function renderChatMeta() {
  $('chat-older').hidden = !chat.hasMore;
  const badge = $('chat-badge');
  badge.hidden = chat.unread === 0;
  badge.textContent = chat.unread > 99 ? '99+' : String(chat.unread);
  badge.setAttribute('aria-label', `${chat.unread} unread message${chat.unread === 1 ? '' : 's'}`);
}

/**
 * A queued message went out on session `session`: it now waits for its
 * commit.
 * @param {string} clientMsgId
 * @param {number} session
 */
export function chatSent(clientMsgId, session) {
  const li = chat.pending.get(clientMsgId);
  if (!li) return;
  li.dataset.session = String(session);
  const status = li.querySelector('.chat-status');
  if (status) status.textContent = 'Sending…';
}

/**
 * A message will not arrive: mark it "Not sent" (it stays visible, so
 * nothing typed is silently lost).
 * @param {string} clientMsgId
 */
export function chatFailed(clientMsgId) {
  const li = chat.pending.get(clientMsgId);
  if (!li) return;
  chat.pending.delete(clientMsgId);
  li.classList.add('failed');
  const status = li.querySelector('.chat-status');
  if (status) status.textContent = 'Not sent';
}

/**
 * The node refused a chat message: put its text back in the input and say
 * why.
 * @param {ErrorMessage} m
 */
export function chatRefused(m) {
  const pending = m.client_msg_id ? chat.pending.get(m.client_msg_id) : undefined;
  if (pending && m.client_msg_id) {
    chat.pending.delete(m.client_msg_id);
    pending.remove();
    const input = $('chat-input');
    if (!input.value) {
      input.value = pending.dataset.text ?? '';
      updateCounter();
    }
  }
  showChatError(proto.humanMessage(m.code, m.message));
}
