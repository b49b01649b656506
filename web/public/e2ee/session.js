// E2eeSession: one participant's side of the key agreement in an end-to-
// end encrypted room. It turns the signalling events (e2ee_found,
// e2ee_key_package, e2ee_commit, a refused commit, participant_left) and
// the clock into MLS operations, sends key packages and commits, and
// reports each new epoch's exporter secret (from which media and chat keys
// are derived). No DOM, no socket: `send`, `now` and the callbacks are
// passed in, so the whole flow runs in Node tests with real MLS.
//
// Rules (docs/e2ee.md "Key agreement" and "Join, leave and reconnect"):
// - Until in a group, send the key package every KEY_PACKAGE_RETRY_MS.
// - The server orders commits: first per epoch wins. A commit is applied
//   only when the server echoes it; our own echo is our acceptance.
// - Commits arrive in epoch order from one node, but across nodes epoch
//   n+1 may come before n: it is held until n is applied.
// - Anything that does not apply (removed, a commit that fails, a newer
//   group founded without us) makes a new leaf: new key package, rejoin.

import { build } from '../lib/messages.js';
import { Committer } from './committer.js';
import { HeldCommits } from './held.js';
import { createIdentity } from './identity.js';
import { newClient, readKeyPackage } from './group.js';

/** @typedef {import('./group.js').MlsClient} MlsClient */
/** @typedef {import('./group.js').Member} Member */
/** @typedef {import('./group.js').PendingCommit} PendingCommit */
/** @typedef {import('./identity.js').Identity} Identity */
/** @typedef {import('../lib/types.js').ClientMessage} ClientMessage */
/** @typedef {import('../lib/types.js').E2eeCommitMessage} E2eeCommitMessage */

/** Resend the key package this often until welcomed (limits.rs `e2ee::KEY_PACKAGE_RETRY_MS`). */
export const KEY_PACKAGE_RETRY_MS = 4000;
/** A commit the server never answered is given up after this long. */
export const COMMIT_TIMEOUT_MS = 10000;
/** The MLS exporter label of the SFrame/chat base secret. */
export const EXPORTER_LABEL = 'veche sframe';

/** The texts `onState` reports. */
export const STATE = Object.freeze({
  joining: 'Joining the key agreement',
  encrypted: 'Encrypted',
  rejoining: 'Rejoining the key agreement',
});

/**
 * What each epoch gives the media and chat layers.
 * @typedef {object} EpochInfo
 * @property {number} group The server's group incarnation.
 * @property {number} epoch
 * @property {Uint8Array} exporter MLS-Exporter("veche sframe", groupId ‖ u64be(epoch), 32).
 * @property {number} myLeaf
 * @property {Member[]} members In leaf order, credentials checked.
 * @property {Uint8Array} authenticator The epoch authenticator.
 */

/**
 * @typedef {object} SessionOptions
 * @property {string} pid My participant id.
 * @property {string} name My display name.
 * @property {(msg: ClientMessage) => void} send
 * @property {() => number} now Milliseconds.
 * @property {(e: EpochInfo) => void} onEpoch
 * @property {(text: string) => void} [onState]
 * @property {Identity} [identity] Reuse an identity key (else made by start()).
 */

/**
 * @typedef {PendingCommit & {group: number, epoch: number, added: string[], removed: string[], at: number}} InFlight
 */

/**
 * The exporter context: group id ‖ epoch (u64, big-endian).
 * @param {Uint8Array} groupId
 * @param {number} epoch
 * @returns {Uint8Array}
 */
export function exporterContext(groupId, epoch) {
  const out = new Uint8Array(groupId.length + 8);
  out.set(groupId, 0);
  new DataView(out.buffer).setBigUint64(groupId.length, BigInt(epoch));
  return out;
}

