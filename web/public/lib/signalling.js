// One signalling WebSocket to a media node: JSON frames, events by message
// type, and a keepalive ping.

import { ApiError, humanMessage } from './errors.js';
import { CloseCode, PING_INTERVAL_MS, PING_MISSES_BEFORE_DEAD } from './limits.js';
import { build, parseServerMessage } from './messages.js';

/** @typedef {import('./types.js').ClientMessage} ClientMessage */

/**
 * What the `close` event carries.
 * @typedef {object} CloseInfo
 * @property {number} code The WebSocket close code (1006 for a keepalive
 *   timeout detected by this library).
 * @property {string} reason
 * @property {boolean} byClient True if `close()` was called on this side.
 */

/**
 * Minimal timer functions, injectable for tests.
 * @typedef {object} Timers
 * @property {(fn: () => void, ms: number) => any} setInterval
 * @property {(id: any) => void} clearInterval
 */

/**
 * @typedef {object} SignallingOptions
 * @property {any} [WebSocket] The WebSocket constructor; default global.
 * @property {number} [pingIntervalMs] Default `PING_INTERVAL_MS`.
 * @property {() => number} [now] Clock in ms; default `Date.now`.
 * @property {Timers} [timers] Default the global timers.
 */

/**
 * One signalling connection to a media node: JSON frames over a WebSocket,
 * an event emitter for the server's messages, and a ping every 5 s that
 * also detects a dead connection.
 *
 * Events: `open`; `message` (every server message); one event per server
 * message `type` (`joined`, `offer`, `chat`, `move`...); `close` (`CloseInfo`, once,
 * only after a successful open); `protocol_error` (a frame that is not a
 * JSON object with a `type`).
 */
export class Signalling {
  /**
   * @param {string} url The absolute `ws:`/`wss:` URL.
   * @param {SignallingOptions} [options]
   */
  constructor(url, options = {}) {
    /** @type {string} */
    this.url = url;
    this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.now = options.now ?? (() => Date.now());
    /** @type {Timers} */
    this.timers = options.timers ?? {
      setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
      clearInterval: (id) => globalThis.clearInterval(id),
    };
    /** @type {any} */
    this.ws = null;
    /** @type {Map<string, Set<(arg: any) => void>>} */
    this.handlers = new Map();
    this.seq = 0;
    this.lastReceivedAt = 0;
    /** @type {any} */
    this.pingTimer = null;
    this.opened = false;
    this.closed = false;
    this.closedByClient = false;
  }

  /** @returns {boolean} True while the socket is open. */
  get isOpen() {
    return this.opened && !this.closed && this.ws !== null && this.ws.readyState === 1;
  }

  /**
   * Opens the socket. Resolves once it is open; rejects with an `ApiError`
   * (code `network`) if it closes before opening.
   * @returns {Promise<void>}
   */
  connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocketImpl(this.url);
      } catch {
        reject(new ApiError('network', humanMessage('network')));
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        this.opened = true;
        this.lastReceivedAt = this.now();
        this.pingTimer = this.timers.setInterval(() => this.tick(), this.pingIntervalMs);
        this.emit('open', undefined);
        resolve();
      };
      ws.onmessage = (/** @type {{data: any}} */ ev) => this.receive(ev.data);
      ws.onerror = () => {
        // A close event always follows; handle it there.
      };
      ws.onclose = (/** @type {{code: number, reason: string}} */ ev) => {
        if (!this.opened) {
          this.closed = true;
          reject(new ApiError('network', humanMessage('network')));
          return;
        }
        this.finish(ev.code, ev.reason ?? '');
      };
    });
  }

  /**
   * Sends one message. Returns false if the socket is not open.
   * @param {ClientMessage} msg
   * @returns {boolean}
   */
  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Closes the socket from this side. The `close` event fires at once with
   * `byClient: true`.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = CloseCode.NORMAL, reason = '') {
    this.closedByClient = true;
    if (this.ws) {
      try {
        this.ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
    if (this.opened) this.finish(code, reason);
    else this.closed = true;
  }

  /**
   * Subscribes to an event. Returns a function that unsubscribes.
   * @param {string} type `open`, `close`, `message`, `protocol_error`, or a
   *   server message type.
   * @param {(arg: any) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * @param {string} type
   * @param {any} arg
   */
  emit(type, arg) {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(arg);
      } catch (e) {
        console.error(`veche: ${type} handler failed`, e);
      }
    }
  }

  /** @param {any} data */
  receive(data) {
    this.lastReceivedAt = this.now();
    if (typeof data !== 'string') {
      this.emit('protocol_error', 'binary frame');
      return;
    }
    let value;
    try {
      value = JSON.parse(data);
    } catch {
      this.emit('protocol_error', 'frame is not JSON');
      return;
    }
    const parsed = parseServerMessage(value);
    if (!parsed.ok) {
      this.emit('protocol_error', parsed.error);
      return;
    }
    const msg = parsed.msg;
    this.emit('message', msg);
    this.emit(msg.type, msg);
  }

  /**
   * Checks the connection now instead of at the next keepalive: sends a
   * ping, and if nothing at all arrives within `ms`, closes the socket as
   * dead with `RECONNECTING` (4100: our network, not the node, is the
   * suspect, so the reconnect resumes on the same node). For when the
   * media path broke (a network change): a socket bound to an address that
   * is gone would otherwise look alive for three keepalive intervals.
   * @param {number} ms
   */
  probe(ms) {
    if (this.closed || !this.opened) return;
    const sentAt = this.now();
    this.seq += 1;
    this.send(build.ping(this.seq));
    const timer = this.timers.setInterval(() => {
      this.timers.clearInterval(timer);
      if (this.closed || this.lastReceivedAt >= sentAt) return;
      try {
        this.ws.close(CloseCode.RECONNECTING, 'network changed');
      } catch {
        // Ignore.
      }
      this.finish(CloseCode.RECONNECTING, 'no answer after a network change');
    }, ms);
  }

  /** Sends a ping, or declares the connection dead if the node went quiet. */
  tick() {
    if (this.closed) return;
    if (this.now() - this.lastReceivedAt > PING_MISSES_BEFORE_DEAD * this.pingIntervalMs) {
      try {
        // Not 1000: that would tell the node we left and lose our seat.
        this.ws.close(CloseCode.RECONNECTING, 'keepalive timeout');
      } catch {
        // Ignore.
      }
      this.finish(CloseCode.ABNORMAL, 'keepalive timeout');
      return;
    }
    this.seq += 1;
    this.send(build.ping(this.seq));
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    this.pingTimer = null;
    /** @type {CloseInfo} */
    const info = { code, reason, byClient: this.closedByClient };
    this.emit('close', info);
  }
}
