// Chat rules, the room-state reducer and user-facing messages. Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChatHistory,
  MAX_CHAT_CHARS,
  RoomState,
  describeMediaError,
  filterChatText,
  humanMessage,
  initials,
  parseStreamId,
  validateChat,
} from '../public/protocol.js';
import { SLUG, participant } from './fakes.mjs';

describe('chat rules', () => {
  test('filtering matches the server: controls and bidi overrides stripped, newlines kept', () => {
    assert.equal(filterChatText('he\u0000llo\u001b[31m'), 'hello[31m');
    assert.equal(filterChatText('line1\r\nline2'), 'line1\nline2');
    assert.equal(filterChatText('a\u202Eb\u2066c'), 'abc');
    assert.equal(filterChatText('\u0085x\u009f'), 'x');
    assert.equal(filterChatText('  a\tb  '), 'a\tb');
    assert.equal(filterChatText('<img src=x onerror=alert(1)>'), '<img src=x onerror=alert(1)>');
  });

  test('empty and whitespace-only messages are refused', () => {
    assert.deepEqual(validateChat(''), { ok: false, code: 'chat_empty', chars: 0 });
    assert.equal(validateChat('  \n\t ').ok, false);
    assert.equal(validateChat('\u0007\u0000').ok, false);
  });

  test('the limit counts code points, not UTF-16 units or bytes', () => {
    const ok = validateChat('ж'.repeat(MAX_CHAT_CHARS));
    assert.equal(ok.ok, true);
    const emoji = validateChat('😀'.repeat(MAX_CHAT_CHARS));
    assert.equal(emoji.ok, true, 'astral characters count once');
    const long = validateChat('ж'.repeat(MAX_CHAT_CHARS + 1));
    assert.deepEqual(long, { ok: false, code: 'chat_too_long', chars: MAX_CHAT_CHARS + 1 });
  });

  test('history merges pages and live messages in id order without duplicates', () => {
    const h = new ChatHistory();
    const m = (/** @type {number} */ id) => ({ id, room_id: 1, participant_id: 'p', display_name: 'A', text: `m${id}`, sent_at_ms: id });
    assert.deepEqual(h.add([m(10), m(11), m(12)]).map((a) => [a.message.id, a.index]), [[10, 0], [11, 1], [12, 2]]);
    assert.deepEqual(h.add([m(13)]).map((a) => [a.message.id, a.index]), [[13, 3]]);
    assert.deepEqual(h.add([m(13), m(12)]), [], 'duplicates skipped');
    // An older page arrives after live messages.
    assert.deepEqual(h.add([m(5), m(7)]).map((a) => [a.message.id, a.index]), [[5, 0], [7, 1]]);
    // Out of order input and a gap filler.
    assert.deepEqual(h.add([m(9), m(6)]).map((a) => [a.message.id, a.index]), [[6, 1], [9, 3]]);
    assert.deepEqual(h.ids, [5, 6, 7, 9, 10, 11, 12, 13]);
    assert.equal(h.oldestId, 5);
    assert.equal(h.size, 8);
    assert.equal(h.has(9), true);
    assert.equal(new ChatHistory().oldestId, null);
  });
});

// ---------------------------------------------------------------------------
// RoomState
// ---------------------------------------------------------------------------

