// Moderation as it concerns this participant: the alert naming who did
// what ("Ann muted your microphone", with "Unmute" when asked to), the
// local devices following the room's policy (a held or silenced device is
// turned off here too, so the buttons tell the truth), and the microphone,
// camera and screen buttons disabled, with the reason, while the policy
// does not let this participant turn them on (speak mode, or a hold the
// room does not let them lift). The node withholds the media anyway.

import * as proto from '../protocol.js';
import { $, toast } from './dom.js';
import { app } from './state.js';
import { local, stopCam } from './devices.js';
import { controlHooks, stopScreen, toggleMic } from './controls.js';
import { sendToRoom } from './moderation-hooks.js';

/** @typedef {import('../protocol.js').MediaGroup} MediaGroup */
/** @typedef {import('../protocol.js').ModeratedMessage} ModeratedMessage */

/** What this page remembers of moderation between messages. */
export const selfModeration = {
  /** Who removed us (from the `removed` notice), for the page after the close. */
  removedBy: /** @type {string | null} */ (null),
  /** Whether that removal bans us. */
  banned: false,
  /**
   * Groups we asked to lift ourselves (`unmute_self`), with the policy
   * version we asked under: not turned off again until a newer policy says
   * whether the server agreed.
   * @type {Map<MediaGroup, number>}
   */
  unmuting: new Map(),
};

/** The buttons of each group. */
const BUTTONS = /** @type {const} */ ([
  ['microphone', 'mic-button'],
  ['camera', 'cam-button'],
  ['screen', 'screen-button'],
]);

/** @returns {proto.Limits} */
function limits() {
  return proto.limitsFor(app.roomState.policy, app.roomState.participantId, proto.roleOf(app.roomState.self));
}

/**
 * Whether a local device is on.
 * @param {MediaGroup} group
 */
function isOn(group) {
  if (group === 'microphone') return !!local.mic && local.mic.enabled;
  if (group === 'camera') return !!local.cam;
  return !!local.screen;
}

/**
 * Turns one local device off, as the person's own button would.
 * @param {MediaGroup} group
 * @returns {Promise<boolean>} Whether anything changed.
 */
async function turnOff(group) {
  if (!isOn(group)) return false;
  if (group === 'microphone' && local.mic) {
    local.micWanted = false;
    local.mic.enabled = false;
  } else if (group === 'camera') {
    local.camWanted = false;
    await stopCam();
  } else {
    stopScreen();
    return false; // stopScreen reports the change itself.
  }
  return true;
}

/**
 * Turns off whatever the policy withholds (held, or silenced by speak
 * mode), except a group we are lifting ourselves under this policy
 * version. Runs on every room change.
 */
export async function followPolicy() {
  if (!app.connected) return;
  const lim = limits();
  const version = app.roomState.policy.version;
  let changed = false;
  for (const [group] of BUTTONS) {
    const asked = selfModeration.unmuting.get(group);
    if (asked !== undefined && asked !== version) selfModeration.unmuting.delete(group);
    if (selfModeration.unmuting.has(group)) continue;
    if (lim.silenced || lim.held[group] !== undefined) changed = (await turnOff(group)) || changed;
  }
  if (changed) controlHooks.changed();
}

/** Disables the buttons of devices the policy keeps off, and says why. */
export function renderSelfLimits() {
  const lim = limits();
  /** @type {string | null} */
  let note = null;
  for (const [group, id] of BUTTONS) {
    const why = app.connected && !isOn(group) ? proto.blockedReason(lim, group) : null;
    const button = $(id);
    button.disabled = why !== null;
    if (why !== null) {
      button.title = why;
      button.setAttribute('aria-describedby', 'speak-note');
      note ??= why;
    } else {
      button.removeAttribute('aria-describedby');
    }
  }
  $('speak-note').textContent = note ?? '';
  $('speak-note').hidden = note === null;
}

/**
 * Wraps a device button: turning a device on that the policy keeps off
 * explains why instead; one the room lets us lift ourselves first sends
 * `unmute_self`. Turning off is always allowed.
 * @param {MediaGroup} group
 * @param {() => Promise<void> | void} toggle
 * @returns {() => Promise<void>}
 */
export function guarded(group, toggle) {
  return async () => {
    if (!isOn(group) && app.connected) {
      const lim = limits();
      const why = proto.blockedReason(lim, group);
      if (why !== null) {
        toast(why);
        return;
      }
      if (lim.held[group] !== undefined) {
        if (!sendToRoom(proto.build.moderate(proto.act.unmuteSelf(group)))) return;
        selfModeration.unmuting.set(group, app.roomState.policy.version);
      }
    }
    await toggle();
  };
}

/**
 * A `moderated` notice: the alert naming who, and our devices follow.
 * @param {ModeratedMessage} m
 */
export async function onModerated(m) {
  showAlert(proto.noticeText(m), m.notice === 'asked_to_unmute');
  if (m.notice === 'removed') {
    selfModeration.removedBy = m.by_name;
    selfModeration.banned = m.ban;
  }
  /** @type {MediaGroup[]} */
  const off = m.notice === 'muted' ? [m.group] : m.notice === 'speak_revoked' ? ['microphone', 'camera', 'screen'] : [];
  let changed = false;
  for (const g of off) {
    selfModeration.unmuting.delete(g);
    changed = (await turnOff(g)) || changed;
  }
  if (changed) controlHooks.changed();
}

/**
 * Shows the alert (role="alert" announces it).
 * @param {string} text
 * @param {boolean} offerUnmute Show "Unmute" (the microphone is off and a
 *   moderator asks us to turn it on).
 */
function showAlert(text, offerUnmute) {
  $('mod-alert').hidden = false;
  $('mod-alert-text').textContent = text;
  $('mod-alert-unmute').hidden = !offerUnmute || isOn('microphone');
}

/** Hides the alert. */
function hideAlert() {
  $('mod-alert').hidden = true;
  $('mod-alert-text').textContent = '';
}

/** Wires the alert's buttons. */
export function wireSelfModeration() {
  $('mod-alert-close').addEventListener('click', hideAlert);
  $('mod-alert-unmute').addEventListener('click', async () => {
    hideAlert();
    if (!isOn('microphone')) await guarded('microphone', toggleMic)();
  });
}

/** Forgets the last call's moderation (a new call starts). */
export function resetSelfModeration() {
  selfModeration.removedBy = null;
  selfModeration.banned = false;
  selfModeration.unmuting.clear();
  hideAlert();
}
