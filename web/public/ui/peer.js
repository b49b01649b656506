// One session's peer connection: what we send (microphone, camera, screen)
// and what we receive, with the negotiator that runs offer/answer over the
// session's socket. The call shell (call.js) creates it on `joined`.

import * as proto from '../protocol.js';
import { toast } from './dom.js';
import { local } from './devices.js';
import { peerConfig, secureReceiver, secureTransceiverOf } from './e2ee-media.js';
import { INBOUND_SAMPLE_MS, IceRestart } from '../lib/ice-restart.js';

/** @typedef {import('../protocol.js').TrackSource} TrackSource */
/** @typedef {import('../protocol.js').NodeId} NodeId */
/** @typedef {import('../protocol.js').IceServer} IceServer */

/**
 * The real side of one session the call core knows by number.
 * @typedef {object} Session
 * @property {number} id
 * @property {proto.Signalling} sig
 * @property {NodeId | null} nodeId
 * @property {RTCPeerConnection | null} pc
 * @property {proto.Negotiator | null} negotiator
 * @property {Map<RTCRtpSender, TrackSource>} sources What each of our senders sends.
 * @property {RTCRtpSender | null} micSender
 * @property {RTCRtpSender | null} camSender
 * @property {RTCRtpSender[]} screenSenders
 * @property {Set<MediaStream>} remote Streams its peer connection received.
 * @property {boolean} [sfuPaused] Peer-to-peer: our media goes direct, so
 *   the senders carry no track (ui/p2p.js); device changes leave them so.
 * @property {PeerLink} [link] Which session its peer connection's handlers
 *   serve (set by `createPeer`, moved by `adoptPeer`).
 */

/**
 * The session a peer connection's handlers work for. A resume that keeps
 * the connection (`adoptPeer`) points it at the resumed session, so the
 * handlers send on the new socket and report under the new session's
 * number, however many resumes the connection lives through.
 * `restarting` tells its ICE watch that the session restarts ICE itself.
 * @typedef {{s: Session, restarting: () => void}} PeerLink
 */

/**
 * What a peer connection reports to the call, each about the session it
 * serves now.
 * @typedef {object} PeerEvents
 * @property {(s: Session) => boolean} isCurrent The session is still the call.
 * @property {(s: Session) => void} connected Media connected (`connectionState` "connected").
 * @property {(s: Session) => void} failed Media failed (`connectionState` "failed").
 * @property {(e: RTCTrackEvent) => void} onTrack A received track, on the current session.
 */

/**
 * Builds the peer connection and sends the first offer.
 * @param {Session} s
 * @param {IceServer[]} iceServers
 * @param {PeerEvents} events
 */
