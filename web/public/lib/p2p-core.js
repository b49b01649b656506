// Peer-to-peer for two, decided without a DOM: which media path this page
// uses and when to switch, from the node's `media_path`, the direct peer
// connection's state and what each path decodes. The shell (ui/p2p.js)
// feeds it events with the current time and runs the actions it returns.
//
// Switching is make before break in both directions, so the remote tile is
// never blank while a path is being built:
// - to `p2p`: open the direct connection, keep sending to the SFU until
//   the direct path brings the peer's media, then show the direct media
//   and stop sending to the SFU;
// - to `sfu`: send to the SFU at once (the node opens its gate and asks
//   for a keyframe), keep showing the direct media until the SFU's video
//   of the peer decodes (or a timeout), then close the direct connection.
// The node hears how the direct connection went (`report`, sent as
// `p2p_state`): `connected` when it decodes the peer (the moment we stop
// sending to the SFU), `failed` when it failed again after its ICE restart
// or the restart brought nothing either; the node then moves the room to
// the SFU. Each direct connection belongs to one pairing number; anything about an
// older pairing is ignored, and a new pairing always gets a new connection.

import { limitsFor } from './moderation.js';

/** @typedef {import('./types.js').PolicyView} PolicyView */
/** @typedef {import('./types.js').Role} Role */

/** How long the direct video stays on screen while the SFU's has not decoded. */
export const BREAK_TIMEOUT_MS = 4000;

/** How long a direct connection may take to bring media before it is restarted once. */
export const DIRECT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * What the core is doing, also shown by the test hook.
 * - `sfu`: media through the SFU, no direct connection.
 * - `connecting`: the node said `p2p`; the direct connection is being built.
 * - `direct`: the peer's media comes over the direct connection.
 * - `switching`: the node said `sfu`; sending to the SFU again and still
 *   showing the direct media until the SFU's decodes.
 * @typedef {'sfu' | 'connecting' | 'direct' | 'switching'} P2pState
 */

/**
 * Events the shell feeds in. `forbidden`: while switching to the SFU, the
 * direct path must end now (see `directForbidden`, or the peer left).
 * @typedef {{type: 'media_path', path: 'sfu' | 'p2p', pairing: number, peer?: string | null, offerer: boolean}
 *   | {type: 'direct_media', pairing: number}
 *   | {type: 'direct_failed', pairing: number, hopeless?: boolean}
 *   | {type: 'sfu_decodes', peer: string}
 *   | {type: 'forbidden'}
 *   | {type: 'timer', key: string}
 *   | {type: 'reset'}} P2pEvent
 */

/**
 * Actions for the shell, in order.
 * - `open_direct`: build the direct connection for `pairing` to `peer`
 *   (the offerer sends the offer).
 * - `close_direct`: close the direct connection of `pairing`.
 * - `restart_ice`: the offerer re-offers with an ICE restart.
 * - `sfu_send`: send (or stop sending) our media to the SFU.
 * - `show_direct`: the peer's tile shows the direct media (or the SFU's).
 * - `watch_sfu`: report `sfu_decodes` once the SFU's video of `peer` decodes.
 * - `report`: tell the node how the direct connection of `pairing` went.
 * @typedef {{type: 'open_direct', pairing: number, peer: string, offerer: boolean}
 *   | {type: 'close_direct', pairing: number}
 *   | {type: 'restart_ice', pairing: number}
 *   | {type: 'sfu_send', on: boolean}
 *   | {type: 'show_direct', peer: string, on: boolean}
 *   | {type: 'watch_sfu', peer: string}
 *   | {type: 'report', pairing: number, state: 'connected' | 'failed'}
 *   | {type: 'set_timer', key: string, ms: number}
 *   | {type: 'cancel_timer', key: string}} P2pAction
 */

/**
 * The direct connection of one pairing.
 * @typedef {object} Direct
 * @property {number} pairing
 * @property {string} peer
 * @property {boolean} offerer
 * @property {boolean} media Its media arrived.
 * @property {boolean} restarted An ICE restart was tried.
 * @property {boolean} gaveUp `failed` was reported.
 */

