// Veche browser protocol library: everything the client needs to talk to the
// control plane (REST) and to its media node (signalling WebSocket), with no
// DOM access, so it runs and is tested under node.
//
// The wire contract is the Rust crate `protocol/` and its human-readable
// twin `docs/protocol.md`. Keep the typedefs below in step with both.

// ---------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------

/** @typedef {'microphone' | 'camera' | 'screen' | 'screen_audio'} TrackSource */
/** @typedef {'audio' | 'video'} MediaKind */
/** @typedef {'connected' | 'reconnecting'} PresenceStatus */
/** @typedef {'left' | 'disconnected' | 'replaced'} LeaveReason */
/** A media node's id (`NodeId` in `protocol/src/ids.rs`, a JSON number). @typedef {number} NodeId */

/**
 * The machine-readable error kinds of `protocol/src/error.rs`, plus two that
 * only this library produces: `network` (the server could not be reached)
 * and `http_<status>` (a non-2xx response without a JSON error body).
 * @typedef {'bad_request' | 'room_not_found' | 'token_invalid' | 'token_expired'
 *   | 'chat_empty' | 'chat_too_long' | 'rate_limited' | 'too_large'
 *   | 'invalid_state' | 'unavailable' | 'internal' | 'network' | string} ErrorCode
 */

/**
 * A participant's device state.
 * @typedef {object} MediaState
 * @property {boolean} mic_muted Microphone muted, or no microphone at all.
 * @property {boolean} camera_muted Camera off, or no camera at all.
 * @property {boolean} screen_sharing Sharing the screen.
 */

/**
 * A trickle ICE candidate, shaped like `RTCIceCandidateInit`.
 * @typedef {object} IceCandidate
 * @property {string} candidate The `candidate:` attribute (without `a=`).
 * @property {string | null} [sdpMid]
 * @property {number | null} [sdpMLineIndex]
 * @property {string | null} [usernameFragment]
 */

/**
 * A STUN or TURN server, shaped like `RTCIceServer`.
 * @typedef {object} IceServer
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * A published track.
 * @typedef {object} TrackInfo
 * @property {string} id Equals the `MediaStreamTrack.id` subscribers see.
 * @property {MediaKind} kind
 * @property {TrackSource} source
 * @property {string} stream_id The `MediaStream.id` subscribers see: the
 *   publisher's participant id for microphone and camera, and
 *   `<participant id>-screen` for a screen share.
 */

/**
 * One participant as every member of the room sees them.
 * @typedef {object} ParticipantInfo
 * @property {string} id
 * @property {string} display_name
 * @property {PresenceStatus} status
 * @property {MediaState} media
 * @property {TrackInfo[]} tracks
 * @property {number} joined_at_ms
 */

/**
 * The room as shown in `joined`.
 * @typedef {object} RoomInfo
 * @property {number} id
 * @property {string} slug
 * @property {string} name
 */

/**
 * A committed chat message.
 * @typedef {object} ChatMessage
 * @property {number} id Commit-ordered; larger is newer.
 * @property {number} room_id
 * @property {string} participant_id
 * @property {string} display_name
 * @property {string} text Render as text, never as HTML.
 * @property {number} sent_at_ms
 * @property {string} [client_msg_id]
 */

/**
 * Proof that a new connection may take back a seat whose connection
 * dropped: the participant id and `resume_token` of an earlier `joined`.
 * @typedef {object} Resume
 * @property {string} participant_id
 * @property {string} resume_token
 */

/**
 * Messages from the browser to the media node.
 * @typedef {{type: 'join', token: string, media: MediaState, resume?: Resume}
 *   | {type: 'offer', sdp: string, tracks: Record<string, TrackSource>}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'candidate', candidate: IceCandidate | null}
 *   | ({type: 'media'} & MediaState)
 *   | {type: 'chat', text: string, client_msg_id?: string}
 *   | {type: 'ping', seq: number}
 *   | {type: 'leave'}} ClientMessage
 */

/**
 * `resume_token` is absent from nodes that predate resuming.
 * @typedef {{type: 'joined', participant_id: string, room: RoomInfo, participants: ParticipantInfo[],
 *   ice_servers: IceServer[], resume_token?: string, resumed?: boolean}} JoinedMessage
 */
/** @typedef {{type: 'answer', sdp: string}} AnswerMessage */
/** @typedef {{type: 'offer', sdp: string}} OfferMessage */
/** @typedef {{type: 'candidate', candidate: IceCandidate | null}} CandidateMessage */
/** @typedef {{type: 'participant_joined', participant: ParticipantInfo}} ParticipantJoinedMessage */
/** @typedef {{type: 'participant_updated', participant: ParticipantInfo}} ParticipantUpdatedMessage */
/** @typedef {{type: 'participant_left', participant_id: string, reason: LeaveReason}} ParticipantLeftMessage */
/** @typedef {{type: 'chat', message: ChatMessage}} ChatEventMessage */
/** @typedef {{type: 'error', code: ErrorCode, message: string, request?: string, client_msg_id?: string}} ErrorMessage */
/** @typedef {{type: 'pong', seq: number, server_time_ms: number}} PongMessage */
/**
 * The node is being drained: join another node (make-before-break) without
 * sending `leave`. See `parseMove`.
 * @typedef {{type: 'move', reason: string}} MoveMessage
 */

