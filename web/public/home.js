// Veche home page: create a room, or open one from a pasted link.

import { createRoom, slugFromLink, codePointLength, MAX_ROOM_NAME_CHARS, ownerKeyName } from './protocol.js';
import './account-nav.js';
import { mountSsoButton } from './ui/sso.js';

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

/**
 * Shows or clears a form's error line.
 * @param {string} id
 * @param {string | null} text
 */
function setError(id, text) {
  const el = $(id);
  el.hidden = !text;
  el.textContent = text ?? '';
}

/**
 * The room page for a slug, on this origin.
 * @param {string} slug
 * @returns {string}
 */
function roomPath(slug) {
  return `/r/${encodeURIComponent(slug)}`;
}

/** @param {SubmitEvent} e */
async function onCreate(e) {
  e.preventDefault();
  const input = $('room-name');
  const name = input.value.trim();
  if (!name) {
    setError('create-error', 'Give the meeting a name.');
    input.focus();
    return;
  }
  if (codePointLength(name) > MAX_ROOM_NAME_CHARS) {
    setError('create-error', `The name can be at most ${MAX_ROOM_NAME_CHARS} characters.`);
    input.focus();
    return;
  }
  setError('create-error', null);
  const button = $('create-button');
  button.disabled = true;
  try {
    const access = /** @type {import('./lib/types.js').RoomAccess} */ ($('room-access').value);
    // End-to-end encrypted: fixed at creation (docs/e2ee.md).
    const e2ee = /** @type {HTMLInputElement} */ ($('room-e2ee')).checked;
    const room = await createRoom(name, { access, e2ee });
    if (room.owner_key) {
      // The one secret this page keeps: it makes this browser the room's
      // owner (guest passes), and is shown by the server only now.
      try {
        localStorage.setItem(ownerKeyName(room.slug), room.owner_key);
      } catch {
        // Private mode: the room works; only owner actions are lost.
      }
    }
    // Stay on this origin: the server's `link` uses its configured public
    // URL, which may differ from how this page was reached.
    location.assign(roomPath(room.slug));
  } catch (err) {
    setError('create-error', /** @type {Error} */ (err).message);
    button.disabled = false;
  }
}

/** @param {SubmitEvent} e */
function onJoin(e) {
  e.preventDefault();
  const slug = slugFromLink($('meeting-link').value);
  if (!slug) {
    setError('join-error', "That doesn't look like a meeting link. It should end in /r/ followed by 22 characters.");
    $('meeting-link').focus();
    return;
  }
  setError('join-error', null);
  location.assign(roomPath(slug));
}

/**
 * Shows the "Administration" link to administrators (`GET /api/me`). An
 * anonymous visitor, or a server without accounts, sees no change.
 */
async function showAdminLink() {
  try {
    const resp = await fetch('/api/me', { headers: { Accept: 'application/json' } });
    const me = resp.ok ? await resp.json() : null;
    if (!me?.user?.is_admin) return;
    const link = document.createElement('a');
    link.href = '/admin';
    link.textContent = 'Administration';
    link.className = 'admin-link';
    document.querySelector('main.home header')?.append(link);
  } catch {
    // The home page works without it.
  }
}

$('create-form').addEventListener('submit', onCreate);
$('join-form').addEventListener('submit', onJoin);
$('room-name').focus();
showAdminLink();
void mountSsoButton($('sso-buttons'));
