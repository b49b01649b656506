// The room as the server describes it: a pure reducer over server messages.

import { EMPTY_POLICY, newerPolicy } from './moderation.js';

/** @typedef {import('./types.js').RoomInfo} RoomInfo */
/** @typedef {import('./types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./types.js').ServerMessage} ServerMessage */
/** @typedef {import('./types.js').PolicyView} PolicyView */

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
   * @param {PolicyView} [policy] The room's moderation state.
   */
  constructor(participantId = null, room = null, participants = new Map(), policy = EMPTY_POLICY) {
    /** @type {string | null} */
    this.participantId = participantId;
    /** @type {RoomInfo | null} */
    this.room = room;
    /** @type {ReadonlyMap<string, ParticipantInfo>} */
    this.participants = participants;
    /** @type {PolicyView} */
    this.policy = policy;
  }

  /**
   * Applies one server message. Messages that change neither the
   * participant set nor the policy (chat, offers, pongs...) return `this`.
   * A `policy` older than the one held is ignored.
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
          newerPolicy(EMPTY_POLICY, msg.policy),
        );
      case 'policy': {
        const policy = newerPolicy(this.policy, msg.policy);
        return policy === this.policy ? this : new RoomState(this.participantId, this.room, new Map(this.participants), policy);
      }
      case 'participant_joined':
      case 'participant_updated': {
        const next = new Map(this.participants);
        next.set(msg.participant.id, msg.participant);
        return new RoomState(this.participantId, this.room, next, this.policy);
      }
      case 'participant_left': {
        if (!this.participants.has(msg.participant_id)) return this;
        const next = new Map(this.participants);
        next.delete(msg.participant_id);
        return new RoomState(this.participantId, this.room, next, this.policy);
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