/**
 * Messages from the media node to the browser.
 * @typedef {JoinedMessage | AnswerMessage | OfferMessage | CandidateMessage
 *   | ParticipantJoinedMessage | ParticipantUpdatedMessage
 *   | ParticipantLeftMessage | ChatEventMessage | ErrorMessage
 *   | PongMessage | MoveMessage} ServerMessage
 */

/**
 * A room as the REST API shows it.
 * @typedef {object} RoomView
 * @property {number} id
 * @property {string} slug
 * @property {string} name
 * @property {string} link The full link to share, `<public url>/r/<slug>`.
 * @property {number} created_at_ms
 */

/**
 * `POST /api/rooms/{slug}/join` response.
 * @typedef {object} JoinResponse
 * @property {string} token
 * @property {string} ws_url Absolute, or relative to the page.
 * @property {string} participant_id
 * @property {NodeId} node_id The media node the token is for; name it in
 *   `unreachable_node` if it cannot be reached. (Absent from control planes
 *   that predate multi-node rooms.)
 * @property {number} expires_at_ms
 * @property {RoomView} room
 * @property {string} [rejoin_secret] Send it as `rejoin_secret` with this
 *   response's `token` as `rejoin_token` to come back as the same person.
 */

/**
 * `GET /api/rooms/{slug}/messages` response.
 * @typedef {object} MessagesPage
 * @property {ChatMessage[]} messages Oldest first.
 * @property {boolean} has_more True if older messages exist.
 */

// ---------------------------------------------------------------------------
// Limits and constants
// ---------------------------------------------------------------------------

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
  INVALID_STATE: 4009,
  /** The participant continues on another media node (`CLOSE_MOVED`): a
   * newer session of theirs joined there. */
  MOVED: 4010,
  TOO_LARGE: 4013,
  RATE_LIMITED: 4029,
  INTERNAL: 4500,
  UNAVAILABLE: 4503,
  /** Sent by a client that drops its session on purpose to join again. */
  RECONNECTING: 4100,
});

// ---------------------------------------------------------------------------
// Errors and user-facing messages
// ---------------------------------------------------------------------------

/** An error from the REST API or the node, with a machine-readable code. */
export class ApiError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} message Safe to show to people.
   * @param {number} [status] The HTTP status, when there was a response.
   */
  constructor(code, message, status = 0) {
    super(message);
    this.name = 'ApiError';
    /** @type {ErrorCode} */
    this.code = code;
    /** @type {number} */
    this.status = status;
  }
}

/**
 * The one place that turns an error code into words for people. The
 * server's own message is used where it is more specific than ours.
 * @param {ErrorCode} code
 * @param {string} [serverMessage]
 * @returns {string}
 */
export function humanMessage(code, serverMessage) {
  switch (code) {
    case 'room_not_found':
      return 'This meeting link is not valid';
    case 'token_invalid':
    case 'token_expired':
      return 'Your session expired. Rejoining…';
    case 'chat_empty':
      return 'Type a message first.';
    case 'chat_too_long':
      return `Message is too long: the limit is ${MAX_CHAT_CHARS} characters.`;
    case 'rate_limited':
      return 'You are sending messages too fast. Wait a moment and try again.';
    case 'too_large':
      return 'That is too large to send.';
    case 'unavailable':
      return 'The service is temporarily unavailable. Please try again in a moment.';
    case 'internal':
      return 'Something went wrong on the server. Please try again.';
    case 'network':
      return 'Could not reach the server. Check your connection.';
    case 'bad_request':
      return serverMessage || 'The request was not valid.';
    default:
      return serverMessage || 'Something went wrong. Please try again.';
  }
}

/**
 * True if retrying the same request later may succeed.
 * @param {ErrorCode} code
 * @returns {boolean}
 */
export function isRetryable(code) {
  return (
    code === 'network' ||
    code === 'unavailable' ||
    code === 'internal' ||
    code === 'rate_limited' ||
    /^http_5\d\d$/.test(code)
  );
}

/**
 * What to tell someone when `getUserMedia` fails.
 * @param {'audio' | 'video'} kind
 * @param {{name?: string} | null | undefined} error The DOMException.
 * @returns {string}
 */
