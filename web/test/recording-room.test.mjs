// Recording from the room's side (lib/recording-room.js, and the policy's
// `recording` as the room state keeps it): who is offered "Start
// recording" / "Stop recording", the indicator's text, the announcements,
// and the messages sent. Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { recordingAnnouncement, recordingButton, recordingStatusText } from '../public/lib/recording-room.js';
import { EMPTY_POLICY, act, newerPolicy } from '../public/lib/moderation.js';
import { RoomState } from '../public/lib/room-state.js';
import { build, parseServerMessage } from '../public/lib/messages.js';

/** @typedef {import('../public/lib/types.js').PolicyView} PolicyView */

const FIXTURES = new URL('../../protocol/fixtures/signal/', import.meta.url);

/**
 * @param {string} path
 * @returns {any}
 */
const fixture = (path) => JSON.parse(readFileSync(new URL(path, FIXTURES), 'utf8'));

const ann = { id: 'r0123456789abcdef', started_at_ms: 1, started_by: 'p1', started_by_name: 'Ann' };
/** @type {PolicyView} */
const recording = { ...EMPTY_POLICY, version: 2, recording: ann };

test('only hosts and moderators are offered a recording button, the one that fits the policy', () => {
  assert.equal(recordingButton('participant', EMPTY_POLICY), null);
  assert.equal(recordingButton('guest', recording), null);
  assert.equal(recordingButton('moderator', EMPTY_POLICY), 'start');
  assert.equal(recordingButton('host', EMPTY_POLICY), 'start');
  assert.equal(recordingButton('host', recording), 'stop');
});

test('the indicator names who started the recording, and is empty when none runs', () => {
  assert.equal(recordingStatusText(ann), 'Recording · started by Ann');
  assert.equal(recordingStatusText({ ...ann, started_by_name: ' ' }), 'Recording');
  assert.equal(recordingStatusText(null), null);
  assert.equal(recordingStatusText(undefined), null);
});

test('a start and a stop are announced; joining a recorded meeting says so; nothing else is', () => {
  assert.equal(recordingAnnouncement(null, ann, false), 'Ann started recording this meeting');
  assert.equal(recordingAnnouncement(null, ann, true), 'This meeting is being recorded');
  assert.equal(recordingAnnouncement(ann, null, false), 'This meeting is no longer being recorded');
  assert.equal(recordingAnnouncement(null, null, true), null);
  assert.equal(recordingAnnouncement(ann, { ...ann }, false), null, 'a new policy version of the same recording');
  const next = { ...ann, id: 'rfedcba9876543210', started_by_name: 'Bo' };
  assert.equal(recordingAnnouncement(ann, next, false), 'Bo started recording this meeting');
  // Only the indicator says "Recording" while one runs: the stop notice must not.
  assert.doesNotMatch(/** @type {string} */ (recordingAnnouncement(ann, null, false)), /Recording/);
});

test('the server fixture of a recording policy reaches the room state with the recording', () => {
  const msg = fixture('server/policy-recording.json');
  assert.deepEqual(parseServerMessage(msg), { ok: true, msg }, 'the validator accepts it');
  const joined = { type: 'joined', participant_id: 'p-me', room: { id: 1, slug: 's', name: 'R' }, participants: [], ice_servers: [] };
  const s = new RoomState().apply(/** @type {any} */ (joined)).apply(msg);
  assert.equal(s.policy.recording?.started_by_name, 'Ann');
  assert.equal(recordingStatusText(s.policy.recording), 'Recording · started by Ann');
  // The next policy without it ends it; one from an older node has none.
  const off = s.apply({ type: 'policy', policy: { ...msg.policy, version: msg.policy.version + 1, recording: null } });
  assert.equal(off.policy.recording, null);
  assert.equal(newerPolicy(EMPTY_POLICY, { ...EMPTY_POLICY, version: 1 }).recording, null);
});

test('a recording the client cannot read counts as none rather than breaking the page', () => {
  const odd = /** @type {any} */ ({ ...EMPTY_POLICY, version: 3, recording: { id: 7 } });
  assert.equal(newerPolicy(EMPTY_POLICY, odd).recording, null);
});

test('the buttons send exactly the protocol fixtures', () => {
  assert.deepEqual(build.moderate(act.startRecording()), fixture('client/moderate-start_recording.json'));
  assert.deepEqual(build.moderate(act.stopRecording()), fixture('client/moderate-stop_recording.json'));
});