/** Timer keys. */
const T_BREAK = 'p2p_break';
const T_CONNECT = 'p2p_connect';

export class P2pCore {
  constructor() {
    /** @type {'sfu' | 'p2p'} The path the node last gave. */
    this.path = /** @type {'sfu' | 'p2p'} */ ('sfu');
    /** @type {number | null} The pairing the node last gave. */
    this.pairing = /** @type {number | null} */ (null);
    /** @type {Direct | null} */
    this.direct = /** @type {Direct | null} */ (null);
    /** Our media goes to the SFU. */
    this.sfuSending = true;
    /** The peer's tile shows the direct media. */
    this.showingDirect = false;
    /** When the last switch started (ms), for the switch time. */
    this.switchStartedAt = /** @type {number | null} */ (null);
    /** How long the last switch took, from the node's word to the new path's media (ms). */
    this.lastSwitchMs = /** @type {number | null} */ (null);
    /** Timers asked for and not yet fired or cancelled. */
    this.timers = new Set();
    /** @type {P2pAction[]} */
    this.out = [];
    this.now = 0;
  }

  /** @returns {P2pState} */
  get state() {
    if (this.path === 'p2p') return this.direct?.media ? 'direct' : 'connecting';
    return this.showingDirect ? 'switching' : 'sfu';
  }

  /**
   * Handles one event.
   * @param {P2pEvent} ev
   * @param {number} now Milliseconds (only differences count).
   * @returns {P2pAction[]}
   */
  handle(ev, now) {
    this.out = [];
    this.now = now;
    switch (ev.type) {
      case 'media_path':
        if (ev.path === 'p2p' && ev.peer) this.toP2p(ev.pairing, ev.peer, ev.offerer);
        else this.toSfu(ev.pairing);
        break;
      case 'direct_media':
        this.directMedia(ev.pairing);
        break;
      case 'direct_failed':
        this.directFailed(ev.pairing, ev.hopeless ?? false);
        break;
      case 'forbidden':
        // The policy forces the switch (what the SFU will not forward must
        // not keep coming directly), or the peer left: no waiting.
        if (this.state === 'switching') this.finishBreak(false);
        break;
      case 'sfu_decodes':
        if (this.state === 'switching' && this.direct?.peer === ev.peer) this.finishBreak(true);
        break;
      case 'timer':
        if (!this.timers.delete(ev.key)) break;
        if (ev.key === T_BREAK && this.state === 'switching') this.finishBreak(false);
        else if (ev.key === T_CONNECT && this.state === 'connecting' && this.direct) {
          if (this.direct.restarted) this.giveUp(this.direct);
          else this.restart(this.direct);
        }
        break;
      case 'reset':
        this.path = 'sfu';
        this.pairing = null;
        this.closeDirect();
        this.cancel(T_BREAK);
        this.cancel(T_CONNECT);
        this.sendToSfu(true);
        break;
    }
    return this.out;
  }

  /**
   * @param {number} pairing
   * @param {string} peer
   * @param {boolean} offerer
   */
  toP2p(pairing, peer, offerer) {
    if (this.path === 'p2p' && this.pairing === pairing) return; // A repeat (e.g. after a resume).
    this.path = 'p2p';
    this.pairing = pairing;
    this.cancel(T_BREAK);
    // A direct connection of an older pairing cannot be reused: the other
    // side may have closed its end already.
    this.closeDirect();
    this.sendToSfu(true);
    this.direct = { pairing, peer, offerer, media: false, restarted: false, gaveUp: false };
    this.switchStartedAt = this.now;
    this.out.push({ type: 'open_direct', pairing, peer, offerer });
    this.setTimer(T_CONNECT, DIRECT_CONNECT_TIMEOUT_MS);
  }

