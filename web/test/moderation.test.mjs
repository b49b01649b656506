// Moderation from the browser's side (lib/moderation.js and the room
// state's policy): who is offered which action, hand and lobby order, the
// notice texts, the policy's versions and what it lets this participant
// publish. Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  EMPTY_POLICY,
  act,
  blockedReason,
  handOrder,
  limitsFor,
  listOrder,
  lobbyOrder,
  mayActOn,
  menuFor,
  newerPolicy,
  noticeText,
  ordinal,
  roleBadge,
  roleOf,
} from '../public/lib/moderation.js';
import { RoomState } from '../public/lib/room-state.js';
import { build } from '../public/lib/messages.js';
import { closeAction } from '../public/lib/reconnect.js';
import { CloseCode } from '../public/lib/limits.js';

/** @typedef {import('../public/lib/types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('../public/lib/types.js').PolicyView} PolicyView */
/** @typedef {import('../public/lib/types.js').Role} Role */

/**
 * @param {string} id
 * @param {string} name
 * @param {Partial<ParticipantInfo>} [extra]
 * @returns {ParticipantInfo}
 */
function person(id, name, extra = {}) {
  return {
    id,
    display_name: name,
    status: 'connected',
    media: { mic_muted: false, camera_muted: false, screen_sharing: false },
    tracks: [],
    joined_at_ms: 1,
    ...extra,
  };
}

/**
 * @param {Partial<PolicyView>} over
 * @param {Partial<PolicyView['settings']>} [settings]
 * @returns {PolicyView}
 */
function policy(over = {}, settings = {}) {
  return { ...EMPTY_POLICY, ...over, settings: { ...EMPTY_POLICY.settings, ...settings } };
}

/**
 * @param {Role} role
 * @param {ParticipantInfo} target
 * @param {PolicyView} [pol]
 */
const labels = (role, target, pol = EMPTY_POLICY) => menuFor({ id: 'me', role }, target, pol).map((e) => e.label);

describe('who may moderate whom', () => {
  test('participants and guests are offered no moderator actions', () => {
    const bo = person('p-bo', 'Bo');
    assert.deepEqual(labels('participant', bo), []);
    assert.deepEqual(labels('guest', bo), []);
  });

  test('a moderator is offered every action on a participant, with the exact accessible names', () => {
    assert.deepEqual(labels('moderator', person('p-bo', 'Bo', { media: { mic_muted: true, camera_muted: false, screen_sharing: false } })), [
      'Mute Bo',
      "Turn off Bo's camera",
      "Stop Bo's screen share",
      'Ask Bo to unmute',
      'Make Bo a moderator',
      'Remove Bo',
    ]);
  });

  test('nobody but a host acts on a host', () => {
    const host = person('p-h', 'Hal', { role: 'host' });
    assert.deepEqual(labels('moderator', host), []);
    assert.ok(labels('host', host).includes('Remove Hal'));
    assert.equal(mayActOn('moderator', 'host'), false);
    assert.equal(mayActOn('host', 'host'), true);
    assert.equal(mayActOn('moderator', 'moderator'), true);
  });

  test('nobody is offered actions on themselves', () => {
    assert.deepEqual(menuFor({ id: 'me', role: 'host' }, person('me', 'Me'), EMPTY_POLICY), []);
  });

  test('a moderator is offered taking the role back from another moderator, not granting it again', () => {
    const mo = labels('host', person('p-m', 'Mo', { role: 'moderator' }));
    assert.ok(mo.includes('Take moderator role from Mo'));
    assert.ok(!mo.includes('Make Mo a moderator'));
  });

  test('media already held is not offered again, and a held microphone can be asked to unmute', () => {
    const pol = policy({ holds: { 'p-bo': { groups: ['microphone', 'camera'], by: 'me', by_name: 'Me' } } });
    const got = labels('moderator', person('p-bo', 'Bo'), pol);
    assert.ok(!got.includes('Mute Bo'));
    assert.ok(!got.includes("Turn off Bo's camera"));
    assert.ok(got.includes('Ask Bo to unmute'));
  });

  test('speak permission is offered only in speak mode, to those who do not moderate', () => {
    const bo = person('p-bo', 'Bo');
    assert.ok(!labels('host', bo).includes('Allow Bo to speak'));
    const speak = policy({}, { speak_mode: true });
    assert.ok(labels('host', bo, speak).includes('Allow Bo to speak'));
    assert.ok(!labels('host', person('p-m', 'Mo', { role: 'moderator' }), speak).some((l) => l.includes('speak')));
    const allowed = policy({ speakers: ['p-bo'] }, { speak_mode: true });
    assert.ok(labels('host', bo, allowed).includes('Stop Bo from speaking'));
  });

  test('"Remove" asks before it sends, and sends no ban unless asked', () => {
    const remove = menuFor({ id: 'me', role: 'host' }, person('p-bo', 'Bo'), EMPTY_POLICY).find((e) => e.label === 'Remove Bo');
    assert.equal(remove?.confirm, 'remove');
    assert.deepEqual(remove?.action, { action: 'remove', participant_id: 'p-bo', ban: false });
  });

  test('roles show as badges; an entry without a role is a participant', () => {
    assert.equal(roleBadge('host'), 'Host');
    assert.equal(roleBadge('moderator'), 'Moderator');
    assert.equal(roleBadge('participant'), null);
    assert.equal(roleOf(person('p', 'P')), 'participant');
  });
});

