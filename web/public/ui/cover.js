// The room's cover on the page: shown on the pre-join screen (image, title,
// description) and behind the tiles that have no video, and edited there by
// the room's owner ("Cover image", "Cover title", "Cover description",
// "Save cover", "Remove cover image"). The rules and requests are in the
// DOM-free lib/covers.js.

import {
  coverFileProblem,
  coverTextProblem,
  cssUrl,
  hasCover,
  removeCoverImage,
  setCoverText,
  uploadCoverImage,
} from '../lib/covers.js';
import { $ } from './dom.js';
import { app } from './state.js';
import { ownerOptions } from './passes.js';

/** Shows the room's current cover wherever the page has one. */
export function renderCover() {
  const cover = app.room?.cover;
  const box = $('prejoin-cover');
  box.hidden = !hasCover(cover);
  const img = /** @type {HTMLImageElement} */ ($('prejoin-cover-image'));
  const url = cover?.image_url ?? '';
  img.hidden = !url;
  if (url && img.getAttribute('src') !== url) img.src = url;
  if (!url) img.removeAttribute('src');
  img.alt = cover?.title || 'Meeting cover';
  if (cover?.image_width && cover.image_height) {
    img.width = cover.image_width;
    img.height = cover.image_height;
  }
  const title = $('prejoin-cover-title');
  title.textContent = cover?.title ?? '';
  title.hidden = !cover?.title;
  const description = $('prejoin-cover-description');
  description.textContent = cover?.description ?? '';
  description.hidden = !cover?.description;
  // Behind the tiles without video (style.css: .stage.has-cover .avatar).
  const stage = $('stage');
  stage.classList.toggle('has-cover', !!url);
  if (url) stage.style.setProperty('--cover-image', cssUrl(url));
  else stage.style.removeProperty('--cover-image');
  // The owner's editor.
  const editor = $('cover-editor');
  editor.hidden = !app.room?.you_own;
  $('cover-remove').hidden = !url;
}

/** Fills the editor's fields from the current cover. */
function fillEditor() {
  const cover = app.room?.cover;
  /** @type {HTMLInputElement} */ ($('cover-title')).value = cover?.title ?? '';
  /** @type {HTMLTextAreaElement} */ ($('cover-description')).value = cover?.description ?? '';
}

/**
 * Shows `text` as the editor's outcome: an error (role="alert") or, with
 * `ok`, a status.
 * @param {string} text
 * @param {boolean} [ok]
 */
function say(text, ok = false) {
  const err = $('cover-error');
  err.textContent = ok ? '' : text;
  err.hidden = ok || !text;
  const status = $('cover-status');
  status.textContent = ok ? text : '';
}

/** @param {SubmitEvent} e */
async function onSave(e) {
  e.preventDefault();
  if (!app.room) return;
  const slug = app.room.slug;
  const fileInput = /** @type {HTMLInputElement} */ ($('cover-file'));
  const file = fileInput.files?.[0] ?? null;
  const title = /** @type {HTMLInputElement} */ ($('cover-title')).value;
  const description = /** @type {HTMLTextAreaElement} */ ($('cover-description')).value;
  const problem = (file && coverFileProblem(file)) || coverTextProblem(title, description);
  if (problem) {
    say(problem);
    return;
  }
  const save = /** @type {HTMLButtonElement} */ ($('cover-save'));
  save.disabled = true;
  try {
    let room = app.room;
    if (file) room = await uploadCoverImage(slug, file, ownerOptions());
    const cover = room.cover;
    if ((cover?.title ?? '') !== title.trim() || (cover?.description ?? '') !== description.trim()) {
      room = await setCoverText(slug, { title, description }, ownerOptions());
    }
    app.room = { ...app.room, cover: room.cover };
    fileInput.value = '';
    renderCover();
    fillEditor();
    say('Cover saved', true);
  } catch (err) {
    say(/** @type {Error} */ (err).message);
  } finally {
    save.disabled = false;
  }
}

async function onRemove() {
  if (!app.room) return;
  try {
    const room = await removeCoverImage(app.room.slug, ownerOptions());
    app.room = { ...app.room, cover: room.cover };
    renderCover();
    say('Cover image removed', true);
  } catch (err) {
    say(/** @type {Error} */ (err).message);
  }
}

/** Wires the owner's editor; call once, after the room is loaded. */
export function wireCover() {
  $('cover-editor').addEventListener('submit', (/** @type {Event} */ e) => void onSave(/** @type {SubmitEvent} */ (e)));
  $('cover-remove').addEventListener('click', () => void onRemove());
  $('cover-file').addEventListener('change', () => {
    const file = /** @type {HTMLInputElement} */ ($('cover-file')).files?.[0];
    say(file ? coverFileProblem(file) ?? '' : '');
  });
  fillEditor();
  renderCover();
}
