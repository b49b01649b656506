// End-to-end encryption of one call (encrypted rooms only): the glue
// between the key agreement (e2ee/session.js, MLS), the signalling socket
// of the current session, the media worker (ui/e2ee-media.js), the sealed
// chat (lib/e2ee-chat.js) and the security view (ui/security.js). Each new
// epoch gives the worker its exporter (SFrame keys), the chat ring its
// chat key, and the view its members and verification code. Until the
// first epoch, and whenever this browser drops out of the group, frames
// are dropped and chat is not sent: nothing leaves unencrypted.
// `window.__vecheE2ee` lets browser tests read the state. MLS (about 150
// modules) is loaded only in encrypted rooms, when the call starts.

import { verificationCode } from '../e2ee/verify.js';
import { ChatKeyRing, openAll, sealOutgoing, sealRefusal } from '../lib/e2ee-chat.js';
import { MAX_CHAT_CHARS } from '../lib/limits.js';
import { clearWorkerKeys, enableMediaEncryption, mediaStats, sendEpochToWorker } from './e2ee-media.js';
import { resetSecurity, securityStatus, updateSecurity } from './security.js';
import { chatHooks, chatRefused } from './chat-view.js';

/** @typedef {import('../protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('../lib/signalling.js').Signalling} Signalling */
/** @typedef {import('../e2ee/session.js').EpochInfo} EpochInfo */
/** @typedef {import('../e2ee/session.js').E2eeSession} E2eeSession */
/** @typedef {import('../e2ee/identity.js').Identity} Identity */

/**
 * The key agreement's modules and this page's identity key, loaded once.
 * @type {Promise<{session: typeof import('../e2ee/session.js'), identity: Identity}> | null}
 */
let mls = null;

/** @returns {NonNullable<typeof mls>} */
function loadMls() {
  if (mls) return mls;
  // All ~150 modules at once rather than 8 import rounds deep.
  import('../e2ee/mls-preload.js').then((p) => p.preloadMls(document)).catch(() => {});
  mls = Promise.all([import('../e2ee/session.js'), import('../e2ee/identity.js')]).then(async ([session, id]) => ({
    session,
    identity: await id.createIdentity(),
  }));
  return mls;
}

/** How often the key agreement's timers (key package retry, commit debounce) run, in ms. */
const TICK_MS = 100;
/** After resuming a seat, how long to watch for commits missed while away, in ms. */
const RESUME_WATCH_MS = 10000;
/** Seconds of others' frames with no key and none decrypted that mean we missed a commit. */
const RESUME_STUCK_SECONDS = 4;

/** The encryption of the call in progress; null fields in a plain room. */
const e2ee = {
  /** @type {E2eeSession | null} */
  session: /** @type {E2eeSession | null} */ (null),
  /** The socket of the current session: where handshake messages go. */
  sig: /** @type {Signalling | null} */ (null),
  /** @type {string | null} The participant id the key agreement runs as. */
  pid: /** @type {string | null} */ (null),
  chat: new ChatKeyRing(),
  /** @type {{group: number, epoch: number} | null} The epoch whose keys we use. */
  current: /** @type {{group: number, epoch: number} | null} */ (null),
  /** @type {string | null} The current verification code ("1234 5678 ..."). */
  code: /** @type {string | null} */ (null),
  /** @type {ReturnType<typeof setInterval> | null} */
  timer: /** @type {ReturnType<typeof setInterval> | null} */ (null),
  /** The display name the credential carries. */
  name: '',
  /** Counts the epochs reported, so a late verification code of an old one is not shown. */
  serial: 0,
  /** @type {ReturnType<typeof setInterval> | null} The check after a resume. */
  watch: /** @type {ReturnType<typeof setInterval> | null} */ (null),
};

/**
 * A new call starts. In an encrypted room: turns on the media worker
 * (before any peer connection exists), the chat sealing and the view.
 * @param {boolean} encrypted The room is end-to-end encrypted.
 * @param {string} displayName
 * @returns {boolean} False if this browser cannot encrypt (do not connect).
 */
