// Veche room page: pre-join, the call, chat, reconnection. All protocol
// logic lives in protocol.js; this file owns the DOM and the devices.

import * as proto from './protocol.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').TrackSource} TrackSource */
/** @typedef {import('./protocol.js').MediaState} MediaState */
/** @typedef {import('./protocol.js').NodeId} NodeId */
/** @typedef {import('./protocol.js').JoinResponse} JoinResponse */
/** @typedef {import('./protocol.js').Resume} Resume */
/** @typedef {import('./protocol.js').CloseInfo} CloseInfo */

/**
 * One attempt at being in the call: a join token, a socket and, once
 * joined, a peer connection. A reconnect builds a new one from scratch.
 * @typedef {object} Session
 * @property {proto.Signalling} sig
 * @property {RTCPeerConnection | null} pc
 * @property {proto.Negotiator | null} negotiator
 * @property {Map<RTCRtpSender, TrackSource>} sources What each of our senders sends.
 * @property {RTCRtpSender | null} micSender
 * @property {RTCRtpSender | null} camSender
 * @property {RTCRtpSender[]} screenSenders
 * @property {boolean} joined True once `joined` arrived.
 * @property {boolean} resuming The `join` carried `resume`.
 * @property {string} token The join token it presented.
 * @property {string} rejoinSecret The `rejoin_secret` that came with it.
 * @property {NodeId | null} nodeId Its media node (null if the control
 *   plane did not say).
 * @property {boolean} retired Replaced by a session on another node after a
 *   `move`; kept open until the old node closes it (make-before-break).
 * @property {ReturnType<typeof setTimeout> | null} retireTimer
 * @property {Set<MediaStream>} remote Streams its peer connection received.
 */

/**
 * A `move` under way: the current session's node is being drained, and a
 * session on another node is being set up before the old one is let go.
 * @typedef {object} Move
 * @property {Session} from The session told to move.
 * @property {Session | null} target The session on the new node, until its
 *   `joined` arrives.
 * @property {string} reason From the `move` message.
 * @property {number} attempt Failed attempts so far (for the backoff).
 * @property {ReturnType<typeof setTimeout> | null} timer The next attempt.
 * @property {number} startedAt `Date.now()` when the `move` arrived.
 * @property {boolean} fresh The control plane refused our rejoin token:
 *   ask without it (we come back as a new participant).
 */

const NAME_KEY = 'veche.displayName';
const MIC_KEY = 'veche.micDevice';
const CAM_KEY = 'veche.camDevice';
const COUNTER_FROM = proto.MAX_CHAT_CHARS - 500;

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

const params = new URLSearchParams(location.search);
const slug = proto.slugFromPath(location.pathname);
/**
 * A region hint from the link (`?region=eu`), for deployments that hand
 * out per-site links; a load balancer's `X-Veche-Region` header wins.
 */
const regionHint = params.get('region') || null;
const narrow = window.matchMedia('(max-width: 640px)');

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/** Local devices and what the person wants from them. */
const local = {
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

/** @type {proto.RoomState} */
let roomState = new proto.RoomState();
/** @type {import('./protocol.js').RoomView | null} */
let room = null;
let displayName = '';
/** @type {Session | null} */
let session = null;
/** Set by Leave and by a room that no longer exists: stop reconnecting. */
let leaving = false;
let everJoined = false;
let attempt = 0;
let tokenRetries = 0;
let connectGeneration = 0;
/** @type {ReturnType<typeof setTimeout> | null} */
let reconnectTimer = null;
/**
 * From the last `joined`: lets a reconnect to the same media node take
 * back our seat, so others see us go from "reconnecting" to "connected"
 * rather than leave and join. Memory only.
 * @type {import('./protocol.js').Seat | null}
 */
let seat = null;
/**
 * The token of the last session that got `joined`. Sent as `rejoin_token`
 * on later join requests, so that a token for another media node keeps our
 * participant id. Memory only.
 * @type {string | null}
 */
let lastToken = null;
/** The `rejoin_secret` that came with `lastToken`. @type {string | null} */
let lastRejoinSecret = null;
/**
 * A media node to name in `unreachable_node` on the next join request: the
 * node of a session whose socket could not open or died.
 * @type {NodeId | null}
 */
let unreachableNode = null;
/** When the last immediate reconnect went out (see `proto.reconnectDelay`). */
let lastQuickRetryAt = -Infinity;
/** @type {Move | null} */
let move = null;
/** Sessions replaced after a `move` whose old node has not closed them yet. */
const retired = /** @type {Set<Session>} */ (new Set());
/** Received streams by `MediaStream.id`. */
const remoteStreams = /** @type {Map<string, MediaStream>} */ (new Map());
/** Autoplay with sound was refused; remote media plays muted until a click. */
let audioBlocked = false;

const chat = {
  history: new proto.ChatHistory(),
  hasMore: false,
  loadingOlder: false,
  open: false,
  unread: 0,
  /** Sent but not yet committed, by client_msg_id. @type {Map<string, HTMLLIElement>} */
  pending: new Map(),
};

const panels = { participants: false, chat: false, settings: false };

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/**
 * @param {string} key
 * @returns {string | null}
 */
function storageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * @param {string} key
 * @param {string} value
 */
function storageSet(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode; not remembering is fine.
  }
}

