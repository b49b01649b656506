// Peer-to-peer for two, the real side: the direct RTCPeerConnection to the
// one other participant, its offer/answer over the node's `peer_signal`
// relay, pausing what we send to the SFU, and showing the peer's direct
// media in their tile. Every decision is in lib/p2p-core.js; this module
// runs its actions and feeds it events (with `Date.now()`).
//
// The direct connection always has the same three sections, in this order:
// microphone (audio), camera (video), screen (video). Both ends create
// them at the start (the offerer with `addTransceiver`, the answerer from
// the offer), so device changes, camera off and screen sharing are a
// `replaceTrack` and never a renegotiation. In an end-to-end encrypted
// room every sender and receiver gets the same SFrame transform as on the
// SFU's connection (ui/e2ee-media.js), so the media stays encrypted with
// the group's keys and the verification code does not change.

import * as proto from '../protocol.js';
import { P2pCore, directForbidden } from '../lib/p2p-core.js';
import { local } from './devices.js';
import { app } from './state.js';
import { remote, renderTiles } from './stage.js';
import { peerConfig, secureReceiver, secureSender, secureTransceiverOf } from './e2ee-media.js';
import { FRAMES_BEFORE_SWITCH, POLL_MS, received, setSfuSending, watchDecodes } from './p2p-sfu.js';

/** @typedef {import('./peer.js').Session} Session */
/** @typedef {import('../protocol.js').IceServer} IceServer */
/** @typedef {import('../lib/p2p-core.js').P2pAction} P2pAction */
/** @typedef {import('../lib/p2p-core.js').P2pEvent} P2pEvent */
/** @typedef {import('../lib/types.js').PeerSignal} PeerSignal */

/** The direct connection's sections, in m-line order. */
const SECTIONS = /** @type {const} */ ([
  ['audio', 'microphone'],
  ['video', 'camera'],
  ['video', 'screen'],
]);

/** State changes the test hook keeps. */
const HISTORY = 50;

/**
 * One direct connection.
 * @typedef {object} Direct
 * @property {number} pairing
 * @property {string} peer
 * @property {boolean} offerer
 * @property {RTCPeerConnection} pc
 * @property {RTCRtpTransceiver[]} sections In `SECTIONS` order, once known.
 * @property {MediaStream} cam The peer's microphone and camera.
 * @property {MediaStream} screen The peer's screen.
 * @property {RTCIceCandidateInit[]} early Candidates that came before the remote description.
 * @property {Promise<void>} queue Signals are applied one at a time, in order.
 * @property {ReturnType<typeof setInterval> | null} poll
 */

/** The page's peer-to-peer state. */
const p2p = {
  core: new P2pCore(),
  /** @type {Session | null} The SFU session whose socket relays our signals. */
  session: /** @type {Session | null} */ (null),
  /** @type {IceServer[]} */
  iceServers: /** @type {IceServer[]} */ ([]),
  /** @type {Direct | null} */
  direct: /** @type {Direct | null} */ (null),
  /** @type {Map<string, ReturnType<typeof setTimeout>>} */
  timers: new Map(),
  /** Stops watching the SFU's video of the peer. */
  stopWatch: () => {},
  /** @type {{at: number, state: string}[]} State changes, for the test hook. */
  history: /** @type {{at: number, state: string}[]} */ ([]),
};

/**
 * Feeds one event to the core and runs its actions.
 * @param {P2pEvent} ev
 */
function dispatch(ev) {
  const before = p2p.core.state;
  for (const a of p2p.core.handle(ev, Date.now())) run(a);
  if (p2p.core.state === before) return;
  p2p.history.push({ at: Date.now(), state: p2p.core.state });
  if (p2p.history.length > HISTORY) p2p.history.shift();
}

