// What the room page says about end-to-end encryption, with no DOM: the
// indicator's state and text, the members the security panel lists, and
// the person's "Mark as verified", which holds for one group membership
// and lapses as soon as someone joins or leaves (their code changes with
// it). ui/security.js renders it; tested under node
// (web/test/e2ee-ui.test.mjs).

/**
 * `none`: nothing is encrypted yet (a plain room, or an encrypted room
 * before this browser has its first key: its frames are dropped, never
 * sent in the clear). `encrypted`: media and chat use the group's key.
 * `verified`: the same, and the person compared the verification code for
 * the current membership.
 * @typedef {'none' | 'encrypted' | 'verified'} SecurityState
 */

/**
 * A member of the key-agreement group as the panel lists it.
 * @typedef {object} SecurityMember
 * @property {string} pid Participant id.
 * @property {string} name Display name from the member's credential.
 * @property {string} idk base64url of the member's public identity key.
 * @property {boolean} [badSig] The credential's signature over its MLS key
 *   did not verify: someone may impersonate this member.
 * @property {boolean} [self] This browser.
 */

/**
 * The encryption facts the page knows at one moment.
 * @typedef {object} SecurityFacts
 * @property {number | null} group The group incarnation, null when none.
 * @property {number | null} epoch The epoch whose key we hold, null before the first.
 * @property {SecurityMember[]} members
 * @property {string | null} code The verification code for this epoch.
 */

/** The short label of each state (the panel's heading line). */
export const STATE_LABEL = Object.freeze({
  none: 'Not encrypted',
  encrypted: 'Encrypted',
  verified: 'Encrypted and verified',
});

/**
 * The indicator's text. In an encrypted room it reads "End-to-end
 * encrypted" once this browser has a key, and says it is not encrypted
 * yet before (so a test, or a person, can tell the two apart).
 * @param {boolean} e2eeRoom
 * @param {SecurityState} state
 * @returns {string}
 */
export function indicatorText(e2eeRoom, state) {
  if (!e2eeRoom) return STATE_LABEL.none;
  if (state === 'verified') return 'End-to-end encrypted and verified';
  if (state === 'encrypted') return 'End-to-end encrypted';
  return 'Not encrypted yet: setting up end-to-end encryption';
}

/**
 * One string naming a group's membership: the group and the sorted
 * (participant, identity key) pairs. A rejoin (same pid, new key) changes
 * it, like a join or a leave.
 * @param {number | null} group
 * @param {SecurityMember[]} members
 * @returns {string}
 */
export function membershipKey(group, members) {
  const pairs = members.map((m) => `${m.pid}=${m.idk}`).sort();
  return `${group ?? '-'}|${pairs.join(',')}`;
}

/**
 * The security state of one call: fed the facts whenever the key
 * agreement moves, asked for the indicator and the panel.
 */
export class SecurityStatus {
  /** @param {boolean} e2eeRoom The room was created end-to-end encrypted. */
  constructor(e2eeRoom) {
    this.e2ee = e2eeRoom;
    /** @type {SecurityFacts} */
    this.facts = { group: null, epoch: null, members: [], code: null };
    /** @type {string | null} The membership the person marked as verified. */
    this.verifiedFor = null;
  }

  /**
   * New facts (a new epoch, a lost key, a new member list). A verified
   * mark survives only while the membership is the same.
   * @param {SecurityFacts} facts
   * @returns {boolean} True if anything shown changed.
   */
  update(facts) {
    const before = this.snapshot();
    this.facts = { ...facts, members: [...facts.members] };
    if (this.verifiedFor !== null && this.verifiedFor !== this.currentKey()) this.verifiedFor = null;
    return JSON.stringify(before) !== JSON.stringify(this.snapshot());
  }

  /** @returns {string} The membership the current facts describe. */
  currentKey() {
    return membershipKey(this.facts.group, this.facts.members);
  }

  /** @returns {boolean} There is a key and a code to compare. */
  canVerify() {
    return this.e2ee && this.facts.epoch !== null && this.facts.code !== null;
  }

  /**
   * The person compared the code on every screen: holds until the
   * membership changes.
   * @returns {boolean} False if there is nothing to verify yet.
   */
  markVerified() {
    if (!this.canVerify()) return false;
    this.verifiedFor = this.currentKey();
    return true;
  }

  /** @returns {SecurityState} */
  get state() {
    if (!this.e2ee || this.facts.epoch === null) return 'none';
    return this.verifiedFor !== null && this.verifiedFor === this.currentKey() ? 'verified' : 'encrypted';
  }

  /** @returns {string} The indicator's text. */
  get text() {
    return indicatorText(this.e2ee, this.state);
  }

  /** @returns {SecurityMember[]} Members sorted by name, then id. */
  get members() {
    return [...this.facts.members].sort((a, b) => a.name.localeCompare(b.name) || (a.pid < b.pid ? -1 : a.pid > b.pid ? 1 : 0));
  }

  /** @returns {SecurityMember[]} Members whose credential did not verify. */
  get warnings() {
    return this.facts.members.filter((m) => m.badSig);
  }

  /** What the view renders, as plain data. */
  snapshot() {
    return {
      state: this.state,
      text: this.text,
      code: this.facts.code,
      members: this.members,
      canVerify: this.canVerify(),
    };
  }
}

/**
 * A short, readable fingerprint of an identity key for the member list:
 * the last 8 characters of its base64url in two groups of four (a raw
 * P-256 key always starts the same way, so its head tells keys apart
 * less well).
 * @param {string} idk
 * @returns {string}
 */
export function shortKey(idk) {
  const s = idk.replace(/[^A-Za-z0-9_-]/g, '').slice(-8);
  return s.length > 4 ? `${s.slice(0, 4)} ${s.slice(4)}` : s;
}

/** Why an encrypted room refuses a browser before connecting. */
export const UNSUPPORTED_TEXT =
  'This meeting is end-to-end encrypted, and this browser cannot encrypt media. Use a current Chrome, Edge, Firefox or Safari.';

/**
 * How this browser can put a transform on its media: `script`
 * (`RTCRtpScriptTransform`, preferred), `streams` (Chromium's
 * `createEncodedStreams`), or null when it cannot, or lacks WebCrypto
 * (an insecure origin) or workers: then an encrypted room must not
 * connect at all, since nothing could stop frames leaving in the clear.
 * @param {any} [g] The global object (a stand-in in tests).
 * @returns {'script' | 'streams' | null}
 */
export function mediaTransformKind(g = globalThis) {
  if (!g.crypto?.subtle || typeof g.Worker !== 'function') return null;
  if (typeof g.RTCRtpScriptTransform === 'function') return 'script';
  if (typeof g.RTCRtpSender?.prototype?.createEncodedStreams === 'function') return 'streams';
  return null;
}
