// Offer/answer negotiation with the node over one peer connection, and the
// SDP reading it needs.

import { ApiError, humanMessage } from './errors.js';

/** @typedef {import('./types.js').TrackSource} TrackSource */
/** @typedef {import('./types.js').IceCandidate} IceCandidate */
/** @typedef {import('./types.js').ClientMessage} ClientMessage */
/** @typedef {import('./types.js').ErrorMessage} ErrorMessage */

/**
 * The `a=mid` and `a=msid` track id of every media section of an SDP.
 * @param {string} sdp
 * @returns {{mid: string | null, kind: string, streamId: string | null, trackId: string | null}[]}
 */
export function parseMediaSections(sdp) {
  /** @type {{mid: string | null, kind: string, streamId: string | null, trackId: string | null}[]} */
  const sections = [];
  /** @type {{mid: string | null, kind: string, streamId: string | null, trackId: string | null} | null} */
  let current = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      current = { mid: null, kind: line.slice(2).split(' ')[0], streamId: null, trackId: null };
      sections.push(current);
    } else if (current && line.startsWith('a=mid:')) {
      current.mid = line.slice('a=mid:'.length).trim();
    } else if (current && line.startsWith('a=msid:') && current.trackId === null) {
      const [streamId, trackId] = line.slice('a=msid:'.length).trim().split(/\s+/);
      current.streamId = streamId && streamId !== '-' ? streamId : null;
      current.trackId = trackId ?? null;
    }
  }
  return sections;
}

/**
 * Builds the `tracks` map of an `offer`: for every media section whose mid
 * has a known source, its `a=msid` track id -> source.
 * @param {string} sdp The offer.
 * @param {Map<string, TrackSource>} sourceByMid
 * @returns {Record<string, TrackSource>}
 */
export function buildTrackMap(sdp, sourceByMid) {
  /** @type {Record<string, TrackSource>} */
  const tracks = {};
  for (const s of parseMediaSections(sdp)) {
    if (s.mid === null || s.trackId === null) continue;
    const source = sourceByMid.get(s.mid);
    if (source) tracks[s.trackId] = source;
  }
  return tracks;
}

/**
 * The parts of `RTCPeerConnection` the negotiator uses, so tests can pass a
 * fake.
 * @typedef {object} NegotiationPeer
 * @property {string} signalingState
 * @property {{type: RTCSdpType, sdp: string} | null} localDescription
 * @property {(options?: {iceRestart?: boolean}) => Promise<RTCSessionDescriptionInit>} createOffer
 * @property {(d?: RTCLocalSessionDescriptionInit) => Promise<void>} setLocalDescription
 * @property {(d: RTCSessionDescriptionInit) => Promise<void>} setRemoteDescription
 * @property {(c: IceCandidate) => Promise<void>} addIceCandidate
 * @property {() => {mid: string | null, sender: any, direction?: string}[]} getTransceivers
 */

/**
 * @typedef {object} NegotiatorOptions
 * @property {(transceiver: any) => (TrackSource | undefined)} [sourceOf]
 *   What a transceiver sends, for the offer's `tracks` map.
 * @property {(e: unknown) => void} [onError] Negotiation failures.
 * @property {(fn: () => void, ms: number) => any} [setTimeout]
 * @property {number} [retryFallbackMs] How long to wait for the node's own
 *   offer after a glare refusal before offering again anyway.
 */

/**
 * Runs the offer/answer exchange with the node over one peer connection:
 * the client makes the first offer; afterwards the node offers whenever the
 * tracks to receive change, and the client offers when its own tracks
 * change. The client is the polite peer: a node offer that crosses a
 * client offer wins (the browser rolls its offer back), and the node
 * refuses the crossed client offer with `invalid_state`, after which the
 * client offers again. At most one client offer is in flight.
 *
 * All operations on the peer connection are serialised on one promise
 * chain, so an offer is never created while an answer is being applied.
 */
export class Negotiator {
  /**
   * @param {NegotiationPeer} pc
   * @param {(msg: ClientMessage) => void} send
   * @param {NegotiatorOptions} [options]
   */
  constructor(pc, send, options = {}) {
    this.pc = pc;
    this.send = send;
    this.sourceOf = options.sourceOf ?? (() => undefined);
    this.onError = options.onError ?? ((e) => console.error('veche: negotiation failed', e));
    this.setTimeout = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.retryFallbackMs = options.retryFallbackMs ?? 3000;
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** True once the answer to the first offer has been applied. */
    this.established = false;
    /** A client offer was sent and has no answer or refusal yet. */
    this.offerInFlight = false;
    /** Another client offer is needed once the current exchange ends
     * (our offer was rolled back or refused). */
    this.wantOffer = false;
    /** A node offer was answered since our last offer was sent. */
    this.answeredSinceOffer = false;
    /** A refused offer waits for the node's offer to be answered. */
    this.waitingForNodeOffer = false;
    this.closed = false;
    /** Number of client offers sent; for tests and debugging. */
    this.offersSent = 0;
    /** Our next offer restarts ICE, until an answer to one is applied. */
    this.iceRestart = false;
  }

  /**
   * Queues an operation on the chain.
   * @param {() => Promise<void> | void} op
   * @returns {Promise<void>}
   */
  enqueue(op) {
    this.chain = this.chain
      .then(() => (this.closed ? undefined : op()))
      .catch((e) => {
        if (!this.closed) this.onError(e);
      });
    return this.chain;
  }