/** @param {string} id */
function showScreen(id) {
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
function showMessage(title, text, action = null) {
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
/** @param {string} text */
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  if (toastTimer) clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

/** @param {string | null} text */
function setBanner(text) {
  const el = $('banner');
  el.hidden = !text;
  el.textContent = text ?? '';
}

/**
 * An `<svg><use href="#icon-…"></svg>`, decorative.
 * @param {string} name
 * @returns {SVGSVGElement}
 */
function icon(name) {
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
function labelledIcon(name, label) {
  const span = document.createElement('span');
  span.className = `state-icon state-${name}`;
  span.setAttribute('role', 'img');
  span.setAttribute('aria-label', label);
  span.title = label;
  span.append(icon(name));
  return span;
}

/** @returns {string} */
function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** @returns {MediaState} */
function mediaState() {
  return {
    mic_muted: !local.mic || !local.mic.enabled,
    camera_muted: !local.cam,
    screen_sharing: !!local.screen,
  };
}

function sendMediaState() {
  if (session?.joined) session.sig.send({ type: 'media', ...mediaState() });
}

/**
 * Plays a media element; if the browser refuses autoplay with sound, plays
 * it muted and offers a "Turn on sound" button.
 * @param {HTMLVideoElement} video
 */
function play(video) {
  video.play().catch((e) => {
    if (e?.name !== 'NotAllowedError' || video.muted) return;
    audioBlocked = true;
    video.muted = true;
    $('unmute-audio').hidden = false;
    video.play().catch(() => {});
  });
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/**
 * Opens one device. Falls back to the default device if the remembered one
 * is gone.
 * @param {'audio' | 'video'} kind
 * @param {string | null} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
async function openDevice(kind, deviceId) {
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
async function startMic(deviceId = local.micDeviceId) {
  let track;
  try {
    track = await openDevice('audio', deviceId);
  } catch (e) {
    local.micError = proto.describeMediaError('audio', /** @type {any} */ (e));
    renderDeviceErrors();
    return false;
  }
  local.micError = '';
  local.micAvailable = true;
  track.enabled = local.micWanted;
  watchEnded(track, 'audio');
  const old = local.mic;
  local.mic = track;
  await attachSendTrack('microphone', track);
  if (old && old !== track) old.stop();
  renderDeviceErrors();
  return true;
}

/**
 * Starts (or switches) the camera.
 * @param {string | null} [deviceId]
 * @returns {Promise<boolean>}
 */
async function startCam(deviceId = local.camDeviceId) {
  let track;
  try {
    track = await openDevice('video', deviceId);
  } catch (e) {
    local.camError = proto.describeMediaError('video', /** @type {any} */ (e));
    renderDeviceErrors();
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
  await attachSendTrack('camera', track);
  if (old && old !== track) old.stop();
  renderDeviceErrors();
  return true;
}

/** Turns the camera off: the sender sends nothing and the light goes off. */
async function stopCam() {
  const old = local.cam;
  local.cam = null;
  local.preview = null;
  if (session?.camSender) {
    try {
      await session.camSender.replaceTrack(null);
    } catch (e) {
      console.warn('veche: replaceTrack(null) failed', e);
    }
  }
  old?.stop();
}

/**
 * Puts a new microphone or camera track on the peer connection: replaces
 * the track of the existing sender (no renegotiation), or adds a sender if
 * there was no device at join time (renegotiates via negotiationneeded).
 * @param {'microphone' | 'camera'} source
 * @param {MediaStreamTrack} track
 */
async function attachSendTrack(source, track) {
  const s = session;
  if (!s?.pc) return;
  const key = source === 'microphone' ? 'micSender' : 'camSender';
  const sender = s[key];
  if (sender) {
    await sender.replaceTrack(track);
    return;
  }
  const added = s.pc.addTrack(track, local.stream);
  s.sources.set(added, source);
  s[key] = added;
}

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
      session?.camSender?.replaceTrack(null).catch(() => {});
      toast('Your camera was disconnected.');
    } else {
      return;
    }
    sendMediaState();
    renderLocal();
  });
}

