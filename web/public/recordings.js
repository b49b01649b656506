// The recordings page (/recordings): every recording the visitor may see,
// newest first, or one room's (`?room={slug}`, opened from the room by its
// owner, whose owner key this browser may keep), with "Load more" paging.
// The requests and the rows are in the DOM-free lib/recording-api.js and
// lib/recording-list.js.

import { listRecordings, ownerOptionsFor, pageParams, refusalText } from './lib/recording-api.js';
import { formatDate, mergePage, rowOf } from './lib/recording-list.js';

/** @typedef {import('./lib/recording-api.js').RecordingView} RecordingView */

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

const params = pageParams(location.search);
/** The list so far, and where the next page starts (null: no more). */
const list = {
  /** @type {RecordingView[]} */
  shown: [],
  /** @type {number | null} */
  next: null,
};

/** @returns {Storage | null} */
function storage() {
  try {
    return localStorage;
  } catch {
    return null;
  }
}

/**
 * A table cell with text, or with a link; `label` names the column on a
 * phone, where each row is a card.
 * @param {string} label
 * @param {string} text
 * @param {string} [href]
 * @returns {HTMLTableCellElement}
 */
function cell(label, text, href) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (href) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    td.append(a);
  } else {
    td.textContent = text;
  }
  return td;
}

/** Renders the rows, the status line and "Load more". */
function render() {
  const rows = list.shown.map((r) => {
    const row = rowOf(r, params.room, (ms) => formatDate(ms));
    const tr = document.createElement('tr');
    tr.dataset.recording = row.id;
    const watch = cell('', 'Watch', row.href);
    watch.querySelector('a')?.setAttribute('aria-label', `Watch ${row.room}, ${row.date}`);
    tr.append(
      cell('Room', row.room),
      cell('Date', row.date),
      cell('Duration', row.duration),
      cell('People', String(row.people)),
      cell('State', row.state),
      watch,
    );
    return tr;
  });
  $('recordings-body').replaceChildren(...rows);
  $('recordings').hidden = rows.length === 0;
  $('recordings-status').textContent = rows.length === 0 ? 'No recordings yet.' : `${rows.length} shown${list.next === null ? '' : ', more below'}.`;
  $('load-more').hidden = list.next === null;
  if (params.room && list.shown[0]) {
    $('recordings-room').textContent = `Room: ${list.shown[0].room_name}`;
    $('recordings-room').hidden = false;
  }
}

/**
 * Shows why the list cannot be shown.
 * @param {unknown} err
 */
function showRefusal(err) {
  const why = refusalText(err);
  $('recordings-error').hidden = false;
  $('recordings-error-text').textContent = why.text;
  const signIn = $('recordings-signin');
  signIn.hidden = !why.signIn;
  signIn.href = `/signin?return_to=${encodeURIComponent(location.pathname + location.search)}`;
  $('recordings-status').textContent = '';
}

/** Loads the next page (the first when nothing is shown). */
async function loadMore() {
  const button = $('load-more');
  button.disabled = true;
  try {
    const before = list.shown.length === 0 ? null : list.next;
    const page = await listRecordings({ room: params.room, before }, ownerOptionsFor(params.room, storage()));
    list.shown = mergePage(list.shown, page.recordings);
    list.next = page.recordings.length === 0 ? null : page.next_before;
    $('recordings-error').hidden = true;
    render();
  } catch (err) {
    showRefusal(err);
  } finally {
    button.disabled = false;
  }
}

$('load-more').addEventListener('click', () => void loadMore());
void loadMore();