export function startE2ee(encrypted, displayName) {
  stopE2ee();
  resetSecurity(encrypted);
  chatHooks.open = null;
  if (!encrypted) return true;
  if (!enableMediaEncryption(onWorkerMessage)) return false;
  e2ee.name = displayName;
  loadMls().catch((e) => console.error('veche: e2ee: could not load the key agreement', e));
  chatHooks.open = (messages) => openAll(messages, e2ee.chat.crypto());
  e2ee.timer = setInterval(() => e2ee.session?.tick(Date.now()), TICK_MS);
  return true;
}

/** The call ended: stop the key agreement; the worker drops every key. */
export function stopE2ee() {
  if (e2ee.timer) clearInterval(e2ee.timer);
  e2ee.timer = null;
  if (e2ee.watch) clearInterval(e2ee.watch);
  e2ee.watch = null;
  e2ee.session = null;
  e2ee.sig = null;
  e2ee.pid = null;
  lostKey();
}

/**
 * A signalling message for the key agreement (call.js's `e2ee` hook).
 * @param {ServerMessage} m
 * @param {Signalling} sig The socket it came on: the one to answer on.
 */
export function onE2eeSignal(m, sig) {
  if (e2ee.timer === null) return; // A plain room.
  e2ee.sig = sig;
  if (m.type === 'joined') {
    void joined(m.participant_id);
  } else if (m.type === 'participant_joined' || m.type === 'participant_updated') {
    const who = m.participant;
    if (who.id === e2ee.pid) return;
    // Reconnecting: it may resume with its state, but must not be the one
    // everyone waits on to commit. Back (or new): it may be asked again.
    if (who.status === 'reconnecting') void e2ee.session?.participantLeft(who.id, true);
    else void e2ee.session?.participantPresent(who.id);
  } else if (m.type === 'participant_left') {
    // Every reason means that connection's MLS state is gone: a return
    // (reload, `replaced`) comes with a new key package.
    if (m.participant_id !== e2ee.pid) void e2ee.session?.participantLeft(m.participant_id, false);
  } else if (m.type.startsWith('e2ee_') || m.type === 'error') {
    void e2ee.session?.onSignal(m);
  }
}

/**
 * Joined (first time, after a move or a resume). The same participant
 * keeps its MLS state; a new participant id is a new member: new leaf.
 * @param {string} pid
 */
async function joined(pid) {
  if (e2ee.pid === pid) {
    if (e2ee.session) watchAfterResume(e2ee.session);
    return; // The same seat: keep the state (or the session being made).
  }
  lostKey();
  e2ee.pid = pid;
  const { session: m, identity } = await loadMls();
  if (e2ee.pid !== pid || e2ee.timer === null) return; // Superseded while MLS loaded.
  const { E2eeSession, STATE } = m;
  const session = new E2eeSession({
    pid,
    name: e2ee.name,
    identity,
    send: (msg) => {
      if (e2ee.session === session) e2ee.sig?.send(msg);
    },
    now: () => Date.now(),
    onEpoch: (info) => {
      if (e2ee.session === session) onEpoch(info);
    },
    onState: (text) => {
      if (e2ee.session !== session) return;
      if (text === STATE.joining || text === STATE.rejoining) lostKey();
      else if (text !== STATE.encrypted) console.warn(`veche: e2ee: ${text}`);
    },
  });
  e2ee.session = session;
  // A chat message under a later epoch than ours: we missed a commit.
  e2ee.chat.onSeen = (group, epoch) => {
    if (e2ee.session === session) void session.sawEpoch(group, epoch);
  };
  await session.start();
}

/**
 * The seat was resumed with our MLS state, but commits made while we were
 * away never reached us: nothing tells us except others' frames under an
 * epoch we lack. If for a few seconds frames arrive that we cannot
 * decrypt and none that we can, rejoin with a new leaf (a gap later
 * commits reveal is the session's own business). Watches only after our
 * own resume, so a member stuck elsewhere cannot make everyone rejoin.
 * @param {E2eeSession} session
 */
