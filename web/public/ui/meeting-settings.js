// Room-wide controls for hosts and moderators, in the participants panel:
// "Mute everyone", "Lock meeting" / "Unlock meeting", and the "Meeting
// settings" dialog with the switches "Lobby", "Speak mode", "Let muted
// people unmute themselves" and "Allow peer-to-peer calls". Each change is a `moderate` `settings` action;
// the switches show the room's policy as the node last sent it.

import * as proto from '../protocol.js';
import { $ } from './dom.js';
import { app } from './state.js';
import { sendToRoom } from './moderation-hooks.js';

/** @typedef {import('../protocol.js').RoomSettings} RoomSettings */

/** Each switch of the dialog and the setting it changes. */
const SWITCHES = /** @type {const} */ ([
  ['setting-lobby', 'lobby'],
  ['setting-speak-mode', 'speak_mode'],
  ['setting-self-unmute', 'allow_self_unmute'],
  ['setting-p2p', 'p2p'],
]);

/** What a switch shows for a setting an older node does not send. */
const DEFAULTS = /** @type {Partial<RoomSettings>} */ ({ p2p: true });

/** The policy version the switches show (they are only reset when it changes). */
let shown = -1;

/** Re-renders the controls from the policy and this participant's role. */
export function renderHostControls() {
  const mine = proto.moderates(proto.roleOf(app.roomState.self));
  const policy = app.roomState.policy;
  $('host-controls').hidden = !mine;
  $('lock-meeting').textContent = policy.settings.locked ? 'Unlock meeting' : 'Lock meeting';
  if (!mine && $('meeting-settings').open) $('meeting-settings').close();
  if (policy.version !== shown) {
    shown = policy.version;
    for (const [id, key] of SWITCHES) $(id).checked = policy.settings[key] ?? DEFAULTS[key] ?? false;
  }
}

/**
 * Sends one settings change.
 * @param {Partial<RoomSettings>} change
 */
function change(change) {
  return sendToRoom(proto.build.moderate(proto.act.settings(change)));
}

/** Wires the buttons and the dialog. */
export function wireMeetingSettings() {
  $('mute-everyone').addEventListener('click', () => sendToRoom(proto.build.moderate(proto.act.muteEveryone())));
  $('lock-meeting').addEventListener('click', () => change({ locked: !app.roomState.policy.settings.locked }));
  $('meeting-settings-open').addEventListener('click', () => {
    shown = -1;
    renderHostControls();
    $('meeting-settings').showModal();
  });
  $('meeting-settings-close').addEventListener('click', () => $('meeting-settings').close());
  for (const [id, key] of SWITCHES) {
    $(id).addEventListener('change', () => {
      const el = /** @type {HTMLInputElement} */ ($(id));
      if (!change({ [key]: el.checked })) el.checked = !el.checked;
    });
  }
}
