// The call shell: runs the call core's actions against the real world. It
// owns the sockets, peer connections and timers of every session the core
// names, feeds their events (with `Date.now()`) back to the core, and
// updates the views. All decisions are in lib/call-core.js.

import * as proto from '../protocol.js';
import { CallCore } from '../lib/call-core.js';
import { setBanner, toast } from './dom.js';
import { app } from './state.js';
import { mediaState } from './devices.js';
import { remote, onRemoteTrack, renderTiles } from './stage.js';
import { addMessages, chatFailed, chatRefused, chatSent, loadHistory } from './chat-view.js';
import { adoptPeer, createPeer } from './peer.js';
import { onMediaPath, onPeerSignal, p2pJoined, p2pPeerCreated, p2pRoomChanged, p2pSessionClosed } from './p2p.js';

/** @typedef {import('../lib/call-types.js').CallAction} CallAction */
/** @typedef {import('../lib/call-types.js').CallEvent} CallEvent */
/** @typedef {import('../protocol.js').NodeId} NodeId */

/** @typedef {import('./peer.js').Session} Session */

/**
 * What the call asks of the page.
 * @typedef {object} CallHooks
 * @property {() => void} render The room or connection changed: re-render.
 * @property {(reason: import('../lib/call-types.js').EndReason, message: string, everJoined: boolean) => void} ended
 * @property {(m: import('../protocol.js').ModeratedMessage) => void} moderated A moderator acted on us.
 * @property {(waiting: import('../protocol.js').LobbyEntry[]) => void} lobby Who waits in the lobby (moderators).
 * @property {(room: import('../protocol.js').RoomInfo) => void} waiting We were put in the lobby.
 * @property {(m: import('../protocol.js').ServerMessage, sig: proto.Signalling) => void} e2ee What the
 *   key agreement of an encrypted room needs (`joined`, `e2ee_*`,
 *   `participant_joined/updated/left`, refusals of `e2ee_*`), with the
 *   socket to answer on.
 */

/** @type {CallHooks} */
export const callHooks = { render: () => {}, ended: () => {}, moderated: () => {}, lobby: () => {}, waiting: () => {}, e2ee: () => {} };

/** The call in progress; replaced by `startCall`. */
const call = {
  core: new CallCore(),
  /** @type {Map<number, Session>} */
  sessions: new Map(),
  /** @type {Map<string, ReturnType<typeof setTimeout>>} */
  timers: new Map(),
  /** @type {Session | null} A session closed for a resume whose peer
   * connection (and what it shows) is kept for the resumed session. */
  parked: /** @type {Session | null} */ (null),
};

/**
 * Feeds one event to the core and runs what it answers.
 * @param {CallEvent} ev
 */
export function dispatch(ev) {
  const core = call.core;
  const actions = core.handle(ev, Date.now());
  for (const a of actions) run(core, a);
  const connected = core.sendTarget() !== null;
  if (connected !== app.connected) {
    app.connected = connected;
    callHooks.render();
  }
}

/** Starts a new call (the first, or after Leave): a fresh core. */
export function startCall() {
  dropParked();
  for (const t of call.timers.values()) clearTimeout(t);
  call.timers.clear();
  call.core = new CallCore();
  dispatch({ type: 'start' });
}

/** Leave: the core ends the seat in whatever state the call is. */
export function leaveCall() {
  dispatch({ type: 'leave' });
}

/** @returns {Session | null} The session that is the call, if any. */
export function currentSession() {
  const id = call.core.current;
  return id === null ? null : call.sessions.get(id) ?? null;
}

/** @returns {number | null} The joined session to send on, if any. */
export function sendTarget() {
  return call.core.sendTarget();
}

/** Sends our device state to the room, if we are in it. */
export function sendMediaState() {
  const s = sendTarget() === null ? null : currentSession();
  s?.sig.send(proto.build.media(mediaState()));
}

/**
 * Runs one action of `core`; actions of a replaced core are ignored.
 * @param {CallCore} core
 * @param {CallAction} a
 */