export function describeMediaError(kind, error) {
  const device = kind === 'audio' ? 'Microphone' : 'Camera';
  const lower = kind === 'audio' ? 'microphone' : 'camera';
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${device} blocked: allow it in your browser's site settings, or join without it`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${lower} found`;
    case 'NotReadableError':
    case 'AbortError':
      return `Your ${lower} is in use by another app, or could not be started`;
    case 'NotSupportedError':
    case 'TypeError':
      return `${device} unavailable: open this page over https`;
    default:
      return `Could not start your ${lower}`;
  }
}

// ---------------------------------------------------------------------------
// REST API
// ---------------------------------------------------------------------------

/**
 * Options shared by the REST helpers.
 * @typedef {object} ApiOptions
 * @property {typeof fetch} [fetch] Defaults to the global `fetch`.
 * @property {string} [base] Prefix for the `/api/...` paths; default `''`
 *   (same origin).
 */

/**
 * Performs one JSON request and returns the parsed body, or throws an
 * `ApiError` with the server's code and a human message.
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 * @param {ApiOptions} opts
 * @returns {Promise<any>}
 */
async function request(method, path, body, opts) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  /** @type {RequestInit} */
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await doFetch((opts.base ?? '') + path, init);
  } catch {
    throw new ApiError('network', humanMessage('network'));
  }
  let parsed = null;
  try {
    parsed = await resp.json();
  } catch {
    parsed = null;
  }
  if (!resp.ok) {
    if (parsed && typeof parsed.code === 'string') {
      throw new ApiError(parsed.code, humanMessage(parsed.code, parsed.message), resp.status);
    }
    const code = `http_${resp.status}`;
    throw new ApiError(code, humanMessage(code), resp.status);
  }
  if (parsed === null) {
    throw new ApiError('internal', 'The server sent a response this page cannot read.', resp.status);
  }
  return parsed;
}

/**
 * Creates a room: `POST /api/rooms`.
 * @param {string} name 1 to 100 characters.
 * @param {ApiOptions} [opts]
 * @returns {Promise<RoomView>}
 */
export function createRoom(name, opts = {}) {
  return request('POST', '/api/rooms', { name }, opts);
}

/**
 * Looks a room up by slug: `GET /api/rooms/{slug}`. Throws an `ApiError`
 * with code `room_not_found` if there is none.
 * @param {string} slug
 * @param {ApiOptions} [opts]
 * @returns {Promise<RoomView>}
 */
export function getRoom(slug, opts = {}) {
  return request('GET', `/api/rooms/${encodeURIComponent(slug)}`, undefined, opts);
}

/**
 * The optional parts of a join request.
 * @typedef {object} JoinHints
 * @property {string | null} [region] Where the client believes it is
 *   (`eu-west`); the load balancer's region header wins over it.
 * @property {string | null} [rejoinToken] The token of an earlier session in
 *   this room: the new token is then for the same participant id, so the
 *   others see the same person come back.
 * @property {string | null} [rejoinSecret] The `rejoin_secret` of the join
 *   response that gave `rejoinToken`: the proof that we are that person.
 * @property {NodeId | null} [unreachableNode] A media node the client could
 *   not reach (or is being moved off); placement avoids it.
 */

/**
 * The body of `POST /api/rooms/{slug}/join`. Absent, null and empty hints
 * are left out, because the control plane refuses unknown fields and
 * older ones know only `display_name`.
 * @param {string} displayName
 * @param {JoinHints} [hints]
 * @returns {{display_name: string, region?: string, rejoin_token?: string, rejoin_secret?: string, unreachable_node?: NodeId}}
 */
export function buildJoinBody(displayName, hints = {}) {
  /** @type {{display_name: string, region?: string, rejoin_token?: string, rejoin_secret?: string, unreachable_node?: NodeId}} */
  const body = { display_name: displayName };
  if (typeof hints.region === 'string' && hints.region) body.region = hints.region;
  if (typeof hints.rejoinToken === 'string' && hints.rejoinToken) {
    body.rejoin_token = hints.rejoinToken;
    if (typeof hints.rejoinSecret === 'string' && hints.rejoinSecret) body.rejoin_secret = hints.rejoinSecret;
  }
  if (typeof hints.unreachableNode === 'number' && Number.isFinite(hints.unreachableNode)) {
    body.unreachable_node = hints.unreachableNode;
  }
  return body;
}

/**
 * Asks to join a room: `POST /api/rooms/{slug}/join`. Returns a fresh,
 * short-lived token for the media node at `ws_url` (`node_id`).
 * @param {string} slug
 * @param {string} displayName 1 to 64 characters.
 * @param {ApiOptions & JoinHints} [opts] `region`, `rejoinToken` and
 *   `unreachableNode` go into the body (see `buildJoinBody`); `fetch` and
 *   `base` as for every REST helper.
 * @returns {Promise<JoinResponse>}
 */
export function join(slug, displayName, opts = {}) {
  return request(
    'POST',
    `/api/rooms/${encodeURIComponent(slug)}/join`,
    buildJoinBody(displayName, opts),
    opts,
  );
}