export class E2eeSession {
  /** @param {SessionOptions} opts */
  constructor(opts) {
    /** @private */
    this.opts = opts;
    /** @type {Identity | undefined} @private */
    this.identity = opts.identity;
    /** My current leaf: waiting with a key package, or in a group. @type {MlsClient | undefined} */
    this.client = undefined;
    /** The server's group number of the group I am in (or was last in). */
    this.group = 0;
    /** @private */
    this.committer = new Committer(opts.pid);
    /** The current epoch's members, as the committer needs them. @type {{leaf: number, pid: string}[]} @private */
    this.refs = [];
    /** My commit, sent, not yet echoed. @type {InFlight | undefined} @private */
    this.inFlight = undefined;
    /** Commits that came too early. @private */
    this.held = new HeldCommits();
    /** @private */
    this.lastKeyPackageAt = -Infinity;
    /** Everything runs one step at a time, in arrival order. @type {Promise<void>} @private */
    this.queue = Promise.resolve();
    /** Counters for tests and diagnostics. */
    this.stats = { keyPackagesSent: 0, commitsSent: 0, commitsApplied: 0, rejoins: 0 };
  }

  /** True when I hold the current group's state. */
  get inGroup() {
    return this.client?.inGroup === true;
  }

  /** My epoch, -1 outside a group. */
  get epoch() {
    return this.client?.epoch ?? -1;
  }

  /**
   * Runs `step` after every earlier one; errors go to onState, never out.
   * @private
   * @param {() => Promise<void>} step
   * @returns {Promise<void>}
   */
  run(step) {
    this.queue = this.queue.then(step).catch((e) => {
      this.state(`Key agreement error: ${e instanceof Error ? e.message : String(e)}`);
    });
    return this.queue;
  }

  /** @private @param {string} text */
  state(text) {
    this.opts.onState?.(text);
  }

  /** Makes the identity key and the first leaf, and asks to join. */
  start() {
    return this.run(async () => {
      this.identity ??= await createIdentity();
      await this.newLeaf(STATE.joining);
    });
  }

  /** Drops any group state and rejoins with a new leaf (reconnect without state). */
  reset() {
    return this.run(() => this.newLeaf(STATE.rejoining));
  }

  /**
   * A participant left the room; `resumable` when it may come back with
   * its state (a dropped connection), false when it left for good.
   * @param {string} pid
   * @param {boolean} resumable
   */
  participantLeft(pid, resumable) {
    return this.run(async () => {
      this.committer.left(pid, resumable, this.opts.now());
      await this.maybeCommit(this.opts.now());
    });
  }

  /**
   * A participant is (back) in the room: `participant_joined`, or a resumed
   * connection. It may be asked to commit again.
   * @param {string} pid
   */
  participantPresent(pid) {
    return this.run(async () => this.committer.present(pid));
  }

  /**
   * Media or chat of `group`/`epoch` was seen. If that is later than mine,
   * I missed a commit (say, while my connection was down): unless the
   * commit arrives within GAP_TIMEOUT_MS (held.js), I rejoin.
   * @param {number} group
   * @param {number} epoch
   */
  sawEpoch(group, epoch) {
    return this.run(async () => {
      if (!this.inGroup) return;
      if (group > this.group || (group === this.group && epoch > this.epoch)) this.held.gap(this.opts.now());
    });
  }

  /**
   * Drives the timers: key package retry, commit debounce, lost commits.
   * @param {number} now
   */
  tick(now) {
    return this.run(async () => {
      if (this.client === undefined) return;
      if (!this.inGroup && now - this.lastKeyPackageAt >= KEY_PACKAGE_RETRY_MS) this.sendKeyPackage(now);
      if (this.inFlight !== undefined && now - this.inFlight.at >= COMMIT_TIMEOUT_MS) {
        this.inFlight = undefined;
        this.committer.refused(now);
      }
      if (this.held.gapExpired(now)) {
        await this.newLeaf(STATE.rejoining);
        return;
      }
      await this.maybeCommit(now);
    });
  }

