// Veche browser protocol library: everything the client needs to talk to the
// control plane (REST) and to its media node (signalling WebSocket), with no
// DOM access, so it runs and is tested under node. One module per concern
// under lib/; this file re-exports them, so pages and tests import one name.
//
// The wire contract is the Rust crate `protocol/` and its human-readable
// twin `docs/protocol.md`; lib/types.js holds its JSDoc typedefs.

export * from './lib/limits.js';
export * from './lib/errors.js';
export * from './lib/rest.js';
export * from './lib/chat-rules.js';
export * from './lib/room-state.js';
export * from './lib/messages.js';
export * from './lib/signalling.js';
export * from './lib/negotiator.js';
export * from './lib/reconnect.js';
export * from './lib/passes.js';
export * from './lib/moderation.js';

/** @typedef {import('./lib/types.js').TrackSource} TrackSource */
/** @typedef {import('./lib/types.js').MediaKind} MediaKind */
/** @typedef {import('./lib/types.js').PresenceStatus} PresenceStatus */
/** @typedef {import('./lib/types.js').LeaveReason} LeaveReason */
/** @typedef {import('./lib/types.js').NodeId} NodeId */
/** @typedef {import('./lib/types.js').ErrorCode} ErrorCode */
/** @typedef {import('./lib/types.js').MediaState} MediaState */
/** @typedef {import('./lib/types.js').IceCandidate} IceCandidate */
/** @typedef {import('./lib/types.js').IceServer} IceServer */
/** @typedef {import('./lib/types.js').TrackInfo} TrackInfo */
/** @typedef {import('./lib/types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./lib/types.js').RoomInfo} RoomInfo */
/** @typedef {import('./lib/types.js').ChatMessage} ChatMessage */
/** @typedef {import('./lib/types.js').Resume} Resume */
/** @typedef {import('./lib/types.js').Role} Role */
/** @typedef {import('./lib/types.js').MediaGroup} MediaGroup */
/** @typedef {import('./lib/types.js').PolicyView} PolicyView */
/** @typedef {import('./lib/types.js').ModAction} ModAction */
/** @typedef {import('./lib/types.js').LobbyEntry} LobbyEntry */
/** @typedef {import('./lib/types.js').RoomSettings} RoomSettings */
/** @typedef {import('./lib/types.js').ModeratedMessage} ModeratedMessage */
/** @typedef {import('./lib/types.js').ClientMessage} ClientMessage */
/** @typedef {import('./lib/types.js').ServerMessage} ServerMessage */
/** @typedef {import('./lib/types.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./lib/types.js').ErrorMessage} ErrorMessage */
/** @typedef {import('./lib/types.js').MoveMessage} MoveMessage */
/** @typedef {import('./lib/types.js').RoomView} RoomView */
/** @typedef {import('./lib/types.js').JoinResponse} JoinResponse */
/** @typedef {import('./lib/types.js').MessagesPage} MessagesPage */
/** @typedef {import('./lib/signalling.js').CloseInfo} CloseInfo */
/** @typedef {import('./lib/reconnect.js').Seat} Seat */
