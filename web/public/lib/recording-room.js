// Recording, as the room page shows it, with no DOM: whether this
// participant is offered "Start recording" / "Stop recording", the text of
// the indicator everyone sees while the room's policy says a recording
// runs, and what to announce when that changes. The server decides (only a
// host or a moderator may start or stop; lib/moderation.js's rules mirror
// it); this module only keeps the page from offering what would be refused.
// Tested under node (web/test/recording-room.test.mjs).

import { moderates } from './moderation.js';

/** @typedef {import('./types.js').Role} Role */
/** @typedef {import('./types.js').PolicyView} PolicyView */
/** @typedef {import('./types.js').ActiveRecording} ActiveRecording */

/**
 * Which recording button this participant sees: none unless they host or
 * moderate; then "Start recording" while nothing records and "Stop
 * recording" while something does.
 * @param {Role} role
 * @param {PolicyView} policy
 * @returns {'start' | 'stop' | null}
 */
export function recordingButton(role, policy) {
  if (!moderates(role)) return null;
  return policy.recording ? 'stop' : 'start';
}

/**
 * The indicator's text while a recording runs ("Recording · started by
 * Ann"), or null when none does.
 * @param {ActiveRecording | null | undefined} rec
 * @returns {string | null}
 */
export function recordingStatusText(rec) {
  if (!rec) return null;
  const who = rec.started_by_name.trim();
  return who ? `Recording · started by ${who}` : 'Recording';
}

/**
 * What to announce when the room's recording changes from `before` to
 * `after` (by id), or null when nothing changed. `joining` is true for the
 * first policy of a call: someone who joins a meeting being recorded is
 * told so. The stop announcement avoids the word "Recording" so that only
 * the indicator (role="status") carries it while a recording runs.
 * @param {ActiveRecording | null | undefined} before
 * @param {ActiveRecording | null | undefined} after
 * @param {boolean} joining
 * @returns {string | null}
 */
export function recordingAnnouncement(before, after, joining) {
  const was = before?.id ?? null;
  const now = after?.id ?? null;
  if (was === now) return null;
  if (now === null) return joining ? null : 'This meeting is no longer being recorded';
  if (joining) return 'This meeting is being recorded';
  const who = after?.started_by_name.trim();
  return who ? `${who} started recording this meeting` : 'This meeting is being recorded';
}