  /**
   * One signalling message: e2ee_found, e2ee_key_package, e2ee_commit, or
   * an error answering our e2ee_commit. Others are ignored.
   * @param {import('../lib/types.js').ServerMessage} msg
   */
  onSignal(msg) {
    return this.run(async () => {
      if (this.client === undefined) return;
      const now = this.opts.now();
      switch (msg.type) {
        case 'e2ee_found':
          return this.onFound(msg.participant_id, msg.group);
        case 'e2ee_key_package':
          return this.onKeyPackage(msg.participant_id, msg.group, msg.key_package, now);
        case 'e2ee_commit':
          return this.onCommit(msg, now);
        case 'error':
          if (msg.request === 'e2ee_commit' && this.inFlight !== undefined) {
            this.inFlight = undefined;
            this.committer.refused(now);
          }
          return;
        default:
      }
    });
  }

  /** @private @param {string} text */
  async newLeaf(text) {
    if (this.identity === undefined) throw new Error('start() first');
    if (this.client !== undefined) this.stats.rejoins++;
    this.client = await newClient(this.identity, this.opts.pid, this.opts.name);
    this.inFlight = undefined;
    this.held.reset();
    this.committer.clear();
    this.refs = [];
    this.state(text);
    this.sendKeyPackage(this.opts.now());
  }

  /** @private @param {number} now */
  sendKeyPackage(now) {
    if (this.client === undefined) return;
    this.lastKeyPackageAt = now;
    this.stats.keyPackagesSent++;
    this.opts.send(build.e2eeKeyPackage(this.client.keyPackage));
  }

  /**
   * @private
   * @param {string} founder
   * @param {number} group
   */
  async onFound(founder, group) {
    const client = /** @type {MlsClient} */ (this.client);
    if (founder === this.opts.pid) {
      // The server found no live group: I found one alone, at epoch 0.
      if (client.inGroup) this.client = await newClient(/** @type {Identity} */ (this.identity), this.opts.pid, this.opts.name);
      await /** @type {MlsClient} */ (this.client).createGroup();
      this.group = group;
      this.inFlight = undefined;
      this.committer.clear();
      await this.epochChanged([], []);
      return;
    }
    if (!client.inGroup) {
      // Someone founded a group: ask to join it now, not in 4 s.
      this.sendKeyPackage(this.opts.now());
    } else if (group > this.group) {
      // A newer group means the server saw no member of mine left.
      await this.newLeaf(STATE.rejoining);
    }
  }

  /**
   * @private
   * @param {string} from
   * @param {number} group
   * @param {string} keyPackage
   * @param {number} now
   */
  async onKeyPackage(from, group, keyPackage, now) {
    if (!this.inGroup || group !== this.group) return;
    let who;
    try {
      ({ who } = await readKeyPackage(keyPackage));
    } catch {
      return;
    }
    // The committer adds only leaves whose identity key signed for them
    // and who claim the participant id the server says sent them.
    if (!who.ok || who.pid !== from) {
      this.state(`Ignored a key package from ${from}: its credential does not match`);
      return;
    }
    this.committer.keyPackage(from, keyPackage, now);
    await this.maybeCommit(now);
  }

