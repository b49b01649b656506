// The signalling messages themselves: builders for every message the client
// sends, and a validator for every message the node sends. The shared JSON
// fixtures in protocol/fixtures/signal/ pin both to the Rust crate
// (web/test/fixtures.test.mjs), so the two sides cannot drift apart.

/** @typedef {import('./types.js').ClientMessage} ClientMessage */
/** @typedef {import('./types.js').ServerMessage} ServerMessage */
/** @typedef {import('./types.js').MediaState} MediaState */
/** @typedef {import('./types.js').Resume} Resume */
/** @typedef {import('./types.js').TrackSource} TrackSource */
/** @typedef {import('./types.js').IceCandidate} IceCandidate */
/** @typedef {import('./types.js').ModAction} ModAction */
/** @typedef {import('./types.js').E2eeCommitOut} E2eeCommitOut */
/** @typedef {import('./types.js').PeerSignal} PeerSignal */

/** Builders, one per client message type, so no caller spells a frame by hand. */
export const build = Object.freeze({
  /**
   * The first frame on a socket.
   * @param {string} token
   * @param {MediaState | undefined} media The device state to start with
   *   (optional on the wire: the node then uses `MediaState`'s default).
   *   The browser always sends it.
   * @param {Resume | null} [resume] Take back the seat of an earlier session.
   * @param {boolean} [p2p] This client can connect directly to one other
   *   participant (sent only when true: absent means it cannot).
   * @param {boolean} [keepMedia] With `resume`: we kept the seat's peer
   *   connection and will restart its ICE on this session.
   * @returns {ClientMessage}
   */
  join(token, media, resume = null, p2p = false, keepMedia = false) {
    /** @type {ClientMessage} */
    const msg = { type: 'join', token };
    if (media) msg.media = { ...media };
    if (resume) {
      msg.resume = { participant_id: resume.participant_id, resume_token: resume.resume_token };
      if (keepMedia) msg.resume.keep_media = true;
    }
    if (p2p) msg.p2p = true;
    return msg;
  },
  /**
   * @param {string} sdp
   * @param {Record<string, TrackSource>} tracks
   * @returns {ClientMessage}
   */
  offer(sdp, tracks) {
    return { type: 'offer', sdp, tracks };
  },
  /**
   * @param {string} sdp
   * @returns {ClientMessage}
   */
  answer(sdp) {
    return { type: 'answer', sdp };
  },
  /**
   * @param {IceCandidate | null} candidate Null: end of candidates.
   * @returns {ClientMessage}
   */
  candidate(candidate) {
    return { type: 'candidate', candidate };
  },
  /**
   * @param {MediaState} state
   * @returns {ClientMessage}
   */
  media(state) {
    return { type: 'media', mic_muted: state.mic_muted, camera_muted: state.camera_muted, screen_sharing: state.screen_sharing };
  },
  /**
   * @param {string} text Already filtered (`validateChat`).
   * @param {string} [clientMsgId] Echoed in the committed message and in a refusal.
   * @returns {ClientMessage}
   */
  chat(text, clientMsgId) {
    /** @type {ClientMessage} */
    const msg = { type: 'chat', text };
    if (clientMsgId !== undefined) msg.client_msg_id = clientMsgId;
    return msg;
  },
  /**
   * @param {number} seq
   * @returns {ClientMessage}
   */
  ping(seq) {
    return { type: 'ping', seq };
  },
  /** @returns {ClientMessage} */
  leave() {
    return { type: 'leave' };
  },
  /**
   * A moderator's action, or one's own `unmute_self` (see lib/moderation.js
   * `act` for each action's fields).
   * @param {ModAction} action
   * @returns {ClientMessage}
   */
  moderate(action) {
    return { type: 'moderate', ...action };
  },
  /**
   * Raise or lower one's hand.
   * @param {boolean} raised
   * @returns {ClientMessage}
   */
  hand(raised) {
    return { type: 'hand', raised };
  },
  /**
   * E2EE rooms: ask to be committed into the key-agreement group.
   * @param {string} keyPackage An MLS key package, base64url.
   * @returns {ClientMessage}
   */
  e2eeKeyPackage(keyPackage) {
    return { type: 'e2ee_key_package', key_package: keyPackage };
  },
  /**
   * E2EE rooms: an MLS commit from `epoch`, with its plaintext labels (what
   * the server orders on) and the welcome for those it adds.
   * @param {E2eeCommitOut} c
   * @returns {ClientMessage}
   */
  e2eeCommit(c) {
    /** @type {ClientMessage} */
    const msg = { type: 'e2ee_commit', group: c.group, epoch: c.epoch, added: [...c.added], removed: [...c.removed], commit: c.commit };
    if (c.welcome !== undefined) msg.welcome = c.welcome;
    return msg;
  },
  /**
   * Peer-to-peer: one step of the direct connection, for the node to relay
   * to our peer within pairing `pairing`.
   * @param {string} to The peer's participant id.
   * @param {number} pairing
   * @param {PeerSignal} signal
   * @returns {ClientMessage}
   */
  peerSignal(to, pairing, signal) {
    return { type: 'peer_signal', to, pairing, signal: { ...signal } };
  },
  /**
   * How the direct connection of `pairing` went (`connected` or `failed`).
   * @param {number} pairing
   * @param {'connected' | 'failed'} state
   * @returns {ClientMessage}
   */
  p2pState(pairing, state) {
    return { type: 'p2p_state', pairing, state };
  },
});