function stopLocalMedia() {
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
async function refreshDevices() {
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
async function chooseMic(deviceId) {
  if (!deviceId) return;
  local.micDeviceId = deviceId;
  storageSet(MIC_KEY, deviceId);
  await startMic(deviceId);
  sendMediaState();
  renderLocal();
  refreshDevices();
}

/** @param {string} deviceId */
async function chooseCam(deviceId) {
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
  sendMediaState();
  renderLocal();
  refreshDevices();
}

// ---------------------------------------------------------------------------
// Pre-join
// ---------------------------------------------------------------------------

async function showPrejoin() {
  $('prejoin-room-name').textContent = room?.name ?? 'meeting';
  const input = $('display-name');
  input.value = displayName || storageGet(NAME_KEY) || '';
  showScreen('prejoin-screen');
  input.focus();
  renderLocal();
  const tasks = [];
  if (!local.mic) tasks.push(startMic());
  if (!local.cam && local.camWanted) tasks.push(startCam());
  await Promise.all(tasks);
  renderLocal();
  await refreshDevices();
}

/** @param {SubmitEvent} e */
function onPrejoinSubmit(e) {
  e.preventDefault();
  const name = $('display-name').value.trim();
  const err = $('prejoin-error');
  const len = proto.codePointLength(name);
  if (len === 0 || len > proto.MAX_DISPLAY_NAME_CHARS) {
    err.textContent = len === 0 ? 'Enter your name to join.' : `Your name can be at most ${proto.MAX_DISPLAY_NAME_CHARS} characters.`;
    err.hidden = false;
    $('display-name').focus();
    return;
  }
  err.hidden = true;
  displayName = name;
  storageSet(NAME_KEY, name);
  startCall();
}

// ---------------------------------------------------------------------------
// Joining and reconnecting
// ---------------------------------------------------------------------------

function startCall() {
  leaving = false;
  attempt = 0;
  tokenRetries = 0;
  seat = null;
  lastToken = null;
  unreachableNode = null;
  showScreen('call-screen');
  document.title = `${room?.name ?? 'Meeting'} · Veche`;
  $('room-name').textContent = room?.name ?? 'Meeting';
  if (!narrow.matches) panels.participants = true;
  renderAll();
  connect();
}

/**
 * One join attempt: fresh token, new socket, `join`. Failures schedule the
 * next attempt. Once we have been in the call, the request carries our last
 * token as `rejoin_token` (same participant id on whichever node we get)
 * and the node we lost as `unreachable_node`; the `join` carries `resume`
 * only if the new token is for the node that holds our seat.
 */
async function connect() {
  if (reconnectTimer) clearTimeout(reconnectTimer);
  reconnectTimer = null;
  const generation = ++connectGeneration;
  const stale = () => generation !== connectGeneration || leaving;
  setBanner(everJoined ? 'Reconnecting…' : 'Connecting…');

  const rejoinToken = everJoined ? lastToken : null;
  const rejoinSecret = everJoined ? lastRejoinSecret : null;
  const avoid = unreachableNode;
  /** @type {JoinResponse} */
  let resp;
  try {
    resp = await proto.join(/** @type {string} */ (slug), displayName, { rejoinToken, rejoinSecret, unreachableNode: avoid, region: regionHint });
  } catch (e) {
    if (stale()) return;
    const err = /** @type {proto.ApiError} */ (e);
    if (rejoinToken && proto.rejoinRefused(err.code)) {
      // Too old, or not valid here: come back as a new participant (a
      // resume to the same node can still keep our seat). Keep the
      // unreachable-node hint for that request.
      console.warn(`veche: the control plane refused our rejoin token (${err.code}); joining without it`);
      lastToken = null;
      connect();
      return;
    }
    // The hint was delivered unless the request never reached the server.
    if (err.code !== 'network' && unreachableNode === avoid) unreachableNode = null;
    if (err.code === 'room_not_found') {
      meetingGone();
    } else if (proto.isRetryable(err.code)) {
      scheduleReconnect();
    } else if (!everJoined && !params.has('skipPrejoin')) {
      setBanner(null);
      $('prejoin-error').textContent = err.message;
      $('prejoin-error').hidden = false;
      showScreen('prejoin-screen');
    } else {
      leaving = true;
      stopLocalMedia();
      showMessage('Could not join the meeting', err.message, { label: 'Try again', run: () => location.reload() });
    }
    return;
  }
  if (stale()) return;
  if (unreachableNode === avoid) unreachableNode = null;

  const resume = proto.resumeFor(seat, resp.node_id);
  const s = newSession(resp, resume !== null);
  session = s;
  await openAndJoin(s, resume);
}

/**
 * Builds a session for a join response and subscribes to its socket.
 * Room events count only while it is the current session; its `joined`
 * also counts while it is the target of a `move`, and its `chat` also
 * after it was retired by one (ids dedup the overlap).
 * @param {JoinResponse} resp
 * @param {boolean} resuming
 * @returns {Session}
 */
function newSession(resp, resuming) {
  const sig = new proto.Signalling(proto.resolveWsUrl(resp.ws_url, location.href));
  /** @type {Session} */
  const s = {
    sig,
    pc: null,
    negotiator: null,
    sources: new Map(),
    micSender: null,
    camSender: null,
    screenSenders: [],
    joined: false,
    resuming,
    token: resp.token,
    rejoinSecret: resp.rejoin_secret ?? '',
    nodeId: typeof resp.node_id === 'number' ? resp.node_id : null,
    retired: false,
    retireTimer: null,
    remote: new Set(),
  };
  /**
   * Subscribes a handler that runs only while `s` is the current session.
   * @param {string} type
   * @param {(m: any) => void} fn
   */
  const on = (type, fn) =>
    sig.on(type, (m) => {
      if (session === s) fn(m);
    });
  sig.on('joined', (m) => {
    if (session === s) onJoined(s, m);
    else if (move && move.target === s) completeMove(move, s, m);
  });
  on('answer', (m) => s.negotiator?.handleAnswer(m.sdp));
  on('offer', (m) => s.negotiator?.handleOffer(m.sdp));
  on('candidate', (m) => s.negotiator?.handleCandidate(m.candidate));
  on('participant_joined', onRoomEvent);
  on('participant_updated', onRoomEvent);
  on('participant_left', (m) => {
    remoteStreams.delete(m.participant_id);
    remoteStreams.delete(`${m.participant_id}-screen`);
    onRoomEvent(m);
  });
  sig.on('chat', (m) => {
    if (session === s || s.retired) addMessages([m.message], true);
  });
  sig.on('error', (m) => {
    // A chat refused on a retired session still concerns its placeholder.
    if (session === s || (s.retired && m.request === 'chat')) onServerError(s, m);
  });
  on('move', (m) => onMove(s, m));
  on('protocol_error', (why) => console.warn('veche: bad frame from node:', why));
  sig.on('close', (info) => onSessionClosed(s, info));
  return s;
}

/**
 * Opens a session's socket and sends `join`, if the session is still
 * wanted by then (current, or the target of a move).
 * @param {Session} s
 * @param {Resume | null} resume
 */
async function openAndJoin(s, resume) {
  try {
    await s.sig.connect();
  } catch {
    onOpenFailed(s);
    return;
  }
  if (session !== s && !(move && move.target === s)) {
    s.sig.close();
    return;
  }
  /** @type {import('./protocol.js').ClientMessage} */
  const join = { type: 'join', token: s.token, media: mediaState() };
  if (resume) join.resume = resume;
  s.sig.send(join);
}

/**
 * A session's socket closed before it opened: its node is unreachable.
 * @param {Session} s
 */
function onOpenFailed(s) {
  if (session === s) {
    session = null;
    unreachableNode = proto.unreachableNodeAfter(s.nodeId, null);
    scheduleReconnect();
  } else if (move && move.target === s) {
    move.target = null;
    retryMove(move, `could not reach media node ${s.nodeId}`);
  }
}

function scheduleReconnect() {
  if (leaving) return;
  setBanner(everJoined ? 'Reconnecting…' : 'Connecting…');
  const now = Date.now();
  const delay = proto.reconnectDelay(attempt, now - lastQuickRetryAt);
  if (delay === 0) lastQuickRetryAt = now;
  attempt += 1;
  if (reconnectTimer) clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay);
}

/**
 * @param {Session} s
 * @param {CloseInfo} info
 */
function onSessionClosed(s, info) {
  if (s.retired) {
    // The node we moved off let go of us, as it should.
    teardown(s);
    return;
  }
  if (move && move.target === s) {
    // The new node refused us or went away before `joined`.
    teardown(s);
    move.target = null;
    retryMove(move, `media node ${s.nodeId} closed the connection (${info.code}${info.reason ? ` ${info.reason}` : ''})`);
    return;
  }
  if (session !== s) return;
  const mv = move && move.from === s ? move : null;
  if (mv) cancelMove(proto.CloseCode.RECONNECTING, true);
  dropSession(s);
  const action = proto.closeAction(info, s);
  if (action === 'none' || leaving) {
    if (mv?.target) teardown(mv.target);
    return;
  }
  if (action === 'room_gone') {
    if (mv?.target) teardown(mv.target);
    meetingGone();
    return;
  }
  const lost = proto.unreachableNodeAfter(s.nodeId, info);
  if (lost !== null) unreachableNode = lost;
  renderAll();
  if (mv?.target && !mv.target.sig.closed) {
    // We were moving when the old node went: the session on the new node
    // is under way, so let it finish as an ordinary (re)join.
    console.warn(`veche: media node ${s.nodeId} closed (${info.code}) before the move finished; carrying on with node ${mv.target.nodeId}`);
    session = mv.target;
    // 4010: the old node already saw us on the new one; `joined` is close.
    if (action !== 'moved') setBanner('Reconnecting…');
    return;
  }
  if (mv?.target) teardown(mv.target);
  if (action === 'moved') {
    // A newer session of ours joined another node and took the seat over.
    console.warn(`veche: media node ${s.nodeId} says we continue on another node; not reconnecting`);
    leaving = true;
    seat = null;
    lastToken = null;
    endMoves(proto.CloseCode.NORMAL);
    stopLocalMedia();
    roomState = new proto.RoomState();
    setBanner(null);
    showMessage('You joined this meeting elsewhere', 'This window was disconnected because you continued the meeting from another connection.', {
      label: 'Rejoin here',
      run: () => location.reload(),
    });
    return;
  }
  if (action === 'fresh_join') {
    // Our seat expired (or the node restarted): join without `resume`
    // (the rejoin token still keeps our participant id).
    seat = null;
    connect();
    return;
  }
  if (action === 'new_token' && tokenRetries < 3) {
    tokenRetries += 1;
    connect();
    return;
  }
  scheduleReconnect();
}

/**
 * Forgets the current session: closes its peer connection and socket, and
 * the media received on it.
 * @param {Session} s
 * @param {number} [closeCode] 1000 tells the node we left; use
 *   `CloseCode.RECONNECTING` to keep the seat for a resume.
 */
function dropSession(s, closeCode = proto.CloseCode.NORMAL) {
  if (session === s) session = null;
  teardown(s, closeCode);
  remoteStreams.clear();
}

/**
 * Closes a session's peer connection and socket, and takes the streams it
 * received off the stage unless a newer session already replaced them.
 * Leaves `session` alone.
 * @param {Session} s
 * @param {number} [closeCode] As for `dropSession`; moot if the node
 *   already closed the socket.
 */
function teardown(s, closeCode = proto.CloseCode.NORMAL) {
  if (s.retireTimer) clearTimeout(s.retireTimer);
  s.retireTimer = null;
  s.retired = false;
  retired.delete(s);
  s.negotiator?.close();
  if (s.pc) {
    s.pc.onicecandidate = null;
    s.pc.ontrack = null;
    s.pc.onnegotiationneeded = null;
    s.pc.onconnectionstatechange = null;
    s.pc.close();
  }
  s.sig.close(closeCode, closeCode === proto.CloseCode.NORMAL ? 'left' : 'reconnecting');
  let changed = false;
  for (const [id, stream] of remoteStreams) {
    if (s.remote.has(stream)) {
      remoteStreams.delete(id);
      changed = true;
    }
  }
  s.remote.clear();
  if (changed) renderTiles();
}

/**
 * @param {Session} s
 * @param {import('./protocol.js').JoinedMessage} m
 */
function onJoined(s, m) {
  s.joined = true;
  everJoined = true;
  attempt = 0;
  tokenRetries = 0;
  unreachableNode = null;
  lastToken = s.token;
  lastRejoinSecret = s.rejoinSecret;
  roomState = new proto.RoomState().apply(m);
  seat = m.resume_token
    ? { resume: { participant_id: m.participant_id, resume_token: m.resume_token }, nodeId: s.nodeId }
    : null;
  setBanner(null);
  createPeer(s, m.ice_servers);
  // Devices may have changed since the `join` went out (during a move the
  // old session got the update, not this one).
  const mine = roomState.self?.media;
  const now = mediaState();
  if (mine && (mine.mic_muted !== now.mic_muted || mine.camera_muted !== now.camera_muted || mine.screen_sharing !== now.screen_sharing)) {
    sendMediaState();
  }
  loadHistory();
  renderAll();
}

// ---------------------------------------------------------------------------
// Moving to another media node (make-before-break)
// ---------------------------------------------------------------------------

/**
 * The node is being drained. Get a token for another node, join there, and
 * switch over when its `joined` arrives; the old session keeps working
 * meanwhile and gets neither `leave` nor a 1000 close.
 * @param {Session} s
 * @param {any} raw
 */
function onMove(s, raw) {
  const m = proto.parseMove(raw);
  if (!m || leaving || move) return;
  if (!s.joined) {
    // Not in the call yet: nothing to keep up, just join elsewhere.
    console.info(`veche: media node ${s.nodeId} asked us to move (${m.reason}) before we joined; joining elsewhere`);
    unreachableNode = s.nodeId;
    dropSession(s, proto.CloseCode.RECONNECTING);
    scheduleReconnect();
    return;
  }
  move = { from: s, target: null, reason: m.reason, attempt: 0, timer: null, startedAt: Date.now(), fresh: false };
  startMove(move);
}

/**
 * One attempt at a move: a token for another node, then a session there.
 * @param {Move} mv
 */
async function startMove(mv) {
  mv.timer = null;
  if (move !== mv) return;
  const from = mv.from;
  /** @type {JoinResponse} */
  let resp;
  try {
    resp = await proto.join(/** @type {string} */ (slug), displayName, {
      rejoinToken: mv.fresh ? null : from.token,
      rejoinSecret: mv.fresh ? null : from.rejoinSecret,
      unreachableNode: from.nodeId,
      region: regionHint,
    });
  } catch (e) {
    if (move !== mv) return;
    const err = /** @type {proto.ApiError} */ (e);
    if (err.code === 'room_not_found') {
      meetingGone();
      return;
    }
    if (!mv.fresh && proto.rejoinRefused(err.code)) {
      console.warn(`veche: the control plane refused our rejoin token (${err.code}); moving as a new participant`);
      mv.fresh = true;
      startMove(mv);
      return;
    }
    retryMove(mv, `${err.code}: ${err.message}`);
    return;
  }
  if (move !== mv) return;
  if (typeof resp.node_id === 'number' && resp.node_id === from.nodeId) {
    retryMove(mv, 'placed on the node we are leaving');
    return;
  }
  const t = newSession(resp, false);
  mv.target = t;
  await openAndJoin(t, null);
}

/**
 * Keeps the old session and tries again later.
 * @param {Move} mv
 * @param {string} why
 */
function retryMove(mv, why) {
  if (move !== mv) return;
  const delay = proto.backoffDelay(mv.attempt);
  mv.attempt += 1;
  console.warn(`veche: moving off media node ${mv.from.nodeId} failed (${why}); trying again in ${delay} ms`);
  if (mv.timer) clearTimeout(mv.timer);
  mv.timer = setTimeout(() => startMove(mv), delay);
}

/**
 * The new node's `joined` arrived: it becomes the current session. The old
 * one is retired, not closed: the old node closes it once it sees us on
 * the new node (until then it still forwards our media to the others).
 * @param {Move} mv
 * @param {Session} t
 * @param {import('./protocol.js').JoinedMessage} m
 */
function completeMove(mv, t, m) {
  cancelMove(proto.CloseCode.RECONNECTING, true);
  const old = mv.from;
  const samePerson = m.participant_id === roomState.participantId;
  session = t;
  if (samePerson) {
    retire(old);
  } else {
    // We came back as someone new: the old seat is a ghost. Leave it.
    teardown(old, proto.CloseCode.NORMAL);
  }
  onJoined(t, m);
  console.info(
    `veche: moved from media node ${old.nodeId} to ${t.nodeId} in ${Date.now() - mv.startedAt} ms` +
      ` (${mv.reason || 'no reason given'}${samePerson ? '' : '; as a new participant'})`,
  );
}

/**
 * Keeps a replaced session open for the old node to close, and closes it
 * ourselves (keeping the seat semantics: not 1000) if it does not.
 * @param {Session} s
 */
function retire(s) {
  s.retired = true;
  retired.add(s);
  s.negotiator?.close();
  s.retireTimer = setTimeout(() => {
    s.retireTimer = null;
    if (!s.sig.closed) {
      console.warn(`veche: media node ${s.nodeId} kept our old connection open after the move; closing it`);
    }
    teardown(s, proto.CloseCode.RECONNECTING);
  }, proto.MOVE_OLD_SOCKET_GRACE_MS);
}

/**
 * Stops a move under way.
 * @param {number} closeCode For the target session, if it is closed.
 * @param {boolean} [keepTarget] Leave the target open (the caller takes it over).
 */
function cancelMove(closeCode, keepTarget = false) {
  const mv = move;
  if (!mv) return;
  move = null;
  if (mv.timer) clearTimeout(mv.timer);
  mv.timer = null;
  if (mv.target && !keepTarget) teardown(mv.target, closeCode);
}

/**
 * Stops every move and closes every retired session.
 * @param {number} closeCode
 */
function endMoves(closeCode) {
  cancelMove(closeCode);
  for (const s of [...retired]) teardown(s, closeCode);
}

/**
 * Builds the peer connection and sends the first offer.
 * @param {Session} s
 * @param {import('./protocol.js').IceServer[]} iceServers
 */
function createPeer(s, iceServers) {
  const pc = new RTCPeerConnection({ iceServers });
  s.pc = pc;
  // Microphone and camera are sendrecv so the node can reuse their m-lines
  // to send us other people's tracks. With no device, a recvonly section
  // still makes the offer carry one audio and one video m-line.
  if (local.mic) {
    s.micSender = pc.addTrack(local.mic, local.stream);
  } else if (local.micAvailable) {
    s.micSender = pc.addTransceiver('audio', { direction: 'sendrecv', streams: [local.stream] }).sender;
  } else {
    pc.addTransceiver('audio', { direction: 'recvonly' });
  }
  if (local.cam) {
    s.camSender = pc.addTrack(local.cam, local.stream);
  } else if (local.camAvailable) {
    // Camera turned off by choice: keep a sending section with no track so
    // turning it on is a replaceTrack, not a renegotiation.
    s.camSender = pc.addTransceiver('video', { direction: 'sendrecv', streams: [local.stream] }).sender;
  } else {
    pc.addTransceiver('video', { direction: 'recvonly' });
  }
  if (s.micSender) s.sources.set(s.micSender, 'microphone');
  if (s.camSender) s.sources.set(s.camSender, 'camera');
  if (local.screen) addScreenSenders(s, local.screen);

  pc.onicecandidate = (e) => {
    if (!e.candidate) {
      s.sig.send({ type: 'candidate', candidate: null });
    } else if (e.candidate.candidate) {
      s.sig.send({
        type: 'candidate',
        candidate: {
          candidate: e.candidate.candidate,
          sdpMid: e.candidate.sdpMid,
          sdpMLineIndex: e.candidate.sdpMLineIndex,
          usernameFragment: e.candidate.usernameFragment,
        },
      });
    }
  };
  pc.ontrack = (e) => {
    if (session !== s) return;
    if (e.streams[0]) s.remote.add(e.streams[0]);
    onRemoteTrack(e);
  };
  pc.onnegotiationneeded = () => s.negotiator?.negotiationNeeded();
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' && session === s && !(move && move.from === s)) {
      console.warn('veche: media connection failed; rejoining');
      dropSession(s, proto.CloseCode.RECONNECTING);
      renderAll();
      scheduleReconnect();
    }
  };
  s.negotiator = new proto.Negotiator(pc, (msg) => s.sig.send(msg), {
    sourceOf: (t) => s.sources.get(t.sender),
    onError: (e) => {
      console.error('veche: negotiation failed', e);
      toast(
        e instanceof proto.ApiError
          ? e.message
          : 'Could not set up audio and video. Try leaving and joining again.',
      );
    },
  });
  s.negotiator.start();
}

