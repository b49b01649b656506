// Authority in the room, from the browser's side, with no DOM: who may
// offer which moderator action on whom, the order of raised hands and of
// the lobby, the texts that tell a participant what a moderator did, the
// room's policy (newest version wins) and what it lets this participant
// publish. The server decides and enforces all of it (the control plane's
// rules, the media node's forwarding); this module only keeps the page from
// offering what would be refused, and says why something is unavailable.
// Tested under node (web/test/moderation.test.mjs).

/** @typedef {import('./types.js').Role} Role */
/** @typedef {import('./types.js').MediaGroup} MediaGroup */
/** @typedef {import('./types.js').PolicyView} PolicyView */
/** @typedef {import('./types.js').ModAction} ModAction */
/** @typedef {import('./types.js').LobbyEntry} LobbyEntry */
/** @typedef {import('./types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./types.js').ModeratedMessage} ModeratedMessage */
/** @typedef {import('./types.js').RoomSettings} RoomSettings */

/** Authority, lowest first (as `Role`'s order in protocol/src/moderation.rs). */
const RANK = Object.freeze({ guest: 0, participant: 1, moderator: 2, host: 3 });

/**
 * A participant's role; entries from nodes that predate roles count as
 * participants.
 * @param {ParticipantInfo | undefined} p
 * @returns {Role}
 */
export function roleOf(p) {
  const r = p?.role;
  return r === 'guest' || r === 'moderator' || r === 'host' ? r : 'participant';
}

/**
 * Hosts and moderators moderate.
 * @param {Role} role
 */
export function moderates(role) {
  return RANK[role] >= RANK.moderator;
}

/**
 * Whether `actor` may moderate `target` at all: only hosts and moderators
 * moderate, and nobody but a host acts on a host.
 * @param {Role} actor
 * @param {Role} target
 */
export function mayActOn(actor, target) {
  return moderates(actor) && (target !== 'host' || actor === 'host');
}

/**
 * The badge the participant list shows after a name, if any.
 * @param {Role} role
 * @returns {string | null}
 */
export function roleBadge(role) {
  if (role === 'host') return 'Host';
  if (role === 'moderator') return 'Moderator';
  return null;
}

/**
 * The policy of a room nobody moderated yet (and of nodes that predate
 * policies). Frozen: never change it in place.
 * @type {PolicyView}
 */
export const EMPTY_POLICY = Object.freeze({
  version: 0,
  settings: Object.freeze({ lobby: false, locked: false, speak_mode: false, allow_self_unmute: false }),
  speakers: /** @type {string[]} */ (/** @type {unknown} */ (Object.freeze([]))),
  holds: Object.freeze({}),
  recording: null,
});

/**
 * The policy to keep after one arrives: the incoming one unless it is
 * older than what we have (messages from two nodes may cross during a move).
 * Missing settings default to off.
 * @param {PolicyView} current
 * @param {PolicyView | undefined} incoming
 * @returns {PolicyView}
 */
export function newerPolicy(current, incoming) {
  if (!incoming || incoming.version < current.version) return current;
  return {
    version: incoming.version,
    settings: { ...EMPTY_POLICY.settings, ...incoming.settings },
    speakers: incoming.speakers ?? [],
    holds: incoming.holds ?? {},
    recording: activeRecording(incoming.recording),
  };
}

/**
 * The policy's running recording, or null (none, or not one this client
 * can read).
 * @param {unknown} r
 * @returns {import('./types.js').ActiveRecording | null}
 */
function activeRecording(r) {
  if (typeof r !== 'object' || r === null) return null;
  const v = /** @type {Record<string, unknown>} */ (r);
  if (typeof v.id !== 'string' || typeof v.started_by_name !== 'string') return null;
  return {
    id: v.id,
    started_at_ms: typeof v.started_at_ms === 'number' ? v.started_at_ms : 0,
    started_by: typeof v.started_by === 'string' ? v.started_by : '',
    started_by_name: v.started_by_name,
  };
}