function run(core, a) {
  if (core !== call.core) return;
  const s = 'session' in a ? call.sessions.get(a.session) : undefined;
  switch (a.type) {
    case 'request_token':
      proto
        .join(
          /** @type {string} */ (app.slug),
          app.displayName,
          proto.withOwnerKey(app.ownerKey, { ...a.hints, region: app.regionHint, pass: app.pass }),
        )
        .then(
          (response) => core === call.core && dispatch({ type: 'join_response', request: a.request, response }),
          (e) => {
            const err = /** @type {proto.ApiError} */ (e);
            if (core === call.core) dispatch({ type: 'join_failed', request: a.request, code: err.code, message: err.message });
          },
        );
      break;
    case 'open':
      openSession(core, a.session, a.wsUrl, a.nodeId);
      break;
    case 'send_join': {
      // A seat resumed on the node that holds its kept connection: ask it to keep its side too.
      const keep = !!a.resume && !!s && call.parked?.nodeId === s.nodeId;
      s?.sig.send(proto.build.join(a.token, mediaState(), a.resume, true, keep)); // p2p: ui/p2p.js can connect directly.
      break;
    }
    case 'send':
      if (s?.sig.send(a.message) && a.message.type === 'chat' && a.message.client_msg_id) {
        chatSent(a.message.client_msg_id, a.session);
      }
      break;
    case 'start_media':
      if (s) {
        const parked = call.parked;
        call.parked = null;
        if (a.mediaKept && parked && adoptPeer(s, parked)) {
          // ICE restarts now; if the path never broke, it is up already.
          if (s.pc?.connectionState === 'connected') dispatch({ type: 'media_connected', session: s.id });
        } else {
          if (parked) teardown(parked, proto.CloseCode.RECONNECTING);
          // Each event names the session the connection serves now: a
          // resumed session may take it back (adoptPeer).
          createPeer(s, a.iceServers, {
            isCurrent: (now) => core === call.core && core.current === now.id,
            connected: (now) => core === call.core && dispatch({ type: 'media_connected', session: now.id }),
            failed: (now) => core === call.core && dispatch({ type: 'media_failed', session: now.id }),
            onTrack: onRemoteTrack,
          });
        }
        p2pPeerCreated(s);
      }
      break;
    case 'joined':
      onJoined(a.message);
      if (s) p2pJoined(s, a.message);
      if (s) callHooks.e2ee(a.message, s.sig);
      break;
    case 'retire':
      s?.negotiator?.close();
      break;
    case 'close':
      if (s && a.keepMedia && canKeep(s)) park(s);
      else if (s) teardown(s, a.code);
      break;
    case 'set_timer': {
      const old = call.timers.get(a.key);
      if (old) clearTimeout(old);
      call.timers.set(
        a.key,
        setTimeout(() => {
          call.timers.delete(a.key);
          if (core === call.core) dispatch({ type: 'timer', key: a.key });
        }, a.ms),
      );
      break;
    }
    case 'cancel_timer': {
      const old = call.timers.get(a.key);
      if (old) clearTimeout(old);
      call.timers.delete(a.key);
      break;
    }
    case 'status':
      setBanner(a.banner);
      break;
    case 'chat_failed':
      chatFailed(a.clientMsgId);
      break;
    case 'ended':
      dropParked();
      callHooks.ended(a.reason, a.message, core.everJoined);
      break;
    case 'log':
      console[a.level](`veche: ${a.text}`);
      break;
  }
}

/**
 * Builds a session's socket, subscribes to it and opens it. Room events
 * count only while it is the current session; its `chat` also after it was
 * retired by a move (ids dedup the overlap).
 * @param {CallCore} core
 * @param {number} id
 * @param {string} wsUrl
 * @param {NodeId | null} nodeId
 */
function openSession(core, id, wsUrl, nodeId) {
  const sig = new proto.Signalling(proto.resolveWsUrl(wsUrl, location.href));
  /** @type {Session} */
  const s = {
    id,
    sig,
    nodeId,
    pc: null,
    negotiator: null,
    sources: new Map(),
    micSender: null,
    camSender: null,
    screenSenders: [],
    remote: new Set(),
  };
  call.sessions.set(id, s);
  const live = () => core === call.core;
  const isCurrent = () => live() && core.current === id;
  const isRetired = () => live() && !!core.sessions.get(id)?.retired;
  /**
   * @param {string} type
   * @param {(m: any) => void} fn
   */
  const onCurrent = (type, fn) => sig.on(type, (m) => isCurrent() && fn(m));
  sig.on('joined', (m) => live() && dispatch({ type: 'joined', session: id, message: m }));
  onCurrent('answer', (m) => s.negotiator?.handleAnswer(m.sdp));
  onCurrent('offer', (m) => s.negotiator?.handleOffer(m.sdp));
  onCurrent('candidate', (m) => s.negotiator?.handleCandidate(m.candidate));
  for (const t of ['participant_joined', 'participant_updated']) {
    onCurrent(t, (m) => {
      onRoomEvent(m);
      callHooks.e2ee(m, sig);
    });
  }
  onCurrent('policy', onRoomEvent);
  onCurrent('moderated', (m) => callHooks.moderated(m));
  onCurrent('lobby', (m) => callHooks.lobby(m.waiting));
  onCurrent('lobby_waiting', (m) => callHooks.waiting(m.room));
  onCurrent('participant_left', (m) => {
    const who = m.reason === 'removed' ? app.roomState.get(m.participant_id) : undefined;
    if (who) toast(`${who.display_name} was removed from the meeting`);
    remote.streams.delete(m.participant_id);
    remote.streams.delete(`${m.participant_id}-screen`);
    onRoomEvent(m);
    callHooks.e2ee(m, sig);
  });
  for (const t of ['e2ee_found', 'e2ee_key_package', 'e2ee_commit']) onCurrent(t, (m) => callHooks.e2ee(m, sig));
  sig.on('chat', (m) => (isCurrent() || isRetired()) && addMessages([m.message], true));
  sig.on('error', (m) => {
    if (s.negotiator?.handleError(m)) return;
    // A chat refused on a retired session still concerns its placeholder.
    if (m.request === 'chat' && (isCurrent() || isRetired())) {
      chatRefused(m);
    } else if (isCurrent() && m.request?.startsWith('e2ee_')) {
      callHooks.e2ee(m, sig); // A refused commit or key package: the key agreement retries.
    } else if (isCurrent()) {
      console.warn('veche: node error', m);
      if (m.code !== 'invalid_state') toast(proto.humanMessage(m.code, m.message));
    }
  });
  wirePeerToPeer(s, onCurrent);
  onCurrent('move', (m) => dispatch({ type: 'move', session: id, reason: proto.parseMove(m)?.reason ?? '' }));
  onCurrent('protocol_error', (why) => console.warn('veche: bad frame from node:', why));
  sig.on('close', (info) => live() && dispatch({ type: 'closed', session: id, info }));
  sig.connect().then(
    () => live() && dispatch({ type: 'socket_open', session: id }),
    () => live() && dispatch({ type: 'socket_failed', session: id }),
  );
}

