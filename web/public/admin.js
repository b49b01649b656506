// The administration page: rooms and people online, charts by day and by
// hour, the room history with search, one meeting's participants with
// its exports, and the users. Reads the admin JSON (docs/protocol.md);
// the chart geometry is lib/charts.js, drawn here as plain SVG.

import { barChart } from './lib/charts.js';
import { dayLabel, formatDuration, formatTime, hourLabel, meetingsPath } from './lib/admin-format.js';

/**
 * @typedef {object} MeetingView
 * @property {number} id
 * @property {string} room_name
 * @property {number} started_at_ms
 * @property {number | null} ended_at_ms
 * @property {number} duration_ms
 * @property {number} participants
 */
/**
 * @typedef {object} Bucket
 * @property {number} start_ms
 * @property {number} meetings
 * @property {number} participants
 */
/**
 * @typedef {object} ParticipantView
 * @property {string} display_name
 * @property {string | null} email
 * @property {boolean} guest
 * @property {number} joined_at_ms
 * @property {number | null} left_at_ms
 * @property {number} duration_ms
 */

const SVG = 'http://www.w3.org/2000/svg';

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

/**
 * GETs JSON; throws an Error with the server's message on failure.
 * @param {string} path
 * @returns {Promise<any>}
 */
async function getJson(path) {
  const resp = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error(body?.message ?? `The server answered ${resp.status}.`);
    /** @type {any} */ (err).status = resp.status;
    throw err;
  }
  return body;
}

/** @param {string | null} text */
function showError(text) {
  $('admin-error').hidden = !text;
  $('admin-error').textContent = text ?? '';
}

/**
 * An SVG element with attributes.
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function svg(name, attrs) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG, name));
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * Draws a bar chart of participants per bucket into `container`.
 * @param {HTMLElement} container
 * @param {Bucket[]} buckets
 * @param {(ms: number) => string} label
 * @param {string} title
 */
function drawChart(container, buckets, label, title) {
  const labels = buckets.map((b) => label(b.start_ms));
  const chart = barChart(buckets.map((b) => b.participants), labels);
  const root = svg('svg', { viewBox: `0 0 ${chart.width} ${chart.height}`, role: 'img', 'aria-label': title });
  for (const t of chart.ticks) {
    root.append(svg('line', { class: 'grid', x1: chart.plot.left, x2: chart.plot.right, y1: t.y, y2: t.y }));
    const text = svg('text', { x: chart.plot.left - 6, y: t.y + 4, 'text-anchor': 'end' });
    text.textContent = String(t.value);
    root.append(text);
  }
  chart.bars.forEach((b, i) => {
    const rect = svg('rect', { class: 'bar', x: b.x, y: b.y, width: b.width, height: b.height });
    const tip = svg('title', {});
    tip.textContent = `${b.label}: ${b.value} participants, ${buckets[i].meetings} meetings`;
    rect.append(tip);
    root.append(rect);
  });
  for (const a of chart.axis) {
    const text = svg('text', { x: a.x, y: chart.height - 6, 'text-anchor': 'middle' });
    text.textContent = a.text;
    root.append(text);
  }
  container.replaceChildren(root);
}

/**
 * A table row of text cells (the first may be a node).
 * @param {(string | Node)[]} cells
 * @returns {HTMLTableRowElement}
 */
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    td.append(c);
    tr.append(td);
  }
  return tr;
}

/** @param {MeetingView} m */
function meetingLink(m) {
  const a = document.createElement('a');
  a.href = `#meeting-${m.id}`;
  a.textContent = m.room_name;
  a.addEventListener('click', (e) => {
    e.preventDefault();
    showMeeting(m.id).catch((err) => showError(err.message));
  });
  return a;
}

/** @param {MeetingView} m */
function durationText(m) {
  return m.ended_at_ms === null ? `${formatDuration(m.duration_ms)} (ongoing)` : formatDuration(m.duration_ms);
}

async function loadOverview() {
  const o = await getJson('/api/admin/overview');
  $('rooms-online').textContent = String(o.rooms_online);
  $('participants-online').textContent = String(o.participants_online);
  $('users-online').textContent = String(o.users_online);
  $('live-rooms').replaceChildren(
    ...o.live.map((/** @type {MeetingView} */ m) => {
      const li = document.createElement('li');
      li.append(meetingLink(m), ` · ${m.participants} joined · since ${formatTime(m.started_at_ms)}`);
      return li;
    }),
  );
  drawChart($('chart-by-day'), o.by_day, dayLabel, 'Participants by day');
  drawChart($('chart-by-hour'), o.by_hour, hourLabel, 'Participants by hour');
}

/** The history's state: the search shown and the cursor of the next page. */
const history = { search: '', next: /** @type {number | null} */ (null) };

/** @param {boolean} more Append the next page rather than start over. */
async function loadHistory(more) {
  const page = await getJson(meetingsPath(history.search, more ? history.next : null));
  const body = $('history').tBodies[0];
  const rows = page.meetings.map((/** @type {MeetingView} */ m) =>
    row([formatTime(m.started_at_ms), meetingLink(m), durationText(m), String(m.participants)]));
  if (more) body.append(...rows);
  else body.replaceChildren(...rows);
  history.next = page.next_before;
  $('older').hidden = !history.next;
  $('history-empty').hidden = body.rows.length > 0;
}

/** @param {number} id */
async function showMeeting(id) {
  const d = await getJson(`/api/admin/meetings/${id}`);
  const m = /** @type {MeetingView} */ (d.meeting);
  $('meeting-title').textContent = m.room_name;
  $('meeting-summary').textContent =
    `${formatTime(m.started_at_ms)} · ${durationText(m)} · ${m.participants} participants`;
  $('download-list').href = `/api/admin/meetings/${id}/participants.csv`;
  $('export-chat').href = `/api/admin/meetings/${id}/chat`;
  $('participants').tBodies[0].replaceChildren(
    ...d.participants.map((/** @type {ParticipantView} */ p) => row([
      p.guest ? `${p.display_name} (guest)` : p.display_name,
      p.email ?? '',
      formatTime(p.joined_at_ms),
      p.left_at_ms === null ? `${formatDuration(p.duration_ms)} (still in)` : formatDuration(p.duration_ms),
    ])),
  );
  $('meeting').hidden = false;
  $('meeting').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

async function loadUsers() {
  try {
    const users = await getJson('/api/admin/users');
    const list = Array.isArray(users) ? users : (users.users ?? []);
    $('users').replaceChildren(
      ...list.map((/** @type {{ email: string, display_name: string, is_admin: boolean }} */ u) => {
        const li = document.createElement('li');
        li.textContent = `${u.display_name} <${u.email}>${u.is_admin ? ' · administrator' : ''}`;
        return li;
      }),
    );
  } catch (err) {
    // Until the user-management route is installed, say so plainly.
    if (/** @type {any} */ (err).status === 404) $('users-missing').hidden = false;
    else throw err;
  }
}

async function start() {
  const me = await getJson('/api/me');
  if (!me.user) {
    showError('Sign in as an administrator to see this page.');
    return;
  }
  if (!me.user.is_admin) {
    showError('Only administrators can see this page.');
    return;
  }
  $('admin-content').hidden = false;
  $('search-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    history.search = $('search').value;
    loadHistory(false).catch((err) => showError(err.message));
  });
  $('older').addEventListener('click', () => {
    loadHistory(true).catch((err) => showError(err.message));
  });
  await Promise.all([loadOverview(), loadHistory(false), loadUsers()]);
}

start().catch((err) => showError(err.message));
