// A thin wrapper over ts-mls (vendored, see scripts/vendor-mls.sh) for one
// participant's MLS state in one group incarnation: the key package it
// asks to join with, then the group it founds or is welcomed into.
//
// Everything on the wire is base64url of an encoded MLSMessage. The suite
// is fixed (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519): every primitive
// runs through WebCrypto. Commits are private messages (the server cannot
// even see who was added), and carry the ratchet tree in the welcome so a
// joiner needs nothing else.
//
// One MlsClient = one leaf. A participant who lost its state or was
// removed makes a new client (new key package, new leaf): MLS never
// reuses a leaf's keys, which is what gives forward secrecy.

import * as mls from '../vendor/mls/mls.js';
import { bindCredential, fromB64url, toB64url, verifyCredential } from './identity.js';

/** @typedef {import('./identity.js').Identity} Identity */
/** @typedef {import('./identity.js').CredentialInfo} CredentialInfo */
/** @typedef {import('../vendor/mls/ts-mls/clientState.js').ClientState} ClientState */
/** @typedef {import('../vendor/mls/ts-mls/keyPackage.js').KeyPackage} KeyPackage */
/** @typedef {import('../vendor/mls/ts-mls/keyPackage.js').PrivateKeyPackage} PrivateKeyPackage */
/** @typedef {import('../vendor/mls/ts-mls/crypto/ciphersuite.js').CiphersuiteImpl} CiphersuiteImpl */
/** @typedef {import('../vendor/mls/ts-mls/proposal.js').Proposal} Proposal */
/** @typedef {import('../vendor/mls/ts-mls/message.js').MLSMessage} MLSMessage */

/** The one ciphersuite Veche uses. */
export const SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';

/** @type {Promise<CiphersuiteImpl> | undefined} */
let suite;
/** @returns {Promise<CiphersuiteImpl>} */
function impl() {
  suite ??= mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(SUITE));
  return suite;
}

/**
 * @typedef {object} Member
 * @property {number} leaf Leaf index in the ratchet tree.
 * @property {string} pid
 * @property {string} name
 * @property {string} idk base64url identity public key.
 * @property {boolean} ok The credential's signature verifies.
 */

/**
 * A commit made but not yet applied: the committer applies it only when
 * the server echoes it back (accepted).
 * @typedef {object} PendingCommit
 * @property {string} commit base64url MLSMessage.
 * @property {string} [welcome] base64url MLSMessage, when adding.
 * @property {ClientState} state The state after the commit.
 * @property {Uint8Array[]} consumed Secrets to erase once applied.
 */

/**
 * Decodes a base64url MLSMessage.
 * @param {string} b64
 * @returns {MLSMessage}
 */
function decode(b64) {
  const decoded = mls.decodeMlsMessage(fromB64url(b64), 0);
  if (decoded === undefined) throw new Error('not an MLS message');
  return decoded[0];
}

/** @param {MLSMessage} m */
const encode = (m) => toB64url(mls.encodeMlsMessage(m));

/**
 * Reads a key package (base64url) sent by someone else, with its claimed
 * identity checked. Throws when it is not a key package of our suite.
 * @param {string} b64
 * @returns {Promise<{keyPackage: KeyPackage, who: CredentialInfo}>}
 */
export async function readKeyPackage(b64) {
  const m = decode(b64);
  if (m.wireformat !== 'mls_key_package') throw new Error('not a key package');
  const kp = m.keyPackage;
  if (kp.cipherSuite !== SUITE) throw new Error(`key package of suite ${kp.cipherSuite}`);
  const cred = kp.leafNode.credential;
  if (cred.credentialType !== 'basic') throw new Error('not a basic credential');
  const who = await verifyCredential(cred.identity, kp.leafNode.signaturePublicKey);
  return { keyPackage: kp, who };
}

/**
 * Makes a new MLS client (a new leaf): its signature key, credential and
 * key package.
 * @param {Identity} identity
 * @param {string} pid
 * @param {string} name
 * @returns {Promise<MlsClient>}
 */
export async function newClient(identity, pid, name) {
  const cs = await impl();
  const sigKeys = await cs.signature.keygen();
  const identityBytes = await bindCredential(identity, pid, name, sigKeys.publicKey);
  /** @type {import('../vendor/mls/ts-mls/credential.js').Credential} */
  const credential = { credentialType: 'basic', identity: identityBytes };
  const kp = await mls.generateKeyPackageWithKey(credential, mls.defaultCapabilities(), mls.defaultLifetime, [], sigKeys, cs);
  return new MlsClient(pid, kp.publicPackage, kp.privatePackage);
}

/** One participant's leaf: a key package, then a group. */
export class MlsClient {
  /**
   * @param {string} pid
   * @param {KeyPackage} publicPackage
   * @param {PrivateKeyPackage} privatePackage
   */
  constructor(pid, publicPackage, privatePackage) {
    /** Whose leaf this is. */
    this.pid = pid;
    /** @private */
    this.publicPackage = publicPackage;
    /** @private */
    this.privatePackage = privatePackage;
    /** The key package to send, base64url. */
    this.keyPackage = encode({ keyPackage: publicPackage, wireformat: 'mls_key_package', version: 'mls10' });
    /** @type {ClientState | undefined} @private */
    this.state = undefined;
  }