  /**
   * @private
   * @param {E2eeCommitMessage} msg
   * @param {number} now
   */
  async onCommit(msg, now) {
    this.committer.present(msg.participant_id);
    const client = /** @type {MlsClient} */ (this.client);
    const addsMe = msg.added.includes(this.opts.pid) && msg.welcome !== undefined;
    if (!client.inGroup || msg.group !== this.group) {
      if (addsMe && (!client.inGroup || msg.group > this.group) && (await this.tryWelcome(msg))) return;
      if (msg.group >= this.group) await this.hold(msg);
      return;
    }
    if (msg.epoch < client.epoch) return;
    if (msg.epoch > client.epoch) {
      this.held.gap(now);
      await this.hold(msg);
      return;
    }
    const mine = this.inFlight;
    if (mine !== undefined && msg.participant_id === this.opts.pid && mine.commit === msg.commit) {
      client.applyOwnCommit(mine);
      this.inFlight = undefined;
      await this.epochChanged(msg.added, msg.removed);
      return;
    }
    // Another commit won this epoch: mine (if any) is void.
    this.inFlight = undefined;
    if (msg.participant_id === this.opts.pid) {
      // My own commit that I no longer hold: I cannot apply it.
      await this.newLeaf(STATE.rejoining);
      return;
    }
    // A commit that re-adds me (my key package crossed the welcome that
    // added me: the server took it as a rejoin) replaces my leaf: the
    // welcome is for the key package I still hold.
    if (addsMe && (await this.tryWelcome(msg))) return;
    let removedMe;
    try {
      ({ removedMe } = await client.processCommit(msg.commit));
    } catch {
      removedMe = true;
    }
    if (removedMe) {
      await this.newLeaf(STATE.rejoining);
      return;
    }
    await this.epochChanged(msg.added, msg.removed);
  }

  /**
   * Joins from a commit's welcome, if it is for my key package.
   * @private
   * @param {E2eeCommitMessage} msg
   * @returns {Promise<boolean>}
   */
  async tryWelcome(msg) {
    const client = /** @type {MlsClient} */ (this.client);
    try {
      await client.joinFromWelcome(/** @type {string} */ (msg.welcome));
    } catch {
      return false;
    }
    this.group = msg.group;
    this.inFlight = undefined;
    this.committer.clear();
    await this.epochChanged(msg.added, msg.removed);
    return true;
  }

  /** @private @param {E2eeCommitMessage} msg */
  async hold(msg) {
    // Too many: far behind (a commit lost on the way), catching up is hopeless.
    if (!this.held.hold(msg) && this.inGroup) await this.newLeaf(STATE.rejoining);
  }

  /**
   * After every epoch change: refresh members, report the epoch, apply
   * a held commit for the next epoch, and commit what is pending.
   * @private
   * @param {string[]} added
   * @param {string[]} removed
   */
  async epochChanged(added, removed) {
    const client = /** @type {MlsClient} */ (this.client);
    const now = this.opts.now();
    this.stats.commitsApplied++;
    const members = await client.members();
    this.refs = members.map((m) => ({ leaf: m.leaf, pid: m.pid }));
    this.committer.applied(added, removed, now);
    const exporter = await client.exporter(EXPORTER_LABEL, exporterContext(client.groupId, client.epoch), 32);
    this.state(STATE.encrypted);
    this.opts.onEpoch({
      group: this.group,
      epoch: client.epoch,
      exporter,
      myLeaf: client.myLeaf,
      members,
      authenticator: client.epochAuthenticator(),
    });
    const next = this.held.at(this.group, client.epoch, now);
    if (next !== undefined) {
      await this.onCommit(next, now);
      return;
    }
    await this.maybeCommit(now);
  }

  /**
   * Commits the pending batch if I am in line and it is due.
   * @private
   * @param {number} now
   */
  async maybeCommit(now) {
    const client = this.client;
    if (client === undefined || !client.inGroup || this.inFlight !== undefined) return;
    const batch = this.committer.due(this.refs, now);
    if (batch === undefined) return;
    let pending;
    try {
      pending = await client.commit({ adds: batch.adds, removes: batch.removeLeaves });
    } catch {
      // A key package ts-mls refuses: drop the adds; live waiters resend.
      this.committer.refused(now);
      return;
    }
    const labels = { group: this.group, epoch: client.epoch, added: batch.added, removed: batch.removed };
    this.inFlight = { ...pending, ...labels, at: now };
    this.stats.commitsSent++;
    this.opts.send(build.e2eeCommit({ ...labels, commit: pending.commit, welcome: pending.welcome }));
  }
}
