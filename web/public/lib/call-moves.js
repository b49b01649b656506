// The call core's move logic: when a node is drained it sends `move`, and
// the client joins another node before it lets the old session go
// (make-before-break). The core is one state machine in three files by
// concern: its state (call-state.js), moves (here), and joining, losing and
// leaving (call-core.js), each class extending the one before.

import { CloseCode } from './limits.js';
import { CallState } from './call-state.js';
import { rejoinRefused } from './rest.js';
import { MOVE_OLD_SOCKET_GRACE_MS, backoffDelay } from './reconnect.js';

/** @typedef {import('./call-types.js').CallAction} CallAction */
/** @typedef {import('./call-types.js').SessionRec} SessionRec */
/** @typedef {import('./call-types.js').MoveState} MoveState */
/** @typedef {import('./call-types.js').TokenHints} TokenHints */
/** @typedef {import('./call-types.js').Phase} Phase */
/** @typedef {import('./types.js').JoinResponse} JoinResponse */
/** @typedef {import('./types.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./types.js').NodeId} NodeId */
/** @typedef {import('./types.js').Resume} Resume */
/** @typedef {import('./reconnect.js').Seat} Seat */

/**
 * The move logic of the call core; `CallCore` extends it.
 */
export class CallMoves extends CallState {
  // Implemented by CallCore.
  /**
   * @param {number} _id
   * @param {JoinedMessage} _m
   * @param {boolean} _samePerson
   */
  onJoined(_id, _m, _samePerson) {
    throw new Error('CallCore implements onJoined');
  }

  /**
   * @param {import('./call-types.js').EndReason} _reason
   * @param {string} _message
   */
  end(_reason, _message) {
    throw new Error('CallCore implements end');
  }

  scheduleReconnect() {
    throw new Error('CallCore implements scheduleReconnect');
  }

  /**
   * The node asked us to move.
   * @param {number} id
   * @param {string} reason
   */
  moveRequested(id, reason) {
    const rec = this.sessions.get(id);
    if (!rec || id !== this.current || this.move) return;
    if (!rec.joined) {
      // Not in the call yet: nothing to keep up, just join elsewhere.
      this.log('info', `media node ${rec.nodeId} asked us to move (${reason}) before we joined; joining elsewhere`);
      this.unreachableNode = rec.nodeId;
      this.current = null;
      this.closeSession(id, CloseCode.RECONNECTING);
      this.scheduleReconnect();
      return;
    }
    this.move = { from: id, target: null, request: null, reason, attempt: 0, fresh: false, startedAt: this.now };
    this.startMove();
  }

  /** One attempt at a move: a token for another node. */
  startMove() {
    const mv = /** @type {MoveState} */ (this.move);
    const from = /** @type {SessionRec} */ (this.sessions.get(mv.from));
    mv.request = ++this.requestSeq;
    const rejoinToken = mv.fresh ? null : from.token;
    this.emit({
      type: 'request_token',
      request: mv.request,
      hints: { rejoinToken, rejoinSecret: rejoinToken ? from.rejoinSecret : null, unreachableNode: from.nodeId },
    });
  }

  /** @param {JoinResponse} resp */
  moveTokenArrived(resp) {
    const mv = /** @type {MoveState} */ (this.move);
    mv.request = null;
    const from = this.sessions.get(mv.from);
    if (typeof resp.node_id === 'number' && resp.node_id === from?.nodeId) {
      this.retryMove('placed on the node we are leaving');
      return;
    }
    mv.target = this.newSession(resp, null).id;
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  moveTokenRefused(code, message) {
    const mv = /** @type {MoveState} */ (this.move);
    mv.request = null;
    if (code === 'room_not_found') {
      this.end('room_gone', 'The meeting was closed or its link was removed.');
    } else if (!mv.fresh && rejoinRefused(code)) {
      this.log('warn', `the control plane refused our rejoin token (${code}); moving as a new participant`);
      mv.fresh = true;
      this.startMove();
    } else {
      this.retryMove(`${code}: ${message}`);
    }
  }

  /**
   * Keeps the old session and tries again after the backoff.
   * @param {string} why
   */
  retryMove(why) {
    const mv = this.move;
    if (!mv) return;
    const delay = backoffDelay(mv.attempt);
    mv.attempt += 1;
    const from = this.sessions.get(mv.from);
    this.log('warn', `moving off media node ${from?.nodeId} failed (${why}); trying again in ${delay} ms`);
    this.emit({ type: 'set_timer', key: 'move', ms: delay });
  }

  /**
   * The new node's `joined` arrived: it becomes the current session. The
   * old one is retired, not closed: the old node closes it once it sees us
   * on the new node, and until then still forwards our media.
   * @param {number} targetId
   * @param {JoinedMessage} m
   */
  completeMove(targetId, m) {
    const mv = /** @type {MoveState} */ (this.move);
    this.cancelMove(true);
    const samePerson = m.participant_id === this.participantId;
    const old = this.sessions.get(mv.from);
    this.current = targetId;
    if (old && samePerson) {
      old.retired = true;
      this.emit({ type: 'retire', session: old.id });
      this.emit({ type: 'set_timer', key: `retire:${old.id}`, ms: MOVE_OLD_SOCKET_GRACE_MS });
    } else if (old) {
      // We came back as someone new: the old seat is a ghost. Leave it.
      this.closeSession(old.id, CloseCode.NORMAL);
    }
    this.onJoined(targetId, m, samePerson);
    const to = this.sessions.get(targetId);
    this.log(
      'info',
      `moved from media node ${old?.nodeId} to ${to?.nodeId} in ${this.now - mv.startedAt} ms` +
        ` (${mv.reason || 'no reason given'}${samePerson ? '' : '; as a new participant'})`,
    );
  }

  /**
   * Stops the move under way.
   * @param {boolean} keepTarget Leave the target open (the caller takes it over).
   */
  cancelMove(keepTarget) {
    const mv = this.move;
    if (!mv) return;
    this.move = null;
    this.emit({ type: 'cancel_timer', key: 'move' });
    if (mv.target !== null && !keepTarget) this.closeSession(mv.target, CloseCode.NORMAL);
  }
}
