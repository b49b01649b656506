// The pre-join screen: the name, the device toggles and pickers, and the
// camera preview.

import * as proto from '../protocol.js';
import { $, showMessage, showScreen, storageGet, storageSet } from './dom.js';
import { UNSUPPORTED_TEXT, mediaTransformKind } from '../lib/e2ee-status.js';
import { app } from './state.js';
import { local, startMic, startCam, refreshDevices } from './devices.js';
import { play } from './stage.js';

/** Where the remembered display name is kept (a name, never a secret). */
export const NAME_KEY = 'veche.displayName';

/**
 * What the pre-join screen asks of the page.
 * @typedef {object} PrejoinHooks
 * @property {() => void} renderLocal Re-render everything that shows devices.
 * @property {() => void} join The person asked to join.
 */

/** @type {PrejoinHooks} */
export const prejoinHooks = {
  renderLocal: () => {},
  join: () => {},
};


/**
 * An end-to-end encrypted room on a browser that cannot encrypt media:
 * says so and stops before any device or connection is opened (its
 * frames would otherwise leave unencrypted or not at all).
 * @returns {boolean} True if the page refused.
 */
export function refuseUnencryptableBrowser() {
  if (!app.room?.e2ee || mediaTransformKind() !== null) return false;
  showMessage('This browser cannot join this meeting', UNSUPPORTED_TEXT);
  return true;
}

export async function showPrejoin() {
  $('prejoin-room-name').textContent = app.room?.name ?? 'meeting';
  $('prejoin-e2ee').hidden = !app.room?.e2ee;
  const input = $('display-name');
  input.value = app.displayName || storageGet(NAME_KEY) || '';
  showScreen('prejoin-screen');
  input.focus();
  prejoinHooks.renderLocal();
  const tasks = [];
  if (!local.mic) tasks.push(startMic());
  if (!local.cam && local.camWanted) tasks.push(startCam());
  await Promise.all(tasks);
  prejoinHooks.renderLocal();
  await refreshDevices();
}

/** @param {SubmitEvent} e */
export function onPrejoinSubmit(e) {
  e.preventDefault();
  const name = $('display-name').value.trim();
  const err = $('prejoin-error');
  const len = proto.codePointLength(name);
  if (len === 0 || len > proto.MAX_DISPLAY_NAME_CHARS) {
    err.textContent = len === 0 ? 'Enter your name to join.' : `Your name can be at most ${proto.MAX_DISPLAY_NAME_CHARS} characters.`;
    err.hidden = false;
    $('display-name').focus();
    return;
  }
  err.hidden = true;
  app.displayName = name;
  storageSet(NAME_KEY, name);
  prejoinHooks.join();
}
export function renderPreview() {
  const video = $('preview-video');
  const want = local.preview;
  if (video.srcObject !== want) {
    video.srcObject = want;
    if (want) play(video);
  }
  const avatar = $('preview-avatar');
  avatar.hidden = !!want;
  avatar.firstElementChild.textContent = proto.initials($('display-name').value || app.displayName || '?');
}

export function renderDeviceErrors() {
  const mic = $('prejoin-mic-error');
  mic.hidden = !local.micError;
  mic.textContent = local.micError;
  const cam = $('prejoin-cam-error');
  cam.hidden = !local.camError;
  cam.textContent = local.camError;
}
