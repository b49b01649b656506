// How the moderation views reach the call: one narrow hook that room.js
// sets, so the views need not import the call shell (ui/call.js imports
// views, and a view importing it back would be a cycle).

import { toast } from './dom.js';

/** @typedef {import('../protocol.js').ClientMessage} ClientMessage */

/**
 * @typedef {object} ModerationHooks
 * @property {(msg: ClientMessage) => boolean} send Sends on the joined
 *   session; false when there is none.
 */

/** @type {ModerationHooks} */
export const modHooks = { send: () => false };

/**
 * Sends a `moderate` or `hand` frame, or says why it cannot.
 * @param {ClientMessage} msg
 * @returns {boolean} Whether it went out.
 */
export function sendToRoom(msg) {
  if (modHooks.send(msg)) return true;
  toast('You are not connected to the meeting right now. Try again in a moment.');
  return false;
}