  /**
   * Sends the first offer.
   * @returns {Promise<void>}
   */
  start() {
    return this.enqueue(() => this.makeOffer());
  }

  /**
   * Call from `pc.onnegotiationneeded`. Ignored before the first exchange
   * completes, while a client offer is in flight and while a refused offer
   * waits to be retried: the offer being made covers every change made
   * before it, and for a change made after it the browser fires
   * `negotiationneeded` again once the connection is back to `stable`
   * (WebRTC 1.0, "update the negotiation-needed flag"). Queuing the event
   * instead would send a redundant offer after every exchange.
   * @returns {Promise<void>}
   */
  negotiationNeeded() {
    if (!this.established || this.offerInFlight || this.waitingForNodeOffer) return this.chain;
    if (this.pc.signalingState !== 'stable') return this.chain;
    return this.enqueue(() => this.makeOffer());
  }

  /** Creates, applies and sends an offer, unless one is in flight. */
  async makeOffer() {
    if (this.offerInFlight) {
      this.wantOffer = true;
      return;
    }
    this.wantOffer = false;
    this.waitingForNodeOffer = false;
    this.answeredSinceOffer = false;
    this.offerInFlight = true;
    try {
      const offer = await this.pc.createOffer(this.iceRestart ? { iceRestart: true } : undefined);
      await this.pc.setLocalDescription(offer);
    } catch (e) {
      this.offerInFlight = false;
      throw e;
    }
    const sdp = /** @type {{sdp: string}} */ (this.pc.localDescription).sdp;
    /** @type {Map<string, TrackSource>} */
    const sourceByMid = new Map();
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === null) continue;
      const source = this.sourceOf(t);
      if (source) sourceByMid.set(t.mid, source);
    }
    this.offersSent += 1;
    this.send({ type: 'offer', sdp, tracks: buildTrackMap(sdp, sourceByMid) });
  }

  /**
   * Applies the node's `answer` to our offer.
   * @param {string} sdp
   * @returns {Promise<void>}
   */
  handleAnswer(sdp) {
    return this.enqueue(async () => {
      if (this.pc.signalingState !== 'have-local-offer') {
        // An answer to an offer that was rolled back (the node should have
        // refused it instead); nothing to apply, but offer again.
        this.offerInFlight = false;
        if (this.wantOffer) await this.makeOffer();
        return;
      }
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      this.offerInFlight = false;
      this.established = true;
      this.iceRestart = false;
      if (this.wantOffer) await this.makeOffer();
    });
  }

  /**
   * Answers a node `offer`. If our own offer was outstanding, the browser
   * rolls it back; the node will refuse it and we offer again.
   * @param {string} sdp
   * @returns {Promise<void>}
   */
  handleOffer(sdp) {
    return this.enqueue(async () => {
      const rolledBack = this.pc.signalingState === 'have-local-offer';
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      await this.pc.setLocalDescription();
      const answer = /** @type {{sdp: string}} */ (this.pc.localDescription).sdp;
      this.send({ type: 'answer', sdp: answer });
      this.answeredSinceOffer = true;
      if (rolledBack) this.wantOffer = true;
      if (this.waitingForNodeOffer || (this.wantOffer && !this.offerInFlight && this.established)) {
        await this.makeOffer();
      }
    });
  }

  /**
   * Adds a node ICE candidate. `null` (end of candidates) is ignored: ICE
   * completes without it.
   * @param {IceCandidate | null} candidate
   * @returns {Promise<void>}
   */
  handleCandidate(candidate) {
    if (!candidate || !candidate.candidate) return this.chain;
    return this.enqueue(async () => {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (e) {
        // A candidate for a rolled-back or stopped section; harmless.
        console.warn('veche: ignored ICE candidate', e);
      }
    });
  }

  /**
   * Handles a node `error`. Returns true if it concerned negotiation and
   * was dealt with here.
   * @param {ErrorMessage} err
   * @returns {boolean}
   */
  handleError(err) {
    if (err.request !== 'offer') return false;
    if (err.code !== 'invalid_state') {
      this.offerInFlight = false;
      this.onError(new ApiError(err.code, humanMessage(err.code, err.message)));
      return true;
    }
    // Glare: the node had its own offer outstanding and refused ours.
    this.offerInFlight = false;
    this.wantOffer = true;
    if (this.answeredSinceOffer) {
      this.enqueue(() => this.makeOffer());
    } else {
      this.waitingForNodeOffer = true;
      this.setTimeout(() => {
        if (this.waitingForNodeOffer && !this.closed) this.enqueue(() => this.makeOffer());
      }, this.retryFallbackMs);
    }
    return true;
  }

  /**
   * The connection now talks over a resumed session's socket (the node
   * kept its side: `joined.media_kept`), and its path is probably broken.
   * An offer of ours that went out on the old socket may never have
   * arrived: roll it back. Then offer again with fresh ICE credentials.
   * An offer of the node's that crossed ours is resolved as usual (it
   * sends it again on the new socket, refuses ours, and we answer it and
   * offer again, still restarting ICE).
   * @returns {Promise<void>}
   */
  resume() {
    return this.enqueue(async () => {
      if (this.pc.signalingState === 'have-local-offer') {
        await this.pc.setLocalDescription({ type: 'rollback' });
      }
      this.offerInFlight = false;
      this.waitingForNodeOffer = false;
      this.iceRestart = true;
      await this.makeOffer();
    });
  }

  /** Stops all further work; pending operations become no-ops. */
  close() {
    this.closed = true;
  }
}
