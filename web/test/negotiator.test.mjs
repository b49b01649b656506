// Offer/answer negotiation and SDP reading (lib/negotiator.js). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  Negotiator,
  buildTrackMap,
  parseMediaSections,
} from '../public/protocol.js';
import { fakeTimers } from './fakes.mjs';

/** @param {[string, string, string | null][]} sections */
const sdpWith = (sections) =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    ...sections.flatMap(([kind, mid, msid]) => [
      `m=${kind} 9 UDP/TLS/RTP/SAVPF 111`,
      'c=IN IP4 0.0.0.0',
      `a=mid:${mid}`,
      ...(msid ? [`a=msid:${msid}`] : []),
    ]),
    '',
  ].join('\r\n');

describe('SDP track map', () => {
  test('media sections are read with their mid and msid track id', () => {
    const sdp = sdpWith([
      ['audio', '0', 'stream1 trackA'],
      ['video', '1', 'stream1 trackV'],
      ['video', '2', null],
      ['video', '3', '- trackS'],
    ]);
    assert.deepEqual(parseMediaSections(sdp), [
      { mid: '0', kind: 'audio', streamId: 'stream1', trackId: 'trackA' },
      { mid: '1', kind: 'video', streamId: 'stream1', trackId: 'trackV' },
      { mid: '2', kind: 'video', streamId: null, trackId: null },
      { mid: '3', kind: 'video', streamId: null, trackId: 'trackS' },
    ]);
  });

  test('the offer tracks map keys msid track ids by their transceiver source', () => {
    const sdp = sdpWith([
      ['audio', '0', 's trackA'],
      ['video', '1', 's trackV'],
      ['video', '2', null],
      ['video', '3', 'scr trackS'],
      ['video', '4', 'x unknown'],
    ]);
    /** @type {Map<string, import('../public/lib/types.js').TrackSource>} */
    const sources = new Map([
      ['0', 'microphone'],
      ['1', 'camera'],
      ['2', 'camera'],
      ['3', 'screen'],
    ]);
    assert.deepEqual(buildTrackMap(sdp, sources), { trackA: 'microphone', trackV: 'camera', trackS: 'screen' });
  });
});

/**
 * A peer connection that follows the signalling state machine of JSEP,
 * including the implicit rollback of a polite peer.
 */
class FakePeer {
  constructor() {
    this.signalingState = 'stable';
    /** @type {any} */
    this.localDescription = null;
    /** @type {any} */
    this.remoteDescription = null;
    this.n = 0;
    /** @type {string[]} */
    this.log = [];
    /** @type {any[]} */
    this.candidates = [];
    /** @type {{mid: string | null, sender: any}[]} */
    this.transceivers = [
      { mid: null, sender: 'mic' },
      { mid: null, sender: 'cam' },
    ];
  }
  getTransceivers() {
    return this.transceivers;
  }
  /**
   * @param {{iceRestart?: boolean}} [options]
   * @returns {Promise<RTCSessionDescriptionInit>}
   */
  async createOffer(options) {
    await null;
    this.n += 1;
    this.log.push(options?.iceRestart ? 'offer+restart' : 'offer');
    return { type: 'offer', sdp: sdpWith([['audio', '0', 'ls mic-track'], ['video', '1', 'ls cam-track']]) + `a=x-offer:${this.n}\r\n` };
  }
  /** @param {any} [desc] */
  async setLocalDescription(desc) {
    await null;
    if (desc && desc.type === 'rollback') {
      assert.equal(this.signalingState, 'have-local-offer', 'rollback of a local offer only');
      this.localDescription = null;
      this.signalingState = 'stable';
      this.log.push('rollback');
    } else if (desc && desc.type === 'offer') {
      assert.equal(this.signalingState, 'stable', 'offer created only when stable');
      this.localDescription = desc;
      this.signalingState = 'have-local-offer';
      this.transceivers[0].mid = '0';
      this.transceivers[1].mid = '1';
      this.log.push('slo');
    } else {
      assert.equal(this.signalingState, 'have-remote-offer');
      this.localDescription = { type: 'answer', sdp: `answer-to:${this.remoteDescription.sdp}` };
      this.signalingState = 'stable';
      this.log.push('sla');
    }
  }
  /** @param {any} desc */
  async setRemoteDescription(desc) {
    await null;
    if (desc.type === 'offer') {
      if (this.signalingState === 'have-local-offer') this.log.push('rollback');
      this.remoteDescription = desc;
      this.signalingState = 'have-remote-offer';
      this.log.push('sro');
    } else {
      if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError');
      this.remoteDescription = desc;
      this.signalingState = 'stable';
      this.log.push('sra');
    }
  }
  /** @param {any} c */
  async addIceCandidate(c) {
    await null;
    if (!this.remoteDescription) throw new Error('no remote description');
    this.candidates.push(c);
  }
}

