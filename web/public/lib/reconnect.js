// Pure reconnection policy: what a close means, how long to wait, which
// node to avoid and whether a seat can be resumed. The call core
// (call-core.js) applies it.

import { CloseCode } from './limits.js';

/** @typedef {import('./types.js').NodeId} NodeId */
/** @typedef {import('./types.js').Resume} Resume */
/** @typedef {import('./types.js').MoveMessage} MoveMessage */
/** @typedef {import('./signalling.js').CloseInfo} CloseInfo */

/**
 * Backoff delay for the given attempt (0-based): 1 s, 2 s, 4 s, 8 s,
 * then 10 s.
 * @param {number} attempt
 * @returns {number} Milliseconds.
 */
export function backoffDelay(attempt) {
  return Math.min(1000 * 2 ** Math.max(0, attempt), 10000);
}

/**
 * What to do after the signalling socket closed.
 * - `none`: the client closed it (Leave).
 * - `room_gone`: the room no longer exists (4004).
 * - `policy`: the node ended the session for flooding (4008); do not
 *   reconnect automatically.
 * - `new_token`: the token was refused (4001/4002); join again at once.
 * - `fresh_join`: a `join` carrying `resume` was refused before `joined`
 *   (4009: the seat expired or the resume token is wrong); join again at
 *   once, without `resume`.
 * - `moved`: the participant continues on another media node (4010). A
 *   client that is moving there ignores this close (the session is no
 *   longer its current one); otherwise it does not reconnect.
 * - `removed`: a moderator removed the participant (4020); do not
 *   reconnect.
 * - `denied`: a moderator did not let the lobby waiter in (4021); do not
 *   reconnect.
 * - `retry`: anything else; join again after a backoff.
 * @param {CloseInfo} info
 * @param {{resuming?: boolean, joined?: boolean}} [session] Whether the
 *   closed session tried to resume, and whether it got `joined`.
 * @returns {'none' | 'room_gone' | 'policy' | 'removed' | 'denied' | 'new_token' | 'fresh_join' | 'moved' | 'retry'}
 */
export function closeAction(info, session = {}) {
  if (info.byClient) return 'none';
  if (info.code === CloseCode.ROOM_NOT_FOUND) return 'room_gone';
  if (info.code === CloseCode.POLICY) return 'policy';
  if (info.code === CloseCode.MOVED) return 'moved';
  if (info.code === CloseCode.REMOVED) return 'removed';
  if (info.code === CloseCode.DENIED) return 'denied';
  if (info.code === CloseCode.TOKEN_INVALID || info.code === CloseCode.TOKEN_EXPIRED) return 'new_token';
  if (info.code === CloseCode.INVALID_STATE && session.resuming && !session.joined) return 'fresh_join';
  return 'retry';
}

/** The shortest gap between two immediate reconnects (see `reconnectDelay`). */
export const QUICK_RETRY_MIN_GAP_MS = 10000;

/**
 * Delay before reconnect attempt `attempt` (0-based, reset by `joined`):
 * the first retry after a drop goes out at once, so that a participant
 * whose media node died is back within seconds; later ones follow
 * `backoffDelay` (1 s, 2 s, 4 s, 8 s, then 10 s). A session that joins and
 * drops again and again would otherwise reconnect in a tight loop, so an
 * immediate retry less than `QUICK_RETRY_MIN_GAP_MS` after the previous
 * one waits 1 s instead, unless media connected in between (the call
 * worked, so this is a new break, such as a second network change, and
 * the caller passes `Infinity`).
 * @param {number} attempt
 * @param {number} [sinceLastQuickMs] Time since the last immediate retry.
 * @returns {number} Milliseconds.
 */
export function reconnectDelay(attempt, sinceLastQuickMs = Infinity) {
  if (attempt <= 0) return sinceLastQuickMs >= QUICK_RETRY_MIN_GAP_MS ? 0 : backoffDelay(0);
  return backoffDelay(attempt - 1);
}

/**
 * True if a closed signalling socket says its media node is gone (killed,
 * restarting, partitioned, failing), as opposed to the node having
 * answered: closes by this client, 1000 and 1005 (the node ended the
 * session cleanly) and the 4000-4499 request errors (bad or expired token,
 * room gone, refused resume, too large, rate limited) are not node loss;
 * 1001, 1006 (also this library's keepalive timeout), 1011-1015 and the
 * node's 4500/4503 are.
 * @param {CloseInfo} info
 * @returns {boolean}
 */
export function isNodeLoss(info) {
  if (info.byClient) return false;
  const c = info.code;
  if (c === CloseCode.NORMAL || c === 1005) return false;
  if (c >= 4000 && c < 4500) return false;
  return true;
}

/**
 * Which node to name in `unreachable_node` on the next join request after
 * a session ended: its node if the socket never opened (`info` null) or
 * closed with node loss (`isNodeLoss`), else none.
 * @param {NodeId | null | undefined} nodeId The ended session's node.
 * @param {CloseInfo | null} info
 * @returns {NodeId | null}
 */
export function unreachableNodeAfter(nodeId, info) {
  if (typeof nodeId !== 'number') return null;
  if (info === null) return nodeId;
  return isNodeLoss(info) ? nodeId : null;
}

/**
 * A seat a reconnect may take back: the `resume` proof of the last
 * `joined` and the media node that holds the seat.
 * @typedef {object} Seat
 * @property {Resume} resume
 * @property {NodeId | null} nodeId Null when the control plane did not say
 *   (one that predates multi-node rooms).
 */

/**
 * What the `join` on a new token should carry: `resume` only if the token
 * is for the node that holds the seat, since seats do not travel between
 * nodes. On another node the client sends a plain `join`; the
 * `rejoin_token` it asked with already keeps its participant id. When
 * either node id is unknown (an older control plane, hence one node) it
 * resumes as before; a refused resume costs one 4009 and a fresh join.
 * @param {Seat | null} seat
 * @param {NodeId | null | undefined} tokenNodeId The new token's `node_id`.
 * @returns {Resume | null}
 */
export function resumeFor(seat, tokenNodeId) {
  if (!seat) return null;
  if (typeof seat.nodeId !== 'number' || typeof tokenNodeId !== 'number') return seat.resume;
  return seat.nodeId === tokenNodeId ? seat.resume : null;
}

/**
 * How long a socket told to `move` may stay open once the session on the
 * new node is joined. The old node normally closes it as soon as it sees
 * the participant elsewhere; after this the client closes it itself, with
 * `CloseCode.RECONNECTING` (never 1000, which would tell everyone it left).
 */
export const MOVE_OLD_SOCKET_GRACE_MS = 10000;

/**
 * Reads a `move` message: the message with a string `reason` (empty if the
 * node sent none), or null if `msg` is not a `move`.
 * @param {any} msg A parsed server frame.
 * @returns {MoveMessage | null}
 */
export function parseMove(msg) {
  if (!msg || typeof msg !== 'object' || msg.type !== 'move') return null;
  return { type: 'move', reason: typeof msg.reason === 'string' ? msg.reason : '' };
}
