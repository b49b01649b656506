// The call core: the connection, resume, move and rejoin state machine,
// with no DOM, no sockets and no clock of its own. The shell (call.js) feeds
// it events with the current time and runs the actions it returns: ask the
// control plane for a token, open or close a socket, send a frame, start the
// media, set or cancel a named timer, show a status. Its vocabulary (events,
// actions, constants) is in call-types.js, its state in call-state.js and
// its move logic in call-moves.js; every transition is unit-tested under
// node (web/test/call-core.test.mjs).
//
// Sessions are numbered by the core; the shell keeps the socket and peer
// connection of each number. Token requests are numbered too, so an answer
// that arrives after Leave, or for a superseded attempt, is ignored.

import { build } from './messages.js';
import { CloseCode } from './limits.js';
import { rejoinRefused } from './rest.js';
import { isRetryable } from './errors.js';
import { closeAction, reconnectDelay, resumeFor, unreachableNodeAfter } from './reconnect.js';
import { MAX_TOKEN_RETRIES, MEDIA_CONNECT_TIMEOUT_MS } from './call-types.js';
import { CallMoves } from './call-moves.js';

/** @typedef {import('./call-types.js').CallEvent} CallEvent */
/** @typedef {import('./call-types.js').CallAction} CallAction */
/** @typedef {import('./call-types.js').SessionRec} SessionRec */
/** @typedef {import('./call-types.js').EndReason} EndReason */
/** @typedef {import('./types.js').JoinResponse} JoinResponse */
/** @typedef {import('./types.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./signalling.js').CloseInfo} CloseInfo */

/**
 * The state machine. `handle(event, now)` is the only entry point that
 * changes state; it returns the actions to run, in order. The move logic
 * (make-before-break onto another node) is in `CallMoves`.
 */
export class CallCore extends CallMoves {
  /**
   * Handles one event.
   * @param {CallEvent} ev
   * @param {number} now Milliseconds (any epoch; only differences count).
   * @returns {CallAction[]}
   */
  handle(ev, now) {
    this.out = [];
    this.now = now;
    if (this.phase === 'left' || this.phase === 'ended') {
      this.afterEnd(ev);
      return this.out;
    }
    switch (ev.type) {
      case 'start':
        if (this.phase === 'idle') this.connect();
        break;
      case 'join_response':
        if (this.move?.request === ev.request) this.moveTokenArrived(ev.response);
        else if (ev.request === this.pendingRequest) this.tokenArrived(ev.response);
        break;
      case 'join_failed':
        if (this.move?.request === ev.request) this.moveTokenRefused(ev.code, ev.message);
        else if (ev.request === this.pendingRequest) this.tokenRefused(ev.code, ev.message);
        break;
      case 'socket_open':
        this.socketOpen(ev.session);
        break;
      case 'socket_failed':
        this.socketFailed(ev.session);
        break;
      case 'joined':
        if (ev.session === this.current) this.onJoined(ev.session, ev.message, true);
        else if (this.move && this.move.target === ev.session) this.completeMove(ev.session, ev.message);
        break;
      case 'closed':
        this.closed(ev.session, ev.info);
        break;
      case 'media_connected':
        this.mediaConnected(ev.session);
        break;
      case 'media_failed':
        this.mediaFailed(ev.session, 'the media connection failed');
        break;
      case 'move':
        this.moveRequested(ev.session, ev.reason);
        break;
      case 'timer':
        this.timer(ev.key);
        break;
      case 'chat':
        this.chat(ev.text, ev.clientMsgId);
        break;
      case 'leave':
        this.leave();
        break;
    }
    return this.out;
  }

  /**
   * After Leave or an end, only cleanup remains: sockets that open are
   * closed at once, and chat fails.
   * @param {CallEvent} ev
   */
  afterEnd(ev) {
    if (ev.type === 'socket_open') this.closeSession(ev.session, CloseCode.NORMAL);
    else if (ev.type === 'closed' || ev.type === 'socket_failed') this.sessions.delete(ev.session);
    else if (ev.type === 'chat') this.emit({ type: 'chat_failed', clientMsgId: ev.clientMsgId, reason: 'You are not in the call.' });
  }