/** @param {unknown} v */
const isObj = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
/** @param {unknown} v */
const isStr = (v) => typeof v === 'string';
/** @param {unknown} v */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** @param {unknown} v */
const isBool = (v) => typeof v === 'boolean';

/** @param {any} m */
const isMedia = (m) => isObj(m) && isBool(m.mic_muted) && isBool(m.camera_muted) && isBool(m.screen_sharing);
/** @param {any} t */
const isTrack = (t) => isObj(t) && isStr(t.id) && isStr(t.kind) && isStr(t.source) && isStr(t.stream_id);
/** @param {any} p */
const isParticipant = (p) =>
  isObj(p) &&
  isStr(p.id) &&
  isStr(p.display_name) &&
  isStr(p.status) &&
  isMedia(p.media) &&
  Array.isArray(p.tracks) &&
  p.tracks.every(isTrack) &&
  isNum(p.joined_at_ms) &&
  (p.role === undefined || isStr(p.role)) &&
  (p.hand_raised_at_ms === undefined || p.hand_raised_at_ms === null || isNum(p.hand_raised_at_ms));
/** @param {any} h */
const isHold = (h) => isObj(h) && Array.isArray(h.groups) && h.groups.every(isStr) && isStr(h.by) && isStr(h.by_name);
/** @param {any} v */
const isPolicy = (v) =>
  isObj(v) &&
  isNum(v.version) &&
  isObj(v.settings) &&
  Array.isArray(v.speakers) &&
  v.speakers.every(isStr) &&
  isObj(v.holds) &&
  Object.values(v.holds).every(isHold);
/** @param {any} e */
const isLobbyEntry = (e) => isObj(e) && isStr(e.participant_id) && isStr(e.display_name) && isNum(e.since_ms);
/** @param {any} r */
const isRoom = (r) => isObj(r) && isNum(r.id) && isStr(r.slug) && isStr(r.name) && (r.e2ee === undefined || isBool(r.e2ee));
/** @param {unknown} v */
const isStrList = (v) => Array.isArray(v) && v.every(isStr);
/** @param {any} c */
const isCandidate = (c) => c === null || (isObj(c) && isStr(c.candidate));
/** @param {any} s */
const isPeerSignal = (s) =>
  isObj(s) &&
  (((s.kind === 'offer' || s.kind === 'answer') && isStr(s.sdp)) || (s.kind === 'candidate' && isCandidate(s.candidate)));