export function createPeer(s, iceServers, events) {
  const pc = new RTCPeerConnection(peerConfig({ iceServers }));
  s.pc = pc;
  /** @type {PeerLink} */
  const link = { s, restarting: () => {} };
  s.link = link;
  // Microphone and camera are sendrecv so the node can reuse their m-lines
  // to send us other people's tracks. With no device, a recvonly section
  // still makes the offer carry one audio and one video m-line.
  if (local.mic) {
    s.micSender = pc.addTrack(local.mic, local.stream);
  } else if (local.micAvailable) {
    s.micSender = pc.addTransceiver('audio', { direction: 'sendrecv', streams: [local.stream] }).sender;
  } else {
    secureTransceiverOf(pc, pc.addTransceiver('audio', { direction: 'recvonly' }).sender, 'audio');
  }
  if (local.cam) {
    s.camSender = pc.addTrack(local.cam, local.stream);
  } else if (local.camAvailable) {
    // Camera turned off by choice: keep a sending section with no track so
    // turning it on is a replaceTrack, not a renegotiation.
    s.camSender = pc.addTransceiver('video', { direction: 'sendrecv', streams: [local.stream] }).sender;
  } else {
    secureTransceiverOf(pc, pc.addTransceiver('video', { direction: 'recvonly' }).sender, 'video');
  }
  // Encrypted rooms: the transforms go on in this task, before any frame.
  if (s.micSender) secureTransceiverOf(pc, s.micSender, 'audio');
  if (s.camSender) secureTransceiverOf(pc, s.camSender, 'video');
  if (s.micSender) s.sources.set(s.micSender, 'microphone');
  if (s.camSender) s.sources.set(s.camSender, 'camera');
  if (local.screen) addScreenSenders(s, local.screen);

  const ice = watchIce(pc, () => events.failed(link.s), (ms) => link.s.sig.probe(ms));
  link.restarting = ice.restarting;
  pc.onicecandidate = (e) => {
    if (e.candidate) ice.candidate(e.candidate);
    if (!e.candidate) {
      link.s.sig.send(proto.build.candidate(null));
    } else if (e.candidate.candidate) {
      link.s.sig.send(
        proto.build.candidate({
          candidate: e.candidate.candidate,
          sdpMid: e.candidate.sdpMid,
          sdpMLineIndex: e.candidate.sdpMLineIndex,
          usernameFragment: e.candidate.usernameFragment,
        }),
      );
    }
  };
  pc.ontrack = (e) => {
    secureReceiver(e.receiver); // Encrypted rooms: synchronously, before its first frame.
    if (!events.isCurrent(link.s)) return;
    if (e.streams[0]) link.s.remote.add(e.streams[0]);
    events.onTrack(e);
  };
  pc.onnegotiationneeded = () => link.s.negotiator?.negotiationNeeded();
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected') events.connected(link.s);
    // ICE is restarted first; the call rejoins only if that does not help.
    else if (pc.connectionState === 'failed') ice.failed();
  };
  s.negotiator = new proto.Negotiator(pc, (msg) => link.s.sig.send(msg), {
    sourceOf: (t) => link.s.sources.get(t.sender),
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
 * Takes back into the resumed session `s` the peer connection a session
 * closed for the resume kept (`parked`; the node kept its side too:
 * `joined.media_kept`). Nothing is renegotiated and nobody sees our tracks
 * go: the negotiator restarts ICE over the new socket. The connection's
 * handlers now serve `s` (its `PeerLink`), which takes over its senders
 * and streams.
 * @param {Session} s
 * @param {Session} parked
 * @returns {boolean} False if there was nothing left to take back.
 */
export function adoptPeer(s, parked) {
  const link = parked.link;
  if (!link || !parked.pc || parked.pc.signalingState === 'closed' || !parked.negotiator) return false;
  link.s = s;
  s.link = link;
  s.pc = parked.pc;
  s.negotiator = parked.negotiator;
  s.sources = parked.sources;
  s.micSender = parked.micSender;
  s.camSender = parked.camSender;
  s.screenSenders = parked.screenSenders;
  s.remote = parked.remote;
  s.sfuPaused = parked.sfuPaused;
  console.info('veche: resumed with the same peer connection; restarting ICE');
  link.restarting();
  s.negotiator.resume();
  return true;
}

/**
 * Restarts ICE on `pc` when its path breaks (lib/ice-restart.js decides
 * when), over the session's signalling: `restartIce()` makes the next offer
 * carry fresh ICE credentials and fires `negotiationneeded`, which the
 * negotiator answers with that offer. `failed` runs when restarts gave up.
 * The page's `window.__vecheIce` shows the restarts (for tests).
 * @param {RTCPeerConnection} pc
 * @param {() => void} failed
 * @param {(ms: number) => void} probe Checks the signalling socket now.
 * @returns {{failed: () => void, candidate: (c: RTCIceCandidate) => void, restarting: () => void}}
 *   Feeds a `failed` connection state, each local candidate, and a restart
 *   made elsewhere.
 */
function watchIce(pc, failed, probe) {
  const decide = new IceRestart();
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  const stats = {
    restarts: 0,
    state: pc.iceConnectionState,
    lastRecoveryMs: /** @type {number | null} */ (null),
    /** @type {string[]} The last ICE events, with times, over this page's
     * connections, for tests. */
    log: /** @type {any} */ (window).__vecheIce?.log ?? [],
  };
  /** @type {any} */ (window).__vecheIce = stats;
  const online = () => feed({ type: 'network_change' });
  /** @param {import('../lib/ice-restart.js').IceEvent} ev */
  const feed = (ev) => {
    if (pc.signalingState === 'closed') {
      // Torn down (call.js clears the handlers, so no `closed` state comes).
      window.removeEventListener('online', online);
      clearInterval(sampler);
      if (timer) clearTimeout(timer);
      return;
    }
    for (const a of decide.handle(ev, Date.now())) {
      stats.log = [...stats.log.slice(-29), `${Date.now()} ${a.type}`];
      if (a.type === 'restart') {
        console.info('veche: restarting ICE');
        pc.restartIce();
      } else if (a.type === 'set_timer') {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = null;
          feed({ type: 'timer' });
        }, a.ms);
      } else if (a.type === 'cancel_timer') {
        if (timer) clearTimeout(timer);
        timer = null;
      } else if (a.type === 'probe_signalling') {
        probe(a.ms);
      } else if (a.type === 'give_up') {
        failed();
      }
    }
    stats.restarts = decide.restarts;
    stats.lastRecoveryMs = decide.lastRecoveryMs;
  };
  window.addEventListener('online', online);
  // Packets received, sampled: a path that died shows here seconds before
  // the browser calls it disconnected.
  const sampler = setInterval(() => {
    if (pc.signalingState === 'closed') {
      clearInterval(sampler);
      return;
    }
    pc.getStats().then((report) => {
      let packets = 0;
      report.forEach((r) => {
        if (r.type === 'inbound-rtp') packets += r.packetsReceived ?? 0;
      });
      feed({ type: 'inbound', packets });
    }, () => {});
  }, INBOUND_SAMPLE_MS);
  pc.oniceconnectionstatechange = () => {
    stats.state = pc.iceConnectionState;
    stats.log = [...stats.log.slice(-29), `${Date.now()} ${pc.iceConnectionState}`];
    feed({ type: 'ice_state', state: pc.iceConnectionState });
    if (pc.iceConnectionState === 'closed') window.removeEventListener('online', online);
  };
  return {
    failed: () => feed({ type: 'ice_state', state: 'failed' }),
    candidate: (c) => {
      stats.log = [...stats.log.slice(-29), `${Date.now()} candidate ${c.type} ${c.address}`];
      feed({ type: 'local_candidate', candidateType: c.type, address: c.address });
    },
    restarting: () => {
      stats.log = [...stats.log.slice(-29), `${Date.now()} restart (resumed seat)`];
      feed({ type: 'restarting' });
    },
  };
}