/**
 * True if a join request that carried `rejoin_token` was refused because
 * of it (the token is too old, or not valid here): ask again without it,
 * as a new participant.
 * @param {ErrorCode} code
 * @returns {boolean}
 */
export function rejoinRefused(code) {
  return code === 'token_invalid' || code === 'token_expired' || code === 'unauthorized' || code === 'bad_request';
}

/**
 * Fetches a page of chat history, oldest first: the newest 100 messages, or
 * the 100 before message id `before`.
 * @param {string} slug
 * @param {number | null} [before]
 * @param {ApiOptions} [opts]
 * @returns {Promise<MessagesPage>}
 */
export function fetchMessages(slug, before = null, opts = {}) {
  const query = before === null || before === undefined ? '' : `?before=${encodeURIComponent(before)}`;
  return request('GET', `/api/rooms/${encodeURIComponent(slug)}/messages${query}`, undefined, opts);
}

/**
 * Resolves the `ws_url` of a join response against the page URL, turning
 * `http:` into `ws:` and `https:` into `wss:`.
 * @param {string} wsUrl Absolute (`wss://node/ws`) or relative (`/media/ws`).
 * @param {string | URL} pageUrl Usually `location.href`.
 * @returns {string}
 */
export function resolveWsUrl(wsUrl, pageUrl) {
  const url = new URL(wsUrl, pageUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.href;
}

const SLUG_RE = /^[A-Za-z0-9_-]{22}$/;

/**
 * True if `s` has the shape of a room slug (22 base64url characters).
 * @param {string} s
 * @returns {boolean}
 */
export function isSlug(s) {
  return SLUG_RE.test(s);
}

/**
 * Extracts a room slug from what someone pasted: a full link
 * (`https://host/r/<slug>?x`), a path (`/r/<slug>`) or a bare slug.
 * @param {string} text
 * @returns {string | null} The slug, or null if there is none.
 */
export function slugFromLink(text) {
  const t = text.trim();
  if (isSlug(t)) return t;
  const m = /(?:^|\/)r\/([A-Za-z0-9_-]{22})(?:[/?#]|$)/.exec(t);
  return m ? m[1] : null;
}

/**
 * The room slug from a room page path, `/r/<slug>`.
 * @param {string} pathname
 * @returns {string | null}
 */
export function slugFromPath(pathname) {
  const m = /^\/r\/([^/]+)\/?$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Chat rules (mirror of protocol/src/chat.rs, so the UI can refuse early)
// ---------------------------------------------------------------------------

// C0/C1 controls except newline and tab, and the bidi overrides/isolates.
const STRIPPED_RE = /(?![\n\t])[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

/**
 * Filters chat text the way the server does: CRLF to LF, strips control and
 * bidi-override characters, trims.
 * @param {string} raw
 * @returns {string}
 */
export function filterChatText(raw) {
  return raw.replace(/\r\n/g, '\n').replace(STRIPPED_RE, '').trim();
}

/**
 * Length of a string in Unicode code points, the unit of the chat limit.
 * @param {string} s
 * @returns {number}
 */
export function codePointLength(s) {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Validates a chat message before sending it.
 * @param {string} raw
 * @returns {{ok: true, text: string, chars: number} | {ok: false, code: 'chat_empty' | 'chat_too_long', chars: number}}
 */
export function validateChat(raw) {
  const text = filterChatText(raw);
  const chars = codePointLength(text);
  if (chars === 0) return { ok: false, code: 'chat_empty', chars };
  if (chars > MAX_CHAT_CHARS) return { ok: false, code: 'chat_too_long', chars };
  return { ok: true, text, chars };
}

/**
 * Chat messages seen so far, kept sorted by id and free of duplicates, so
 * that history pages, live messages and re-fetches after a reconnect merge
 * into one ordered list.
 */
export class ChatHistory {
  constructor() {
    /** @type {number[]} Ascending. */
    this.ids = [];
    /** @type {Map<number, ChatMessage>} */
    this.byId = new Map();
  }

  /** @returns {number} */
  get size() {
    return this.ids.length;
  }

  /** @returns {number | null} The id of the oldest message held. */
  get oldestId() {
    return this.ids.length ? this.ids[0] : null;
  }

  /**
   * @param {number} id
   * @returns {boolean}
   */
  has(id) {
    return this.byId.has(id);
  }

  /**
   * Adds messages, skipping ones already held. Returns the new ones in
   * ascending id order, each with the index it was inserted at, so a view
   * can insert its element before the element currently at that index.
   * @param {ChatMessage[]} messages
   * @returns {{message: ChatMessage, index: number}[]}
   */
  add(messages) {
    const sorted = [...messages].sort((a, b) => a.id - b.id);
    /** @type {{message: ChatMessage, index: number}[]} */
    const added = [];
    for (const m of sorted) {
      if (this.byId.has(m.id)) continue;
      let lo = 0;
      let hi = this.ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.ids[mid] < m.id) lo = mid + 1;
        else hi = mid;
      }
      this.ids.splice(lo, 0, m.id);
      this.byId.set(m.id, m);
      added.push({ message: m, index: lo });
    }
    return added;
  }
}

// ---------------------------------------------------------------------------
// Room state reducer
// ---------------------------------------------------------------------------

/**
 * The room as the server describes it: who is here and what they publish.
 * Immutable: `apply` returns a new state and never changes the old one, so
 * it is a pure reducer over server messages.
 */
export class RoomState {
  /**
   * @param {string | null} [participantId] This client's participant id.
   * @param {RoomInfo | null} [room]
   * @param {Map<string, ParticipantInfo>} [participants]
   */
  constructor(participantId = null, room = null, participants = new Map()) {
    /** @type {string | null} */
    this.participantId = participantId;
    /** @type {RoomInfo | null} */
    this.room = room;
    /** @type {ReadonlyMap<string, ParticipantInfo>} */
    this.participants = participants;
  }

  /**
   * Applies one server message. Messages that do not change the
   * participant set (chat, offers, pongs...) return `this`.
   * @param {ServerMessage} msg
   * @returns {RoomState}
   */
  apply(msg) {
    switch (msg.type) {
      case 'joined':
        return new RoomState(
          msg.participant_id,
          msg.room,
          new Map(msg.participants.map((p) => [p.id, p])),
        );
      case 'participant_joined':
      case 'participant_updated': {
        const next = new Map(this.participants);
        next.set(msg.participant.id, msg.participant);
        return new RoomState(this.participantId, this.room, next);
      }
      case 'participant_left': {
        if (!this.participants.has(msg.participant_id)) return this;
        const next = new Map(this.participants);
        next.delete(msg.participant_id);
        return new RoomState(this.participantId, this.room, next);
      }
      default:
        return this;
    }
  }

  /**
   * @param {string} id
   * @returns {ParticipantInfo | undefined}
   */
  get(id) {
    return this.participants.get(id);
  }

  /** @returns {ParticipantInfo | undefined} This client's own entry. */
  get self() {
    return this.participantId === null ? undefined : this.participants.get(this.participantId);
  }

  /**
   * Everyone, in the order they joined.
   * @returns {ParticipantInfo[]}
   */
  list() {
    return [...this.participants.values()].sort(
      (a, b) => a.joined_at_ms - b.joined_at_ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
  }

  /**
   * Who a received `MediaStream` belongs to, from its id.
   * @param {string} streamId
   * @returns {{participantId: string, screen: boolean, participant: ParticipantInfo | undefined}}
   */
  streamOwner(streamId) {
    const { participantId, screen } = parseStreamId(streamId);
    return { participantId, screen, participant: this.participants.get(participantId) };
  }
}

/**
 * Splits a received stream id into the publisher's participant id and
 * whether it is a screen share (`<participant id>-screen`).
 * @param {string} streamId
 * @returns {{participantId: string, screen: boolean}}
 */
export function parseStreamId(streamId) {
  if (streamId.endsWith('-screen')) {
    return { participantId: streamId.slice(0, -'-screen'.length), screen: true };
  }
  return { participantId: streamId, screen: false };
}

// ---------------------------------------------------------------------------
// Signalling WebSocket
// ---------------------------------------------------------------------------

/**
 * What the `close` event carries.
 * @typedef {object} CloseInfo
 * @property {number} code The WebSocket close code (1006 for a keepalive
 *   timeout detected by this library).
 * @property {string} reason
 * @property {boolean} byClient True if `close()` was called on this side.
 */

/**
 * Minimal timer functions, injectable for tests.
 * @typedef {object} Timers
 * @property {(fn: () => void, ms: number) => any} setInterval
 * @property {(id: any) => void} clearInterval
 */

/**
 * @typedef {object} SignallingOptions
 * @property {any} [WebSocket] The WebSocket constructor; default global.
 * @property {number} [pingIntervalMs] Default `PING_INTERVAL_MS`.
 * @property {() => number} [now] Clock in ms; default `Date.now`.
 * @property {Timers} [timers] Default the global timers.
 */

/**
 * One signalling connection to a media node: JSON frames over a WebSocket,
 * an event emitter for the server's messages, and a ping every 5 s that
 * also detects a dead connection.
 *
 * Events: `open`; `message` (every server message); one event per server
 * message `type` (`joined`, `offer`, `chat`, `move`...); `close` (`CloseInfo`, once,
 * only after a successful open); `protocol_error` (a frame that is not a
 * JSON object with a `type`).
 */
export class Signalling {
  /**
   * @param {string} url The absolute `ws:`/`wss:` URL.
   * @param {SignallingOptions} [options]
   */
  constructor(url, options = {}) {
    /** @type {string} */
    this.url = url;
    this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.now = options.now ?? (() => Date.now());
    /** @type {Timers} */
    this.timers = options.timers ?? {
      setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
      clearInterval: (id) => globalThis.clearInterval(id),
    };
    /** @type {any} */
    this.ws = null;
    /** @type {Map<string, Set<(arg: any) => void>>} */
    this.handlers = new Map();
    this.seq = 0;
    this.lastReceivedAt = 0;
    /** @type {any} */
    this.pingTimer = null;
    this.opened = false;
    this.closed = false;
    this.closedByClient = false;
  }

  /** @returns {boolean} True while the socket is open. */
  get isOpen() {
    return this.opened && !this.closed && this.ws !== null && this.ws.readyState === 1;
  }

  /**
   * Opens the socket. Resolves once it is open; rejects with an `ApiError`
   * (code `network`) if it closes before opening.
   * @returns {Promise<void>}
   */
  connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocketImpl(this.url);
      } catch {
        reject(new ApiError('network', humanMessage('network')));
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        this.opened = true;
        this.lastReceivedAt = this.now();
        this.pingTimer = this.timers.setInterval(() => this.tick(), this.pingIntervalMs);
        this.emit('open', undefined);
        resolve();
      };
      ws.onmessage = (/** @type {{data: any}} */ ev) => this.receive(ev.data);
      ws.onerror = () => {
        // A close event always follows; handle it there.
      };
      ws.onclose = (/** @type {{code: number, reason: string}} */ ev) => {
        if (!this.opened) {
          this.closed = true;
          reject(new ApiError('network', humanMessage('network')));
          return;
        }
        this.finish(ev.code, ev.reason ?? '');
      };
    });
  }

  /**
   * Sends one message. Returns false if the socket is not open.
   * @param {ClientMessage} msg
   * @returns {boolean}
   */
  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Closes the socket from this side. The `close` event fires at once with
   * `byClient: true`.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = CloseCode.NORMAL, reason = '') {
    this.closedByClient = true;
    if (this.ws) {
      try {
        this.ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
    if (this.opened) this.finish(code, reason);
    else this.closed = true;
  }

  /**
   * Subscribes to an event. Returns a function that unsubscribes.
   * @param {string} type `open`, `close`, `message`, `protocol_error`, or a
   *   server message type.
   * @param {(arg: any) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * @param {string} type
   * @param {any} arg
   */
  emit(type, arg) {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(arg);
      } catch (e) {
        console.error(`veche: ${type} handler failed`, e);
      }
    }
  }

  /** @param {any} data */
  receive(data) {
    this.lastReceivedAt = this.now();
    if (typeof data !== 'string') {
      this.emit('protocol_error', 'binary frame');
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.emit('protocol_error', 'frame is not JSON');
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
      this.emit('protocol_error', 'frame has no type');
      return;
    }
    this.emit('message', msg);
    this.emit(msg.type, msg);
  }

  /** Sends a ping, or declares the connection dead if the node went quiet. */
  tick() {
    if (this.closed) return;
    if (this.now() - this.lastReceivedAt > PING_MISSES_BEFORE_DEAD * this.pingIntervalMs) {
      try {
        // Not 1000: that would tell the node we left and lose our seat.
        this.ws.close(CloseCode.RECONNECTING, 'keepalive timeout');
      } catch {
        // Ignore.
      }
      this.finish(CloseCode.ABNORMAL, 'keepalive timeout');
      return;
    }
    this.seq += 1;
    this.send({ type: 'ping', seq: this.seq });
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    this.pingTimer = null;
    /** @type {CloseInfo} */
    const info = { code, reason, byClient: this.closedByClient };
    this.emit('close', info);
  }
}

