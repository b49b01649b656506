// Wire types of the signalling protocol and the REST API, as JSDoc
// typedefs. The contract is the Rust crate `protocol/` and docs/protocol.md;
// keep these in step with both. Types only: this module exports no values.


/** @typedef {'microphone' | 'camera' | 'screen' | 'screen_audio'} TrackSource */
/** @typedef {'audio' | 'video'} MediaKind */
/** @typedef {'connected' | 'reconnecting'} PresenceStatus */
/** @typedef {'left' | 'disconnected' | 'replaced' | 'removed'} LeaveReason */
/**
 * A participant's authority in the room, lowest first.
 * @typedef {'guest' | 'participant' | 'moderator' | 'host'} Role
 */
/** Media a moderator can stop. @typedef {'microphone' | 'camera' | 'screen'} MediaGroup */
/** A media node's id (`NodeId` in `protocol/src/ids.rs`, a JSON number). @typedef {number} NodeId */

/**
 * The machine-readable error kinds of `protocol/src/error.rs`, plus two that
 * only this library produces: `network` (the server could not be reached)
 * and `http_<status>` (a non-2xx response without a JSON error body).
 * @typedef {'bad_request' | 'room_not_found' | 'token_invalid' | 'token_expired'
 *   | 'unauthorized' | 'forbidden'
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
 * @property {boolean} [guest] Joined without an account in a room of the
 *   organisation (a guest pass, or an open room's link): the list shows
 *   "(guest)" after the name. Absent means false.
 * @property {Role} [role] Absent means participant.
 * @property {number | null} [hand_raised_at_ms] When they raised their
 *   hand (node clock); absent when it is down.
 */

/**
 * A moderator's hold on someone's media (`Hold` in protocol/src/moderation.rs).
 * @typedef {object} Hold
 * @property {MediaGroup[]} groups
 * @property {string} by_name
 * @property {string} by
 * @property {boolean} [asked_to_unmute]
 */

/**
 * Room-wide switches.
 * @typedef {object} RoomSettings
 * @property {boolean} lobby
 * @property {boolean} locked
 * @property {boolean} speak_mode
 * @property {boolean} allow_self_unmute
 * @property {boolean} [p2p] Two people may connect directly (absent from
 *   nodes that predate peer-to-peer: treat as on).
 */

/**
 * The room's moderation state as clients see it (`PolicyView`).
 * @typedef {object} PolicyView
 * @property {number} version Newer replaces older.
 * @property {RoomSettings} settings
 * @property {string[]} speakers
 * @property {Record<string, Hold>} holds
 * @property {ActiveRecording | null} [recording] The recording running now
 *   (absent from nodes that predate recordings).
 */

/**
 * The recording a room's policy says is running (`ActiveRecording` in
 * protocol/src/recording.rs).
 * @typedef {object} ActiveRecording
 * @property {string} id
 * @property {number} started_at_ms
 * @property {string} started_by
 * @property {string} started_by_name
 */

/**
 * Someone waiting in the lobby, as moderators see them.
 * @typedef {object} LobbyEntry
 * @property {string} participant_id
 * @property {string} display_name
 * @property {boolean} [guest]
 * @property {number} since_ms
 */

/**
 * A moderator's (or one's own) action (`ModAction`, JSON tag `action`).
 * @typedef {{action: 'mute', participant_id: string, group: MediaGroup}
 *   | {action: 'ask_to_unmute', participant_id: string}
 *   | {action: 'mute_everyone'}
 *   | {action: 'make_moderator', participant_id: string}
 *   | {action: 'revoke_moderator', participant_id: string}
 *   | {action: 'allow_speak', participant_id: string}
 *   | {action: 'revoke_speak', participant_id: string}
 *   | {action: 'remove', participant_id: string, ban: boolean}
 *   | {action: 'admit', participant_id: string}
 *   | {action: 'deny', participant_id: string}
 *   | {action: 'settings', change: Partial<RoomSettings>}
 *   | {action: 'unmute_self', group: MediaGroup}
 *   | {action: 'start_recording'} | {action: 'stop_recording'}} ModAction
 */

/**
 * What a participant is told a moderator did to them (`Notice`).
 * @typedef {{notice: 'muted', group: MediaGroup}
 *   | {notice: 'asked_to_unmute'} | {notice: 'made_moderator'}
 *   | {notice: 'moderator_revoked'} | {notice: 'allowed_to_speak'}
 *   | {notice: 'speak_revoked'} | {notice: 'removed', ban: boolean}} Notice
 */

/**
 * The room as shown in `joined`.
 * @typedef {object} RoomInfo
 * @property {number} id
 * @property {string} slug
 * @property {string} name
 * @property {boolean} [e2ee] Created end-to-end encrypted: media and chat
 *   must be encrypted by the client, or it must not connect.
 */

/**
 * What a committer sends with `e2ee_commit`; the node relays it as an
 * `E2eeCommitMessage` with the committer's id.
 * @typedef {object} E2eeCommitOut
 * @property {number} group
 * @property {number} epoch The epoch the commit starts from.
 * @property {string[]} added
 * @property {string[]} removed
 * @property {string} commit base64url
 * @property {string} [welcome] base64url, for `added`.
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
 * @property {boolean} [keep_media] We still hold the seat's peer
 *   connection and will restart its ICE: the node keeps its side too, if
 *   it can (`joined.media_kept`).
 */