/**
 * Sends a screen share on a session.
 * @param {Session} s
 * @param {MediaStream} stream
 */
export function addScreenSenders(s, stream) {
  if (!s.pc) return;
  for (const track of stream.getTracks()) {
    const sender = s.pc.addTrack(track, stream);
    secureTransceiverOf(s.pc, sender, track.kind);
    s.sources.set(sender, track.kind === 'video' ? 'screen' : 'screen_audio');
    s.screenSenders.push(sender);
    // Not negotiated yet, so nothing was sent: peer-to-peer resumes it later.
    if (s.sfuPaused) sender.replaceTrack(null).catch(() => {});
  }
}

/**
 * Stops sending the screen share on a session (renegotiates).
 * @param {Session} s
 */
export function removeScreenSenders(s) {
  if (!s.pc || s.pc.signalingState === 'closed') return;
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

/**
 * Puts a new microphone or camera track on a session: replaces the track of
 * the existing sender (no renegotiation), or adds a sender if there was no
 * device at join time (renegotiates via negotiationneeded).
 * @param {Session | null} s
 * @param {'microphone' | 'camera'} source
 * @param {MediaStreamTrack} track
 */
export async function attachSendTrack(s, source, track) {
  if (!s?.pc) return;
  const key = source === 'microphone' ? 'micSender' : 'camSender';
  const sender = s[key];
  if (sender) {
    if (!s.sfuPaused) await sender.replaceTrack(track);
    return;
  }
  const added = s.pc.addTrack(track, local.stream);
  secureTransceiverOf(s.pc, added, track.kind);
  s.sources.set(added, source);
  s[key] = added;
  // Not negotiated yet, so nothing was sent: peer-to-peer resumes it later.
  if (s.sfuPaused) await added.replaceTrack(null);
}

/**
 * Stops sending camera video on a session; the sender stays for a later
 * replaceTrack.
 * @param {Session | null} s
 */
export async function detachCam(s) {
  if (!s?.camSender) return;
  try {
    await s.camSender.replaceTrack(null);
  } catch (e) {
    console.warn('veche: replaceTrack(null) failed', e);
  }
}