/** @param {P2pAction} a */
function run(a) {
  switch (a.type) {
    case 'open_direct':
      openDirect(a.pairing, a.peer, a.offerer);
      break;
    case 'close_direct':
      if (p2p.direct?.pairing === a.pairing) closeDirect(p2p.direct);
      break;
    case 'restart_ice':
      if (p2p.direct?.pairing === a.pairing) void sendOffer(p2p.direct, true);
      break;
    case 'report':
      p2p.session?.sig.send(proto.build.p2pState(a.pairing, a.state));
      break;
    case 'sfu_send':
      if (p2p.session) setSfuSending(p2p.session, a.on);
      break;
    case 'show_direct':
      showDirect(a.peer, a.on);
      break;
    case 'watch_sfu':
      stopWatch();
      p2p.stopWatch = watchDecodes(
        () => p2p.session?.pc ?? null,
        a.peer,
        () => app.roomState.get(a.peer)?.media.camera_muted ?? false,
        () => dispatch({ type: 'sfu_decodes', peer: a.peer }),
      );
      break;
    case 'set_timer': {
      clearTimeout(p2p.timers.get(a.key));
      p2p.timers.set(
        a.key,
        setTimeout(() => {
          p2p.timers.delete(a.key);
          dispatch({ type: 'timer', key: a.key });
        }, a.ms),
      );
      break;
    }
    case 'cancel_timer':
      clearTimeout(p2p.timers.get(a.key));
      p2p.timers.delete(a.key);
      break;
  }
}

/**
 * A session joined: it is the one whose socket relays our signals. A
 * resumed seat keeps its direct connection (media between the two never
 * depended on the socket, and the node keeps the pairing); any other join
 * starts over.
 * @param {Session} s
 * @param {import('../lib/types.js').JoinedMessage} m
 */
export function p2pJoined(s, m) {
  if (!m.resumed) dispatch({ type: 'reset' });
  p2p.session = s;
  p2p.iceServers = m.ice_servers;
  // The report may have been lost with the old socket; the node takes a repeat.
  const pairing = p2p.core.pairing;
  if (m.resumed && p2p.core.state === 'direct' && pairing !== null) s.sig.send(proto.build.p2pState(pairing, 'connected'));
}

/**
 * The session's SFU connection was made: while the media goes direct it
 * sends nothing (its senders are not negotiated yet, so nothing went out).
 * @param {Session} s
 */
export function p2pPeerCreated(s) {
  if (p2p.session === s && !p2p.core.sfuSending) setSfuSending(s, false);
}

/**
 * The session `s` closed. Closed to resume the seat: the direct connection
 * stays for the resumed session; otherwise (leave, another node) it ends.
 * @param {Session} s
 * @param {number} code
 */
export function p2pSessionClosed(s, code) {
  if (p2p.session !== s) return;
  if (code !== proto.CloseCode.RECONNECTING) dispatch({ type: 'reset' });
  p2p.session = null;
}

/**
 * The node's `media_path`, on the current session.
 * @param {Session} s
 * @param {import('../lib/types.js').MediaPathMessage} m
 */
export function onMediaPath(s, m) {
  if (p2p.session !== s) return; // Only the joined session's word counts.
  dispatch({ type: 'media_path', path: m.path, pairing: m.pairing, peer: m.peer ?? null, offerer: m.offerer });
  p2pRoomChanged();
}

/**
 * The room's policy or membership changed (or the path did): a switch
 * the policy forces, or the peer's leaving, breaks at once.
 */
export function p2pRoomChanged() {
  const peer = p2p.direct?.peer;
  const me = app.roomState.participantId;
  if (!peer || !me || p2p.core.state !== 'switching') return;
  const pair = [me, peer].map((id) => ({ id, role: proto.roleOf(app.roomState.get(id)) }));
  if (!app.roomState.get(peer) || directForbidden(app.roomState.policy, pair)) dispatch({ type: 'forbidden' });
}

/**
 * A `peer_signal` relayed from our peer.
 * @param {import('../lib/types.js').PeerSignalMessage} m
 */
export function onPeerSignal(m) {
  const d = p2p.direct;
  if (!d || d.pairing !== m.pairing || d.peer !== m.from) return; // An abandoned attempt.
  d.queue = d.queue.then(() => handleSignal(d, m.signal)).catch((e) => console.warn('veche: direct connection signal failed', e));
}

/**
 * @param {Direct} d
 * @param {PeerSignal} signal
 */