describe('hands and the lobby', () => {
  test('raised hands are ordered by when they were raised, then by id; the list puts them first', () => {
    const people = [
      person('p-a', 'A'),
      person('p-c', 'C', { hand_raised_at_ms: 20 }),
      person('p-b', 'B', { hand_raised_at_ms: 20 }),
      person('p-d', 'D', { hand_raised_at_ms: 10 }),
      person('p-e', 'E', { hand_raised_at_ms: null }),
    ];
    assert.deepEqual(handOrder(people).map((p) => p.id), ['p-d', 'p-b', 'p-c']);
    assert.deepEqual(listOrder(people).map((p) => p.id), ['p-d', 'p-b', 'p-c', 'p-a', 'p-e']);
  });

  test('a hand\'s place in the queue reads as an ordinal', () => {
    assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal), ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '101st', '111th']);
  });

  test('the lobby lists the longest-waiting first', () => {
    const w = [
      { participant_id: 'p-2', display_name: 'Two', since_ms: 5 },
      { participant_id: 'p-1', display_name: 'One', since_ms: 1 },
      { participant_id: 'p-0', display_name: 'Zero', since_ms: 5 },
    ];
    assert.deepEqual(lobbyOrder(w).map((e) => e.participant_id), ['p-1', 'p-0', 'p-2']);
  });
});

describe('what a participant is told', () => {
  test('each notice names the moderator, with the exact texts', () => {
    const by = { type: /** @type {'moderated'} */ ('moderated'), by: 'p-a', by_name: 'Ann' };
    assert.equal(noticeText({ ...by, notice: 'muted', group: 'microphone' }), 'Ann muted your microphone');
    assert.equal(noticeText({ ...by, notice: 'muted', group: 'camera' }), 'Ann turned off your camera');
    assert.equal(noticeText({ ...by, notice: 'muted', group: 'screen' }), 'Ann stopped your screen share');
    assert.equal(noticeText({ ...by, notice: 'asked_to_unmute' }), 'Ann asks you to unmute');
    assert.equal(noticeText({ ...by, notice: 'removed', ban: true }), 'Ann removed you from the meeting');
    assert.equal(noticeText({ ...by, notice: 'made_moderator' }), 'Ann made you a moderator');
  });

  test('a hold blocks turning that device on unless the room lets people unmute themselves', () => {
    const pol = policy({ holds: { me: { groups: ['microphone'], by: 'p-a', by_name: 'Ann' } } });
    const lim = limitsFor(pol, 'me', 'participant');
    assert.match(blockedReason(lim, 'microphone') ?? '', /^Ann muted your microphone/);
    assert.equal(blockedReason(lim, 'camera'), null);
    const lenient = limitsFor(policy({ holds: pol.holds }, { allow_self_unmute: true }), 'me', 'participant');
    assert.equal(blockedReason(lenient, 'microphone'), null);
    assert.equal(lenient.held.microphone, 'Ann');
  });

  test('in speak mode only moderators and permitted speakers may turn anything on', () => {
    const speak = policy({ speakers: ['p-s'] }, { speak_mode: true });
    assert.ok(blockedReason(limitsFor(speak, 'me', 'participant'), 'microphone'));
    assert.ok(blockedReason(limitsFor(speak, 'me', 'guest'), 'screen'));
    assert.equal(blockedReason(limitsFor(speak, 'p-s', 'participant'), 'camera'), null);
    assert.equal(blockedReason(limitsFor(speak, 'me', 'moderator'), 'microphone'), null);
  });
});

describe('the policy in the room state', () => {
  const joined = {
    type: /** @type {'joined'} */ ('joined'),
    participant_id: 'me',
    room: { id: 1, slug: 's', name: 'R' },
    participants: [person('me', 'Me')],
    ice_servers: [],
  };

  test('joined brings the policy (or none, from an older node) and a newer policy replaces it', () => {
    const s0 = new RoomState().apply(joined);
    assert.equal(s0.policy.version, 0);
    assert.equal(s0.policy.settings.lobby, false);
    const s1 = s0.apply({ type: 'policy', policy: policy({ version: 3 }, { locked: true }) });
    assert.equal(s1.policy.settings.locked, true);
    const s2 = s1.apply({ type: 'participant_joined', participant: person('p-b', 'B') });
    assert.equal(s2.policy.version, 3, 'the policy survives other changes');
  });

  test('an older policy (crossing messages during a move) is ignored', () => {
    const s = new RoomState().apply(joined).apply({ type: 'policy', policy: policy({ version: 5 }, { lobby: true }) });
    assert.equal(s.apply({ type: 'policy', policy: policy({ version: 4 }) }), s);
    assert.equal(newerPolicy(s.policy, undefined), s.policy);
  });
});

describe('messages and closes', () => {
  test('moderate and hand messages carry the action as the server reads it', () => {
    assert.deepEqual(build.moderate(act.mute('p-b', 'camera')), { type: 'moderate', action: 'mute', participant_id: 'p-b', group: 'camera' });
    assert.deepEqual(build.moderate(act.settings({ locked: true })), { type: 'moderate', action: 'settings', change: { locked: true } });
    assert.deepEqual(build.moderate(act.unmuteSelf('microphone')), { type: 'moderate', action: 'unmute_self', group: 'microphone' });
    assert.deepEqual(build.hand(false), { type: 'hand', raised: false });
  });

  test('a removed (4020) or denied (4021) session is not reconnected', () => {
    assert.equal(closeAction({ code: CloseCode.REMOVED, reason: '', byClient: false }), 'removed');
    assert.equal(closeAction({ code: CloseCode.DENIED, reason: '', byClient: false }), 'denied');
  });
});
