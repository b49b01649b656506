// Local devices: the microphone, the camera and what the person wants from
// them, the device pickers, and the media state sent to the room. Knows
// nothing of sessions: putting a track on the peer connection and rendering
// go through `deviceHooks`, which the room page fills in.

import * as proto from '../protocol.js';
import { $, storageGet, storageSet, toast } from './dom.js';

/** @typedef {import('../protocol.js').MediaState} MediaState */

const MIC_KEY = 'veche.micDevice';
const CAM_KEY = 'veche.camDevice';

/**
 * What the devices module asks of the layers above it.
 * @typedef {object} DeviceHooks
 * @property {(source: 'microphone' | 'camera', track: MediaStreamTrack) => Promise<void>} attach
 *   Put a new track on the current peer connection.
 * @property {() => Promise<void>} camOff Stop sending camera video.
 * @property {() => void} changed Devices changed: send the media state, re-render.
 * @property {() => void} errors The device error lines changed.
 */

/** @type {DeviceHooks} */
export const deviceHooks = {
  attach: async () => {},
  camOff: async () => {},
  changed: () => {},
  errors: () => {},
};

/** Local devices and what the person wants from them. */
export const local = {
  /** The stream id our microphone and camera are sent under. */
  stream: new MediaStream(),
  /** @type {MediaStreamTrack | null} */
  mic: null,
  /** @type {MediaStreamTrack | null} */
  cam: null,
  /** @type {MediaStream | null} */
  screen: null,
  /** Microphone unmuted (intent; applies to the track's `enabled`). */
  micWanted: true,
  /** Camera on (intent). */
  camWanted: true,
  /** A microphone was started at least once, so it gets a send m-line. */
  micAvailable: false,
  camAvailable: false,
  micDeviceId: storageGet(MIC_KEY),
  camDeviceId: storageGet(CAM_KEY),
  micError: '',
  camError: '',
  /** @type {MediaStream | null} Local preview of the camera track. */
  preview: null,
};


/** @returns {MediaState} */
export function mediaState() {
  return {
    mic_muted: !local.mic || !local.mic.enabled,
    camera_muted: !local.cam,
    screen_sharing: !!local.screen,
  };
}

/**
 * Opens one device. Falls back to the default device if the remembered one
 * is gone.
 * @param {'audio' | 'video'} kind
 * @param {string | null} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openDevice(kind, deviceId) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw Object.assign(new Error('no mediaDevices'), { name: 'NotSupportedError' });
  }
  /** @type {MediaTrackConstraints | boolean} */
  let constraints = true;
  if (deviceId) constraints = { deviceId: { exact: deviceId } };
  else if (kind === 'video') constraints = { width: { ideal: 1280 }, height: { ideal: 720 } };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    return stream.getTracks()[0];
  } catch (e) {
    const name = /** @type {any} */ (e)?.name;
    if (deviceId && (name === 'OverconstrainedError' || name === 'NotFoundError')) {
      return openDevice(kind, null);
    }
    throw e;
  }
}

/**
 * Starts (or switches) the microphone. Keeps the mute state.
 * @param {string | null} [deviceId]
 * @returns {Promise<boolean>} False if it failed; `local.micError` says why.
 */
export async function startMic(deviceId = local.micDeviceId) {
  let track;
  try {
    track = await openDevice('audio', deviceId);
  } catch (e) {
    local.micError = proto.describeMediaError('audio', /** @type {any} */ (e));
    deviceHooks.errors();
    return false;
  }
  local.micError = '';
  local.micAvailable = true;
  track.enabled = local.micWanted;
  watchEnded(track, 'audio');
  const old = local.mic;
  local.mic = track;
  await deviceHooks.attach('microphone', track);
  if (old && old !== track) old.stop();
  deviceHooks.errors();
  return true;
}

/**
 * Starts (or switches) the camera.
 * @param {string | null} [deviceId]
 * @returns {Promise<boolean>}
 */
export async function startCam(deviceId = local.camDeviceId) {
  let track;
  try {
    track = await openDevice('video', deviceId);
  } catch (e) {
    local.camError = proto.describeMediaError('video', /** @type {any} */ (e));
    deviceHooks.errors();
    return false;
  }
  if (!local.camWanted) {
    // Turned off while the device was opening.
    track.stop();
    return false;
  }
  local.camError = '';
  local.camAvailable = true;
  watchEnded(track, 'video');
  const old = local.cam;
  local.cam = track;
  local.preview = new MediaStream([track]);
  await deviceHooks.attach('camera', track);
  if (old && old !== track) old.stop();
  deviceHooks.errors();
  return true;
}

/** Turns the camera off: the sender sends nothing and the light goes off. */
export async function stopCam() {
  const old = local.cam;
  local.cam = null;
  local.preview = null;
  await deviceHooks.camOff();
  old?.stop();
}

/**
/**
 * Notices a device that disappeared (unplugged, revoked).
 * @param {MediaStreamTrack} track
 * @param {'audio' | 'video'} kind
 */
function watchEnded(track, kind) {
  track.addEventListener('ended', () => {
    if (kind === 'audio' && local.mic === track) {
      local.mic = null;
      toast('Your microphone was disconnected.');
    } else if (kind === 'video' && local.cam === track) {
      local.cam = null;
      local.preview = null;
      local.camWanted = false;
      deviceHooks.camOff().catch(() => {});
      toast('Your camera was disconnected.');
    } else {
      return;
    }
    deviceHooks.changed();
  });
}

export function stopLocalMedia() {
  local.mic?.stop();
  local.cam?.stop();
  local.mic = null;
  local.cam = null;
  local.preview = null;
  if (local.screen) {
    for (const t of local.screen.getTracks()) t.stop();
    local.screen = null;
  }
}

/** Fills the microphone and camera pickers. */
export async function refreshDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  let devices;
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const mics = devices.filter((d) => d.kind === 'audioinput');
  const cams = devices.filter((d) => d.kind === 'videoinput');
  const micId = local.mic?.getSettings().deviceId ?? local.micDeviceId;
  const camId = local.cam?.getSettings().deviceId ?? local.camDeviceId;
  for (const id of ['prejoin-mic-select', 'settings-mic-select']) fillSelect($(id), mics, micId, 'Microphone');
  for (const id of ['prejoin-cam-select', 'settings-cam-select']) fillSelect($(id), cams, camId, 'Camera');
}

/**
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string | null | undefined} current
 * @param {string} noun
 */
function fillSelect(select, devices, current, noun) {
  const options = devices
    .filter((d) => d.deviceId)
    .map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${noun} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    });
  if (options.length === 0) {
    const o = document.createElement('option');
    o.value = '';
    o.textContent = devices.length ? `Default ${noun.toLowerCase()}` : `No ${noun.toLowerCase()} found`;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
}

/** @param {string} deviceId */
export async function chooseMic(deviceId) {
  if (!deviceId) return;
  local.micDeviceId = deviceId;
  storageSet(MIC_KEY, deviceId);
  await startMic(deviceId);
  deviceHooks.changed();
  refreshDevices();
}

/** @param {string} deviceId */
export async function chooseCam(deviceId) {
  if (!deviceId) return;
  local.camDeviceId = deviceId;
  storageSet(CAM_KEY, deviceId);
  if (local.camWanted) {
    // Phones often cannot open a second camera while one is running, so
    // release the old one first.
    if (local.cam) await stopCam();
    if (!(await startCam(deviceId))) {
      local.camWanted = false;
      toast(local.camError);
    }
  }
  deviceHooks.changed();
  refreshDevices();
}
