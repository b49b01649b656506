// The recordings list, with no DOM: one row's cells (room, date, length,
// people, state) and the player link, and merging pages as "Load more"
// brings them (newest first, no recording twice). Tested under node
// (web/test/recording-list.test.mjs).

import { formatDuration } from './recording-player.js';

/** @typedef {import('./recording-api.js').RecordingView} RecordingView */

/**
 * What a row of the list shows.
 * @typedef {object} RecordingRow
 * @property {string} id
 * @property {string} room
 * @property {string} date
 * @property {string} duration
 * @property {number} people Distinct participants recorded.
 * @property {string} state
 * @property {string} href The player page.
 */

/**
 * How many different people a recording holds (a screen share and a
 * camera of one person are one person).
 * @param {RecordingView} r
 * @returns {number}
 */
export function peopleIn(r) {
  return new Set((r.files ?? []).map((f) => f.participant_id)).size;
}

/**
 * A recording's state in words. A stopped recording some of whose files
 * were cut short (their media node died) says so.
 * @param {RecordingView} r
 * @returns {string}
 */
export function stateLabel(r) {
  if (r.state === 'recording') return 'Recording now';
  if (r.state === 'finishing') return 'Finishing';
  const cut = (r.files ?? []).filter((f) => f.state === 'interrupted').length;
  if (cut > 0) return cut === 1 ? 'Ready (1 file cut short)' : `Ready (${cut} files cut short)`;
  return 'Ready';
}

/**
 * The player page of recording `id`. The room (`?room=`) comes along when
 * the list was opened for one, so the player sends the same owner key.
 * @param {string} id
 * @param {string | null} room
 * @returns {string}
 */
export function playerHref(id, room) {
  const path = `/recordings/${encodeURIComponent(id)}`;
  return room ? `${path}?room=${encodeURIComponent(room)}` : path;
}

/**
 * A row of the list.
 * @param {RecordingView} r
 * @param {string | null} room The room the list was opened for.
 * @param {(ms: number) => string} formatDate The page's date format.
 * @returns {RecordingRow}
 */
export function rowOf(r, room, formatDate) {
  return {
    id: r.id,
    room: r.room_name,
    date: formatDate(r.started_at_ms),
    duration: formatDuration(r.duration_ms),
    people: peopleIn(r),
    state: stateLabel(r),
    href: playerHref(r.id, room),
  };
}

/**
 * The list after one more page: what was shown, then the page's
 * recordings not shown yet (a recording that started at the page
 * boundary may come twice), newest first.
 * @param {RecordingView[]} shown
 * @param {RecordingView[]} page
 * @returns {RecordingView[]}
 */
export function mergePage(shown, page) {
  const ids = new Set(shown.map((r) => r.id));
  const merged = [...shown, ...page.filter((r) => !ids.has(r.id))];
  return merged.sort((a, b) => b.started_at_ms - a.started_at_ms);
}

/**
 * A date and time for the list, in the visitor's locale, e.g.
 * "7 Dec 2026, 14:05".
 * @param {number} ms
 * @param {string | undefined} [locale]
 * @returns {string}
 */
export function formatDate(ms, locale) {
  return new Date(ms).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}
