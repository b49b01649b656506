// The recording player page (/recordings/{id}): loads the recording
// (with the page's `?share=` token, or the owner key of `?room=`), mounts
// the synced player (ui/recording-player.js), the per-file downloads and
// the one-file export, and for those who manage it "Share link" and
// "Delete recording". Requests and links: lib/recording-api.js.

import {
  deleteRecording,
  downloadUrl,
  exportUrl,
  getRecording,
  ownerOptionsFor,
  pageParams,
  recordingIdFromPath,
  refusalText,
  shareRecording,
} from './lib/recording-api.js';
import { fileNames, formatDuration } from './lib/recording-player.js';
import { formatDate, peopleIn, stateLabel } from './lib/recording-list.js';
import { mountPlayer, playerDebug, wirePlayer } from './ui/recording-player.js';

/** @typedef {import('./lib/recording-api.js').RecordingView} RecordingView */

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

const params = pageParams(location.search);
const id = recordingIdFromPath(location.pathname);

/** @returns {Storage | null} */
function storage() {
  try {
    return localStorage;
  } catch {
    return null;
  }
}

/**
 * Request options for this page: the owner key of the room it was opened
 * for, when this browser keeps one.
 * @param {string | null} [room]
 */
function options(room = params.room) {
  return ownerOptionsFor(room, storage());
}

/**
 * Shows why the recording cannot be shown.
 * @param {unknown} err
 */
function showRefusal(err) {
  const why = refusalText(err);
  $('player-status').textContent = '';
  $('player-error').hidden = false;
  $('player-error-text').textContent = why.text;
  const signIn = $('player-signin');
  signIn.hidden = !why.signIn;
  signIn.href = `/signin?return_to=${encodeURIComponent(location.pathname + location.search)}`;
}

/**
 * The list this page came from (or the visitor's whole list).
 * @param {RecordingView | null} view
 */
function listHref(view) {
  const room = params.room ?? (view?.can_manage ? view.room_slug : null);
  return room ? `/recordings?room=${encodeURIComponent(room)}` : '/recordings';
}

/**
 * The per-file download links and the export.
 * @param {RecordingView} view
 */
function renderDownloads(view) {
  const names = fileNames(view.files);
  const items = view.files.map((f, i) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = downloadUrl(f.url);
    a.download = '';
    a.textContent = names[i].download;
    const size = document.createElement('span');
    size.className = 'muted';
    size.textContent = ` ${formatDuration(f.duration_ms)}, ${megabytes(f.bytes)}`;
    li.append(a, size);
    return li;
  });
  $('downloads').replaceChildren(...items);
  $('export-row').hidden = !view.export_available;
  if (view.export_available) $('export-link').href = exportUrl(view, params.share);
}

/**
 * @param {number} bytes
 * @returns {string}
 */
function megabytes(bytes) {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * "Share link" and "Delete recording", for the room's owner and
 * administrators.
 * @param {RecordingView} view
 */
function wireManage(view) {
  $('manage').hidden = !view.can_manage;
  if (!view.can_manage) return;
  const room = params.room ?? view.room_slug;
  const fail = (/** @type {unknown} */ e) => {
    $('manage-error').hidden = false;
    $('manage-error').textContent = /** @type {Error} */ (e).message;
  };
  $('share-button').addEventListener('click', async () => {
    $('share-button').disabled = true;
    $('manage-error').hidden = true;
    try {
      const link = await shareRecording(view.id, Number($('share-hours').value), options(room));
      $('share-url').value = new URL(link.url, location.origin).href;
      $('share-expiry').textContent = `Works until ${formatDate(link.expires_at_ms)}.`;
      $('share-result').hidden = false;
      $('share-url').select();
    } catch (e) {
      fail(e);
    } finally {
      $('share-button').disabled = false;
    }
  });
  $('share-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('share-url').value);
      $('share-expiry').textContent = `Copied. ${$('share-expiry').textContent.replace(/^Copied\. /, '')}`;
    } catch {
      $('share-url').select();
    }
  });
  $('delete-button').addEventListener('click', () => $('delete-dialog').showModal());
  $('delete-cancel').addEventListener('click', () => $('delete-dialog').close());
  $('delete-form').addEventListener('submit', async (/** @type {Event} */ e) => {
    e.preventDefault();
    $('delete-confirm').disabled = true;
    try {
      await deleteRecording(view.id, options(room));
      location.assign(listHref(view));
    } catch (err) {
      $('delete-dialog').close();
      fail(err);
    } finally {
      $('delete-confirm').disabled = false;
    }
  });
}

/** @param {RecordingView} view */
function render(view) {
  const date = formatDate(view.started_at_ms);
  $('player-title').textContent = `Recording of ${view.room_name}`;
  document.title = `${view.room_name}, ${date} · Veche`;
  const people = peopleIn(view);
  $('player-meta').textContent = [
    date,
    formatDuration(view.duration_ms),
    people === 1 ? '1 person' : `${people} people`,
    `started by ${view.started_by_name}`,
    stateLabel(view),
  ].join(' · ');
  $('player-status').textContent =
    view.files.length === 0
      ? 'Nothing was recorded in this recording.'
      : view.state === 'recording'
        ? 'Still being recorded: reload the page for the latest part.'
        : '';
  if (!params.share) {
    $('back-to-list').href = listHref(view);
    $('back-to-list').hidden = false;
  }
  $('player').hidden = false;
  mountPlayer(view.files, view.duration_ms);
  renderDownloads(view);
  wireManage(view);
}

async function main() {
  wirePlayer();
  /** @type {any} */ (window).veche = { player: playerDebug };
  if (!id) {
    showRefusal({ status: 404 });
    return;
  }
  try {
    render(await getRecording(id, params.share, options()));
  } catch (e) {
    showRefusal(e);
  }
}

void main();