// ---------------------------------------------------------------------------
// Offer/answer negotiation
// ---------------------------------------------------------------------------

/**
 * The `a=mid` and `a=msid` track id of every media section of an SDP.
 * @param {string} sdp
 * @returns {{mid: string | null, kind: string, streamId: string | null, trackId: string | null}[]}
 */
export function parseMediaSections(sdp) {
  /** @type {{mid: string | null, kind: string, streamId: string | null, trackId: string | null}[]} */
  const sections = [];
  let current = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      current = { mid: null, kind: line.slice(2).split(' ')[0], streamId: null, trackId: null };
      sections.push(current);
    } else if (current && line.startsWith('a=mid:')) {
      current.mid = line.slice('a=mid:'.length).trim();
    } else if (current && line.startsWith('a=msid:') && current.trackId === null) {
      const [streamId, trackId] = line.slice('a=msid:'.length).trim().split(/\s+/);
      current.streamId = streamId && streamId !== '-' ? streamId : null;
      current.trackId = trackId ?? null;
    }
  }
  return sections;
}

/**
 * Builds the `tracks` map of an `offer`: for every media section whose mid
 * has a known source, its `a=msid` track id -> source.
 * @param {string} sdp The offer.
 * @param {Map<string, TrackSource>} sourceByMid
 * @returns {Record<string, TrackSource>}
 */
