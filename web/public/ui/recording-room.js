// Recording in the room: "Start recording" / "Stop recording" in the
// call's header for hosts and moderators (a `moderate` action; the server
// refuses anyone else, and the refusal comes back as an `error` the call
// shows), the indicator everyone sees while the room's policy says a
// recording runs ("Recording · started by Ann", role="status", with a red
// dot), an announcement when that changes, and the owner's "Recordings"
// links to the room's recordings. The decisions are in the DOM-free
// lib/recording-room.js.

import * as proto from '../protocol.js';
import { recordingAnnouncement, recordingButton, recordingStatusText } from '../lib/recording-room.js';
import { $, toast } from './dom.js';
import { app } from './state.js';
import { sendToRoom } from './moderation-hooks.js';

/** @typedef {import('../lib/types.js').ActiveRecording} ActiveRecording */

/**
 * The recording last shown in this call; undefined before the call's
 * first policy (joining a meeting that records is announced as such).
 * @type {ActiveRecording | null | undefined}
 */
let shown;

/** How long a sent start or stop keeps the buttons disabled unless a new policy comes first, in ms. */
const PENDING_MS = 3000;
/** The policy version a start or stop was sent under, and until when it waits for a newer one. */
const pending = { version: -1, until: 0 };

/** Re-renders the buttons and the indicator from the room's policy. */
export function renderRecording() {
  const policy = app.roomState.policy;
  const rec = policy.recording ?? null;
  const button = app.connected ? recordingButton(proto.roleOf(app.roomState.self), policy) : null;
  // The server cannot record an end-to-end encrypted meeting (it refuses).
  $('record-start').hidden = button !== 'start' || !!app.room?.e2ee;
  $('record-stop').hidden = button !== 'stop';
  // A second click while the first is on its way would only be refused.
  const waiting = policy.version === pending.version && Date.now() < pending.until;
  $('record-start').disabled = waiting;
  $('record-stop').disabled = waiting;
  const text = recordingStatusText(rec);
  const indicator = $('recording-indicator');
  if (text === null) {
    if (indicator.textContent !== '') indicator.replaceChildren();
  } else if ($('recording-text')?.textContent !== text) {
    const dot = document.createElement('span');
    dot.className = 'rec-dot';
    dot.setAttribute('aria-hidden', 'true');
    const words = document.createElement('span');
    words.id = 'recording-text';
    words.textContent = text;
    indicator.replaceChildren(dot, words);
  }
  if (app.connected) {
    const say = recordingAnnouncement(shown ?? null, rec, shown === undefined);
    if (say) toast(say);
    shown = rec;
  }
}

/** A new call starts: its first policy says whether the meeting records. */
export function resetRecording() {
  shown = undefined;
}

/**
 * The room's recordings page, for its owner (this browser's owner key
 * for the room is sent from there).
 * @returns {string}
 */
function recordingsHref() {
  return `/recordings?room=${encodeURIComponent(app.slug ?? '')}`;
}

/** Shows the owner's "Recordings" links once the room is loaded. */
export function showRecordingLinks() {
  const owner = !!app.room?.you_own;
  for (const id of ['prejoin-recordings', 'call-recordings']) {
    const a = /** @type {HTMLAnchorElement} */ ($(id));
    a.hidden = !owner;
    a.href = recordingsHref();
  }
}

/**
 * Sends a start or stop; the buttons wait for the policy it brings (or a
 * refusal's moment) before another can be sent.
 * @param {import('../lib/types.js').ModAction} action
 */
function send(action) {
  if (!sendToRoom(proto.build.moderate(action))) return;
  pending.version = app.roomState.policy.version;
  pending.until = Date.now() + PENDING_MS;
  renderRecording();
  setTimeout(renderRecording, PENDING_MS + 50);
}

/** Wires the two buttons. */
export function wireRecording() {
  $('record-start').addEventListener('click', () => send(proto.act.startRecording()));
  $('record-stop').addEventListener('click', () => send(proto.act.stopRecording()));
}
