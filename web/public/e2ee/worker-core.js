// The SFrame worker's logic, apart from the worker global so Node tests can
// drive it with real WHATWG streams: one key ring and one set of counters
// for every track of the page, a FramePipe per track, and the page's
// messages. worker.js binds it to `self`.

import { KeyRing } from './sframe-keys.js';
import { FramePipe, newCounters } from './frame-pipe.js';

/**
 * Messages the page sends the worker.
 * @typedef {{type: 'epoch', epoch: number, exporter: ArrayBuffer | Uint8Array, myLeaf: number}
 *   | {type: 'clear'}
 *   | {type: 'stats', id?: number}
 *   | {type: 'stream', side: 'send' | 'recv', kind: string, id?: string,
 *      readable: ReadableStream<any>, writable: WritableStream<any>}} PageMessage
 */

/**
 * Messages the worker sends the page.
 * @typedef {{type: 'stats', id?: number, epoch: number | null, counters: import('./frame-pipe.js').Counters}
 *   | {type: 'epoch', epoch: number, installed: boolean}
 *   | {type: 'keyframe', side: 'recv', kind: string, id?: string}
 *   | {type: 'error', message: string}} WorkerMessage
 */

/**
 * The parts of RTCRtpScriptTransformer the worker uses; each method may
 * be missing (Chromium lacks some of them on some paths).
 * @typedef {object} Transformer
 * @property {ReadableStream<any>} readable
 * @property {WritableStream<any>} writable
 * @property {{side?: string, kind?: string, id?: string}} [options]
 * @property {() => Promise<unknown>} [generateKeyFrame] Send side.
 * @property {() => Promise<unknown>} [sendKeyFrameRequest] Receive side.
 */

/** The worker: keys, counters and the tracks it transforms. */
export class WorkerCore {
  /** @type {Set<Transformer>} */
  #senders = new Set();

  /**
   * @param {(msg: WorkerMessage) => void} post Sends to the page.
   * @param {() => number} clock Milliseconds, monotonic.
   */
  constructor(post, clock) {
    this.post = post;
    this.clock = clock;
    this.ring = new KeyRing();
    this.counters = newCounters();
  }

  /**
   * Handles one message from the page. Unknown or ill-formed ones are
   * ignored.
   * @param {unknown} data
   * @returns {Promise<void>} For `stream`, settles when the track ends;
   *   otherwise when the message is handled.
   */
  async onMessage(data) {
    const m = /** @type {Record<string, any>} */ (data ?? {});
    if (m.type === 'epoch') {
      const ex = m.exporter;
      const bytes = ex instanceof ArrayBuffer ? new Uint8Array(ex) : ex instanceof Uint8Array ? ex : null;
      if (!Number.isInteger(m.epoch) || !Number.isInteger(m.myLeaf) || !bytes) {
        this.post({ type: 'error', message: 'epoch message needs epoch, myLeaf and an exporter ArrayBuffer' });
        return;
      }
      try {
        const installed = await this.ring.install(m.epoch, bytes, m.myLeaf, this.clock());
        this.post({ type: 'epoch', epoch: m.epoch, installed });
        // Receivers lost the frames since the switch, or just joined:
        // a keyframe lets them start decoding at once.
        if (installed) for (const t of this.#senders) t.generateKeyFrame?.().catch(() => {});
      } catch (e) {
        this.post({ type: 'error', message: `could not install epoch ${m.epoch}: ${/** @type {Error} */ (e).message}` });
      }
    } else if (m.type === 'clear') {
      this.ring.clear();
    } else if (m.type === 'stats') {
      this.post({ type: 'stats', id: m.id, epoch: this.ring.epoch, counters: { ...this.counters } });
    } else if (m.type === 'stream') {
      if ((m.side === 'send' || m.side === 'recv') && m.readable && m.writable) {
        return this.attach({ readable: m.readable, writable: m.writable, options: { side: m.side, kind: m.kind, id: m.id } });
      }
    }
  }

  /**
   * Transforms one track's frames until its streams close: from an
   * `rtctransform` event's transformer, or the streams of
   * createEncodedStreams.
   * @param {Transformer} t
   * @returns {Promise<void>} Settles when the track's streams end.
   */
  attach(t) {
    const side = t.options?.side === 'send' ? 'send' : 'recv';
    const kind = String(t.options?.kind ?? '');
    const id = t.options?.id;
    const pipe = new FramePipe(this.ring, this.counters);
    if (side === 'send') this.#senders.add(t);
    const counters = this.counters;
    const transform = new TransformStream({
      transform: async (frame, controller) => {
        const before = frame.data;
        if (side === 'send') {
          // A WebCrypto failure drops this frame instead of ending the track.
          if (!(await pipe.encrypt(frame).catch(() => false))) return;
        } else {
          const r = await pipe.decrypt(frame, this.clock());
          if (r.needKeyframe) {
            t.sendKeyFrameRequest?.().catch(() => {});
            this.post({ type: 'keyframe', side: 'recv', kind, id });
          }
          if (!r.keep) return;
        }
        // Tripwire: the pipe replaces `data` on every frame it passes.
        if (frame.data === before) {
          counters.plaintext_out++;
          return;
        }
        controller.enqueue(frame);
      },
    });
    return t.readable
      .pipeThrough(transform)
      .pipeTo(t.writable)
      .catch(() => {})
      .finally(() => this.#senders.delete(t));
  }
}