/**
 * Messages from the browser to the media node.
 * @typedef {{type: 'join', token: string, media?: MediaState, resume?: Resume, p2p?: boolean}
 *   | {type: 'offer', sdp: string, tracks: Record<string, TrackSource>}
 *   | {type: 'answer', sdp: string}
 *   | {type: 'candidate', candidate: IceCandidate | null}
 *   | ({type: 'media'} & MediaState)
 *   | {type: 'chat', text: string, client_msg_id?: string}
 *   | {type: 'ping', seq: number}
 *   | {type: 'leave'}
 *   | ({type: 'moderate'} & ModAction)
 *   | {type: 'hand', raised: boolean}
 *   | {type: 'e2ee_key_package', key_package: string}
 *   | ({type: 'e2ee_commit'} & E2eeCommitOut)
 *   | {type: 'peer_signal', to: string, pairing: number, signal: PeerSignal}
 *   | {type: 'p2p_state', pairing: number, state: 'connected' | 'failed'}} ClientMessage
 */

/**
 * One step of a direct connection's offer/answer, relayed by the node.
 * @typedef {{kind: 'offer', sdp: string} | {kind: 'answer', sdp: string}
 *   | {kind: 'candidate', candidate: IceCandidate | null}} PeerSignal
 */

/**
 * `resume_token` is absent from nodes that predate resuming. `media_kept`:
 * the resume kept the seat's peer connection (asked for with
 * `resume.keep_media`); absent or false, make a new one.
 * @typedef {{type: 'joined', participant_id: string, room: RoomInfo, participants: ParticipantInfo[],
 *   ice_servers: IceServer[], resume_token?: string, resumed?: boolean, media_kept?: boolean,
 *   policy?: PolicyView}} JoinedMessage
 */
/** @typedef {{type: 'policy', policy: PolicyView}} PolicyMessage */
/** @typedef {{type: 'moderated', by: string, by_name: string} & Notice} ModeratedMessage */
/** @typedef {{type: 'lobby', waiting: LobbyEntry[]}} LobbyMessage */
/** @typedef {{type: 'lobby_waiting', room: RoomInfo}} LobbyWaitingMessage */
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
 * How this participant's media travels now; with `p2p`, `peer` is the one
 * other participant and `offerer` says who sends the direct offer.
 * @typedef {{type: 'media_path', path: 'sfu' | 'p2p', pairing: number, peer?: string, offerer: boolean}} MediaPathMessage
 */
/** @typedef {{type: 'peer_signal', from: string, pairing: number, signal: PeerSignal}} PeerSignalMessage */
/** @typedef {{type: 'e2ee_found', participant_id: string, group: number}} E2eeFoundMessage */
/** @typedef {{type: 'e2ee_key_package', participant_id: string, group: number, key_package: string}} E2eeKeyPackageMessage */
/** @typedef {{type: 'e2ee_commit', participant_id: string} & E2eeCommitOut} E2eeCommitMessage */
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
 *   | PongMessage | MoveMessage | PolicyMessage | ModeratedMessage
 *   | LobbyMessage | LobbyWaitingMessage | E2eeFoundMessage
 *   | E2eeKeyPackageMessage | E2eeCommitMessage | MediaPathMessage
 *   | PeerSignalMessage} ServerMessage
 */

/**
 * A room as the REST API shows it.
 * @typedef {object} RoomView
 * @property {number} id
 * @property {string} slug
 * @property {string} name
 * @property {string} link The full link to share, `<public url>/r/<slug>`.
 * @property {number} created_at_ms
 * @property {RoomAccess} [access] Who may join (absent from older servers:
 *   open).
 * @property {boolean} [e2ee] End-to-end encrypted: the pre-join page says
 *   so, and a browser that cannot encrypt media must not join.
 * @property {string} [owner_name] The owner's display name, if a signed-in
 *   user created the room.
 * @property {boolean} [you_own] The requester owns the room (signed in as
 *   its creator, or presenting its owner key).
 * @property {string} [owner_key] Only in an anonymous creator's create
 *   response: the owner key, shown once.
 * @property {string} [pass_refusal] Only when looked up with `?pass=`: why
 *   that pass would not admit now.
 * @property {CoverView} [cover] The room's cover, if its owner set one.
 */

/**
 * A room's cover (`lib/covers.js`).
 * @typedef {object} CoverView
 * @property {string} title May be empty.
 * @property {string} description May be empty.
 * @property {string} [image_url] Versioned: changes with every upload.
 * @property {number} [image_width]
 * @property {number} [image_height]
 */

/**
 * Who may join a room.
 * @typedef {'open' | 'signed_in' | 'signed_in_or_pass'} RoomAccess
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
 * @property {string} [rejoin_secret] Send it back as `rejoin_secret`
 *   together with this token as `rejoin_token` when asking for the next
 *   token (after `move` or node loss). Kept in memory only, never in the
 *   URL or storage. (Absent from control planes that predate it.)
 */

/**
 * `GET /api/rooms/{slug}/messages` response.
 * @typedef {object} MessagesPage
 * @property {ChatMessage[]} messages Oldest first.
 * @property {boolean} has_more True if older messages exist.
 */

export {};
