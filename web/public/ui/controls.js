// The call's controls: microphone, camera and screen buttons, the side
// panels (participants, chat, settings) and the copy-link button.

import { $, toast } from './dom.js';
import { app } from './state.js';
import { local, startMic, startCam, stopCam, refreshDevices } from './devices.js';
import { layoutTiles } from './stage.js';
import { chat, scrollChatToBottom, renderChatMeta } from './chat-view.js';

/**
 * What the controls ask of the call.
 * @typedef {object} ControlHooks
 * @property {() => void} changed Devices changed: send the media state, re-render.
 * @property {(stream: MediaStream) => void} addScreen Start sending a screen share.
 * @property {() => void} removeScreen Stop sending it.
 */

/** @type {ControlHooks} */
export const controlHooks = {
  changed: () => {},
  addScreen: () => {},
  removeScreen: () => {},
};

/** Which side panels are open. */
export const panels = { participants: false, chat: false, settings: false };

export async function toggleMic() {
  if (local.mic) {
    local.micWanted = !local.micWanted;
    local.mic.enabled = local.micWanted;
  } else {
    local.micWanted = true;
    if (!(await startMic())) toast(local.micError);
  }
  controlHooks.changed();
}

export async function toggleCam() {
  if (local.cam) {
    local.camWanted = false;
    await stopCam();
  } else {
    local.camWanted = true;
    if (!(await startCam())) {
      local.camWanted = false;
      toast(local.camError);
    }
  }
  controlHooks.changed();
}

export async function toggleScreen() {
  if (local.screen) {
    stopScreen();
    return;
  }
  if (!navigator.mediaDevices?.getDisplayMedia) {
    toast('Screen sharing is not supported in this browser.');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  } catch (e) {
    const name = /** @type {any} */ (e)?.name;
    if (name === 'TypeError') {
      try {
        stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
      } catch {
        stream = null;
      }
    } else if (name !== 'NotAllowedError' && name !== 'AbortError') {
      toast('Could not share your screen.');
    }
    if (!stream) return;
  }
  local.screen = stream;
  const video = stream.getVideoTracks()[0];
  // The browser's own "Stop sharing" button ends the track.
  video?.addEventListener('ended', () => {
    if (local.screen === stream) stopScreen();
  });
  controlHooks.addScreen(stream);
  controlHooks.changed();
}

export function stopScreen() {
  const stream = local.screen;
  local.screen = null;
  controlHooks.removeScreen();
  stream?.getTracks().forEach((t) => t.stop());
  controlHooks.changed();
}

/**
 * Opens or closes a side panel. On a phone only one panel shows at a time,
 * full screen.
 * @param {'participants' | 'chat' | 'settings'} name
 * @param {boolean} [open]
 */
export function setPanel(name, open = !panels[name]) {
  panels[name] = open;
  if (open && app.narrow.matches) {
    for (const k of /** @type {const} */ (['participants', 'chat', 'settings'])) if (k !== name) panels[k] = false;
  }
  if (name === 'chat') {
    chat.open = open;
    if (open) {
      chat.unread = 0;
      scrollChatToBottom();
    }
  }
  if (name === 'settings' && open) refreshDevices();
  renderPanels();
  renderChatMeta();
  if (open && name === 'chat') $('chat-input').focus();
}

export async function copyLink() {
  let link = `${location.origin}/r/${app.slug}`;
  try {
    // The server's link uses the configured public URL; prefer it.
    if (app.room?.link) link = new URL(app.room.link).href;
  } catch {
    // Not absolute; keep ours.
  }
  try {
    await navigator.clipboard.writeText(link);
    toast('Meeting link copied.');
  } catch {
    toast(`Share this link: ${link}`);
  }
}

export function renderControls() {
  const micOn = !!local.mic && local.mic.enabled;
  const camOn = !!local.cam;
  for (const id of ['mic-button', 'prejoin-mic']) {
    $(id).setAttribute('aria-pressed', String(micOn));
    $(id).title = micOn ? 'Mute microphone' : 'Unmute microphone';
  }
  for (const id of ['cam-button', 'prejoin-cam']) {
    $(id).setAttribute('aria-pressed', String(camOn));
    $(id).title = camOn ? 'Turn camera off' : 'Turn camera on';
  }
  $('screen-button').setAttribute('aria-pressed', String(!!local.screen));
  $('screen-button').title = local.screen ? 'Stop sharing your screen' : 'Share your screen';
}

export function renderPanels() {
  $('participants-panel').hidden = !panels.participants;
  $('chat-panel').hidden = !panels.chat;
  $('settings-panel').hidden = !panels.settings;
  $('sidebar').hidden = !(panels.participants || panels.chat || panels.settings);
  $('participants-button').setAttribute('aria-expanded', String(panels.participants));
  $('chat-button').setAttribute('aria-expanded', String(panels.chat));
  $('settings-button').setAttribute('aria-expanded', String(panels.settings));
  layoutTiles();
}