  /** True once this client founded or joined a group (and was not removed). */
  get inGroup() {
    return this.state !== undefined;
  }

  /** The current epoch; -1 before any group. */
  get epoch() {
    return this.state === undefined ? -1 : Number(this.state.groupContext.epoch);
  }

  /** My leaf index; -1 before any group. */
  get myLeaf() {
    return this.state === undefined ? -1 : this.state.privatePath.leafIndex;
  }

  /** The MLS group id (random, chosen by the founder). */
  get groupId() {
    return this.state?.groupContext.groupId ?? new Uint8Array();
  }

  /** @private @returns {ClientState} */
  must() {
    if (this.state === undefined) throw new Error('not in a group');
    return this.state;
  }

  /** Founds a new group alone, at epoch 0, with a random group id. */
  async createGroup() {
    const cs = await impl();
    const groupId = crypto.getRandomValues(new Uint8Array(16));
    this.state = await mls.createGroup(groupId, this.publicPackage, this.privatePackage, [], cs);
  }

  /**
   * Makes one commit that removes `removes` (leaf indexes) and adds
   * `adds` (base64url key packages), without applying it.
   * @param {{adds?: string[], removes?: number[]}} change
   * @returns {Promise<PendingCommit>}
   */
  async commit({ adds = [], removes = [] }) {
    const cs = await impl();
    /** @type {Proposal[]} */
    const proposals = removes.map((leaf) => ({ proposalType: 'remove', remove: { removed: leaf } }));
    for (const b64 of adds) {
      const { keyPackage } = await readKeyPackage(b64);
      proposals.push({ proposalType: 'add', add: { keyPackage } });
    }
    const r = await mls.createCommit(
      { state: this.must(), cipherSuite: cs },
      { extraProposals: proposals, ratchetTreeExtension: true },
    );
    // `consumed` are secrets of the current epoch that the commit used up.
    // They are erased only once the commit is accepted: if another commit
    // wins the epoch, the current state (which shares them) must still
    // process it.
    /** @type {PendingCommit} */
    const pending = { commit: encode(r.commit), state: r.newState, consumed: r.consumed };
    if (r.welcome !== undefined) {
      pending.welcome = encode({ welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' });
    }
    return pending;
  }

  /**
   * Applies my own commit, once the server accepted it.
   * @param {PendingCommit} pending
   */
  applyOwnCommit(pending) {
    this.state = pending.state;
    pending.consumed.forEach(mls.zeroOutUint8Array);
  }

  /**
   * Applies someone else's commit. When it removes me, the state is
   * dropped (ts-mls does not throw for that: it marks the state).
   * @param {string} b64
   * @returns {Promise<{removedMe: boolean}>}
   * @throws {Error} when the commit does not apply (wrong epoch, bad
   *   signature, not a commit): the caller rejoins.
   */
  async processCommit(b64) {
    const cs = await impl();
    const m = decode(b64);
    if (m.wireformat !== 'mls_private_message' && m.wireformat !== 'mls_public_message') {
      throw new Error('not a handshake message');
    }
    const r = await mls.processMessage(m, this.must(), mls.emptyPskIndex, mls.acceptAll, cs);
    r.consumed.forEach(mls.zeroOutUint8Array);
    if (r.kind !== 'newState') throw new Error('an application message, not a commit');
    if (r.newState.groupActiveState.kind === 'removedFromGroup') {
      this.state = undefined;
      return { removedMe: true };
    }
    if (r.newState.groupContext.epoch === this.must().groupContext.epoch) {
      throw new Error('a proposal, not a commit');
    }
    this.state = r.newState;
    return { removedMe: false };
  }

  /**
   * Joins from a welcome made for this client's key package.
   * @param {string} b64
   * @throws {Error} when the welcome is not for this key package.
   */
  async joinFromWelcome(b64) {
    const cs = await impl();
    const m = decode(b64);
    if (m.wireformat !== 'mls_welcome') throw new Error('not a welcome');
    this.state = await mls.joinGroup(m.welcome, this.publicPackage, this.privatePackage, mls.emptyPskIndex, cs);
  }

  /**
   * MLS-Exporter(label, context, length) of the current epoch.
   * @param {string} label
   * @param {Uint8Array} context
   * @param {number} length
   * @returns {Promise<Uint8Array>}
   */
  async exporter(label, context, length) {
    const cs = await impl();
    return mls.mlsExporter(this.must().keySchedule.exporterSecret, label, context, length, cs);
  }

  /** The current epoch's authenticator (RFC 9420 §8.7), for the verification code. */
  epochAuthenticator() {
    return this.must().keySchedule.epochAuthenticator.slice();
  }

  /**
   * The members, in leaf order, with their credentials checked.
   * @returns {Promise<Member[]>}
   */
  async members() {
    const tree = this.must().ratchetTree;
    /** @type {Member[]} */
    const out = [];
    for (let node = 0; node < tree.length; node += 2) {
      const n = tree[node];
      if (n === undefined || n.nodeType !== 'leaf') continue;
      const { credential, signaturePublicKey } = n.leaf;
      const who = credential.credentialType === 'basic'
        ? await verifyCredential(credential.identity, signaturePublicKey)
        : { pid: '', name: '', idk: '', ok: false };
      out.push({ leaf: node / 2, ...who });
    }
    return out;
  }
}