/** Message bodies for `build.moderate`, one per action, so no caller spells one by hand. */
export const act = Object.freeze({
  /** @param {string} id @param {MediaGroup} group @returns {ModAction} */
  mute: (id, group) => ({ action: 'mute', participant_id: id, group }),
  /** @param {string} id @returns {ModAction} */
  askToUnmute: (id) => ({ action: 'ask_to_unmute', participant_id: id }),
  /** @returns {ModAction} */
  muteEveryone: () => ({ action: 'mute_everyone' }),
  /** @param {string} id @returns {ModAction} */
  makeModerator: (id) => ({ action: 'make_moderator', participant_id: id }),
  /** @param {string} id @returns {ModAction} */
  revokeModerator: (id) => ({ action: 'revoke_moderator', participant_id: id }),
  /** @param {string} id @returns {ModAction} */
  allowSpeak: (id) => ({ action: 'allow_speak', participant_id: id }),
  /** @param {string} id @returns {ModAction} */
  revokeSpeak: (id) => ({ action: 'revoke_speak', participant_id: id }),
  /** @param {string} id @param {boolean} ban @returns {ModAction} */
  remove: (id, ban) => ({ action: 'remove', participant_id: id, ban }),
  /** @param {string} id @returns {ModAction} */
  admit: (id) => ({ action: 'admit', participant_id: id }),
  /** @param {string} id @returns {ModAction} */
  deny: (id) => ({ action: 'deny', participant_id: id }),
  /** @param {Partial<RoomSettings>} change @returns {ModAction} */
  settings: (change) => ({ action: 'settings', change }),
  /** @param {MediaGroup} group @returns {ModAction} */
  unmuteSelf: (group) => ({ action: 'unmute_self', group }),
  /** @returns {ModAction} */
  startRecording: () => ({ action: 'start_recording' }),
  /** @returns {ModAction} */
  stopRecording: () => ({ action: 'stop_recording' }),
});

/**
 * One entry of a participant's "More actions" menu. `confirm: 'remove'`
 * asks first (and whether to ban) instead of sending `action` as it is.
 * @typedef {object} MenuEntry
 * @property {string} label The button's accessible name.
 * @property {ModAction} action
 * @property {'remove'} [confirm]
 */

/**
 * What the "More actions for {name}" menu offers `viewer` for `target`:
 * nothing unless the viewer moderates and may act on the target (never on
 * themselves: their own controls are in the toolbar). Stopping media that
 * is already held is not offered; "Ask to unmute" is, when the microphone
 * is held or muted. Speak permission is offered only in speak mode, to
 * those who need it.
 * @param {{id: string | null, role: Role}} viewer
 * @param {ParticipantInfo} target
 * @param {PolicyView} policy
 * @returns {MenuEntry[]}
 */
export function menuFor(viewer, target, policy) {
  const role = roleOf(target);
  if (target.id === viewer.id || !mayActOn(viewer.role, role)) return [];
  const name = target.display_name;
  const held = new Set(policy.holds[target.id]?.groups ?? []);
  const id = target.id;
  /** @type {MenuEntry[]} */
  const out = [];
  if (!held.has('microphone')) out.push({ label: `Mute ${name}`, action: act.mute(id, 'microphone') });
  if (!held.has('camera')) out.push({ label: `Turn off ${name}'s camera`, action: act.mute(id, 'camera') });
  if (!held.has('screen')) out.push({ label: `Stop ${name}'s screen share`, action: act.mute(id, 'screen') });
  if (held.has('microphone') || target.media.mic_muted) {
    out.push({ label: `Ask ${name} to unmute`, action: act.askToUnmute(id) });
  }
  if (role === 'participant' || role === 'guest') {
    out.push({ label: `Make ${name} a moderator`, action: act.makeModerator(id) });
  } else if (role === 'moderator') {
    out.push({ label: `Take moderator role from ${name}`, action: act.revokeModerator(id) });
  }
  if (policy.settings.speak_mode && !moderates(role)) {
    if (policy.speakers.includes(id)) out.push({ label: `Stop ${name} from speaking`, action: act.revokeSpeak(id) });
    else out.push({ label: `Allow ${name} to speak`, action: act.allowSpeak(id) });
  }
  out.push({ label: `Remove ${name}`, action: act.remove(id, false), confirm: 'remove' });
  return out;
}

