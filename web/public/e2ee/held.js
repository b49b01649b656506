// Commits that arrived before they can be applied: for a later epoch than
// mine (across media nodes epoch n+1 can overtake n), or for a group I am
// not in yet (a commit after the one whose welcome admits me). Pure: the
// caller passes the time.

/** Most commits held; more means we are lost and should rejoin. */
export const MAX_HELD = 64;
/** A gap (n+1 held, n never came) is given up after this long: rejoin. */
export const GAP_TIMEOUT_MS = 5000;

/** @typedef {import('../lib/types.js').E2eeCommitMessage} E2eeCommitMessage */

export class HeldCommits {
  constructor() {
    /** By "group:epoch". @type {Map<string, E2eeCommitMessage>} @private */
    this.byEpoch = new Map();
    /** Since when a later epoch waits for a missing one. @type {number | undefined} */
    this.gapSince = undefined;
  }

  /**
   * Keeps a commit for later. False when too many are held (all dropped).
   * @param {E2eeCommitMessage} msg
   * @returns {boolean}
   */
  hold(msg) {
    this.byEpoch.set(`${msg.group}:${msg.epoch}`, msg);
    if (this.byEpoch.size <= MAX_HELD) return true;
    this.byEpoch.clear();
    return false;
  }

  /**
   * A later epoch than mine is in use (a held commit, or media or chat):
   * starts the gap clock unless running.
   * @param {number} now
   */
  gap(now) {
    this.gapSince ??= now;
  }

  /** @param {number} now True when the gap lasted too long. */
  gapExpired(now) {
    return this.gapSince !== undefined && now - this.gapSince >= GAP_TIMEOUT_MS;
  }

  /**
   * I am now at `epoch` of `group`: drops what is older, and returns the
   * commit to apply next, if held. The gap clock restarts if later
   * commits are still waiting for a missing one.
   * @param {number} group
   * @param {number} epoch
   * @param {number} now
   * @returns {E2eeCommitMessage | undefined}
   */
  at(group, epoch, now) {
    for (const [key, m] of this.byEpoch) {
      if (m.group < group || (m.group === group && m.epoch < epoch)) this.byEpoch.delete(key);
    }
    const next = this.byEpoch.get(`${group}:${epoch}`);
    this.byEpoch.delete(`${group}:${epoch}`);
    const later = [...this.byEpoch.values()].some((m) => m.group === group && m.epoch > epoch);
    this.gapSince = next === undefined && later ? now : undefined;
    return next;
  }

  /** Forgets the gap (a new leaf starts over). */
  reset() {
    this.gapSince = undefined;
  }
}
