// The call core's state: every field of the machine, and the helpers all
// its transitions use (emitting actions, recording and closing sessions,
// the banner, the chat queue). CallMoves (call-moves.js) and CallCore
// (call-core.js) extend it with the transitions.

import { build } from './messages.js';
import {
  MAX_QUEUED_CHATS,
  MEDIA_FAILURES_BEFORE_EXPLAINING,
  MEDIA_UNREACHABLE_MESSAGE,
} from './call-types.js';

/** @typedef {import('./call-types.js').CallAction} CallAction */
/** @typedef {import('./call-types.js').SessionRec} SessionRec */
/** @typedef {import('./call-types.js').MoveState} MoveState */
/** @typedef {import('./call-types.js').TokenHints} TokenHints */
/** @typedef {import('./call-types.js').Phase} Phase */
/** @typedef {import('./types.js').JoinResponse} JoinResponse */
/** @typedef {import('./types.js').NodeId} NodeId */
/** @typedef {import('./types.js').Resume} Resume */
/** @typedef {import('./reconnect.js').Seat} Seat */

/** The state of the call core, and its shared helpers. */
export class CallState {
  constructor() {
    /** @type {Phase} */
    this.phase = 'idle';
    /** @type {Map<number, SessionRec>} Every session with a socket or a pending one. */
    this.sessions = new Map();
    /** @type {number | null} The session that is the call. */
    this.current = null;
    this.sessionSeq = 0;
    this.requestSeq = 0;
    /** @type {number | null} The token request of `connect`, in flight. */
    this.pendingRequest = null;
    /** @type {TokenHints | null} What that request carried. */
    this.requestHints = null;
    this.everJoined = false;
    /** Failed attempts since media last connected: the backoff step. */
    this.attempt = 0;
    this.tokenRetries = 0;
    /** Sessions in a row that got `joined` but never connected media. */
    this.mediaFailures = 0;
    this.lastQuickRetryAt = -Infinity;
    /** Media connected since the last immediate retry: the call worked in
     * between, so a new drop is a new break, not a loop. */
    this.mediaSinceQuickRetry = false;
    /** @type {Seat | null} From the last `joined`: a resume may take it back. */
    this.seat = null;
    /** @type {string | null} The token of the last joined session (`rejoin_token`). */
    this.lastToken = null;
    /** @type {string | null} Its `rejoin_secret`; memory only. */
    this.lastSecret = null;
    /** @type {NodeId | null} A node to name in `unreachable_node`. */
    this.unreachableNode = null;
    /** @type {string | null} Our participant id, from the last `joined`. */
    this.participantId = null;
    /** @type {MoveState | null} */
    this.move = null;
    /** @type {{text: string, clientMsgId: string}[]} Chat typed while not connected. */
    this.chatQueue = [];
    /** @type {string | null | undefined} The banner last shown. */
    this.banner = undefined;
    /** @type {CallAction[]} */
    this.out = [];
    this.now = 0;
  }

  /**
   * The session to send on (chat, media state), if the call is up.
   * @returns {number | null}
   */
  sendTarget() {
    if (this.current === null) return null;
    const rec = this.sessions.get(this.current);
    return rec?.joined && rec.open ? rec.id : null;
  }

  /** @param {CallAction} a */
  emit(a) {
    this.out.push(a);
  }

  /**
   * @param {'info' | 'warn'} level
   * @param {string} text
   */
  log(level, text) {
    this.emit({ type: 'log', level, text });
  }

  /**
   * Records a session for a join response and asks the shell to open it.
   * @param {JoinResponse} resp
   * @param {Resume | null} resume
   * @returns {SessionRec}
   */
  newSession(resp, resume) {
    /** @type {SessionRec} */
    const rec = {
      id: ++this.sessionSeq,
      token: resp.token,
      rejoinSecret: typeof resp.rejoin_secret === 'string' ? resp.rejoin_secret : null,
      nodeId: typeof resp.node_id === 'number' ? resp.node_id : null,
      resume,
      open: false,
      joined: false,
      mediaConnected: false,
      retired: false,
    };
    this.sessions.set(rec.id, rec);
    this.emit({ type: 'open', session: rec.id, wsUrl: resp.ws_url, nodeId: rec.nodeId });
    return rec;
  }

  /**
   * Forgets a session and asks the shell to close it.
   * @param {number} id
   * @param {number} code 1000 tells the node we left; `RECONNECTING` keeps
   *   the seat for a resume.
   * @param {boolean} [keepMedia] The seat will be resumed: the shell may
   *   keep the session's peer connection for it.
   */
  closeSession(id, code, keepMedia = false) {
    if (!this.sessions.delete(id)) return;
    this.emit({ type: 'close', session: id, code, keepMedia });
  }

  /**
   * Sends a chat message now, or queues it until the next `joined` (then it
   * goes out first), so nothing typed while reconnecting is silently lost.
   * @param {string} text
   * @param {string} clientMsgId
   */
  chat(text, clientMsgId) {
    const target = this.sendTarget();
    if (target !== null) {
      this.emit({ type: 'send', session: target, message: build.chat(text, clientMsgId) });
    } else if (this.chatQueue.length >= MAX_QUEUED_CHATS) {
      this.emit({ type: 'chat_failed', clientMsgId, reason: 'Not connected right now. Your message was not sent.' });
    } else {
      this.chatQueue.push({ text, clientMsgId });
    }
  }

  /** Emits the banner for the current phase. */
  status() {
    const explain = this.mediaFailures >= MEDIA_FAILURES_BEFORE_EXPLAINING;
    const rec = this.current === null ? undefined : this.sessions.get(this.current);
    /** @type {string | null} */
    let banner = null;
    if (this.phase === 'joined') banner = explain && !rec?.mediaConnected ? MEDIA_UNREACHABLE_MESSAGE : null;
    else if (explain) banner = MEDIA_UNREACHABLE_MESSAGE;
    else banner = this.everJoined ? 'Reconnecting…' : 'Connecting…';
    if (banner === this.banner) return;
    this.banner = banner;
    this.emit({ type: 'status', banner });
  }
}
