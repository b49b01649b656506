// The stage: one tile per person and per screen share, with the video,
// an avatar when there is none, the name and the mute icon.

import * as proto from '../protocol.js';
import { $, labelledIcon } from './dom.js';
import { local } from './devices.js';
import { app } from './state.js';

/** Received media, and whether the browser let it play with sound. */
export const remote = {
  /** @type {Map<string, MediaStream>} Received streams by `MediaStream.id`. */
  streams: new Map(),
  /** @type {Map<string, MediaStream>} Peer-to-peer: shown instead of `streams`' entry of that id (ui/p2p.js). */
  direct: new Map(),
  /** Autoplay with sound was refused; remote media plays muted until a click. */
  audioBlocked: false,
};

/**
 * Plays a media element; if the browser refuses autoplay with sound, plays
 * it muted and offers a "Turn on sound" button.
 * @param {HTMLVideoElement} video
 */
export function play(video) {
  video.play().catch((e) => {
    if (e?.name !== 'NotAllowedError' || video.muted) return;
    remote.audioBlocked = true;
    video.muted = true;
    $('unmute-audio').hidden = false;
    video.play().catch(() => {});
  });
}

/**
 * A received track. Its stream id says whose it is: `<participant id>` for
 * microphone and camera, `<participant id>-screen` for a screen share.
 * @param {RTCTrackEvent} e
 */
export function onRemoteTrack(e) {
  const stream = e.streams[0];
  if (!stream) {
    console.warn('veche: received a track without a stream id; ignoring it', e.track.id);
    return;
  }
  if (remote.streams.get(stream.id) !== stream) {
    remote.streams.set(stream.id, stream);
    stream.addEventListener('removetrack', () => {
      if (stream.getTracks().length === 0 && remote.streams.get(stream.id) === stream) {
        remote.streams.delete(stream.id);
      }
      renderTiles();
    });
    stream.addEventListener('addtrack', () => renderTiles());
  }
  // Remote tracks start muted until media flows; show the avatar until then.
  e.track.addEventListener('mute', () => renderTiles());
  e.track.addEventListener('unmute', () => renderTiles());
  renderTiles();
}

/**
 * What one tile on the stage shows.
 * @typedef {object} TileSpec
 * @property {string} key
 * @property {'self' | 'self-screen' | 'person' | 'screen'} kind
 * @property {string} label The video's accessible name.
 * @property {string} name Shown under the tile.
 * @property {MediaStream | null} stream
 * @property {boolean} showAvatar
 * @property {boolean} micMuted
 * @property {boolean} reconnecting
 */

/** @returns {Map<string, MediaStream>} The received streams, the direct ones taking precedence. */
function shownStreams() {
  if (remote.direct.size === 0) return remote.streams;
  return new Map([...remote.streams, ...remote.direct]);
}

/** @returns {TileSpec[]} */
function tileSpecs() {
  const me = app.roomState.participantId;
  const myName = app.roomState.self?.display_name ?? app.displayName;
  /** @type {TileSpec[]} */
  const specs = [
    {
      key: 'self',
      kind: 'self',
      label: `${myName} (you)`,
      name: `${myName} (you)`,
      stream: local.preview,
      showAvatar: !local.preview,
      micMuted: !local.mic || !local.mic.enabled,
      reconnecting: !app.connected,
    },
  ];
  for (const p of app.roomState.list()) {
    if (p.id === me) continue;
    const stream = remote.direct.get(p.id) ?? remote.streams.get(p.id) ?? null;
    const hasVideo = !!stream && stream.getVideoTracks().some((t) => !t.muted);
    specs.push({
      key: p.id,
      kind: 'person',
      label: p.display_name,
      name: p.display_name,
      stream,
      showAvatar: !hasVideo || p.media.camera_muted,
      micMuted: p.media.mic_muted,
      reconnecting: p.status === 'reconnecting',
    });
  }
  for (const [id, stream] of shownStreams()) {
    const owner = app.roomState.streamOwner(id);
    if (!owner.screen || owner.participantId === me || !owner.participant) continue;
    // A direct connection always has a screen section: shown only while shared.
    if (remote.direct.get(id) === stream && !owner.participant.media.screen_sharing) continue;
    if (stream.getVideoTracks().length === 0) continue;
    const name = owner.participant.display_name;
    specs.push({
      key: id,
      kind: 'screen',
      label: `${name} (screen)`,
      name: `${name} (screen)`,
      stream,
      showAvatar: false,
      micMuted: false,
      reconnecting: false,
    });
  }
  if (local.screen) {
    specs.push({
      key: 'self-screen',
      kind: 'self-screen',
      label: 'Your screen',
      name: 'Your screen',
      stream: local.screen,
      showAvatar: false,
      micMuted: false,
      reconnecting: false,
    });
  }
  return specs;
}