/**
 * Participants with a raised hand, first raised first (ties by id), so
 * every participant sees the same order.
 * @param {Iterable<ParticipantInfo>} people
 * @returns {ParticipantInfo[]}
 */
export function handOrder(people) {
  return [...people]
    .filter((p) => typeof p.hand_raised_at_ms === 'number')
    .sort((a, b) => /** @type {number} */ (a.hand_raised_at_ms) - /** @type {number} */ (b.hand_raised_at_ms) || cmp(a.id, b.id));
}

/**
 * The participant list's order: raised hands first, in hand order, then
 * everyone else in the order given (join order).
 * @param {ParticipantInfo[]} people
 * @returns {ParticipantInfo[]}
 */
export function listOrder(people) {
  const hands = handOrder(people);
  const raised = new Set(hands.map((p) => p.id));
  return [...hands, ...people.filter((p) => !raised.has(p.id))];
}

/**
 * "1st", "2nd", "3rd", "11th"...: a raised hand's place in the queue.
 * @param {number} n
 * @returns {string}
 */
export function ordinal(n) {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

/**
 * Lobby waiters, longest-waiting first (ties by id).
 * @param {LobbyEntry[]} waiting
 * @returns {LobbyEntry[]}
 */
export function lobbyOrder(waiting) {
  return [...waiting].sort((a, b) => a.since_ms - b.since_ms || cmp(a.participant_id, b.participant_id));
}

/**
 * The alert a participant sees when a moderator acted on them, naming who.
 * @param {ModeratedMessage} m
 * @returns {string}
 */
export function noticeText(m) {
  const who = m.by_name;
  switch (m.notice) {
    case 'muted':
      if (m.group === 'camera') return `${who} turned off your camera`;
      if (m.group === 'screen') return `${who} stopped your screen share`;
      return `${who} muted your microphone`;
    case 'asked_to_unmute':
      return `${who} asks you to unmute`;
    case 'made_moderator':
      return `${who} made you a moderator`;
    case 'moderator_revoked':
      return `${who} took back your moderator role`;
    case 'allowed_to_speak':
      return `${who} allowed you to speak`;
    case 'speak_revoked':
      return `${who} stopped you from speaking`;
    case 'removed':
      return `${who} removed you from the meeting`;
    default:
      return `${who} changed what you may do in this meeting`;
  }
}

/**
 * What the policy lets this participant publish.
 * - `silenced`: speak mode, and they neither moderate nor were allowed to
 *   speak.
 * - `held`: groups a moderator stopped, with the moderator's name.
 * - `selfUnmute`: the room lets them lift a hold themselves
 *   (`unmute_self`).
 * @typedef {object} Limits
 * @property {boolean} silenced
 * @property {Partial<Record<MediaGroup, string>>} held
 * @property {boolean} selfUnmute
 */

/**
 * @param {PolicyView} policy
 * @param {string | null} id This participant.
 * @param {Role} role Their role.
 * @returns {Limits}
 */
export function limitsFor(policy, id, role) {
  /** @type {Partial<Record<MediaGroup, string>>} */
  const held = {};
  const hold = id === null ? undefined : policy.holds[id];
  for (const g of hold?.groups ?? []) held[g] = hold?.by_name ?? 'A moderator';
  return {
    silenced: policy.settings.speak_mode && !moderates(role) && !(id !== null && policy.speakers.includes(id)),
    held,
    selfUnmute: policy.settings.allow_self_unmute,
  };
}

/**
 * Why this participant cannot turn `group` on, or null if they can. A
 * held group the room lets them lift themselves is not blocked (turning it
 * on sends `unmute_self` first).
 * @param {Limits} limits
 * @param {MediaGroup} group
 * @returns {string | null}
 */
export function blockedReason(limits, group) {
  if (limits.silenced) return 'Only permitted speakers can speak in this meeting. Raise your hand to ask.';
  const by = limits.held[group];
  if (by === undefined || limits.selfUnmute) return null;
  if (group === 'camera') return `${by} turned off your camera. Only a moderator can let you turn it on.`;
  if (group === 'screen') return `${by} stopped your screen share. Only a moderator can let you share again.`;
  return `${by} muted your microphone. Only a moderator can let you unmute.`;
}

/**
 * @param {string} a
 * @param {string} b
 */
function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