async function handleSignal(d, signal) {
  const pc = d.pc;
  if (signal.kind === 'candidate') {
    const c = signal.candidate;
    if (!pc.remoteDescription) {
      if (c) d.early.push(c);
      return;
    }
    await pc.addIceCandidate(c ?? undefined);
    return;
  }
  if (signal.kind === 'answer') {
    if (!d.offerer || pc.signalingState !== 'have-local-offer') return;
    await pc.setRemoteDescription({ type: 'answer', sdp: signal.sdp });
  } else {
    if (d.offerer) return; // The answerer never offers: one fixed offerer, no glare.
    await pc.setRemoteDescription({ type: 'offer', sdp: signal.sdp });
    if (d.sections.length === 0) takeSections(d);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send(d, { kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
  }
  for (const c of d.early.splice(0)) await pc.addIceCandidate(c).catch((e) => console.warn('veche: candidate refused', e));
}

/**
 * The answerer adopts the sections the offer made: sends on them too,
 * encrypted before any track is put on them.
 * @param {Direct} d
 */
function takeSections(d) {
  d.sections = d.pc.getTransceivers().slice(0, SECTIONS.length);
  d.sections.forEach((t, i) => {
    t.direction = 'sendrecv';
    secureSender(t.sender, SECTIONS[i][0]);
  });
  applyTracks(d);
}

/**
 * @param {Direct} d
 * @param {PeerSignal} signal
 */
function send(d, signal) {
  if (p2p.direct !== d) return;
  p2p.session?.sig.send(proto.build.peerSignal(d.peer, d.pairing, signal));
}

/**
 * @param {number} pairing
 * @param {string} peer
 * @param {boolean} offerer
 */
function openDirect(pairing, peer, offerer) {
  /** @type {RTCConfiguration} */
  const config = { iceServers: p2p.iceServers };
  if (relayOnly()) config.iceTransportPolicy = 'relay';
  const pc = new RTCPeerConnection(peerConfig(config));
  /** @type {Direct} */
  const d = {
    pairing,
    peer,
    offerer,
    pc,
    sections: [],
    cam: new MediaStream(),
    screen: new MediaStream(),
    early: [],
    queue: Promise.resolve(),
    poll: null,
  };
  p2p.direct = d;
  if (offerer) {
    for (const [kind] of SECTIONS) {
      const t = pc.addTransceiver(kind, { direction: 'sendrecv' });
      secureTransceiverOf(pc, t.sender, kind); // In this task, before any frame.
      d.sections.push(t);
    }
    applyTracks(d);
  }
  pc.ontrack = (e) => {
    secureReceiver(e.receiver); // Encrypted rooms: synchronously, before its first frame.
    const i = pc.getTransceivers().indexOf(e.transceiver);
    (SECTIONS[i]?.[1] === 'screen' ? d.screen : d.cam).addTrack(e.track);
    if (p2p.core.showingDirect) renderTiles();
  };
  let gathered = 0;
  pc.onicecandidate = (e) => {
    const c = e.candidate;
    // Gathering ended without a single candidate of ours (relay only and
    // no TURN reachable): no restart with the same servers can connect.
    if (!c && gathered === 0 && p2p.direct === d) dispatch({ type: 'direct_failed', pairing, hopeless: true });
    if (c) gathered++;
    if (!c) send(d, { kind: 'candidate', candidate: null });
    else if (c.candidate) {
      send(d, {
        kind: 'candidate',
        candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment },
      });
    }
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' && p2p.direct === d) dispatch({ type: 'direct_failed', pairing });
  };
  d.poll = setInterval(() => void pollDirect(d), POLL_MS);
  if (offerer) void sendOffer(d, false);
}

/**
 * Test and diagnostic switch: `localStorage['veche.p2p.relayOnly'] = '1'`
 * makes the direct connection use relayed (TURN) candidates only. Without
 * a TURN server it can never connect, which is how a test simulates two
 * networks with no direct route between them (the fallback to the SFU).
 */
function relayOnly() {
  try {
    return localStorage.getItem('veche.p2p.relayOnly') === '1';
  } catch {
    return false; // Storage blocked: the normal path.
  }
}

/**
 * @param {Direct} d
 * @param {boolean} iceRestart
 */
async function sendOffer(d, iceRestart) {
  try {
    const offer = await d.pc.createOffer({ iceRestart });
    await d.pc.setLocalDescription(offer);
    send(d, { kind: 'offer', sdp: d.pc.localDescription?.sdp ?? offer.sdp ?? '' });
  } catch (e) {
    console.warn('veche: direct offer failed', e);
  }
}

/**
 * Reports `direct_media` once the direct connection brings the peer's
 * media: decoded video (`FRAMES_BEFORE_SWITCH` frames), or audio when their camera is off.
 * @param {Direct} d
 */
async function pollDirect(d) {
  if (p2p.direct !== d || p2p.core.direct?.media) return;
  const got = await received(d.pc, () => true);
  const cameraOff = app.roomState.get(d.peer)?.media.camera_muted ?? false;
  if (got.frames >= FRAMES_BEFORE_SWITCH || (cameraOff && got.audioPackets > 0)) dispatch({ type: 'direct_media', pairing: d.pairing });
}

function stopWatch() {
  p2p.stopWatch();
  p2p.stopWatch = () => {};
}

/** @param {Direct} d */
function closeDirect(d) {
  if (d.poll) clearInterval(d.poll);
  stopWatch();
  d.pc.ontrack = null;
  d.pc.onicecandidate = null;
  d.pc.onconnectionstatechange = null;
  d.pc.close();
  if (p2p.direct === d) p2p.direct = null;
}

/**
 * The peer's tile shows the direct media, or the SFU's again.
 * @param {string} peer
 * @param {boolean} on
 */
function showDirect(peer, on) {
  const d = p2p.direct;
  if (on && d) {
    remote.direct.set(peer, d.cam);
    remote.direct.set(`${peer}-screen`, d.screen);
  } else {
    remote.direct.delete(peer);
    remote.direct.delete(`${peer}-screen`);
  }
  renderTiles();
}

/**
 * The local track each section sends now.
 * @param {'microphone' | 'camera' | 'screen'} source
 * @returns {MediaStreamTrack | null}
 */
function localTrack(source) {
  if (source === 'microphone') return local.mic;
  if (source === 'camera') return local.cam;
  return local.screen?.getVideoTracks()[0] ?? null;
}

/**
 * Puts the current local tracks on the direct connection's senders.
 * @param {Direct} d
 */
function applyTracks(d) {
  d.sections.forEach((t, i) => {
    const track = localTrack(SECTIONS[i][1]);
    if (t.sender.track !== track) t.sender.replaceTrack(track).catch((e) => console.warn('veche: direct replaceTrack failed', e));
  });
}

/** Local devices or the screen share changed: the direct connection follows. */
export function p2pTracksChanged() {
  if (p2p.direct && p2p.direct.sections.length) applyTracks(p2p.direct);
}

/** Test hook: what the peer-to-peer side does, and the direct connection's inbound media. */
export const p2pHook = {
  get path() {
    return p2p.core.path;
  },
  get pairing() {
    return p2p.core.pairing;
  },
  get state() {
    return p2p.core.state;
  },
  get peer() {
    return p2p.direct?.peer ?? null;
  },
  get lastSwitchMs() {
    return p2p.core.lastSwitchMs;
  },
  get sfuSending() {
    return p2p.core.sfuSending;
  },
  history: p2p.history,
  /** @returns {RTCPeerConnection | null} */
  pc: () => p2p.direct?.pc ?? null,
  /** @returns {string | null} The direct connection's peer's stream for a `mid` (as the SFU names it). */
  streamOf: (/** @type {string} */ mid) => {
    const d = p2p.direct;
    const i = d ? d.sections.findIndex((t) => t.mid === mid) : -1;
    if (!d || i < 0) return null;
    return SECTIONS[i][1] === 'screen' ? `${d.peer}-screen` : d.peer;
  },
};
/** @type {any} */ (globalThis).__vecheP2p = p2pHook;
