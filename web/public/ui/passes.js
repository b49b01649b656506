// Who the visitor is on the room page, and the owner's "Guest passes"
// dialog: create a pass (label, from, until), list the passes with their
// status, copy a link, revoke. The decisions live in lib/passes.js.

import * as proto from '../protocol.js';
import { $, showMessage, toast } from './dom.js';
import { app } from './state.js';

const HOUR = 3_600_000;

/**
 * The owner key this browser keeps for the page's room, if any.
 * @returns {string | null}
 */
export function storedOwnerKey() {
  if (!app.slug) return null;
  try {
    return localStorage.getItem(proto.ownerKeyName(app.slug));
  } catch {
    return null;
  }
}

/**
 * Request options that prove ownership, when this browser has the key.
 * @returns {proto.ApiOptions}
 */
export function ownerOptions() {
  return proto.withOwnerKey(app.ownerKey, {});
}

/**
 * Who is signed in, or null: `GET /api/me`. A server without accounts (or
 * any failure) means anonymous.
 * @returns {Promise<{display_name: string} | null>}
 */
export async function fetchSignedIn() {
  try {
    const me = await proto.apiRequest('GET', '/api/me', undefined, {});
    return me && me.user ? me.user : null;
  } catch {
    return null;
  }
}

/**
 * Shows why this visitor cannot join, instead of the pre-join screen, if
 * they cannot. Returns true when it did.
 * @returns {boolean}
 */
export function showRefusalIfAny() {
  if (!app.room) return false;
  const here = `${location.pathname}${location.search}`;
  const refusal = proto.refusalFor(app.room, app.signedIn !== null, here);
  if (!refusal) return false;
  showMessage(refusal.title, refusal.text);
  const link = $('message-sign-in');
  link.hidden = !refusal.signIn;
  if (refusal.signIn) link.href = refusal.signIn;
  return true;
}

/** Fills the pre-join screen's identity and access hints. */
export function renderIdentity() {
  const input = $('display-name');
  const who = $('prejoin-identity');
  if (app.signedIn) {
    // The server takes a member's name from their profile; show that.
    input.value = app.signedIn.display_name;
    input.readOnly = true;
    who.textContent = `You join as ${app.signedIn.display_name}, the name on your profile.`;
    who.hidden = false;
  }
  const access = $('prejoin-access');
  if (app.room && proto.needsPass(app.room, app.signedIn !== null, app.pass)) {
    access.textContent = 'This meeting is for signed-in members and guests with a pass. Sign in, or open the pass link you were sent.';
    access.hidden = false;
  }
  const owner = app.room?.you_own && app.room.access !== 'signed_in';
  $('prejoin-passes').hidden = !owner;
  $('call-passes').hidden = !owner;
}

/**
 * The links this browser created, by pass id.
 * @returns {Record<string, string>}
 */
function links() {
  try {
    return proto.parseLinks(localStorage.getItem(proto.passLinksName(app.slug ?? '')));
  } catch {
    return {};
  }
}

/**
 * @param {number} id
 * @param {string} link
 */
function rememberLink(id, link) {
  try {
    const all = links();
    all[String(id)] = link;
    localStorage.setItem(proto.passLinksName(app.slug ?? ''), JSON.stringify(all));
  } catch {
    // Private mode: the link is still shown once.
  }
}

/** @param {number} ms */
const when = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** @param {string} link */
async function copy(link) {
  try {
    await navigator.clipboard.writeText(link);
    toast('Pass link copied');
  } catch {
    toast('Copy the link from the box');
  }
}

/** @param {string | null} text */
function setError(text) {
  const el = $('pass-error');
  el.hidden = !text;
  el.textContent = text ?? '';
}

/**
 * One pass in the list.
 * @param {proto.PassView} p
 * @param {Record<string, string>} known
 * @returns {HTMLLIElement}
 */
function passItem(p, known) {
  const li = document.createElement('li');
  li.className = `pass ${p.status}`;
  li.dataset.passId = String(p.id);
  const text = document.createElement('span');
  text.className = 'pass-text';
  const label = document.createElement('strong');
  label.textContent = p.label;
  const status = document.createElement('span');
  status.className = `pass-status ${p.status}`;
  status.textContent = proto.statusLabel(p.status);
  const span = document.createElement('span');
  span.className = 'pass-window-text';
  span.textContent = `${when(p.valid_from_ms)} – ${when(p.valid_until_ms)}`;
  text.append(label, ' ', status, span);
  li.append(text);
  const link = known[String(p.id)];
  if (link && p.status !== 'revoked' && p.status !== 'expired') {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = `Copy link for ${p.label}`;
    b.addEventListener('click', () => copy(link));
    li.append(b);
  }
  if (p.status !== 'revoked') {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'danger';
    b.textContent = `Revoke pass ${p.label}`;
    b.addEventListener('click', () => revoke(p, b));
    li.append(b);
  }
  return li;
}

/** Reloads the list. */
async function refresh() {
  try {
    const { passes } = await proto.listPasses(app.slug ?? '', ownerOptions());
    const known = links();
    $('passes-list').replaceChildren(...passes.map((p) => passItem(p, known)));
  } catch (e) {
    setError(/** @type {Error} */ (e).message);
  }
}

/**
 * @param {proto.PassView} p
 * @param {HTMLButtonElement} button
 */
async function revoke(p, button) {
  button.disabled = true;
  try {
    await proto.revokePass(app.slug ?? '', p.id, ownerOptions());
    toast(`Pass ${p.label} revoked`);
  } catch (e) {
    setError(/** @type {Error} */ (e).message);
  }
  await refresh();
}

/** @param {SubmitEvent} e */
async function onCreate(e) {
  e.preventDefault();
  const label = $('pass-label').value;
  const from = proto.localInputToMs($('pass-from').value);
  const until = proto.localInputToMs($('pass-until').value);
  const problem = proto.passFormError(label, from, until, Date.now());
  setError(problem);
  if (problem) return;
  const button = $('pass-create');
  button.disabled = true;
  try {
    const created = await proto.createPass(
      app.slug ?? '',
      { label: label.trim(), valid_from_ms: from, valid_until_ms: until },
      ownerOptions(),
    );
    rememberLink(created.pass.id, created.link);
    $('pass-created-label').textContent = created.pass.label;
    $('pass-created-link').value = created.link;
    $('pass-created').hidden = false;
    $('pass-label').value = '';
    await refresh();
  } catch (err) {
    setError(/** @type {Error} */ (err).message);
  } finally {
    button.disabled = false;
  }
}

/** Opens the dialog with a fresh list and a default window of two hours from now. */
async function open() {
  const dialog = /** @type {HTMLDialogElement} */ ($('passes-dialog'));
  const now = Date.now();
  if (!$('pass-from').value) $('pass-from').value = proto.msToLocalInput(now);
  if (!$('pass-until').value) $('pass-until').value = proto.msToLocalInput(now + 2 * HOUR);
  setError(null);
  $('pass-created').hidden = true;
  if (!dialog.open) dialog.showModal();
  $('pass-label').focus();
  await refresh();
}

/** Wires the dialog's controls once. */
export function wirePasses() {
  $('prejoin-passes').addEventListener('click', open);
  $('call-passes').addEventListener('click', open);
  $('passes-close').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('passes-dialog')).close());
  $('pass-form').addEventListener('submit', onCreate);
  $('pass-created-copy').addEventListener('click', () => copy($('pass-created-link').value));
}