export function buildTrackMap(sdp, sourceByMid) {
  /** @type {Record<string, TrackSource>} */
  const tracks = {};
  for (const s of parseMediaSections(sdp)) {
    if (s.mid === null || s.trackId === null) continue;
    const source = sourceByMid.get(s.mid);
    if (source) tracks[s.trackId] = source;
  }
  return tracks;
}

/**
 * The parts of `RTCPeerConnection` the negotiator uses, so tests can pass a
 * fake.
 * @typedef {object} NegotiationPeer
 * @property {string} signalingState
 * @property {{type: string, sdp: string} | null} localDescription
 * @property {() => Promise<{type: string, sdp?: string}>} createOffer
 * @property {(d?: {type: string, sdp?: string}) => Promise<void>} setLocalDescription
 * @property {(d: {type: string, sdp: string}) => Promise<void>} setRemoteDescription
 * @property {(c: IceCandidate) => Promise<void>} addIceCandidate
 * @property {() => {mid: string | null, sender: any, direction?: string}[]} getTransceivers
 */

/**
 * @typedef {object} NegotiatorOptions
 * @property {(transceiver: any) => (TrackSource | undefined)} [sourceOf]
 *   What a transceiver sends, for the offer's `tracks` map.
 * @property {(e: unknown) => void} [onError] Negotiation failures.
 * @property {(fn: () => void, ms: number) => any} [setTimeout]
 * @property {number} [retryFallbackMs] How long to wait for the node's own
 *   offer after a glare refusal before offering again anyway.
 */

