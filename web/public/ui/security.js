// The room's encryption as the person sees it (encrypted rooms only): the
// header's indicator (role="status": "End-to-end encrypted" once this
// browser has a key), the "Security" button, and its dialog with the
// members, the verification code to compare, and "Mark as verified",
// which holds until someone joins or leaves. The state is the DOM-free
// lib/e2ee-status.js; ui/e2ee.js feeds it.

import { STATE_LABEL, SecurityStatus, shortKey } from '../lib/e2ee-status.js';
import { $ } from './dom.js';

/** @typedef {import('../lib/e2ee-status.js').SecurityFacts} SecurityFacts */

/** The call's security state; replaced by `resetSecurity`. */
let status = new SecurityStatus(false);

/** @returns {SecurityStatus} */
export function securityStatus() {
  return status;
}

/**
 * A new call: plain rooms hide everything, as before encryption existed.
 * @param {boolean} e2ee
 */
export function resetSecurity(e2ee) {
  status = new SecurityStatus(e2ee);
  const dialog = /** @type {HTMLDialogElement} */ ($('security-dialog'));
  if (dialog.open && !e2ee) dialog.close();
  $('chat-e2ee-notice').hidden = !e2ee;
  renderSecurity();
}

/**
 * New facts from the key agreement.
 * @param {SecurityFacts} facts
 */
export function updateSecurity(facts) {
  if (status.update(facts)) renderSecurity();
}

/** Renders the indicator, the button and (if open) the dialog. */
export function renderSecurity() {
  const e2ee = status.e2ee;
  const state = status.state;
  const indicator = $('e2ee-indicator');
  const button = $('security-button');
  // A plain room looks as it did before encryption existed: the
  // indicator says "Not encrypted" but stays hidden.
  indicator.hidden = !e2ee;
  button.hidden = !e2ee;
  indicator.dataset.state = state;
  button.dataset.state = state;
  const text = status.text;
  if ($('e2ee-indicator-text').textContent !== text) $('e2ee-indicator-text').textContent = text;
  if (e2ee) renderDialog();
}

/** The dialog's contents; cheap enough to redo on every change. */
function renderDialog() {
  const snap = status.snapshot();
  const line = $('security-state');
  line.dataset.state = snap.state;
  line.textContent = snap.state === 'none' ? `${STATE_LABEL.none} yet: waiting for the keys` : STATE_LABEL[snap.state];
  const code = $('e2ee-code');
  if (code.textContent !== (snap.code ?? '')) code.textContent = snap.code ?? '';
  const verify = /** @type {HTMLButtonElement} */ ($('e2ee-verify'));
  verify.disabled = !snap.canVerify || snap.state === 'verified';
  verify.textContent = snap.state === 'verified' ? 'Verified' : 'Mark as verified';
  $('e2ee-member-count').textContent = String(snap.members.length);
  const list = $('e2ee-members');
  list.replaceChildren(
    ...snap.members.map((m) => {
      const li = document.createElement('li');
      li.className = m.badSig ? 'e2ee-member bad' : 'e2ee-member';
      const name = document.createElement('span');
      name.className = 'e2ee-member-name';
      name.textContent = m.self ? `${m.name} (you)` : m.name; // Never innerHTML: names are untrusted.
      const key = document.createElement('span');
      key.className = 'e2ee-member-key';
      key.textContent = m.badSig ? 'Identity not proven' : shortKey(m.idk);
      key.title = m.badSig ? 'This member’s key is not signed by their identity key' : 'Identity key';
      li.append(name, key);
      return li;
    }),
  );
  const bad = status.warnings;
  const warning = $('e2ee-warning');
  warning.hidden = bad.length === 0;
  warning.textContent = bad.length
    ? `Warning: ${bad.map((m) => m.name).join(', ')} could not prove their identity. Someone may be impersonating them.`
    : '';
}

/** Wires the button, the dialog's close and "Mark as verified". */
export function wireSecurity() {
  const dialog = /** @type {HTMLDialogElement} */ ($('security-dialog'));
  $('security-button').addEventListener('click', () => {
    renderDialog();
    dialog.showModal();
  });
  $('security-close').addEventListener('click', () => dialog.close());
  $('e2ee-verify').addEventListener('click', () => {
    if (status.markVerified()) renderSecurity();
  });
}