/**
 * Peer-to-peer for two (ui/p2p.js): the node's path decisions and the
 * relayed signals of the current session.
 * @param {Session} s
 * @param {(type: string, fn: (m: any) => void) => void} onCurrent
 */
function wirePeerToPeer(s, onCurrent) {
  onCurrent('media_path', (m) => onMediaPath(s, m));
  onCurrent('peer_signal', onPeerSignal);
  // After the handlers above applied them to the room state (subscribed earlier).
  onCurrent('policy', p2pRoomChanged);
  onCurrent('participant_left', p2pRoomChanged);
}

/**
 * Closes a session's peer connection and socket, and takes the streams it
 * received off the stage.
 * @param {Session} s
 * @param {number} code 1000 tells the node we left; `RECONNECTING` keeps the seat.
 */
function teardown(s, code) {
  call.sessions.delete(s.id);
  p2pSessionClosed(s, code);
  s.negotiator?.close();
  if (s.pc) {
    s.pc.onicecandidate = null;
    s.pc.ontrack = null;
    s.pc.onnegotiationneeded = null;
    s.pc.onconnectionstatechange = null;
    s.pc.close();
  }
  s.sig.close(code, code === proto.CloseCode.NORMAL ? 'left' : 'reconnecting');
  let changed = false;
  for (const [id, stream] of remote.streams) {
    if (s.remote.has(stream)) {
      remote.streams.delete(id);
      changed = true;
    }
  }
  s.remote.clear();
  if (changed) renderTiles();
}

/**
 * Whether a session's peer connection is worth keeping for a resume: it
 * was set up, and has not failed (ICE restarts gave up) or closed.
 * @param {Session} s
 */
function canKeep(s) {
  const state = s.pc?.connectionState;
  return !!s.negotiator?.established && state !== undefined && state !== 'failed' && state !== 'closed';
}

/**
 * Closes a session's socket but keeps its peer connection, and the video
 * it shows, for the resumed session (`start_media` with `mediaKept`). The
 * others' tiles stay on their last frame instead of going blank.
 * @param {Session} s
 */
function park(s) {
  dropParked();
  call.sessions.delete(s.id);
  p2pSessionClosed(s, proto.CloseCode.RECONNECTING);
  s.sig.close(proto.CloseCode.RECONNECTING, 'reconnecting');
  call.parked = s;
}

/** Closes a kept peer connection nobody took back. */
function dropParked() {
  const parked = call.parked;
  call.parked = null;
  if (parked) teardown(parked, proto.CloseCode.RECONNECTING);
}

/**
 * A `joined` became the room state.
 * @param {import('../protocol.js').JoinedMessage} m
 */
function onJoined(m) {
  app.roomState = new proto.RoomState().apply(m);
  app.connected = true;
  // Devices may have changed since the `join` went out (during a move the
  // old session got the update, not this one).
  const mine = app.roomState.self?.media;
  const now = mediaState();
  if (mine && (mine.mic_muted !== now.mic_muted || mine.camera_muted !== now.camera_muted || mine.screen_sharing !== now.screen_sharing)) {
    currentSession()?.sig.send(proto.build.media(now));
  }
  loadHistory();
  callHooks.render();
}

/** @param {import('../protocol.js').ServerMessage} m */
function onRoomEvent(m) {
  app.roomState = app.roomState.apply(m);
  callHooks.render();
}
