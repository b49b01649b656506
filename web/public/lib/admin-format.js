// How the admin page writes durations, times and its API paths. No DOM,
// so it is unit-tested in Node (web/test/charts.test.mjs).

/**
 * A duration as people say it: "45 s", "12 min 05 s", "1 h 05 min".
 * Seconds stay under an hour, so that an administrator comparing who
 * stayed how long (or checking a short meeting) reads the real figure,
 * not a rounded-down minute.
 * @param {number} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return s % 60 ? `${min} min ${String(s % 60).padStart(2, '0')} s` : `${min} min`;
  const h = Math.floor(min / 60);
  return `${h} h ${String(min % 60).padStart(2, '0')} min`;
}

/**
 * A time in the viewer's locale, date and time.
 * @param {number} ms
 * @returns {string}
 */
export function formatTime(ms) {
  return new Date(ms).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

/**
 * A day bucket's label ("6 Dec"), in UTC as the buckets are.
 * @param {number} ms
 * @returns {string}
 */
export function dayLabel(ms) {
  return new Date(ms).toLocaleDateString(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

/**
 * An hour bucket's label ("14:00"), in the viewer's time zone.
 * @param {number} ms
 * @returns {string}
 */
export function hourLabel(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/**
 * The path of a page of the meeting history.
 * @param {string} search Part of a room name; empty for all.
 * @param {number | null} before The previous page's `next_before`.
 * @returns {string}
 */
export function meetingsPath(search, before) {
  const q = new URLSearchParams();
  if (search.trim()) q.set('q', search.trim());
  if (before) q.set('before', String(before));
  const s = q.toString();
  return `/api/admin/meetings${s ? `?${s}` : ''}`;
}

/**
 * The path of a page of the signed-in user's own meetings (no search:
 * the list is short, newest first).
 * @param {number | null} before The previous page's `next_before`.
 * @returns {string}
 */
export function myMeetingsPath(before) {
  return before ? `/api/me/meetings?before=${before}` : '/api/me/meetings';
}

/**
 * One row of "My meetings" as the profile page shows it. A meeting still
 * under way says so instead of a duration that is still growing.
 * @param {{room_name: string, room_slug: string, started_at_ms: number,
 *   ended_at_ms: number | null, duration_ms: number, participants: number}} m
 * @returns {{when: string, name: string, href: string, duration: string, people: string}}
 */
export function myMeetingRow(m) {
  return {
    when: formatTime(m.started_at_ms),
    name: m.room_name,
    href: `/r/${encodeURIComponent(m.room_slug)}`,
    duration: m.ended_at_ms == null ? 'under way' : formatDuration(m.duration_ms),
    people: m.participants === 1 ? '1 person' : `${m.participants} people`,
  };
}
