// The vocabulary of the call core (call-core.js): its constants, its
// inputs (events), its outputs (actions) and its state records. Kept apart
// so the shell and the tests can name them without the machine itself.

/** @typedef {import('./types.js').NodeId} NodeId */
/** @typedef {import('./types.js').JoinResponse} JoinResponse */
/** @typedef {import('./types.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./types.js').ClientMessage} ClientMessage */
/** @typedef {import('./types.js').Resume} Resume */
/** @typedef {import('./types.js').IceServer} IceServer */
/** @typedef {import('./signalling.js').CloseInfo} CloseInfo */
/** @typedef {import('./reconnect.js').Seat} Seat */

/**
 * How many sessions in a row may reach `joined` and then fail to connect
 * media before the person is told why, instead of seeing "Reconnecting…"
 * for ever.
 */
export const MEDIA_FAILURES_BEFORE_EXPLAINING = 3;
/** The plain explanation shown once media keeps failing while signalling works. */
export const MEDIA_UNREACHABLE_MESSAGE = "Can't reach the media server: your network may block it";
/**
 * How long after `joined` media may take to connect before the session
 * counts as a media failure. A browser without any usable ICE path may sit
 * in "checking" much longer than this without ever reporting "failed".
 */
export const MEDIA_CONNECT_TIMEOUT_MS = 20000;
/** Token refusals (4001/4002) answered with an immediate new token, in a row. */
export const MAX_TOKEN_RETRIES = 3;
/** Chat messages typed while not connected that are kept to send on reconnect. */
export const MAX_QUEUED_CHATS = 20;

/**
 * Where the call is.
 * - `idle`: not started.
 * - `requesting`: a join token is being asked for.
 * - `connecting`: a socket is opening, or `join` was sent and `joined` has
 *   not come back.
 * - `joined`: in the call (media may still be connecting).
 * - `waiting`: between attempts; the `reconnect` timer runs.
 * - `left`: the person left. Final.
 * - `ended`: the call cannot go on (room gone, joined elsewhere, refused).
 *   Final.
 * @typedef {'idle' | 'requesting' | 'connecting' | 'joined' | 'waiting' | 'left' | 'ended'} Phase
 */

/**
 * What the core knows of one session (a token, a socket, a seat).
 * @typedef {object} SessionRec
 * @property {number} id
 * @property {string} token
 * @property {string | null} rejoinSecret From the join response with the token.
 * @property {NodeId | null} nodeId
 * @property {Resume | null} resume What its `join` carries.
 * @property {boolean} open Its socket is open.
 * @property {boolean} joined Its `joined` arrived.
 * @property {boolean} mediaConnected Its peer connection connected.
 * @property {boolean} retired Replaced after a `move`; the old node closes it.
 */

/**
 * The hints of one token request (see `rest.js` `JoinHints`).
 * @typedef {{rejoinToken: string | null, rejoinSecret: string | null, unreachableNode: NodeId | null}} TokenHints
 */

/**
 * An input to the core.
 * @typedef {{type: 'start'}
 *   | {type: 'join_response', request: number, response: JoinResponse}
 *   | {type: 'join_failed', request: number, code: string, message: string}
 *   | {type: 'socket_open', session: number}
 *   | {type: 'socket_failed', session: number}
 *   | {type: 'joined', session: number, message: JoinedMessage}
 *   | {type: 'closed', session: number, info: CloseInfo}
 *   | {type: 'media_connected', session: number}
 *   | {type: 'media_failed', session: number}
 *   | {type: 'move', session: number, reason: string}
 *   | {type: 'timer', key: string}
 *   | {type: 'chat', text: string, clientMsgId: string}
 *   | {type: 'leave'}} CallEvent
 */

/**
 * Why a call ended: the person left, the room is gone, they continued
 * elsewhere, the join was refused, a moderator removed them (4020), or a
 * moderator did not let them in from the lobby (4021).
 * @typedef {'left' | 'room_gone' | 'elsewhere' | 'refused' | 'removed' | 'denied'} EndReason
 */

/**
 * An output of the core, for the shell to run in order.
 * - `request_token`: `POST .../join` with these hints; answer with
 *   `join_response` or `join_failed` carrying the same `request`.
 * - `open`: open a socket; answer `socket_open` or `socket_failed`.
 * - `send_join`: send `join` with the current device state (`build.join`).
 * - `send`: send a frame on a session's socket.
 * - `start_media`: create the peer connection and make the first offer
 *   (`mediaKept`: take back the one kept at the last `close` instead);
 *   report `media_connected` / `media_failed`.
 * - `joined`: a session's `joined` became the room state (`samePerson`
 *   false: we came back as a new participant).
 * - `retire`: stop negotiating on a session but keep its socket open.
 * - `close`: close a session's socket (with `code`) and peer connection,
 *   and drop what it received; with `keepMedia` (the seat is resumed
 *   next) the peer connection and what it received may stay for the
 *   resume (`send_join` then asks the node to keep its side too).
 * - `set_timer` / `cancel_timer`: one timer per key; setting replaces.
 *   When it fires, send `{type: 'timer', key}`.
 * - `status`: the banner text (null: none).
 * - `chat_failed`: a typed message will not be sent.
 * - `ended`: the call is over, and why.
 * - `log`: a line for the console.
 * @typedef {{type: 'request_token', request: number, hints: TokenHints}
 *   | {type: 'open', session: number, wsUrl: string, nodeId: NodeId | null}
 *   | {type: 'send_join', session: number, token: string, resume: Resume | null}
 *   | {type: 'send', session: number, message: ClientMessage}
 *   | {type: 'start_media', session: number, iceServers: IceServer[], mediaKept: boolean}
 *   | {type: 'joined', session: number, message: JoinedMessage, samePerson: boolean}
 *   | {type: 'retire', session: number}
 *   | {type: 'close', session: number, code: number, keepMedia: boolean}
 *   | {type: 'set_timer', key: string, ms: number}
 *   | {type: 'cancel_timer', key: string}
 *   | {type: 'status', banner: string | null}
 *   | {type: 'chat_failed', clientMsgId: string, reason: string}
 *   | {type: 'ended', reason: EndReason, message: string}
 *   | {type: 'log', level: 'info' | 'warn', text: string}} CallAction
 */

/**
 * A move under way (make-before-break): `from` keeps working until a
 * session on another node, `target`, gets `joined`.
 * @typedef {object} MoveState
 * @property {number} from
 * @property {number | null} target
 * @property {number | null} request The token request in flight.
 * @property {string} reason
 * @property {number} attempt Failed attempts, for the backoff.
 * @property {boolean} fresh Ask without the rejoin token (it was refused).
 * @property {number} startedAt
 */