/**
 * Runs the offer/answer exchange with the node over one peer connection:
 * the client makes the first offer; afterwards the node offers whenever the
 * tracks to receive change, and the client offers when its own tracks
 * change. The client is the polite peer: a node offer that crosses a
 * client offer wins (the browser rolls its offer back), and the node
 * refuses the crossed client offer with `invalid_state`, after which the
 * client offers again. At most one client offer is in flight.
 *
 * All operations on the peer connection are serialised on one promise
 * chain, so an offer is never created while an answer is being applied.
 */
export class Negotiator {
  /**
   * @param {NegotiationPeer} pc
   * @param {(msg: ClientMessage) => void} send
   * @param {NegotiatorOptions} [options]
   */
  constructor(pc, send, options = {}) {
    this.pc = pc;
    this.send = send;
    this.sourceOf = options.sourceOf ?? (() => undefined);
    this.onError = options.onError ?? ((e) => console.error('veche: negotiation failed', e));
    this.setTimeout = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.retryFallbackMs = options.retryFallbackMs ?? 3000;
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** True once the answer to the first offer has been applied. */
    this.established = false;
    /** A client offer was sent and has no answer or refusal yet. */
    this.offerInFlight = false;
    /** Another client offer is needed once the current exchange ends
     * (our offer was rolled back or refused). */
    this.wantOffer = false;
    /** A node offer was answered since our last offer was sent. */
    this.answeredSinceOffer = false;
    /** A refused offer waits for the node's offer to be answered. */
    this.waitingForNodeOffer = false;
    this.closed = false;
    /** Number of client offers sent; for tests and debugging. */
    this.offersSent = 0;
  }

  /**
   * Queues an operation on the chain.
   * @param {() => Promise<void> | void} op
   * @returns {Promise<void>}
   */
  enqueue(op) {
    this.chain = this.chain
      .then(() => (this.closed ? undefined : op()))
      .catch((e) => {
        if (!this.closed) this.onError(e);
      });
    return this.chain;
  }

  /**
   * Sends the first offer.
   * @returns {Promise<void>}
   */
  start() {
    return this.enqueue(() => this.makeOffer());
  }

  /**
   * Call from `pc.onnegotiationneeded`. Ignored before the first exchange
   * completes, while a client offer is in flight and while a refused offer
   * waits to be retried: the offer being made covers every change made
   * before it, and for a change made after it the browser fires
   * `negotiationneeded` again once the connection is back to `stable`
   * (WebRTC 1.0, "update the negotiation-needed flag"). Queuing the event
   * instead would send a redundant offer after every exchange.
   * @returns {Promise<void>}
   */
  negotiationNeeded() {
    if (!this.established || this.offerInFlight || this.waitingForNodeOffer) return this.chain;
    if (this.pc.signalingState !== 'stable') return this.chain;
    return this.enqueue(() => this.makeOffer());
  }

