// Encrypts and decrypts one encoded media frame at a time, DOM-free, so the
// same code runs in the transform worker and under `node --test`.
//
// An encrypted frame is `prefix ‖ SFrame header ‖ ciphertext ‖ tag`. The
// prefix is the first few bytes of the codec payload, left in clear so
// the packetizer and the receiver's depacketizer still see a valid VP8
// frame tag (and, on keyframes, its dimensions) and Opus TOC byte; it is
// authenticated as SFrame metadata (AAD = header ‖ prefix), so it cannot be
// changed in transit. A frame we have no key for is dropped, never passed
// on in clear.

import { parseFrame, openFrame, sealFrame, concat } from './sframe.js';

/** Clear bytes at the start of a frame, by frame type (RTCEncodedVideoFrame
 * `type`; audio frames have none). VP8: the 3-byte frame tag, plus the
 * 7-byte start code and dimensions on keyframes. Opus: the TOC byte. */
export const CLEAR_BYTES = Object.freeze({ key: 10, delta: 3, audio: 1 });
/** Least time between two keyframe requests from one receiver, in ms. */
export const KEYFRAME_REQUEST_INTERVAL_MS = 1000;

/**
 * One encoded frame as the transform sees it (RTCEncodedVideoFrame or
 * RTCEncodedAudioFrame): `data` is replaced in place.
 * @typedef {object} EncodedFrame
 * @property {ArrayBuffer} data
 * @property {'key' | 'delta' | 'empty'} [type] Video only.
 */

/**
 * Frame counts, shared by every pipe of one worker.
 * @typedef {object} Counters
 * @property {number} encrypted Frames we encrypted and passed on.
 * @property {number} decrypted Frames we decrypted and passed on.
 * @property {number} dropped_no_key Frames dropped because we held no
 *   key: to send with, or for the received frame's KID.
 * @property {number} decrypt_failed Received frames dropped because they
 *   were not SFrame or did not authenticate.
 * @property {number} dropped_malformed Frames to send dropped because they
 *   were shorter than their clear prefix.
 * @property {number} plaintext_out Frames passed on without encryption.
 *   Nothing in this module does that; the worker counts here any frame it
 *   would enqueue that the pipe did not produce, as a tripwire tests watch.
 */

/** @returns {Counters} All zero. */
export function newCounters() {
  return {
    encrypted: 0,
    decrypted: 0,
    dropped_no_key: 0,
    decrypt_failed: 0,
    dropped_malformed: 0,
    plaintext_out: 0,
  };
}

/**
 * How many clear bytes a frame of this type keeps.
 * @param {EncodedFrame['type']} type
 * @returns {number}
 */
export function clearBytesFor(type) {
  if (type === 'key') return CLEAR_BYTES.key;
  if (type === 'delta') return CLEAR_BYTES.delta;
  return CLEAR_BYTES.audio;
}

/**
 * What became of one received frame.
 * @typedef {object} RecvOutcome
 * @property {boolean} keep Pass the frame on (it now holds the plaintext).
 * @property {boolean} needKeyframe Ask the sender for a keyframe: video
 *   frames were lost to missing keys or failures, and the decoder needs a
 *   fresh start. At most once per KEYFRAME_REQUEST_INTERVAL_MS per pipe.
 */

/** The frame path of one track, in one direction. */
export class FramePipe {
  /** Received video frames were dropped since the last good keyframe. */
  #gap = false;
  /** When this pipe last asked for a keyframe. */
  #lastAsk = -Infinity;

  /**
   * @param {import('./sframe-keys.js').KeyRing} ring Shared by every pipe
   *   of the worker, so all our tracks draw counters from one send key.
   * @param {Counters} counters Shared by every pipe of the worker.
   */
  constructor(ring, counters) {
    this.ring = ring;
    this.counters = counters;
  }

  /**
   * Encrypts a frame to send, in place.
   * @param {EncodedFrame} frame
   * @returns {Promise<boolean>} true: enqueue it; false: drop it.
   */
  async encrypt(frame) {
    const data = new Uint8Array(frame.data);
    const clear = clearBytesFor(frame.type);
    if (data.length < clear) {
      this.counters.dropped_malformed++;
      return false;
    }
    const slot = this.ring.nextSend();
    if (!slot) {
      this.counters.dropped_no_key++;
      return false;
    }
    const prefix = data.subarray(0, clear);
    const sealed = await sealFrame(slot.key, slot.kid, slot.ctr, prefix, data.subarray(clear));
    frame.data = /** @type {ArrayBuffer} */ (concat(prefix, sealed).buffer);
    this.counters.encrypted++;
    return true;
  }

  /**
   * Decrypts a received frame, in place.
   * @param {EncodedFrame} frame
   * @param {number} now Milliseconds, for the grace window and the
   *   keyframe rate limit.
   * @returns {Promise<RecvOutcome>}
   */
  async decrypt(frame, now) {
    const video = frame.type === 'key' || frame.type === 'delta';
    const data = new Uint8Array(frame.data);
    const clear = clearBytesFor(frame.type);
    /** @type {'ok' | 'no_key' | 'failed'} */
    let result = 'failed';
    /** @type {Uint8Array | null} */
    let out = null;
    if (data.length > clear) {
      const prefix = data.subarray(0, clear);
      try {
        const f = parseFrame(data.subarray(clear));
        const key = await this.ring.receiveKey(f.kid, now);
        if (key) {
          out = concat(prefix, await openFrame(key, f, prefix));
          result = 'ok';
        } else {
          result = 'no_key';
        }
      } catch {
        // SFrameError (not SFrame, or does not authenticate), or a key
        // derivation that failed: either way the frame is dropped.
      }
    }
    if (result === 'no_key') this.counters.dropped_no_key++;
    if (result === 'failed') this.counters.decrypt_failed++;
    if (out) {
      frame.data = /** @type {ArrayBuffer} */ (out.buffer);
      this.counters.decrypted++;
    }
    if (!video) return { keep: out !== null, needKeyframe: false };
    if (!out) this.#gap = true;
    else if (frame.type === 'key') this.#gap = false;
    const needKeyframe = this.#gap && now - this.#lastAsk >= KEYFRAME_REQUEST_INTERVAL_MS;
    if (needKeyframe) this.#lastAsk = now;
    return { keep: out !== null, needKeyframe };
  }
}
