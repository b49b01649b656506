// Small DOM helpers shared by every view of the room page: element lookup,
// screens, the toast and banner, icons, and remembered settings.

/**
 * An element of room.html by id. Typed loosely: the ids are fixed by the
 * page and each caller knows what it looked up.
 * @param {string} id
 * @returns {any}
 */
export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/**
 * Reads a remembered setting; null in private mode.
 * @param {string} key
 * @returns {string | null}
 */
export function storageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * Remembers a setting (never a secret or token).
 * @param {string} key
 * @param {string} value
 */
export function storageSet(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode; not remembering is fine.
  }
}

/**
 * Shows one `.screen` section and hides the others.
 * @param {string} id
 */
export function showScreen(id) {
  for (const s of document.querySelectorAll('.screen')) {
    /** @type {HTMLElement} */ (s).hidden = s.id !== id;
  }
}

/**
 * Shows a full-page message (invalid link, left, ended).
 * @param {string} title
 * @param {string} text
 * @param {{label: string, run: () => void} | null} [action]
 */
export function showMessage(title, text, action = null) {
  $('message-title').textContent = title;
  $('message-text').textContent = text;
  const btn = $('message-action');
  btn.hidden = !action;
  if (action) {
    btn.textContent = action.label;
    btn.onclick = action.run;
  }
  document.title = `${title} · Veche`;
  showScreen('message-screen');
  if (action) btn.focus();
}

/** @type {ReturnType<typeof setTimeout> | null} */
let toastTimer = null;

/**
 * Shows a short notice for 6 s.
 * @param {string} text
 */
export function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  if (toastTimer) clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

/**
 * Shows the connection banner, or hides it (null).
 * @param {string | null} text
 */
export function setBanner(text) {
  const el = $('banner');
  el.hidden = !text;
  el.textContent = text ?? '';
}

/**
 * An `<svg><use href="#icon-…"></svg>`, decorative.
 * @param {string} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', `#icon-${name}`);
  svg.append(use);
  return svg;
}

/**
 * An icon with an accessible name.
 * @param {string} name
 * @param {string} label
 * @returns {HTMLSpanElement}
 */
export function labelledIcon(name, label) {
  const span = document.createElement('span');
  span.className = `state-icon state-${name}`;
  span.setAttribute('role', 'img');
  span.setAttribute('aria-label', label);
  span.title = label;
  span.append(icon(name));
  return span;
}