/** Reconciles the stage with the current state. */
export function renderTiles() {
  const stage = $('stage');
  const specs = tileSpecs();
  const wanted = new Set(specs.map((s) => s.key));
  for (const el of [...stage.children]) {
    if (!wanted.has(/** @type {HTMLElement} */ (el).dataset.key ?? '')) {
      const v = el.querySelector('video');
      if (v) v.srcObject = null;
      el.remove();
    }
  }
  specs.forEach((spec, i) => {
    let el = /** @type {HTMLElement | null} */ (stage.querySelector(`:scope > [data-key="${CSS.escape(spec.key)}"]`));
    if (!el) el = createTile(spec);
    if (stage.children[i] !== el) stage.insertBefore(el, stage.children[i] ?? null);
    updateTile(el, spec);
  });
  layoutTiles();
}

/**
 * @param {TileSpec} spec
 * @returns {HTMLElement}
 */
function createTile(spec) {
  const el = document.createElement('div');
  el.className = `tile tile-${spec.kind}`;
  el.dataset.key = spec.key;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute('playsinline', '');
  // Our own media is muted to avoid echo; everyone else's plays.
  video.muted = spec.kind === 'self' || spec.kind === 'self-screen' || remote.audioBlocked;
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');
  avatar.append(document.createElement('span'));
  const label = document.createElement('div');
  label.className = 'tile-label';
  const mic = labelledIcon('mic-off', 'Microphone muted');
  const name = document.createElement('span');
  name.className = 'tile-name';
  label.append(mic, name);
  el.append(video, avatar, label);
  return el;
}

/**
 * @param {HTMLElement} el
 * @param {TileSpec} spec
 */
function updateTile(el, spec) {
  const video = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
  video.setAttribute('aria-label', spec.label);
  if (video.srcObject !== spec.stream) {
    video.srcObject = spec.stream;
    if (spec.stream) play(video);
  }
  const avatar = /** @type {HTMLElement} */ (el.querySelector('.avatar'));
  avatar.hidden = !spec.showAvatar;
  /** @type {HTMLElement} */ (avatar.firstElementChild).textContent = proto.initials(spec.name.replace(/ \(you\)$/, ''));
  /** @type {HTMLElement} */ (el.querySelector('.tile-name')).textContent = spec.reconnecting && spec.kind === 'person'
    ? `${spec.name} (reconnecting…)`
    : spec.name;
  /** @type {HTMLElement} */ (el.querySelector('.state-icon')).hidden = !spec.micMuted;
  el.classList.toggle('reconnecting', spec.reconnecting);
}

/**
 * Sizes tiles to fill the stage: tries every column count and keeps the
 * one that gives the largest 16:9 tiles, so the grid reflows from one
 * column on a phone to a square-ish grid on a desktop.
 */
export function layoutTiles() {
  const stage = $('stage');
  const n = stage.children.length;
  if (!n || stage.clientWidth === 0) return;
  const gap = 8;
  const w = stage.clientWidth - gap * 2;
  const h = stage.clientHeight - gap * 2;
  let best = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const tileW = Math.min((w - gap * (cols - 1)) / cols, ((h - gap * (rows - 1)) / rows) * (16 / 9));
    if (tileW > best) best = tileW;
  }
  stage.style.setProperty('--tile-width', `${Math.max(120, Math.floor(best))}px`);
}