/** @param {any} m */
const isChatMessage = (m) =>
  isObj(m) &&
  isNum(m.id) &&
  isNum(m.room_id) &&
  isStr(m.participant_id) &&
  isStr(m.display_name) &&
  isStr(m.text) &&
  isNum(m.sent_at_ms);

/**
 * The shape each server message type must have; a frame of a known type
 * that fails its check is a protocol error, not a message.
 * @type {Readonly<Record<string, (m: any) => boolean>>}
 */
const SERVER_SHAPES = Object.freeze({
  joined: (m) =>
    isStr(m.participant_id) &&
    isRoom(m.room) &&
    Array.isArray(m.participants) &&
    m.participants.every(isParticipant) &&
    Array.isArray(m.ice_servers) &&
    (m.resume_token === undefined || isStr(m.resume_token)) &&
    (m.media_kept === undefined || typeof m.media_kept === 'boolean') &&
    (m.policy === undefined || isPolicy(m.policy)),
  policy: (m) => isPolicy(m.policy),
  moderated: (m) => isStr(m.notice) && isStr(m.by) && isStr(m.by_name),
  lobby: (m) => Array.isArray(m.waiting) && m.waiting.every(isLobbyEntry),
  lobby_waiting: (m) => isRoom(m.room),
  answer: (m) => isStr(m.sdp),
  offer: (m) => isStr(m.sdp),
  candidate: (m) => isCandidate(m.candidate),
  participant_joined: (m) => isParticipant(m.participant),
  participant_updated: (m) => isParticipant(m.participant),
  participant_left: (m) => isStr(m.participant_id) && isStr(m.reason),
  chat: (m) => isChatMessage(m.message),
  error: (m) => isStr(m.code) && isStr(m.message),
  pong: (m) => isNum(m.seq) && isNum(m.server_time_ms),
  move: (m) => m.reason === undefined || isStr(m.reason),
  e2ee_found: (m) => isStr(m.participant_id) && isNum(m.group),
  e2ee_key_package: (m) => isStr(m.participant_id) && isNum(m.group) && isStr(m.key_package),
  e2ee_commit: (m) =>
    isStr(m.participant_id) &&
    isNum(m.group) &&
    isNum(m.epoch) &&
    (m.added === undefined || isStrList(m.added)) &&
    (m.removed === undefined || isStrList(m.removed)) &&
    isStr(m.commit) &&
    (m.welcome === undefined || isStr(m.welcome)),
  media_path: (m) =>
    (m.path === 'sfu' || m.path === 'p2p') &&
    isNum(m.pairing) &&
    isBool(m.offerer) &&
    (m.path === 'sfu' ? m.peer === undefined || m.peer === null || isStr(m.peer) : isStr(m.peer)),
  peer_signal: (m) => isStr(m.from) && isNum(m.pairing) && isPeerSignal(m.signal),
});

/** Every message type the node sends, in the order of docs/protocol.md §4. */
export const SERVER_MESSAGE_TYPES = Object.freeze(Object.keys(SERVER_SHAPES));

/**
 * Checks one parsed server frame.
 * - `{ok: true, msg}`: a known type with the fields it needs (extra fields
 *   are allowed: newer nodes may add some).
 * - `{ok: true, msg, unknown: true}`: a type this client does not know; it
 *   is still dispatched by type (and ignored by the call), so a newer node
 *   does not break an older page.
 * - `{ok: false, error}`: not a message at all, or a known type whose
 *   fields are wrong.
 * @param {unknown} value
 * @returns {{ok: true, msg: ServerMessage, unknown?: boolean} | {ok: false, error: string}}
 */
export function parseServerMessage(value) {
  if (!isObj(value)) return { ok: false, error: 'frame is not a JSON object' };
  const msg = /** @type {any} */ (value);
  if (!isStr(msg.type)) return { ok: false, error: 'frame has no type' };
  const shape = SERVER_SHAPES[msg.type];
  if (!shape) return { ok: true, msg, unknown: true };
  if (!shape(msg)) return { ok: false, error: `malformed ${msg.type} message` };
  return { ok: true, msg };
}