  /** @param {number} pairing */
  toSfu(pairing) {
    const was = this.path;
    this.path = 'sfu';
    this.pairing = pairing;
    this.cancel(T_CONNECT);
    this.sendToSfu(true);
    if (was !== 'p2p' && !this.showingDirect) {
      this.closeDirect();
      return;
    }
    if (this.showingDirect && this.direct) {
      if (this.state === 'switching' && was !== 'p2p') return; // Already breaking.
      this.switchStartedAt = this.now;
      this.out.push({ type: 'watch_sfu', peer: this.direct.peer });
      this.setTimer(T_BREAK, BREAK_TIMEOUT_MS);
    } else {
      this.closeDirect(); // Never brought media: nothing to keep on screen.
    }
  }

  /** @param {number} pairing */
  directMedia(pairing) {
    const d = this.direct;
    if (!d || d.pairing !== pairing || d.media) return;
    d.media = true;
    if (this.path !== 'p2p') return;
    this.cancel(T_CONNECT);
    this.show(true);
    this.sendToSfu(false);
    this.switched();
    this.out.push({ type: 'report', pairing, state: 'connected' });
  }

  /**
   * @param {number} pairing
   * @param {boolean} hopeless An ICE restart cannot help (no local candidate at all).
   */
  directFailed(pairing, hopeless) {
    const d = this.direct;
    if (!d || d.pairing !== pairing) return;
    if (this.path === 'p2p' && !d.restarted && !hopeless) {
      this.restart(d);
      return;
    }
    if (this.path !== 'p2p') {
      this.finishBreak(false);
      return;
    }
    this.giveUp(d);
  }

  /**
   * Failed twice (or the restart brought nothing either) while the node
   * still says p2p: show what the SFU has, keep sending to it, so nothing
   * is worse than before pairing, and tell the node once.
   * @param {Direct} d
   */
  giveUp(d) {
    this.cancel(T_CONNECT);
    d.media = false;
    this.show(false);
    this.sendToSfu(true);
    if (d.gaveUp) return;
    d.gaveUp = true;
    this.out.push({ type: 'report', pairing: d.pairing, state: 'failed' });
  }

  /** @param {Direct} d */
  restart(d) {
    d.restarted = true;
    if (d.offerer) this.out.push({ type: 'restart_ice', pairing: d.pairing });
    this.setTimer(T_CONNECT, DIRECT_CONNECT_TIMEOUT_MS); // The restart's own chance.
  }

  /** @param {boolean} decoded The SFU's video decoded (else the timeout). */
  finishBreak(decoded) {
    this.cancel(T_BREAK);
    this.show(false);
    this.closeDirect();
    if (decoded) this.switched();
  }

  switched() {
    if (this.switchStartedAt !== null) this.lastSwitchMs = this.now - this.switchStartedAt;
    this.switchStartedAt = null;
  }

  closeDirect() {
    if (this.showingDirect) this.show(false);
    if (this.direct) this.out.push({ type: 'close_direct', pairing: this.direct.pairing });
    this.direct = null;
  }

  /** @param {boolean} on */
  show(on) {
    if (this.showingDirect === on || !this.direct) return;
    this.showingDirect = on;
    this.out.push({ type: 'show_direct', peer: this.direct.peer, on });
  }

  /** @param {boolean} on */
  sendToSfu(on) {
    if (this.sfuSending === on) return;
    this.sfuSending = on;
    this.out.push({ type: 'sfu_send', on });
  }

  /**
   * @param {string} key
   * @param {number} ms
   */
  setTimer(key, ms) {
    this.timers.add(key);
    this.out.push({ type: 'set_timer', key, ms });
  }

  /** @param {string} key */
  cancel(key) {
    if (this.timers.delete(key)) this.out.push({ type: 'cancel_timer', key });
  }
}

/**
 * Whether the room's policy rules out media going directly between these
 * people: what the node must enforce (a hold, speak mode, a recording, the
 * setting turned off) it can only enforce on the SFU path, so a switch for
 * such a reason breaks at once instead of waiting for the SFU's video.
 * @param {PolicyView} policy
 * @param {{id: string, role: Role}[]} people The pair.
 */
export function directForbidden(policy, people) {
  if (policy.settings.p2p === false || policy.recording) return true;
  return people.some((p) => {
    const limits = limitsFor(policy, p.id, p.role);
    return limits.silenced || Object.keys(limits.held).length > 0;
  });
}
