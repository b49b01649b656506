// Who commits, and what: the pure part of the key agreement. No MLS, no
// I/O, no clock: the caller passes `now` (ms) and the group's members.
//
// One member commits every change, so that a change costs one commit and
// one welcome (O(N) bytes on the wire) instead of every member proposing
// (O(N²)). The committer is the present member with the lowest leaf
// index; it waits DEBOUNCE_MS after the first change so that a wave of
// joins or leaves lands in one commit. If it says nothing (it left and we
// have not heard yet, or its commit was lost), the next member takes over
// FAILOVER_MS later, and so on: the server accepts only the first commit
// per epoch, so two committers never fork the group.

/** Batch window after the first pending change. */
export const DEBOUNCE_MS = 300;
/** How much longer each next member in line waits before committing. */
export const FAILOVER_MS = 1500;
/**
 * Most members one commit adds. A commit carries each added key package
 * (about 0.7 KB of base64url each), and limits.rs caps a commit at 64 KB:
 * 32 adds plus the path update of a room of 100 stay near 30 KB. The rest
 * go in the next commit, a debounce later.
 */
export const MAX_ADDS_PER_COMMIT = 32;
/** After the server refused our commit, wait this long before another. */
export const REFUSED_BACKOFF_MS = 1000;

/**
 * @typedef {object} MemberRef
 * @property {number} leaf
 * @property {string} pid
 */

/**
 * One commit to make: MLS operations, and the labels the server orders on.
 * A rejoiner (same pid, new key package) has its old leaf in `removeLeaves`
 * but its pid only in `added`, as the server's contract says.
 * @typedef {object} Batch
 * @property {string[]} adds Key packages, base64url.
 * @property {number[]} removeLeaves
 * @property {string[]} added
 * @property {string[]} removed
 */

export class Committer {
  /** @param {string} myPid */
  constructor(myPid) {
    /** @private */
    this.myPid = myPid;
    /** Key packages waiting to be committed in, by pid. @type {Map<string, string>} @private */
    this.adds = new Map();
    /** Members who left for good, to remove. @type {Set<string>} @private */
    this.removes = new Set();
    /** Members whose connection dropped but may resume: not asked to commit. @type {Set<string>} @private */
    this.absent = new Set();
    /** When the current batch is due (for the first in line). @type {number | undefined} @private */
    this.dueAt = undefined;
    /** No commit before this (after a refusal). @private */
    this.notBefore = 0;
  }

  /** @private @param {number} now */
  touch(now) {
    this.dueAt ??= now + DEBOUNCE_MS;
  }

  /**
   * A participant asked to (re)join with a key package. A member that
   * sends one lost its state (or was removed): it cannot commit, and its
   * old leaf goes with the same commit that adds the new one.
   * @param {string} pid
   * @param {string} keyPackage
   * @param {number} now
   */
  keyPackage(pid, keyPackage, now) {
    if (pid === this.myPid) return;
    this.adds.set(pid, keyPackage);
    this.removes.delete(pid);
    this.absent.delete(pid);
    this.touch(now);
  }

  /**
   * A participant left the room. `resumable`: its connection dropped and
   * it may come back with its state; it only stops being asked to commit.
   * @param {string} pid
   * @param {boolean} resumable
   * @param {number} now
   */
  left(pid, resumable, now) {
    if (pid === this.myPid) return;
    if (resumable) {
      this.absent.add(pid);
      return;
    }
    this.adds.delete(pid);
    this.absent.delete(pid);
    this.removes.add(pid);
    this.touch(now);
  }

  /**
   * A participant was heard from (it committed, or resumed).
   * @param {string} pid
   */
  present(pid) {
    this.absent.delete(pid);
  }

  /**
   * Members who may commit, in line: present, not rejoining, lowest leaf
   * first.
   * @param {MemberRef[]} members
   * @returns {MemberRef[]}
   */
  line(members) {
    return members
      .filter((m) => m.pid === this.myPid || (!this.absent.has(m.pid) && !this.adds.has(m.pid) && !this.removes.has(m.pid)))
      .sort((a, b) => a.leaf - b.leaf);
  }

  /**
   * True when I am first in line.
   * @param {MemberRef[]} members
   */
  isCommitter(members) {
    return this.line(members)[0]?.pid === this.myPid;
  }

  /**
   * The batch to commit now, if I should commit now. Changes that need no
   * commit (removing someone already gone from the group) are dropped.
   * @param {MemberRef[]} members The group's members.
   * @param {number} now
   * @returns {Batch | undefined}
   */
  due(members, now) {
    for (const pid of this.removes) {
      if (!members.some((m) => m.pid === pid)) this.removes.delete(pid);
    }
    if (this.adds.size === 0 && this.removes.size === 0) {
      this.dueAt = undefined;
      return undefined;
    }
    const rank = this.line(members).findIndex((m) => m.pid === this.myPid);
    if (rank < 0 || this.dueAt === undefined) return undefined;
    if (now < Math.max(this.dueAt + rank * FAILOVER_MS, this.notBefore)) return undefined;
    /** @type {Batch} */
    const batch = { adds: [], removeLeaves: [], added: [], removed: [] };
    for (const [pid, kp] of this.adds) {
      if (batch.adds.length === MAX_ADDS_PER_COMMIT) break;
      batch.adds.push(kp);
      batch.added.push(pid);
      for (const m of members) if (m.pid === pid) batch.removeLeaves.push(m.leaf);
    }
    for (const pid of this.removes) {
      batch.removed.push(pid);
      for (const m of members) if (m.pid === pid) batch.removeLeaves.push(m.leaf);
    }
    return batch;
  }

  /**
   * A commit (anyone's) was applied: what it covered is no longer pending.
   * What remains is due again a debounce from now.
   * @param {string[]} added
   * @param {string[]} removed
   * @param {number} now
   */
  applied(added, removed, now) {
    for (const pid of added) this.adds.delete(pid);
    for (const pid of removed) this.removes.delete(pid);
    this.dueAt = undefined;
    if (this.adds.size > 0 || this.removes.size > 0) this.touch(now);
  }

  /**
   * The server refused my commit (another won the epoch, or someone I
   * added is no longer waiting). Adds are dropped: waiters send their key
   * packages again every few seconds, so live ones come back. Removes stay.
   * @param {number} now
   */
  refused(now) {
    this.adds.clear();
    this.notBefore = now + REFUSED_BACKOFF_MS;
    this.dueAt = this.removes.size > 0 ? now : undefined;
  }

  /** Forget everything (my group state is gone). */
  clear() {
    this.adds.clear();
    this.removes.clear();
    this.dueAt = undefined;
    this.notBefore = 0;
  }

  /** What is pending, for tests and the status line. */
  pending() {
    return { adds: [...this.adds.keys()], removes: [...this.removes] };
  }
}