  /** Creates, applies and sends an offer, unless one is in flight. */
  async makeOffer() {
    if (this.offerInFlight) {
      this.wantOffer = true;
      return;
    }
    this.wantOffer = false;
    this.waitingForNodeOffer = false;
    this.answeredSinceOffer = false;
    this.offerInFlight = true;
    try {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
    } catch (e) {
      this.offerInFlight = false;
      throw e;
    }
    const sdp = /** @type {{sdp: string}} */ (this.pc.localDescription).sdp;
    /** @type {Map<string, TrackSource>} */
    const sourceByMid = new Map();
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === null) continue;
      const source = this.sourceOf(t);
      if (source) sourceByMid.set(t.mid, source);
    }
    this.offersSent += 1;
    this.send({ type: 'offer', sdp, tracks: buildTrackMap(sdp, sourceByMid) });
  }

  /**
   * Applies the node's `answer` to our offer.
   * @param {string} sdp
   * @returns {Promise<void>}
   */
  handleAnswer(sdp) {
    return this.enqueue(async () => {
      if (this.pc.signalingState !== 'have-local-offer') {
        // An answer to an offer that was rolled back (the node should have
        // refused it instead); nothing to apply, but offer again.
        this.offerInFlight = false;
        if (this.wantOffer) await this.makeOffer();
        return;
      }
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      this.offerInFlight = false;
      this.established = true;
      if (this.wantOffer) await this.makeOffer();
    });
  }

  /**
   * Answers a node `offer`. If our own offer was outstanding, the browser
   * rolls it back; the node will refuse it and we offer again.
   * @param {string} sdp
   * @returns {Promise<void>}
   */
  handleOffer(sdp) {
    return this.enqueue(async () => {
      const rolledBack = this.pc.signalingState === 'have-local-offer';
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      await this.pc.setLocalDescription();
      const answer = /** @type {{sdp: string}} */ (this.pc.localDescription).sdp;
      this.send({ type: 'answer', sdp: answer });
      this.answeredSinceOffer = true;
      if (rolledBack) this.wantOffer = true;
      if (this.waitingForNodeOffer || (this.wantOffer && !this.offerInFlight && this.established)) {
        await this.makeOffer();
      }
    });
  }

  /**
   * Adds a node ICE candidate. `null` (end of candidates) is ignored: ICE
   * completes without it.
   * @param {IceCandidate | null} candidate
   * @returns {Promise<void>}
   */
  handleCandidate(candidate) {
    if (!candidate || !candidate.candidate) return this.chain;
    return this.enqueue(async () => {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (e) {
        // A candidate for a rolled-back or stopped section; harmless.
        console.warn('veche: ignored ICE candidate', e);
      }
    });
  }

  /**
   * Handles a node `error`. Returns true if it concerned negotiation and
   * was dealt with here.
   * @param {ErrorMessage} err
   * @returns {boolean}
   */
  handleError(err) {
    if (err.request !== 'offer') return false;
    if (err.code !== 'invalid_state') {
      this.offerInFlight = false;
      this.onError(new ApiError(err.code, humanMessage(err.code, err.message)));
      return true;
    }
    // Glare: the node had its own offer outstanding and refused ours.
    this.offerInFlight = false;
    this.wantOffer = true;
    if (this.answeredSinceOffer) {
      this.enqueue(() => this.makeOffer());
    } else {
      this.waitingForNodeOffer = true;
      this.setTimeout(() => {
        if (this.waitingForNodeOffer && !this.closed) this.enqueue(() => this.makeOffer());
      }, this.retryFallbackMs);
    }
    return true;
  }

  /** Stops all further work; pending operations become no-ops. */
  close() {
    this.closed = true;
  }
}

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
 * - `new_token`: the token was refused (4001/4002); join again at once.
 * - `fresh_join`: a `join` carrying `resume` was refused before `joined`
 *   (4009: the seat expired or the resume token is wrong); join again at
 *   once, without `resume`.
 * - `moved`: the participant continues on another media node (4010). A
 *   client that is moving there ignores this close (the session is no
 *   longer its current one); otherwise it does not reconnect.
 * - `retry`: anything else; join again after a backoff.
 * @param {CloseInfo} info
 * @param {{resuming?: boolean, joined?: boolean}} [session] Whether the
 *   closed session tried to resume, and whether it got `joined`.
 * @returns {'none' | 'room_gone' | 'new_token' | 'fresh_join' | 'moved' | 'retry'}
 */
export function closeAction(info, session = {}) {
  if (info.byClient) return 'none';
  if (info.code === CloseCode.ROOM_NOT_FOUND) return 'room_gone';
  if (info.code === CloseCode.MOVED) return 'moved';
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
 * one waits 1 s instead.
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

/**
 * Up to two initials for an avatar placeholder.
 * @param {string} name
 * @returns {string}
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return '?';
  const first = [...words[0]][0] ?? '';
  const last = words.length > 1 ? [...words[words.length - 1]][0] ?? '' : '';
  return (first + last).toUpperCase();
}