describe('Negotiator', () => {
  function setup() {
    const pc = new FakePeer();
    const sent = /** @type {any[]} */ ([]);
    const t = fakeTimers();
    const errors = /** @type {any[]} */ ([]);
    /** @type {Map<string, import('../public/lib/types.js').TrackSource>} */
    const sources = new Map([
      ['mic', 'microphone'],
      ['cam', 'camera'],
    ]);
    const neg = new Negotiator(pc, (m) => sent.push(m), {
      sourceOf: (tr) => sources.get(tr.sender),
      onError: (e) => errors.push(e),
      setTimeout: t.setTimeout,
      retryFallbackMs: 3000,
    });
    const offers = () => sent.filter((m) => m.type === 'offer');
    return { pc, sent, neg, t, errors, offers };
  }

  test('first offer carries the SDP and the tracks map from the msid lines', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    assert.equal(offers().length, 1);
    assert.equal(offers()[0].sdp, pc.localDescription.sdp);
    assert.deepEqual(offers()[0].tracks, { 'mic-track': 'microphone', 'cam-track': 'camera' });
    assert.equal(neg.offerInFlight, true);
    await neg.handleAnswer('answer-sdp');
    assert.equal(pc.signalingState, 'stable');
    assert.equal(neg.established, true);
    assert.equal(neg.offerInFlight, false);
  });

  test('negotiationneeded before the first answer does not cause a second offer', async () => {
    const { neg, offers } = setup();
    neg.negotiationNeeded(); // fired by addTrack before start()
    await neg.start();
    neg.negotiationNeeded(); // Chrome may deliver it while the first offer is in flight
    await neg.handleAnswer('a');
    assert.equal(offers().length, 1, 'the first offer covered every track added before it');
  });

  test('never two client offers in flight: events during an offer are left to the browser to re-fire', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded();
    assert.equal(offers().length, 2);
    await neg.negotiationNeeded();
    await neg.negotiationNeeded();
    assert.equal(offers().length, 2, 'ignored while in flight');
    await neg.handleAnswer('a2');
    assert.equal(offers().length, 2);
    // The browser re-fires once stable if a change was not covered.
    assert.equal(pc.signalingState, 'stable');
    await neg.negotiationNeeded();
    assert.equal(offers().length, 3);
    await neg.handleAnswer('a3');
  });

  test('negotiationneeded while a node offer is being answered does not offer mid-exchange', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    pc.signalingState = 'have-remote-offer';
    await neg.negotiationNeeded();
    assert.equal(offers().length, 1);
  });

  test('node offers are answered', async () => {
    const { pc, neg, sent } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.handleOffer('node-offer-1');
    assert.deepEqual(sent.at(-1), { type: 'answer', sdp: 'answer-to:node-offer-1' });
    assert.equal(pc.signalingState, 'stable');
  });

  test('glare: a crossing node offer wins, the refused client offer is retried after answering', async () => {
    const { pc, neg, sent, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded(); // e.g. screen share added
    assert.equal(offers().length, 2);
    // The node's offer crossed ours: it arrives first, then the refusal.
    await neg.handleOffer('node-offer');
    assert.ok(pc.log.includes('rollback'));
    assert.deepEqual(sent.at(-1), { type: 'answer', sdp: 'answer-to:node-offer' });
    assert.equal(offers().length, 2, 'no new offer until the refusal arrives');
    assert.equal(neg.handleError({ type: 'error', code: 'invalid_state', message: 'offer outstanding', request: 'offer' }), true);
    await neg.chain;
    assert.equal(offers().length, 3, 'retried');
    assert.equal(pc.signalingState, 'have-local-offer');
    await neg.handleAnswer('a3');
    assert.equal(pc.signalingState, 'stable');
  });

  test('glare refusal before the node offer: retry after the node offer is answered', async () => {
    const { neg, sent, offers, t } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded();
    neg.handleError({ type: 'error', code: 'invalid_state', message: 'x', request: 'offer' });
    await neg.chain;
    // Our local offer is still applied locally; the node offer rolls it back.
    await neg.handleOffer('node-offer');
    const answerIdx = sent.findIndex((m) => m.type === 'answer');
    const lastOfferIdx = sent.lastIndexOf(offers().at(-1));
    assert.equal(offers().length, 3);
    assert.ok(lastOfferIdx > answerIdx, 'the retry follows the answer');
    t.advance(5000);
    await neg.chain;
    assert.equal(offers().length, 3, 'fallback timer does not offer again');
  });

  test('glare refusal with no node offer at all: fallback retry after a timeout', async () => {
    const { pc, neg, offers, t } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    // Simulate the node having refused an offer we then rolled back ourselves.
    neg.offerInFlight = true;
    neg.handleError({ type: 'error', code: 'invalid_state', message: 'x', request: 'offer' });
    assert.equal(offers().length, 1);
    t.advance(3000);
    await neg.chain;
    assert.equal(offers().length, 2);
    assert.equal(pc.signalingState, 'have-local-offer');
  });

  test('other errors are not negotiation errors; other offer errors are reported', async () => {
    const { neg, errors } = setup();
    assert.equal(neg.handleError({ type: 'error', code: 'chat_too_long', message: 'x', request: 'chat' }), false);
    assert.equal(neg.handleError({ type: 'error', code: 'bad_request', message: 'bad sdp', request: 'offer' }), true);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'bad_request');
  });

  test('candidates are added in order after the description they belong to', async () => {
    const { pc, neg } = setup();
    await neg.start();
    neg.handleAnswer('a1');
    neg.handleCandidate({ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 });
    neg.handleCandidate(null);
    neg.handleCandidate({ candidate: '' });
    await neg.chain;
    assert.deepEqual(pc.candidates, [{ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 }]);
  });

  test('after close nothing more is sent', async () => {
    const { neg, sent } = setup();
    await neg.start();
    neg.close();
    await neg.handleOffer('late');
    assert.equal(sent.length, 1);
  });

  test('a resumed connection rolls back the offer the old socket lost and offers again restarting ICE', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded(); // a screen share: this offer dies with the socket
    assert.equal(pc.signalingState, 'have-local-offer');
    await neg.resume();
    assert.deepEqual(pc.log.slice(-3), ['rollback', 'offer+restart', 'slo']);
    assert.equal(offers().length, 3);
    assert.equal(neg.offerInFlight, true);
    await neg.handleAnswer('a3');
    assert.equal(pc.signalingState, 'stable');
    await neg.negotiationNeeded();
    assert.equal(pc.log.at(-2), 'offer', 'only the resumed offer restarts ICE');
  });

  test('after a resume the node offer it sends again wins, and the ICE restart offer follows its answer', async () => {
    const { pc, neg, offers, sent } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.resume();
    // The node had an offer of its own outstanding: it refuses ours…
    assert.equal(neg.handleError({ type: 'error', code: 'invalid_state', message: 'glare', request: 'offer' }), true);
    // …and sends its offer again on the new socket.
    await neg.handleOffer('node-offer');
    await neg.chain;
    assert.equal(sent.filter((m) => m.type === 'answer').length, 1);
    assert.equal(offers().length, 3, 'offered again after answering');
    assert.equal(pc.log.filter((l) => l === 'offer+restart').length, 2, 'the retry still restarts ICE');
    await neg.handleAnswer('a3');
    assert.equal(neg.iceRestart, false);
  });
});
