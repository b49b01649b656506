// The profile page: display name, picture, password, and signing out
// everywhere. A visitor who is not signed in is sent to the sign-in page.

import {
  profile, updateProfile, changePassword, uploadAvatar, removeAvatar, signOut, signOutEverywhere,
} from './lib/accounts-api.js';
import { displayNameProblem, newPasswordProblem, avatarProblem } from './lib/accounts-rules.js';
import { mountMyMeetings } from './ui/my-meetings.js';
import { mountMyRooms } from './ui/my-rooms.js';

/** @typedef {import('./lib/accounts-api.js').UserView} UserView */

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

/**
 * Shows a form's outcome: an error, or a status line.
 * @param {string} form The id prefix (`name`, `avatar`, ...).
 * @param {{error?: string | null, status?: string}} what
 */
function show(form, { error = null, status = '' }) {
  const err = $(`${form}-error`);
  err.hidden = !error;
  err.textContent = error ?? '';
  const st = $(`${form}-status`);
  if (st) st.textContent = status;
}

/** @param {UserView} user */
function render(user) {
  $('who').textContent = `Signed in as ${user.email}${user.is_admin ? ' (administrator)' : ''}`;
  $('display-name').value = user.display_name;
  $('pw-username').value = user.email;
  const img = $('avatar-preview');
  if (user.avatar_url) {
    img.src = user.avatar_url;
    img.hidden = false;
  } else {
    img.removeAttribute('src');
    img.hidden = true;
  }
  $('avatar-remove').hidden = !user.avatar_url;
  // An SSO account's password lives at the identity provider.
  $('password-form').hidden = user.sso;
}

/**
 * Runs `work` with `button` disabled, showing its error on `form`.
 * @param {string} form
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} work
 */
async function busy(form, button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    show(form, { error: /** @type {Error} */ (err).message });
  } finally {
    button.disabled = false;
  }
}

/** @param {SubmitEvent} e */
function onName(e) {
  e.preventDefault();
  const name = $('display-name').value;
  const problem = displayNameProblem(name);
  if (problem) {
    show('name', { error: problem });
    return;
  }
  busy('name', $('name-button'), async () => {
    render(await updateProfile(name.trim()));
    show('name', { status: 'Saved.' });
  });
}

/** The file chosen for upload, previewed before it is sent. */
function onAvatarChosen() {
  const file = /** @type {File | undefined} */ ($('avatar-file').files?.[0]);
  show('avatar', {});
  if (!file) return;
  const img = $('avatar-preview');
  img.src = URL.createObjectURL(file);
  img.hidden = false;
}

/** @param {SubmitEvent} e */
function onAvatar(e) {
  e.preventDefault();
  const file = /** @type {File | undefined} */ ($('avatar-file').files?.[0]);
  if (!file) {
    show('avatar', { error: 'Choose a picture first.' });
    return;
  }
  busy('avatar', $('avatar-button'), async () => {
    const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
    const problem = avatarProblem(file.size, head);
    if (problem) {
      show('avatar', { error: problem });
      return;
    }
    render(await uploadAvatar(file));
    $('avatar-file').value = '';
    show('avatar', { status: 'Picture saved.' });
  });
}

function onAvatarRemove() {
  busy('avatar', $('avatar-remove'), async () => {
    render(await removeAvatar());
    show('avatar', { status: 'Picture removed.' });
  });
}

/** @param {SubmitEvent} e */
function onPassword(e) {
  e.preventDefault();
  const current = $('current-password').value;
  const next = $('new-password').value;
  if (!current) {
    show('password', { error: 'Enter your current password.' });
    return;
  }
  const problem = newPasswordProblem(next, $('new-password-again').value);
  if (problem) {
    show('password', { error: problem });
    return;
  }
  busy('password', $('password-button'), async () => {
    render(await changePassword(current, next));
    for (const id of ['current-password', 'new-password', 'new-password-again']) $(id).value = '';
    show('password', { status: 'Password changed. Your other sessions were signed out.' });
  });
}

function onEverywhere() {
  busy('sessions', $('signout-everywhere'), async () => {
    await signOutEverywhere();
    location.assign('/');
  });
}

function onSignOut() {
  busy('sessions', $('signout'), async () => {
    const r = /** @type {{logout_url?: string}} */ (await signOut());
    location.assign(r && r.logout_url ? r.logout_url : '/');
  });
}

profile().then((user) => {
  render(user);
  $('name-form').addEventListener('submit', onName);
  $('avatar-file').addEventListener('change', onAvatarChosen);
  $('avatar-form').addEventListener('submit', onAvatar);
  $('avatar-remove').addEventListener('click', onAvatarRemove);
  $('password-form').addEventListener('submit', onPassword);
  $('signout-everywhere').addEventListener('click', onEverywhere);
  $('signout').addEventListener('click', onSignOut);
  void mountMyMeetings($('my-meetings'), $('my-meetings-more'), $('my-meetings-status'));
  void mountMyRooms($('my-rooms'), $('my-rooms-status'));
}, (err) => {
  if (err && err.status === 401) {
    location.replace('/signin?return_to=/profile');
    return;
  }
  $('who').textContent = /** @type {Error} */ (err).message;
});