function watchAfterResume(session) {
  if (e2ee.watch) clearInterval(e2ee.watch);
  const until = Date.now() + RESUME_WATCH_MS;
  /** @type {import('./e2ee-media.js').MediaCounters | null} */
  let last = null;
  let stuck = 0;
  e2ee.watch = setInterval(async () => {
    const now = await mediaStats();
    if (e2ee.session !== session || Date.now() > until || !session.inGroup) {
      if (e2ee.watch) clearInterval(e2ee.watch);
      e2ee.watch = null;
      return;
    }
    if (now && last) {
      const lacking = now.dropped_no_key > last.dropped_no_key && now.decrypted === last.decrypted;
      stuck = lacking ? stuck + 1 : 0;
      if (stuck >= RESUME_STUCK_SECONDS) {
        console.warn('veche: e2ee: missed commits while reconnecting; rejoining the key agreement');
        if (e2ee.watch) clearInterval(e2ee.watch);
        e2ee.watch = null;
        void session.reset();
      }
    }
    last = now;
  }, 1000);
}

/**
 * A new epoch: keys to the worker and the chat ring, the code to the view.
 * @param {EpochInfo} info
 */
function onEpoch(info) {
  const pid = /** @type {string} */ (e2ee.pid);
  sendEpochToWorker(info.epoch, info.exporter, info.myLeaf);
  e2ee.chat.install(info.group, info.epoch, info.exporter, pid);
  e2ee.current = { group: info.group, epoch: info.epoch };
  const serial = ++e2ee.serial;
  const members = info.members.map((m) => ({ pid: m.pid, name: m.name, idk: m.idk, badSig: !m.ok, self: m.pid === pid }));
  for (const m of members) if (m.badSig) console.warn(`veche: e2ee: the credential of ${m.pid} does not verify`);
  verificationCode(info.authenticator, members.map((m) => ({ pid: m.pid, idk: m.idk }))).then(
    (code) => {
      if (serial !== e2ee.serial) return;
      e2ee.code = code.digits;
      updateSecurity({ group: info.group, epoch: info.epoch, members, code: code.digits });
    },
    (e) => console.error('veche: e2ee: verification code failed', e),
  );
}

/** This browser holds no key (joining, rejoining, ended): drop frames, stop sealing. */
function lostKey() {
  e2ee.serial++;
  e2ee.current = null;
  e2ee.code = null;
  e2ee.chat.lost();
  clearWorkerKeys();
  updateSecurity({ group: null, epoch: null, members: [], code: null });
}

/**
 * What the worker says besides stats.
 * @param {any} msg
 */
function onWorkerMessage(msg) {
  if (msg?.type === 'error') console.warn(`veche: e2ee worker: ${msg.message}`);
}

/**
 * Sends a chat message in an encrypted room: filtered and sealed under
 * the current epoch, then handed to the call (which queues it while
 * reconnecting). Without a key it is refused back to the input.
 * @param {string} text Already filtered by the chat view.
 * @param {string} clientMsgId
 * @param {(text: string, clientMsgId: string) => void} send
 */
export async function sendSealedChat(text, clientMsgId, send) {
  const r = await sealOutgoing(text, e2ee.chat.crypto());
  if (r.ok) {
    send(r.envelope, clientMsgId);
    return;
  }
  chatRefused({ type: 'error', code: 'bad_request', message: sealRefusal(r.code, r.chars, MAX_CHAT_CHARS), client_msg_id: clientMsgId });
}

/** @returns {boolean} The call is in an encrypted room. */
export function e2eeActive() {
  return e2ee.timer !== null;
}

/** What browser tests read (`window.__vecheE2ee`). */
const testHook = {
  /** @returns {Promise<import('./e2ee-media.js').MediaCounters | null>} Worker counters summed over all transforms. */
  stats: () => mediaStats(),
  /** @returns {number | null} The epoch whose keys this browser uses, null without one. */
  epoch: () => e2ee.current?.epoch ?? null,
  /** @returns {number | null} The group incarnation. */
  group: () => e2ee.current?.group ?? null,
  /** @returns {string | null} The verification code shown, "1234 5678 9012 3456 7890". */
  code: () => e2ee.code,
  /** @returns {string} 'none', 'encrypted' or 'verified'. */
  state: () => securityStatus().state,
  /** @returns {Record<string, number> | null} The key agreement's counters (key packages, commits, rejoins). */
  session: () => (e2ee.session ? { ...e2ee.session.stats } : null),
};
/** @type {any} */ (window).__vecheE2ee = testHook;
