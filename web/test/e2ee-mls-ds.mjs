// A delivery service for E2eeSession tests: the same ordering rules as the
// server (protocol/src/e2ee.rs DeliveryService: first commit per epoch
// wins; a key package from a member makes it a waiter; no live member
// means the next key package founds a new group), the same fan-out as the
// node (found and accepted commits to everyone including the sender, key
// packages to everyone else, refusals to the sender), and a fake clock.
// Real MLS runs in the sessions; nothing here reads MLS bytes.

import { E2eeSession } from '../public/e2ee/session.js';

/** @typedef {import('../public/e2ee/session.js').EpochInfo} EpochInfo */
/** @typedef {import('../public/lib/types.js').ClientMessage} ClientMessage */
/** @typedef {import('../public/lib/types.js').ServerMessage} ServerMessage */

export class Room {
  constructor() {
    this.t = 0;
    this.ds = { group: 0, epoch: 0, members: new Set(), waiting: new Set() };
    /** @type {Map<string, E2eeSession>} */
    this.sessions = new Map();
    /** Everything the sessions see, in order. @type {{to: string, msg: ServerMessage}[]} */
    this.queue = [];
    /** @type {Map<string, EpochInfo[]>} */
    this.epochs = new Map();
    /** Counters of what went over the wire. */
    this.count = { keyPackages: 0, commits: 0, accepted: 0, refused: 0, delivered: 0 };
    /** pids whose next accepted commit is delivered after the one following it. @type {Set<string>} */
    this.swapNext = new Set();
    /** @type {Map<string, ServerMessage>} */
    this.swapped = new Map();
    /** pids that left the room but still hear commits (as an attacker would). @type {Set<string>} */
    this.eavesdroppers = new Set();
  }

  /**
   * Connects a participant and starts its session.
   * @param {string} pid
   * @param {string} [name]
   */
  async join(pid, name = pid) {
    /** @type {EpochInfo[]} */
    const epochs = [];
    this.epochs.set(pid, epochs);
    const s = new E2eeSession({
      pid,
      name,
      now: () => this.t,
      send: (msg) => this.fromClient(pid, msg),
      onEpoch: (e) => epochs.push(e),
    });
    this.sessions.set(pid, s);
    await s.start();
    return s;
  }

  /**
   * A participant leaves for good: the control plane marks it left, the
   * others hear participant_left.
   * @param {string} pid
   * @param {{listen?: boolean}} [opts] listen: it keeps receiving commits.
   */
  async leave(pid, { listen = false } = {}) {
    this.ds.members.delete(pid);
    this.ds.waiting.delete(pid);
    if (listen) this.eavesdroppers.add(pid);
    else this.sessions.delete(pid);
    for (const [other, s] of this.sessions) if (other !== pid && !this.eavesdroppers.has(other)) await s.participantLeft(pid, false);
  }

  /** @param {string} to @param {ServerMessage} msg */
  push(to, msg) {
    this.queue.push({ to, msg });
  }

  /** @param {ServerMessage} msg @param {string} [except] */
  broadcast(msg, except) {
    for (const pid of this.sessions.keys()) {
      if (pid === except) continue;
      if (this.eavesdroppers.has(pid) && msg.type !== 'e2ee_commit') continue;
      this.push(pid, msg);
    }
  }

  /** @param {string} pid @param {ClientMessage} msg */
  fromClient(pid, msg) {
    // One who left can listen (an attacker with a copy of the traffic)
    // but has no connection to send on.
    if (this.eavesdroppers.has(pid)) return;
    const ds = this.ds;
    if (msg.type === 'e2ee_key_package') {
      this.count.keyPackages++;
      ds.members.delete(pid);
      if (ds.members.size === 0) {
        ds.group++;
        ds.epoch = 0;
        ds.waiting.delete(pid);
        ds.members.add(pid);
        this.broadcast({ type: 'e2ee_found', participant_id: pid, group: ds.group });
      } else {
        ds.waiting.add(pid);
        this.broadcast({ type: 'e2ee_key_package', participant_id: pid, group: ds.group, key_package: msg.key_package }, pid);
      }
    } else if (msg.type === 'e2ee_commit') {
      this.count.commits++;
      const ok = ds.members.size > 0 && msg.group === ds.group && msg.epoch === ds.epoch && ds.members.has(pid)
        && msg.added.every((p) => ds.waiting.has(p));
      if (!ok) {
        this.count.refused++;
        this.push(pid, { type: 'error', code: 'invalid_state', message: 'refused', request: 'e2ee_commit' });
        return;
      }
      this.count.accepted++;
      ds.epoch++;
      for (const p of msg.removed) {
        ds.members.delete(p);
        ds.waiting.delete(p);
      }
      for (const p of msg.added) {
        ds.waiting.delete(p);
        ds.members.add(p);
      }
      const { type: _t, ...labels } = msg;
      this.broadcast({ type: 'e2ee_commit', participant_id: pid, ...labels });
    }
  }

  /** Delivers everything queued (and what that causes), in order. */
  async pump() {
    while (this.queue.length > 0) {
      const { to, msg } = /** @type {{to: string, msg: ServerMessage}} */ (this.queue.shift());
      const s = this.sessions.get(to);
      if (s === undefined) continue;
      if (msg.type === 'e2ee_commit' && this.swapNext.has(to)) {
        this.swapNext.delete(to);
        this.swapped.set(to, msg);
        continue;
      }
      this.count.delivered++;
      await s.onSignal(msg);
      const late = this.swapped.get(to);
      if (late !== undefined && msg.type === 'e2ee_commit') {
        this.swapped.delete(to);
        this.count.delivered++;
        await s.onSignal(late);
      }
    }
  }

  /**
   * Advances the clock in 50 ms steps, ticking every session, until
   * `done()` holds; fails saying `what` did not happen.
   * @param {() => boolean} done
   * @param {string} what
   * @param {number} [maxMs]
   */
  async until(done, what, maxMs = 20000) {
    await this.pump();
    for (let waited = 0; !done(); waited += 50) {
      if (waited > maxMs) throw new Error(`after ${maxMs} ms: ${what} (${this.describe()})`);
      this.t += 50;
      for (const s of this.sessions.values()) await s.tick(this.t);
      await this.pump();
    }
  }

  /** Lets `ms` of fake time pass. @param {number} ms */
  async wait(ms) {
    const end = this.t + ms;
    await this.until(() => this.t >= end, 'time passed', ms + 100);
  }

  /** The latest epoch each participant reported. @param {string} pid */
  last(pid) {
    const list = this.epochs.get(pid) ?? [];
    return list[list.length - 1];
  }

  /**
   * True when all the given participants are in the same epoch of the
   * same group, with the same exporter, and that group has exactly them.
   * @param {string[]} pids
   */
  agreed(pids) {
    const first = this.last(pids[0]);
    if (first === undefined) return false;
    return pids.every((p) => {
      const e = this.last(p);
      const s = this.sessions.get(p);
      return e !== undefined && s?.inGroup === true && s.epoch === e.epoch && e.group === first.group
        && e.epoch === first.epoch && Buffer.from(e.exporter).equals(Buffer.from(first.exporter))
        && e.members.length === pids.length;
    });
  }

  describe() {
    const parts = [...this.sessions].map(([p, s]) => `${p}: ${s.inGroup ? `epoch ${s.epoch}` : 'waiting'}`);
    return `${parts.join(', ')}; server group ${this.ds.group} epoch ${this.ds.epoch}`;
  }
}
