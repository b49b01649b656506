// A moderator's "More actions for {name}" menu on each participant's entry,
// and the "Remove {name}" confirmation (with "Don't let them back in").
// What the menu offers is decided in lib/moderation.js (`menuFor`); the
// server checks every action again. One menu element serves every entry:
// it is placed by the button that opened it, and on a phone it is a sheet
// along the bottom of the screen.

import * as proto from '../protocol.js';
import { $, icon } from './dom.js';
import { app } from './state.js';
import { sendToRoom } from './moderation-hooks.js';

/** @typedef {import('../protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('../lib/moderation.js').MenuEntry} MenuEntry */

/** The open menu: whose it is and the labels it shows. */
const open = {
  /** @type {string | null} */
  id: null,
  /** @type {string} */
  labels: '',
};
/** Whom the remove dialog is about. */
let removing = /** @type {string | null} */ (null);

/** @returns {{id: string | null, role: proto.Role}} */
function viewer() {
  return { id: app.roomState.participantId, role: proto.roleOf(app.roomState.self) };
}

/**
 * The menu's entries for participant `id` now (none if they left, or if
 * this viewer may not act on them).
 * @param {string} id
 * @returns {MenuEntry[]}
 */
function entriesFor(id) {
  const p = app.roomState.get(id);
  return p ? proto.menuFor(viewer(), p, app.roomState.policy) : [];
}

/**
 * The "More actions for {name}" button of a participant's entry, or null
 * when this viewer has no action for them.
 * @param {ParticipantInfo} p
 * @returns {HTMLButtonElement | null}
 */
export function moreButton(p) {
  if (proto.menuFor(viewer(), p, app.roomState.policy).length === 0) return null;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'icon-button participant-more';
  b.setAttribute('aria-label', `More actions for ${p.display_name}`);
  b.setAttribute('aria-haspopup', 'menu');
  b.setAttribute('aria-controls', 'mod-menu');
  b.setAttribute('aria-expanded', String(open.id === p.id));
  b.dataset.more = p.id;
  b.append(icon('more'));
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    if (open.id === p.id) closeMenu(true);
    else openMenu(p.id);
  });
  return b;
}

/** @param {string} id */
function anchorOf(id) {
  return /** @type {HTMLButtonElement | null} */ (document.querySelector(`[data-more="${CSS.escape(id)}"]`));
}

/**
 * Opens the menu for participant `id` by their entry's button.
 * @param {string} id
 */
function openMenu(id) {
  const entries = entriesFor(id);
  if (entries.length === 0) return;
  closeMenu(false);
  open.id = id;
  fill(entries);
  const menu = $('mod-menu');
  const name = app.roomState.get(id)?.display_name ?? '';
  menu.setAttribute('aria-label', `Actions for ${name}`);
  menu.hidden = false;
  place();
  anchorOf(id)?.setAttribute('aria-expanded', 'true');
  /** @type {HTMLElement | null} */ (menu.querySelector('button'))?.focus();
}

/** @param {MenuEntry[]} entries */
function fill(entries) {
  open.labels = entries.map((e) => e.label).join('\n');
  const id = /** @type {string} */ (open.id);
  $('mod-menu').replaceChildren(
    ...entries.map((e) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'menuitem');
      b.textContent = e.label;
      if (e.confirm) b.classList.add('danger');
      b.addEventListener('click', () => {
        closeMenu(true);
        if (e.confirm === 'remove') confirmRemove(id);
        else sendToRoom(proto.build.moderate(e.action));
      });
      return b;
    }),
  );
}

/** Puts the menu under (or above) its button, inside the window. */
function place() {
  const menu = /** @type {HTMLElement} */ ($('mod-menu'));
  const anchor = open.id === null ? null : anchorOf(open.id);
  if (!anchor) return;
  const r = anchor.getBoundingClientRect();
  const w = menu.offsetWidth;
  const h = menu.offsetHeight;
  const left = Math.max(8, Math.min(r.right - w, window.innerWidth - w - 8));
  let top = r.bottom + 4;
  if (top + h > window.innerHeight - 8) top = Math.max(8, r.top - h - 4);
  menu.style.left = `${left}px`;
  menu.style.top = `${top}px`;
}

/**
 * Closes the menu.
 * @param {boolean} refocus Give the focus back to its button.
 */
export function closeMenu(refocus) {
  if (open.id === null) return;
  const anchor = anchorOf(open.id);
  anchor?.setAttribute('aria-expanded', 'false');
  open.id = null;
  open.labels = '';
  $('mod-menu').hidden = true;
  $('mod-menu').replaceChildren();
  if (refocus) anchor?.focus();
}

/**
 * After the participant list re-rendered: keeps an open menu with its
 * (new) button, with what it offers now, or closes it if nothing is left.
 */
export function refreshMenu() {
  if (open.id === null) return;
  const entries = entriesFor(open.id);
  if (entries.length === 0 || !anchorOf(open.id)) {
    closeMenu(false);
    return;
  }
  if (entries.map((e) => e.label).join('\n') !== open.labels) {
    const focused = document.activeElement?.textContent ?? null;
    fill(entries);
    const same = [...$('mod-menu').querySelectorAll('button')].find((b) => b.textContent === focused);
    /** @type {HTMLElement | null} */ (same ?? $('mod-menu').querySelector('button'))?.focus();
  }
  place();
}

/**
 * Asks whether to remove participant `id`, and whether to let them back.
 * @param {string} id
 */
function confirmRemove(id) {
  const p = app.roomState.get(id);
  if (!p) return;
  removing = id;
  $('remove-name').textContent = p.display_name;
  $('remove-ban').checked = false;
  $('remove-dialog').showModal();
}

/** Wires the menu's keys, outside clicks and the remove dialog. */
export function wireModerationMenu() {
  const menu = $('mod-menu');
  menu.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    const items = /** @type {HTMLElement[]} */ ([...menu.querySelectorAll('button')]);
    const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      closeMenu(true);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const step = e.key === 'ArrowDown' ? 1 : items.length - 1;
      items[(at + step) % items.length]?.focus();
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      items[e.key === 'Home' ? 0 : items.length - 1]?.focus();
    } else if (e.key === 'Tab') {
      closeMenu(false);
    }
  });
  document.addEventListener('click', (e) => {
    if (open.id !== null && !menu.contains(/** @type {Node} */ (e.target))) closeMenu(false);
  });
  window.addEventListener('resize', place);
  $('remove-cancel').addEventListener('click', () => $('remove-dialog').close());
  $('remove-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    const id = removing;
    removing = null;
    $('remove-dialog').close();
    if (id !== null) sendToRoom(proto.build.moderate(proto.act.remove(id, $('remove-ban').checked)));
  });
}
