// Media encryption in an end-to-end encrypted room: one worker
// (e2ee/worker.js) runs the SFrame transform of every sender and receiver
// of the call. Nothing here decides: it attaches. The order matters:
// Chromium lets frames bypass a transform attached late, so a sender gets
// its transform in the same task as `addTrack`/`addTransceiver`, and a
// receiver synchronously in `ontrack` (and at creation, for our own
// transceivers). With `createEncodedStreams` the peer connection is made
// with `encodedInsertableStreams: true`, which makes a sender without a
// transform send nothing instead of plaintext. In a plain room every
// function here does nothing.

import { mediaTransformKind } from '../lib/e2ee-status.js';

/**
 * Worker counters, summed over all transforms.
 * @typedef {object} MediaCounters
 * @property {number} encrypted
 * @property {number} decrypted
 * @property {number} dropped_no_key
 * @property {number} decrypt_failed
 * @property {number} plaintext_out Frames that left unencrypted: must stay 0.
 * @property {number} [dropped_malformed] Received frames that are not SFrame.
 */

/** The counters a stats reply carries. */
export const COUNTER_NAMES = /** @type {const} */ (['encrypted', 'decrypted', 'dropped_no_key', 'decrypt_failed', 'plaintext_out']);

/** How long a stats request waits for the worker, in ms. */
const STATS_TIMEOUT_MS = 2000;

/** The page's media encryption. */
const media = {
  /** @type {'script' | 'streams' | null} Null in a plain room. */
  mode: /** @type {'script' | 'streams' | null} */ (null),
  /** @type {Worker | null} */
  worker: /** @type {Worker | null} */ (null),
  /** Senders and receivers that have their transform (attaching twice throws). */
  done: new WeakSet(),
  /** Transforms attached, numbered for the worker. */
  next: 0,
  /** Stats replies awaited, by request number. */
  waiting: /** @type {Map<number, (c: MediaCounters | null) => void>} */ (new Map()),
  /** @type {(msg: any) => void} What the worker tells the page (keyframe requests...). */
  onMessage: /** @type {(msg: any) => void} */ (() => {}),
};

/**
 * Turns media encryption on for this page's calls (an encrypted room):
 * starts the worker once. Call before the first peer connection.
 * @param {(msg: any) => void} [onMessage] The worker's other messages.
 * @returns {boolean} False if this browser cannot encrypt (the pre-join
 *   page has refused already; this is the last guard).
 */
export function enableMediaEncryption(onMessage) {
  if (onMessage) media.onMessage = onMessage;
  if (media.worker) return true;
  const mode = mediaTransformKind();
  if (mode === null) return false;
  const worker = new Worker(new URL('../e2ee/worker.js', import.meta.url), { type: 'module', name: 'veche-e2ee' });
  worker.onmessage = (e) => {
    const msg = e.data;
    if (msg?.type === 'stats' && media.waiting.has(msg.id)) {
      media.waiting.get(msg.id)?.(msg.counters ?? null);
      media.waiting.delete(msg.id);
      return;
    }
    media.onMessage(msg);
  };
  worker.onerror = (e) => console.error('veche: e2ee worker failed', e.message);
  media.worker = worker;
  media.mode = mode;
  return true;
}

/** @returns {boolean} Media of this page's calls is encrypted. */
export function mediaEncrypted() {
  return media.mode !== null;
}

/**
 * The peer connection's configuration: in an encrypted room that uses
 * `createEncodedStreams`, Chromium's `encodedInsertableStreams`.
 * @param {RTCConfiguration} config
 * @returns {RTCConfiguration}
 */
export function peerConfig(config) {
  if (media.mode !== 'streams') return config;
  return /** @type {RTCConfiguration} */ ({ ...config, encodedInsertableStreams: true });
}

/**
 * Gives the worker an epoch's keys: it derives every sender's SFrame key
 * from the exporter, sends with ours at once, and keeps the previous
 * epoch's receive keys for a grace period.
 * @param {number} epoch
 * @param {Uint8Array} exporter The epoch's 32-byte MLS exporter secret.
 * @param {number} myLeaf Our leaf index.
 */
export function sendEpochToWorker(epoch, exporter, myLeaf) {
  if (!media.worker) return;
  const copy = exporter.slice().buffer; // Transferred: the page keeps its own bytes.
  media.worker.postMessage({ type: 'epoch', epoch, exporter: copy, myLeaf }, [copy]);
}

/** Drops every key in the worker: from now on its frames are dropped. */
export function clearWorkerKeys() {
  media.worker?.postMessage({ type: 'clear' });
}

/**
 * Puts the transform on one sender or receiver, once.
 * @param {RTCRtpSender | RTCRtpReceiver} endpoint
 * @param {'send' | 'recv'} side
 * @param {string} kind 'audio' or 'video'.
 */
function attach(endpoint, side, kind) {
  if (!media.worker || media.done.has(endpoint)) return;
  media.done.add(endpoint);
  const options = { side, kind, id: String(++media.next) };
  if (media.mode === 'script') {
    /** @type {any} */ (endpoint).transform = new /** @type {any} */ (globalThis).RTCRtpScriptTransform(media.worker, options);
    return;
  }
  const { readable, writable } = /** @type {any} */ (endpoint).createEncodedStreams();
  media.worker.postMessage({ type: 'stream', ...options, readable, writable }, [readable, writable]);
}

/**
 * Encrypts what a sender sends: call in the task that created it.
 * @param {RTCRtpSender} sender
 * @param {string} kind
 */
export function secureSender(sender, kind) {
  attach(sender, 'send', kind);
}

/**
 * Decrypts what a receiver receives: call in `ontrack`, synchronously.
 * @param {RTCRtpReceiver} receiver
 */
export function secureReceiver(receiver) {
  attach(receiver, 'recv', receiver.track.kind);
}

/**
 * Both directions of a transceiver we created (`addTrack` or
 * `addTransceiver`), found by its sender.
 * @param {RTCPeerConnection} pc
 * @param {RTCRtpSender} sender
 * @param {string} kind
 */
export function secureTransceiverOf(pc, sender, kind) {
  if (!media.worker) return;
  secureSender(sender, kind);
  const t = pc.getTransceivers().find((x) => x.sender === sender);
  if (t) secureReceiver(t.receiver);
}

/**
 * The worker's counters, summed over its transforms; null in a plain
 * room or when the worker does not answer.
 * @returns {Promise<MediaCounters | null>}
 */
export function mediaStats() {
  const worker = media.worker;
  if (!worker) return Promise.resolve(null);
  const request = ++media.next;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      media.waiting.delete(request);
      resolve(null);
    }, STATS_TIMEOUT_MS);
    media.waiting.set(request, (c) => {
      clearTimeout(timer);
      resolve(c);
    });
    worker.postMessage({ type: 'stats', id: request });
  });
}