/**
 * @param {Session} s
 * @param {MediaStream} stream
 */
function addScreenSenders(s, stream) {
  if (!s.pc) return;
  for (const track of stream.getTracks()) {
    const sender = s.pc.addTrack(track, stream);
    s.sources.set(sender, track.kind === 'video' ? 'screen' : 'screen_audio');
    s.screenSenders.push(sender);
  }
}

/**
 * A received track. Its stream id says whose it is: `<participant id>` for
 * microphone and camera, `<participant id>-screen` for a screen share.
 * @param {RTCTrackEvent} e
 */
function onRemoteTrack(e) {
  const stream = e.streams[0];
  if (!stream) {
    console.warn('veche: received a track without a stream id; ignoring it', e.track.id);
    return;
  }
  if (remoteStreams.get(stream.id) !== stream) {
    remoteStreams.set(stream.id, stream);
    stream.addEventListener('removetrack', () => {
      if (stream.getTracks().length === 0 && remoteStreams.get(stream.id) === stream) {
        remoteStreams.delete(stream.id);
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

/** @param {ServerMessage} m */
function onRoomEvent(m) {
  roomState = roomState.apply(m);
  renderAll();
}

/**
 * @param {Session} s
 * @param {import('./protocol.js').ErrorMessage} m
 */
function onServerError(s, m) {
  if (s.negotiator?.handleError(m)) return;
  if (m.request === 'chat') {
    const pending = m.client_msg_id ? chat.pending.get(m.client_msg_id) : undefined;
    if (pending && m.client_msg_id) {
      chat.pending.delete(m.client_msg_id);
      pending.remove();
      const input = $('chat-input');
      if (!input.value) {
        input.value = pending.dataset.text ?? '';
        updateCounter();
      }
    }
    showChatError(proto.humanMessage(m.code, m.message));
    return;
  }
  console.warn('veche: node error', m);
  if (m.code !== 'invalid_state') toast(proto.humanMessage(m.code, m.message));
}

function meetingGone() {
  leaving = true;
  seat = null;
  lastToken = null;
  if (reconnectTimer) clearTimeout(reconnectTimer);
  endMoves(proto.CloseCode.NORMAL);
  if (session) dropSession(session);
  stopLocalMedia();
  setBanner(null);
  showMessage('This meeting no longer exists', 'The meeting was closed or its link was removed.');
}

function leave() {
  leaving = true;
  seat = null;
  lastToken = null;
  if (reconnectTimer) clearTimeout(reconnectTimer);
  reconnectTimer = null;
  // A move target or a retired session is us too: 1000 tells their nodes
  // we left.
  endMoves(proto.CloseCode.NORMAL);
  const s = session;
  if (s) {
    s.sig.send({ type: 'leave' });
    dropSession(s);
  }
  stopLocalMedia();
  roomState = new proto.RoomState();
  setBanner(null);
  showMessage('You left the meeting', 'You can rejoin with the same name and settings.', {
    label: 'Rejoin',
    run: rejoin,
  });
}

async function rejoin() {
  leaving = false;
  everJoined = false;
  $('message-action').disabled = true;
  await Promise.all([startMic(), local.camWanted ? startCam() : Promise.resolve(true)]);
  $('message-action').disabled = false;
  startCall();
}

// ---------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------

async function toggleMic() {
  if (local.mic) {
    local.micWanted = !local.micWanted;
    local.mic.enabled = local.micWanted;
  } else {
    local.micWanted = true;
    if (!(await startMic())) toast(local.micError);
  }
  sendMediaState();
  renderLocal();
}

async function toggleCam() {
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
  sendMediaState();
  renderLocal();
}

async function toggleScreen() {
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
  if (session?.pc) addScreenSenders(session, stream);
  sendMediaState();
  renderLocal();
}

function stopScreen() {
  const stream = local.screen;
  local.screen = null;
  const s = session;
  if (s?.pc && s.pc.signalingState !== 'closed') {
    for (const sender of s.screenSenders) {
      try {
        s.pc.removeTrack(sender);
      } catch (e) {
        console.warn('veche: removeTrack failed', e);
      }
      s.sources.delete(sender);
    }
    s.screenSenders = [];
  }
  stream?.getTracks().forEach((t) => t.stop());
  sendMediaState();
  renderLocal();
}

/**
 * Opens or closes a side panel. On a phone only one panel shows at a time,
 * full screen.
 * @param {'participants' | 'chat' | 'settings'} name
 * @param {boolean} [open]
 */
function setPanel(name, open = !panels[name]) {
  panels[name] = open;
  if (open && narrow.matches) {
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

async function copyLink() {
  let link = `${location.origin}/r/${slug}`;
  try {
    // The server's link uses the configured public URL; prefer it.
    if (room?.link) link = new URL(room.link).href;
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

// ---------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------

async function loadHistory() {
  try {
    const first = chat.history.size === 0;
    const page = await proto.fetchMessages(/** @type {string} */ (slug));
    addMessages(page.messages, !first);
    if (first) chat.hasMore = page.has_more;
    // Anything still pending after a reconnect was probably lost.
    for (const [id, li] of chat.pending) {
      if (session?.joined && !li.classList.contains('failed') && li.dataset.session !== String(connectGeneration)) {
        li.classList.add('failed');
        li.querySelector('.chat-status').textContent = 'Not sent';
        chat.pending.delete(id);
      }
    }
    renderChatMeta();
    if (first) scrollChatToBottom();
  } catch (e) {
    showChatError(`Could not load earlier messages. ${/** @type {Error} */ (e).message}`);
  }
}

async function loadOlder() {
  if (chat.loadingOlder || !chat.hasMore || chat.history.oldestId === null) return;
  chat.loadingOlder = true;
  const scroll = $('chat-scroll');
  try {
    const page = await proto.fetchMessages(/** @type {string} */ (slug), chat.history.oldestId);
    const before = scroll.scrollHeight;
    addMessages(page.messages, false);
    chat.hasMore = page.has_more;
    scroll.scrollTop += scroll.scrollHeight - before;
  } catch (e) {
    showChatError(`Could not load older messages. ${/** @type {Error} */ (e).message}`);
  } finally {
    chat.loadingOlder = false;
    renderChatMeta();
  }
}

/**
 * Adds committed messages in id order, dropping duplicates and the
 * matching "sending" placeholders.
 * @param {ChatMessage[]} messages
 * @param {boolean} countUnread
 */
function addMessages(messages, countUnread) {
  const list = $('chat-messages');
  const scroll = $('chat-scroll');
  const atBottom = scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < 40;
  let newest = false;
  for (const { message, index } of chat.history.add(messages)) {
    const own = message.client_msg_id ? chat.pending.has(message.client_msg_id) : false;
    if (message.client_msg_id && own) {
      chat.pending.get(message.client_msg_id)?.remove();
      chat.pending.delete(message.client_msg_id);
    }
    list.insertBefore(renderMessage(message), list.children[index] ?? null);
    if (index === chat.history.size - 1) newest = true;
    const mine = own || message.participant_id === roomState.participantId;
    if (countUnread && !mine && !chat.open) chat.unread += 1;
  }
  if (newest && atBottom) scrollChatToBottom();
  renderChatMeta();
}

/**
 * @param {ChatMessage} m
 * @returns {HTMLLIElement}
 */
function renderMessage(m) {
  const li = document.createElement('li');
  li.className = 'chat-message';
  li.dataset.id = String(m.id);
  if (m.participant_id === roomState.participantId) li.classList.add('own');
  const meta = document.createElement('div');
  meta.className = 'chat-meta';
  const author = document.createElement('span');
  author.className = 'chat-author';
  author.textContent = m.display_name;
  const time = document.createElement('time');
  const when = new Date(m.sent_at_ms);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  meta.append(author, ' ', time);
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = m.text; // Never innerHTML: chat text is untrusted.
  li.append(meta, text);
  return li;
}

function sendChat() {
  const input = $('chat-input');
  const v = proto.validateChat(input.value);
  if (!v.ok) {
    showChatError(
      v.code === 'chat_empty'
        ? 'Type a message first.'
        : `Message is too long: ${v.chars} of ${proto.MAX_CHAT_CHARS} characters.`,
    );
    return;
  }
  const s = session;
  if (!s?.joined || !s.sig.isOpen) {
    showChatError('Not connected right now. Your message was not sent.');
    return;
  }
  const id = newClientMsgId();
  s.sig.send({ type: 'chat', text: v.text, client_msg_id: id });
  const li = document.createElement('li');
  li.className = 'chat-message own pending';
  li.dataset.text = v.text;
  li.dataset.session = String(connectGeneration);
  const meta = document.createElement('div');
  meta.className = 'chat-meta';
  const author = document.createElement('span');
  author.className = 'chat-author';
  author.textContent = displayName;
  const status = document.createElement('span');
  status.className = 'chat-status';
  status.textContent = 'Sending…';
  meta.append(author, ' ', status);
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = v.text;
  li.append(meta, text);
  $('chat-pending').append(li);
  chat.pending.set(id, li);
  input.value = '';
  updateCounter();
  showChatError(null);
  scrollChatToBottom();
}

/** @param {string | null} text */
function showChatError(text) {
  const el = $('chat-error');
  el.hidden = !text;
  el.textContent = text ?? '';
}

function updateCounter() {
  const n = proto.codePointLength(proto.filterChatText($('chat-input').value));
  const el = $('chat-counter');
  el.textContent = n >= COUNTER_FROM ? `${n} / ${proto.MAX_CHAT_CHARS}` : '';
  el.classList.toggle('over', n > proto.MAX_CHAT_CHARS);
}

function scrollChatToBottom() {
  const scroll = $('chat-scroll');
  scroll.scrollTop = scroll.scrollHeight;
}

function renderChatMeta() {
  $('chat-older').hidden = !chat.hasMore;
  const badge = $('chat-badge');
  badge.hidden = chat.unread === 0;
  badge.textContent = chat.unread > 99 ? '99+' : String(chat.unread);
  badge.setAttribute('aria-label', `${chat.unread} unread message${chat.unread === 1 ? '' : 's'}`);
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function renderAll() {
  renderTiles();
  renderParticipants();
  renderControls();
  renderPanels();
  renderChatMeta();
}

/** Renders everything that depends on local devices. */
function renderLocal() {
  renderControls();
  renderTiles();
  renderPreview();
  renderDeviceErrors();
}

function renderControls() {
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

function renderPanels() {
  $('participants-panel').hidden = !panels.participants;
  $('chat-panel').hidden = !panels.chat;
  $('settings-panel').hidden = !panels.settings;
  $('sidebar').hidden = !(panels.participants || panels.chat || panels.settings);
  $('participants-button').setAttribute('aria-expanded', String(panels.participants));
  $('chat-button').setAttribute('aria-expanded', String(panels.chat));
  $('settings-button').setAttribute('aria-expanded', String(panels.settings));
  layoutTiles();
}

function renderPreview() {
  const video = $('preview-video');
  const want = local.preview;
  if (video.srcObject !== want) {
    video.srcObject = want;
    if (want) play(video);
  }
  const avatar = $('preview-avatar');
  avatar.hidden = !!want;
  avatar.firstElementChild.textContent = proto.initials($('display-name').value || displayName || '?');
}

function renderDeviceErrors() {
  const mic = $('prejoin-mic-error');
  mic.hidden = !local.micError;
  mic.textContent = local.micError;
  const cam = $('prejoin-cam-error');
  cam.hidden = !local.camError;
  cam.textContent = local.camError;
}

function renderParticipants() {
  const list = $('participants');
  const people = roomState.list();
  $('participant-count').textContent = String(people.length);
  list.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      li.className = 'participant';
      li.dataset.participantId = p.id;
      const you = p.id === roomState.participantId;
      const name = document.createElement('span');
      name.className = 'participant-name';
      name.textContent = you ? `${p.display_name} (you)` : p.display_name;
      const status = document.createElement('span');
      status.className = `participant-status ${p.status}`;
      status.textContent = p.status === 'reconnecting' ? 'reconnecting…' : 'connected';
      const icons = document.createElement('span');
      icons.className = 'participant-icons';
      if (p.media.screen_sharing) icons.append(labelledIcon('screen', 'Sharing screen'));
      icons.append(
        p.media.mic_muted ? labelledIcon('mic-off', 'Microphone muted') : labelledIcon('mic', 'Microphone on'),
        p.media.camera_muted ? labelledIcon('cam-off', 'Camera off') : labelledIcon('cam', 'Camera on'),
      );
      const text = document.createElement('span');
      text.className = 'participant-text';
      text.append(name, status);
      li.append(text, icons);
      return li;
    }),
  );
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

/** @returns {TileSpec[]} */
function tileSpecs() {
  const me = roomState.participantId;
  const myName = roomState.self?.display_name ?? displayName;
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
      reconnecting: !session?.joined,
    },
  ];
  for (const p of roomState.list()) {
    if (p.id === me) continue;
    const stream = remoteStreams.get(p.id) ?? null;
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
  for (const [id, stream] of remoteStreams) {
    const owner = roomState.streamOwner(id);
    if (!owner.screen || owner.participantId === me || !owner.participant) continue;
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
function renderTiles() {
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
  video.muted = spec.kind === 'self' || spec.kind === 'self-screen' || audioBlocked;
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
function layoutTiles() {
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

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

/**
 * Disables a button while its async action runs, so double clicks do not
 * race.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void> | void} action
 */
function bind(button, action) {
  button.addEventListener('click', async () => {
    if (button.dataset.busy) return;
    button.dataset.busy = '1';
    try {
      await action();
    } catch (e) {
      console.error(e);
      toast('Something went wrong. Please try again.');
    } finally {
      delete button.dataset.busy;
    }
  });
}

function wire() {
  $('prejoin-form').addEventListener('submit', onPrejoinSubmit);
  $('display-name').addEventListener('input', renderPreview);
  bind($('prejoin-mic'), toggleMic);
  bind($('prejoin-cam'), toggleCam);
  bind($('mic-button'), toggleMic);
  bind($('cam-button'), toggleCam);
  bind($('screen-button'), toggleScreen);
  bind($('chat-button'), () => setPanel('chat'));
  bind($('participants-button'), () => setPanel('participants'));
  bind($('settings-button'), () => setPanel('settings'));
  bind($('leave-button'), leave);
  bind($('copy-link'), copyLink);
  for (const b of document.querySelectorAll('.panel-close')) {
    const name = /** @type {'participants' | 'chat' | 'settings'} */ (/** @type {HTMLElement} */ (b).dataset.close);
    b.addEventListener('click', () => setPanel(name, false));
  }
  $('unmute-audio').addEventListener('click', () => {
    audioBlocked = false;
    $('unmute-audio').hidden = true;
    for (const v of document.querySelectorAll('.tile-person video, .tile-screen video')) {
      const video = /** @type {HTMLVideoElement} */ (v);
      video.muted = false;
      video.play().catch(() => {});
    }
  });
  for (const id of ['prejoin-mic-select', 'settings-mic-select']) {
    $(id).addEventListener('change', (/** @type {Event} */ e) => chooseMic(/** @type {HTMLSelectElement} */ (e.target).value));
  }
  for (const id of ['prejoin-cam-select', 'settings-cam-select']) {
    $(id).addEventListener('change', (/** @type {Event} */ e) => chooseCam(/** @type {HTMLSelectElement} */ (e.target).value));
  }
  navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);

  $('chat-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    sendChat();
  });
  $('chat-input').addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendChat();
    }
  });
  $('chat-input').addEventListener('input', () => {
    updateCounter();
    if (!$('chat-error').hidden) showChatError(null);
  });
  $('chat-scroll').addEventListener('scroll', () => {
    if ($('chat-scroll').scrollTop < 40) loadOlder();
  });
  $('chat-older').addEventListener('click', loadOlder);

  new ResizeObserver(layoutTiles).observe($('stage'));
  narrow.addEventListener('change', () => {
    if (narrow.matches && panels.chat) panels.participants = panels.settings = false;
    renderPanels();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !narrow.matches) return;
    for (const k of /** @type {const} */ (['participants', 'chat', 'settings'])) {
      if (panels[k]) setPanel(k, false);
    }
  });
  // Tell the room at once rather than leaving a "reconnecting" ghost.
  window.addEventListener('pagehide', () => {
    if (session?.sig.isOpen) session.sig.send({ type: 'leave' });
  });
}

/** Debug hook for automated tests. */
const debugHook = {
  /** @returns {{participantId: string | null, participants: ParticipantInfo[], connected: boolean, nodeId: NodeId | null}} */
  state: () => ({
    participantId: roomState.participantId,
    participants: roomState.list(),
    connected: !!session?.joined && session.sig.isOpen,
    nodeId: session?.nodeId ?? null,
  }),
  /** @returns {RTCPeerConnection | null} */
  pc: () => session?.pc ?? null,
};
/** @type {any} */ (window).veche = debugHook;

async function main() {
  wire();
  if (!slug || !proto.isSlug(slug)) {
    showMessage('This meeting link is not valid', 'Check the link, or start a new meeting.');
    return;
  }
  try {
    room = await proto.getRoom(slug);
  } catch (e) {
    const err = /** @type {proto.ApiError} */ (e);
    if (err.code === 'room_not_found' || err.code === 'bad_request') {
      showMessage('This meeting link is not valid', 'Check the link, or start a new meeting.');
    } else {
      showMessage('Could not load the meeting', err.message, { label: 'Try again', run: () => location.reload() });
    }
    return;
  }
  document.title = `${room.name} · Veche`;
  const skip = params.get('skipPrejoin');
  if (skip === '1' || skip === 'true') {
    const given = (params.get('name') ?? storageGet(NAME_KEY) ?? '').trim();
    displayName = [...given].slice(0, proto.MAX_DISPLAY_NAME_CHARS).join('') || 'Guest';
    await Promise.all([startMic(), startCam()]);
    for (const err of [local.micError, local.camError]) if (err) console.warn(`veche: ${err}`);
    startCall();
    refreshDevices();
  } else {
    await showPrejoin();
  }
}

main();