describe('RoomState', () => {
  const joined = {
    type: 'joined',
    participant_id: 'p2',
    room: { id: 1, slug: SLUG, name: 'R' },
    participants: [participant('p2', 'Bob', { joined_at_ms: 2000 }), participant('p1', 'Ann', { joined_at_ms: 1000 })],
    ice_servers: [],
  };
  /** @type {import('../public/lib/types.js').ServerMessage} */
  const joinedMsg = /** @type {any} */ (joined);

  test('joined replaces the whole state', () => {
    const s = new RoomState().apply(joinedMsg);
    assert.equal(s.participantId, 'p2');
    assert.equal(s.room?.name, 'R');
    assert.equal(s.self?.display_name, 'Bob');
    assert.deepEqual(s.list().map((p) => p.display_name), ['Ann', 'Bob'], 'join order');
  });

  test('deltas add, replace and remove participants without mutating the old state', () => {
    const s0 = new RoomState().apply(joinedMsg);
    const s1 = s0.apply({ type: 'participant_joined', participant: participant('p3', 'Cy', { joined_at_ms: 3000 }) });
    assert.equal(s0.participants.size, 2, 'old state unchanged');
    assert.equal(s1.participants.size, 3);
    const updated = participant('p3', 'Cy', {
      joined_at_ms: 3000,
      status: 'reconnecting',
      media: { mic_muted: true, camera_muted: true, screen_sharing: false },
    });
    const s2 = s1.apply({ type: 'participant_updated', participant: updated });
    assert.equal(s1.get('p3')?.status, 'connected', 'old state unchanged');
    assert.deepEqual(s2.get('p3'), updated, 'updated replaces rather than patches');
    const s3 = s2.apply({ type: 'participant_left', participant_id: 'p1', reason: 'left' });
    assert.deepEqual(s3.list().map((p) => p.id), ['p2', 'p3']);
    assert.equal(s2.get('p1')?.display_name, 'Ann');
  });

  test('unrelated messages and unknown leavers return the same state', () => {
    const s = new RoomState().apply(joinedMsg);
    assert.equal(s.apply({ type: 'pong', seq: 1, server_time_ms: 1 }), s);
    assert.equal(s.apply({ type: 'participant_left', participant_id: 'nobody', reason: 'left' }), s);
    assert.equal(s.apply({ type: 'chat', message: /** @type {any} */ ({}) }), s);
  });

  test('an update for an unknown participant adds them', () => {
    const s = new RoomState().apply(joinedMsg).apply({ type: 'participant_updated', participant: participant('p9', 'Zed') });
    assert.equal(s.get('p9')?.display_name, 'Zed');
  });

  test('stream ids map to owners; screen shares are marked', () => {
    const s = new RoomState().apply(joinedMsg);
    assert.deepEqual(parseStreamId('p1'), { participantId: 'p1', screen: false });
    assert.deepEqual(parseStreamId('p1-screen'), { participantId: 'p1', screen: true });
    const o = s.streamOwner('p1-screen');
    assert.equal(o.participant?.display_name, 'Ann');
    assert.equal(o.screen, true);
    assert.equal(s.streamOwner('pX').participant, undefined);
  });
});

describe('user-facing messages', () => {
  test('getUserMedia failures give plain words', () => {
    assert.equal(
      describeMediaError('video', { name: 'NotAllowedError' }),
      "Camera blocked: allow it in your browser's site settings, or join without it",
    );
    assert.equal(describeMediaError('audio', { name: 'NotFoundError' }), 'No microphone found');
    assert.equal(describeMediaError('video', { name: 'OverconstrainedError' }), 'No camera found');
    assert.match(describeMediaError('audio', { name: 'NotReadableError' }), /in use/);
    assert.match(describeMediaError('audio', null), /microphone/);
  });

  test('every error code has a message and none leaks a stack', () => {
    for (const code of [
      'bad_request', 'room_not_found', 'token_invalid', 'token_expired', 'chat_empty', 'chat_too_long',
      'rate_limited', 'too_large', 'invalid_state', 'unavailable', 'internal', 'network', 'http_500',
    ]) {
      const m = humanMessage(code, undefined);
      assert.ok(m.length > 0, code);
      assert.doesNotMatch(m, /at .*:\d+/);
    }
    assert.equal(humanMessage('room_not_found', 'x'), 'This meeting link is not valid');
    assert.equal(humanMessage('something_new', 'Server says so'), 'Server says so');
  });

  test('initials for avatars', () => {
    assert.equal(initials('Ann Lee'), 'AL');
    assert.equal(initials('  bob  '), 'B');
    assert.equal(initials('Мария Иванова Петровна'), 'МП');
    assert.equal(initials(''), '?');
    assert.equal(initials('😀 x'), '😀X');
  });
});