  // -------------------------------------------------------------------------
  // Joining
  // -------------------------------------------------------------------------

  /**
   * One join attempt: a fresh token, then a socket. Once we have been in
   * the call, the request carries our last token and its secret (same
   * participant id on whichever node we get) and the node we lost.
   */
  connect() {
    this.emit({ type: 'cancel_timer', key: 'reconnect' });
    const rejoinToken = this.everJoined ? this.lastToken : null;
    this.pendingRequest = ++this.requestSeq;
    this.requestHints = {
      rejoinToken,
      rejoinSecret: rejoinToken ? this.lastSecret : null,
      unreachableNode: this.unreachableNode,
    };
    this.phase = 'requesting';
    this.status();
    this.emit({ type: 'request_token', request: this.pendingRequest, hints: { ...this.requestHints } });
  }

  /** @param {JoinResponse} resp */
  tokenArrived(resp) {
    this.pendingRequest = null;
    if (this.unreachableNode === this.requestHints?.unreachableNode) this.unreachableNode = null;
    const rec = this.newSession(resp, resumeFor(this.seat, resp.node_id));
    this.current = rec.id;
    this.phase = 'connecting';
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  tokenRefused(code, message) {
    this.pendingRequest = null;
    const hints = this.requestHints;
    if (hints?.rejoinToken && rejoinRefused(code)) {
      // Too old, or not valid here: come back as a new participant (a
      // resume to the same node can still keep the seat).
      this.log('warn', `the control plane refused our rejoin token (${code}); joining without it`);
      this.lastToken = null;
      this.lastSecret = null;
      this.connect();
      return;
    }
    // The hint was delivered unless the request never reached the server.
    if (code !== 'network' && this.unreachableNode === hints?.unreachableNode) this.unreachableNode = null;
    if (code === 'room_not_found') this.end('room_gone', 'The meeting was closed or its link was removed.');
    else if (isRetryable(code)) this.scheduleReconnect();
    else this.end('refused', message);
  }

  /** @param {number} id */
  socketOpen(id) {
    const rec = this.sessions.get(id);
    if (!rec) return;
    rec.open = true;
    if (id === this.current || this.move?.target === id) {
      this.emit({ type: 'send_join', session: id, token: rec.token, resume: rec.resume });
    } else {
      this.closeSession(id, CloseCode.NORMAL);
    }
  }

  /**
   * A socket closed before it opened: its node is unreachable.
   * @param {number} id
   */
  socketFailed(id) {
    const rec = this.sessions.get(id);
    this.sessions.delete(id);
    if (!rec) return;
    if (id === this.current) {
      this.current = null;
      this.unreachableNode = unreachableNodeAfter(rec.nodeId, null);
      this.scheduleReconnect();
    } else if (this.move?.target === id) {
      this.move.target = null;
      this.retryMove(`could not reach media node ${rec.nodeId}`);
    }
  }

  /**
   * A session's `joined` became the room. The backoff is NOT reset here but
   * when media connects: a network that lets signalling through but blocks
   * media would otherwise rejoin every second for ever.
   * @param {number} id
   * @param {JoinedMessage} m
   * @param {boolean} samePerson
   */
  onJoined(id, m, samePerson) {
    const rec = /** @type {SessionRec} */ (this.sessions.get(id));
    rec.joined = true;
    this.phase = 'joined';
    this.everJoined = true;
    this.tokenRetries = 0;
    this.unreachableNode = null;
    this.lastToken = rec.token;
    this.lastSecret = rec.rejoinSecret;
    this.participantId = m.participant_id;
    this.seat = m.resume_token
      ? { resume: { participant_id: m.participant_id, resume_token: m.resume_token }, nodeId: rec.nodeId }
      : null;
    this.emit({ type: 'joined', session: id, message: m, samePerson });
    this.emit({ type: 'start_media', session: id, iceServers: m.ice_servers, mediaKept: !!m.media_kept });
    this.emit({ type: 'set_timer', key: 'media', ms: MEDIA_CONNECT_TIMEOUT_MS });
    this.status();
    for (const c of this.chatQueue.splice(0)) {
      this.emit({ type: 'send', session: id, message: build.chat(c.text, c.clientMsgId) });
    }
  }

  /** @param {number} id */
  mediaConnected(id) {
    const rec = this.sessions.get(id);
    if (!rec || id !== this.current || rec.mediaConnected) return;
    rec.mediaConnected = true;
    this.mediaSinceQuickRetry = true;
    this.attempt = 0;
    this.mediaFailures = 0;
    this.emit({ type: 'cancel_timer', key: 'media' });
    this.status();
  }

  /**
   * The current session's media failed (or never connected in time) while
   * its signalling works: rejoin, keeping the seat, after the backoff.
   * @param {number} id
   * @param {string} why
   */
  mediaFailed(id, why) {
    const rec = this.sessions.get(id);
    if (!rec || id !== this.current || this.move?.from === id) return;
    if (!rec.mediaConnected) this.mediaFailures += 1;
    this.log('warn', `${why}; rejoining`);
    this.current = null;
    this.closeSession(id, CloseCode.RECONNECTING);
    this.scheduleReconnect();
  }

  // -------------------------------------------------------------------------
  // Losing a session
  // -------------------------------------------------------------------------

  /**
   * @param {number} id
   * @param {CloseInfo} info
   */
  closed(id, info) {
    const rec = this.sessions.get(id);
    if (!rec) return;
    rec.open = false;
    if (rec.retired) {
      // The node we moved off let go of us, as it should.
      this.emit({ type: 'cancel_timer', key: `retire:${id}` });
      this.closeSession(id, CloseCode.RECONNECTING);
      return;
    }
    if (this.move?.target === id) {
      // The new node refused us or went away before `joined`.
      this.closeSession(id, CloseCode.NORMAL);
      this.move.target = null;
      this.retryMove(`media node ${rec.nodeId} closed the connection (${info.code})`);
      return;
    }
    if (id !== this.current) {
      this.sessions.delete(id);
      return;
    }
    const mv = this.move?.from === id ? this.move : null;
    if (mv) this.cancelMove(true);
    this.current = null;
    const action = closeAction(info, { resuming: rec.resume !== null, joined: rec.joined });
    // Only the socket broke (a network change, say): the seat is resumed
    // next, and its peer connection may carry on with it.
    const keepMedia = action === 'retry' && rec.joined && this.seat !== null && !mv;
    this.closeSession(id, CloseCode.NORMAL, keepMedia);
    if (action === 'none') return;
    if (action === 'room_gone') {
      this.end('room_gone', 'The meeting was closed or its link was removed.');
      return;
    }
    if (action === 'removed' || action === 'denied') {
      if (mv?.target != null) this.closeSession(mv.target, CloseCode.NORMAL);
      this.end(action, action === 'removed' ? 'A moderator removed you from the meeting.' : 'A moderator did not let you in');
      return;
    }
    if (action === 'policy') {
      if (mv?.target != null) this.closeSession(mv.target, CloseCode.NORMAL);
      this.end('refused', 'The meeting server disconnected this page because it sent too much too fast.');
      return;
    }
    const lost = unreachableNodeAfter(rec.nodeId, info);
    if (lost !== null) this.unreachableNode = lost;
    if (mv?.target != null && this.sessions.has(mv.target)) {
      // The old node went while we were moving: the session on the new node
      // is under way, so let it finish as an ordinary (re)join.
      this.log('warn', `media node ${rec.nodeId} closed (${info.code}) before the move finished; carrying on`);
      this.current = mv.target;
      this.phase = 'connecting';
      this.status();
      return;
    }
    if (mv?.target != null) this.closeSession(mv.target, CloseCode.NORMAL);
    if (action === 'moved') {
      this.end('elsewhere', 'This window was disconnected because you continued the meeting from another connection.');
      return;
    }
    if (action === 'fresh_join') {
      // The seat expired (or the node restarted): join without `resume`.
      this.seat = null;
      this.connect();
      return;
    }
    if (action === 'new_token' && this.tokenRetries < MAX_TOKEN_RETRIES) {
      this.tokenRetries += 1;
      this.connect();
      return;
    }
    this.scheduleReconnect();
  }

  /** Waits before the next attempt: the backoff grows until media connects. */
  scheduleReconnect() {
    this.phase = 'waiting';
    const since = this.mediaSinceQuickRetry ? Infinity : this.now - this.lastQuickRetryAt;
    const delay = reconnectDelay(this.attempt, since);
    if (delay === 0) {
      this.lastQuickRetryAt = this.now;
      this.mediaSinceQuickRetry = false;
    }
    this.attempt += 1;
    this.emit({ type: 'cancel_timer', key: 'media' });
    this.emit({ type: 'set_timer', key: 'reconnect', ms: delay });
    this.status();
  }

  /** @param {string} key */
  timer(key) {
    if (key === 'reconnect') {
      if (this.phase === 'waiting') this.connect();
    } else if (key === 'media') {
      if (this.current !== null) this.mediaFailed(this.current, 'media did not connect in time');
    } else if (key === 'move') {
      if (this.move) this.startMove();
    } else if (key.startsWith('retire:')) {
      const id = Number(key.slice('retire:'.length));
      const rec = this.sessions.get(id);
      if (rec?.retired) {
        if (rec.open) this.log('warn', `media node ${rec.nodeId} kept our old connection open after the move; closing it`);
        this.closeSession(id, CloseCode.RECONNECTING);
      }
    }
  }

  // -------------------------------------------------------------------------
  // Chat and leaving
  // -------------------------------------------------------------------------

  /**
   * Leave ends the seat in every state:
   * - a socket is open (joined, or `join` sent): `leave`, then close 1000;
   * - a socket is opening: close 1000 (the node never saw `join`);
   * - a token request is in flight: its answer is ignored, so no socket
   *   opens and no seat is taken;
   * - between attempts (`waiting`): the timer is cancelled and nothing
   *   further is joined. A seat the node still holds for a resume ends
   *   when the node's reconnect grace runs out (the others see the
   *   participant leave, reason `disconnected`).
   * A move target and retired sessions are closed the same way.
   */
  leave() {
    this.pendingRequest = null;
    for (const key of ['reconnect', 'media', 'move']) this.emit({ type: 'cancel_timer', key });
    const ids = [this.current, this.move?.target ?? null, ...[...this.sessions.values()].filter((r) => r.retired).map((r) => r.id)];
    this.move = null;
    this.current = null;
    for (const id of ids) {
      if (id === null) continue;
      this.emit({ type: 'cancel_timer', key: `retire:${id}` });
      const rec = this.sessions.get(id);
      if (rec?.open && !rec.retired) this.emit({ type: 'send', session: id, message: build.leave() });
      this.closeSession(id, CloseCode.NORMAL);
    }
    this.end('left', 'You can rejoin with the same name and settings.', 'left');
  }

  /**
   * Ends the call for good.
   * @param {EndReason} reason
   * @param {string} message
   * @param {'left' | 'ended'} [phase]
   */
  end(reason, message, phase = 'ended') {
    this.pendingRequest = null;
    for (const key of ['reconnect', 'media', 'move']) this.emit({ type: 'cancel_timer', key });
    if (this.move) this.cancelMove(false);
    for (const id of [...this.sessions.keys()]) this.closeSession(id, CloseCode.NORMAL);
    this.current = null;
    this.seat = null;
    this.lastToken = null;
    this.lastSecret = null;
    this.phase = phase;
    for (const c of this.chatQueue.splice(0)) {
      this.emit({ type: 'chat_failed', clientMsgId: c.clientMsgId, reason: 'You are not in the call.' });
    }
    this.emit({ type: 'status', banner: null });
    this.emit({ type: 'ended', reason, message });
  }
}
