// The lobby, both sides: the waiting screen of someone a moderator has not
// let in yet ("Waiting for a moderator to let you in", until `joined`), and
// for hosts and moderators the list of waiters with "Admit {name}" and
// "Deny {name}" in the participants panel.

import * as proto from '../protocol.js';
import { $, showScreen, toast } from './dom.js';
import { app } from './state.js';
import { sendToRoom } from './moderation-hooks.js';

/** @typedef {import('../protocol.js').LobbyEntry} LobbyEntry */

/** Who waits, as the node last said (moderators only get `lobby`). */
export const lobby = {
  /** @type {LobbyEntry[]} */
  waiting: [],
  /** True while this page is itself in the lobby. */
  inLobby: false,
};

/**
 * This page was put in the lobby: show the waiting screen.
 * @param {import('../protocol.js').RoomInfo} room
 */
export function showWaiting(room) {
  lobby.inLobby = true;
  $('lobby-room-name').textContent = room.name;
  document.title = `Waiting to join ${room.name} · Veche`;
  showScreen('lobby-screen');
}

/**
 * `joined` arrived: if we were waiting, the meeting takes the screen.
 * @returns {boolean} Whether we were waiting.
 */
export function leaveWaiting() {
  if (!lobby.inLobby) return false;
  lobby.inLobby = false;
  document.title = `${app.room?.name ?? 'Meeting'} · Veche`;
  showScreen('call-screen');
  return true;
}

/**
 * A `lobby` message: the whole list. Newcomers are announced, since the
 * participants panel may be closed.
 * @param {LobbyEntry[]} waiting
 */
export function onLobby(waiting) {
  const before = new Set(lobby.waiting.map((e) => e.participant_id));
  lobby.waiting = proto.lobbyOrder(waiting);
  const fresh = lobby.waiting.filter((e) => !before.has(e.participant_id));
  if (fresh.length === 1) toast(`${fresh[0].display_name} is waiting to join. Open Participants to let them in.`);
  else if (fresh.length > 1) toast(`${fresh.length} people are waiting to join. Open Participants to let them in.`);
  renderLobby();
}

/** Re-renders the lobby list (shown to hosts and moderators with someone waiting). */
export function renderLobby() {
  const mine = proto.moderates(proto.roleOf(app.roomState.self));
  const waiting = mine ? lobby.waiting : [];
  $('lobby-section').hidden = waiting.length === 0;
  $('lobby-count').textContent = String(waiting.length);
  // Keyed by participant: an entry already shown keeps its element, so a
  // `lobby` update arriving while a moderator reaches for "Admit" does not
  // swap the button out from under their finger (or a screen reader's focus).
  const list = $('lobby-list');
  /** @type {Map<string, HTMLElement>} */
  const shown = new Map();
  for (const li of Array.from(list.children)) {
    if (li instanceof HTMLElement && li.dataset.pid) shown.set(li.dataset.pid, li);
  }
  list.replaceChildren(...waiting.map((e) => shown.get(e.participant_id) ?? entry(e)));
}

/** @param {LobbyEntry} e */
function entry(e) {
  const li = document.createElement('li');
  li.dataset.pid = e.participant_id;
  const name = document.createElement('span');
  name.className = 'lobby-name';
  name.textContent = proto.participantLabel(e.display_name, false, !!e.guest);
  li.append(name, decide('Admit', e, proto.act.admit(e.participant_id)), decide('Deny', e, proto.act.deny(e.participant_id)));
  return li;
}

/**
 * @param {'Admit' | 'Deny'} verb
 * @param {LobbyEntry} e
 * @param {import('../protocol.js').ModAction} action
 */
function decide(verb, e, action) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = verb === 'Admit' ? 'primary' : 'secondary';
  b.textContent = verb;
  b.setAttribute('aria-label', `${verb} ${e.display_name}`);
  b.addEventListener('click', () => {
    if (!sendToRoom(proto.build.moderate(action))) return;
    // The node's next `lobby` confirms; until then the entry is settled here.
    lobby.waiting = lobby.waiting.filter((w) => w.participant_id !== e.participant_id);
    renderLobby();
  });
  return b;
}
