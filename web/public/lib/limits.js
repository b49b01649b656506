// Limits and close codes the client shares with the server
// (protocol/src/limits.rs and error.rs).

/** Longest chat message, in Unicode code points after filtering. */
export const MAX_CHAT_CHARS = 4000;
/** Longest display name, in code points. */
export const MAX_DISPLAY_NAME_CHARS = 64;
/** Longest room name, in code points. */
export const MAX_ROOM_NAME_CHARS = 100;
/** Largest signalling frame the node accepts, in bytes. */
export const MAX_FRAME_BYTES = 256 * 1024;
/** How often the client sends `ping`. */
export const PING_INTERVAL_MS = 5000;
/** A socket that received nothing for this many ping intervals is dead. */
export const PING_MISSES_BEFORE_DEAD = 3;

/**
 * WebSocket close codes. The 4000-4999 codes sent by the node are those of
 * `ErrorCode::ws_close_code`. A client closing with 1000 or 1001 tells the
 * node it left; with `RECONNECTING` (or any other code) the node keeps the
 * seat for its grace period so the client can resume it.
 */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  BAD_REQUEST: 4000,
  TOKEN_INVALID: 4001,
  TOKEN_EXPIRED: 4002,
  ROOM_NOT_FOUND: 4004,
  /** The node ended a session that kept sending after being refused
   * (`CLOSE_POLICY`); do not reconnect automatically. */
  POLICY: 4008,
  INVALID_STATE: 4009,
  /** The participant continues on another media node (`CLOSE_MOVED`): a
   * newer session of theirs joined there. */
  MOVED: 4010,
  /** The node ended a session that stopped reading (`CLOSE_TOO_SLOW`);
   * the seat is kept, so reconnect and resume. */
  TOO_SLOW: 4011,
  /** A moderator removed this participant (`CLOSE_REMOVED`); do not
   * reconnect: the page says who removed them. */
  REMOVED: 4020,
  /** A moderator turned this lobby waiter away (`CLOSE_DENIED`); do not
   * reconnect. */
  DENIED: 4021,
  TOO_LARGE: 4013,
  RATE_LIMITED: 4029,
  INTERNAL: 4500,
  UNAVAILABLE: 4503,
  /** Sent by a client that drops its session on purpose to join again. */
  RECONNECTING: 4100,
});
