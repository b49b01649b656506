// Raising a hand: the "Raise hand" / "Lower hand" toolbar button, and the
// hand mark (with its place in the queue) on each tile of someone whose
// hand is up. The node keeps the time it was raised; every page orders
// hands by it (lib/moderation.js `handOrder`).

import * as proto from '../protocol.js';
import { $, icon } from './dom.js';
import { app } from './state.js';
import { sendToRoom } from './moderation-hooks.js';

/** @returns {boolean} Whether this participant's hand is up. */
function raised() {
  return typeof app.roomState.self?.hand_raised_at_ms === 'number';
}

/** The button's action: raise, or lower. */
export function toggleHand() {
  sendToRoom(proto.build.hand(!raised()));
}

/**
 * Re-renders the button and the tiles' hand marks. Tiles are the stage's
 * (ui/stage.js); a mark is one element added to a tile, so the stage's
 * own rendering is left as it is.
 */
export function renderHands() {
  const up = raised();
  const button = $('hand-button');
  /** @type {HTMLElement} */ (button.querySelector('.label')).textContent = up ? 'Lower hand' : 'Raise hand';
  button.classList.toggle('raised', up);
  const order = proto.handOrder(app.roomState.list()).map((p) => p.id);
  const me = app.roomState.participantId;
  for (const el of /** @type {NodeListOf<HTMLElement>} */ ($('stage').querySelectorAll(':scope > [data-key]'))) {
    const id = el.dataset.key === 'self' ? me : el.classList.contains('tile-person') ? el.dataset.key ?? null : null;
    const place = id === null ? -1 : order.indexOf(id);
    let mark = /** @type {HTMLElement | null} */ (el.querySelector(':scope > .tile-hand'));
    if (place < 0) {
      mark?.remove();
      continue;
    }
    if (!mark) {
      mark = document.createElement('span');
      mark.className = 'tile-hand';
      mark.setAttribute('role', 'img');
      el.append(mark);
    }
    const label = `Hand raised (${place + 1} of ${order.length})`;
    if (mark.getAttribute('aria-label') !== label) {
      mark.setAttribute('aria-label', label);
      mark.title = label;
      mark.replaceChildren(icon('hand'), String(place + 1));
    }
  }
}
