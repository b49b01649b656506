// The peer-to-peer core's decisions, driven by events and a fake clock.
// Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { P2pCore, BREAK_TIMEOUT_MS, DIRECT_CONNECT_TIMEOUT_MS, directForbidden } from '../public/lib/p2p-core.js';

/** @typedef {import('../public/lib/p2p-core.js').P2pAction} P2pAction */

const P2P = /** @type {const} */ ({ type: 'media_path', path: 'p2p', pairing: 3, peer: 'pB', offerer: true });
const SFU = /** @type {const} */ ({ type: 'media_path', path: 'sfu', pairing: 4, offerer: false });

/**
 * @param {P2pAction[]} actions
 * @param {string} type
 */
const ofType = (actions, type) => actions.filter((a) => a.type === type);

/** A core that is in `direct` state on pairing 3, at t = 1000. */
function direct() {
  const core = new P2pCore();
  core.handle(P2P, 0);
  core.handle({ type: 'direct_media', pairing: 3 }, 1000);
  assert.equal(core.state, 'direct');
  return core;
}

describe('peer-to-peer core', () => {
  test('media_path p2p opens the direct connection and keeps sending to the SFU until direct media arrives', () => {
    const core = new P2pCore();
    const out = core.handle(P2P, 0);
    assert.deepEqual(ofType(out, 'open_direct'), [{ type: 'open_direct', pairing: 3, peer: 'pB', offerer: true }]);
    assert.deepEqual(ofType(out, 'sfu_send'), [], 'no change: still sending to the SFU');
    assert.deepEqual(ofType(out, 'show_direct'), []);
    assert.equal(core.state, 'connecting');
  });

  test('direct media shows the direct tile, then stops sending to the SFU, and records the switch time', () => {
    const core = new P2pCore();
    core.handle(P2P, 100);
    const out = core.handle({ type: 'direct_media', pairing: 3 }, 700);
    assert.deepEqual(
      out.filter((a) => a.type !== 'cancel_timer'),
      [
        { type: 'show_direct', peer: 'pB', on: true },
        { type: 'sfu_send', on: false },
        { type: 'report', pairing: 3, state: 'connected' },
      ],
    );
    assert.equal(core.state, 'direct');
    assert.equal(core.lastSwitchMs, 600);
  });

  test('connected is reported once per pairing, and not once the node said sfu', () => {
    const core = direct();
    assert.deepEqual(ofType(core.handle({ type: 'direct_media', pairing: 3 }, 1100), 'report'), [], 'a repeat');
    const late = new P2pCore();
    late.handle(P2P, 0);
    late.handle(SFU, 100);
    assert.deepEqual(ofType(late.handle({ type: 'direct_media', pairing: 3 }, 200), 'report'), []);
  });

  test('a direct connection that fails again after its ICE restart reports failed once', () => {
    const core = new P2pCore();
    core.handle(P2P, 0);
    assert.deepEqual(ofType(core.handle({ type: 'direct_failed', pairing: 3 }, 100), 'report'), [], 'the restart first');
    assert.deepEqual(ofType(core.handle({ type: 'direct_failed', pairing: 3 }, 200), 'report'), [
      { type: 'report', pairing: 3, state: 'failed' },
    ]);
    assert.deepEqual(ofType(core.handle({ type: 'direct_failed', pairing: 3 }, 300), 'report'), [], 'once');
    assert.equal(core.sfuSending, true);
  });

  test('a direct connection with no local candidate at all reports failed without an ICE restart', () => {
    const core = new P2pCore();
    core.handle(P2P, 0);
    const out = core.handle({ type: 'direct_failed', pairing: 3, hopeless: true }, 100);
    assert.deepEqual(ofType(out, 'restart_ice'), []);
    assert.deepEqual(ofType(out, 'report'), [{ type: 'report', pairing: 3, state: 'failed' }]);
  });

  test('an ICE restart that brings nothing either gives up and reports failed', () => {
    const core = new P2pCore();
    core.handle({ ...P2P, offerer: false }, 0);
    const first = core.handle({ type: 'timer', key: 'p2p_connect' }, DIRECT_CONNECT_TIMEOUT_MS);
    assert.deepEqual(ofType(first, 'report'), []);
    assert.deepEqual(ofType(first, 'set_timer'), [{ type: 'set_timer', key: 'p2p_connect', ms: DIRECT_CONNECT_TIMEOUT_MS }], "the restart's own chance");
    const second = core.handle({ type: 'timer', key: 'p2p_connect' }, 2 * DIRECT_CONNECT_TIMEOUT_MS);
    assert.deepEqual(ofType(second, 'report'), [{ type: 'report', pairing: 3, state: 'failed' }]);
  });

  test('media of an older pairing is ignored', () => {
    const core = new P2pCore();
    core.handle(P2P, 0);
    assert.deepEqual(core.handle({ type: 'direct_media', pairing: 2 }, 10), []);
    assert.equal(core.state, 'connecting');
  });

  test('sfu resumes SFU sending at once but keeps the direct tile until the SFU decodes the peer (make before break)', () => {
    const core = direct();
    const out = core.handle(SFU, 2000);
    assert.deepEqual(ofType(out, 'sfu_send'), [{ type: 'sfu_send', on: true }]);
    assert.deepEqual(ofType(out, 'watch_sfu'), [{ type: 'watch_sfu', peer: 'pB' }]);
    assert.deepEqual(ofType(out, 'close_direct'), [], 'the direct connection stays until the SFU decodes');
    assert.deepEqual(ofType(out, 'show_direct'), []);
    assert.equal(core.state, 'switching');

    assert.deepEqual(core.handle({ type: 'sfu_decodes', peer: 'pOther' }, 2100), [], 'another peer decoding does not count');
    const done = core.handle({ type: 'sfu_decodes', peer: 'pB' }, 2400);
    assert.deepEqual(
      done.filter((a) => a.type !== 'cancel_timer'),
      [
        { type: 'show_direct', peer: 'pB', on: false },
        { type: 'close_direct', pairing: 3 },
      ],
    );
    assert.equal(core.state, 'sfu');
    assert.equal(core.lastSwitchMs, 400);
  });

  test('if the SFU video never decodes, the direct connection is closed after the break timeout', () => {
    const core = direct();
    const out = core.handle(SFU, 2000);
    assert.deepEqual(ofType(out, 'set_timer'), [{ type: 'set_timer', key: 'p2p_break', ms: BREAK_TIMEOUT_MS }]);
    const fired = core.handle({ type: 'timer', key: 'p2p_break' }, 2000 + BREAK_TIMEOUT_MS);
    assert.deepEqual(ofType(fired, 'close_direct'), [{ type: 'close_direct', pairing: 3 }]);
    assert.equal(core.state, 'sfu');
    assert.deepEqual(core.handle({ type: 'timer', key: 'p2p_break' }, 9999), [], 'a stale timer does nothing');
  });

  test('sfu before the direct path brought media closes it at once', () => {
    const core = new P2pCore();
    core.handle(P2P, 0);
    const out = core.handle(SFU, 500);
    assert.deepEqual(ofType(out, 'close_direct'), [{ type: 'close_direct', pairing: 3 }]);
    assert.deepEqual(ofType(out, 'watch_sfu'), []);
    assert.deepEqual(ofType(out, 'sfu_send'), [], 'it never stopped sending to the SFU');
    assert.equal(core.state, 'sfu');
  });

  test('a new pairing gets a new direct connection and the old one is closed', () => {
    const core = direct();
    const out = core.handle({ ...P2P, pairing: 5 }, 3000);
    assert.deepEqual(
      out.filter((a) => a.type === 'close_direct' || a.type === 'open_direct' || a.type === 'sfu_send'),
      [
        { type: 'close_direct', pairing: 3 },
        { type: 'sfu_send', on: true },
        { type: 'open_direct', pairing: 5, peer: 'pB', offerer: true },
      ],
    );
    assert.equal(core.state, 'connecting');
  });

  test('a repeated media_path of the same pairing (a resume) changes nothing', () => {
    const core = direct();
    assert.deepEqual(core.handle(P2P, 5000), []);
    assert.equal(core.state, 'direct');
  });

  test('a direct connection that brings no media is ICE-restarted once by the offerer', () => {
    const core = new P2pCore();
    const out = core.handle(P2P, 0);
    assert.deepEqual(ofType(out, 'set_timer'), [{ type: 'set_timer', key: 'p2p_connect', ms: DIRECT_CONNECT_TIMEOUT_MS }]);
    assert.deepEqual(ofType(core.handle({ type: 'timer', key: 'p2p_connect' }, DIRECT_CONNECT_TIMEOUT_MS), 'restart_ice'), [
      { type: 'restart_ice', pairing: 3 },
    ]);

    const answerer = new P2pCore();
    answerer.handle({ ...P2P, offerer: false }, 0);
    assert.deepEqual(ofType(answerer.handle({ type: 'direct_failed', pairing: 3 }, 10), 'restart_ice'), [], 'only the offerer re-offers');
  });

  test('a direct path that fails twice falls back to showing and sending through the SFU', () => {
    const core = direct();
    core.handle({ type: 'direct_failed', pairing: 3 }, 2000);
    const out = core.handle({ type: 'direct_failed', pairing: 3 }, 3000);
    assert.deepEqual(
      out.filter((a) => a.type === 'show_direct' || a.type === 'sfu_send'),
      [
        { type: 'show_direct', peer: 'pB', on: false },
        { type: 'sfu_send', on: true },
      ],
    );
  });

  test('reset (a new session, a move, leave) closes the direct connection and sends to the SFU', () => {
    const core = direct();
    const out = core.handle({ type: 'reset' }, 4000);
    assert.deepEqual(
      out.filter((a) => a.type !== 'cancel_timer'),
      [
        { type: 'show_direct', peer: 'pB', on: false },
        { type: 'close_direct', pairing: 3 },
        { type: 'sfu_send', on: true },
      ],
    );
    assert.equal(core.state, 'sfu');
    assert.equal(core.pairing, null);
  });

  test('a switch the policy forces (a hold...) closes the direct path at once instead of waiting for the SFU', () => {
    const core = direct();
    core.handle(SFU, 2000);
    const out = core.handle({ type: 'forbidden' }, 2010);
    assert.deepEqual(ofType(out, 'close_direct'), [{ type: 'close_direct', pairing: 3 }]);
    assert.deepEqual(ofType(out, 'show_direct'), [{ type: 'show_direct', peer: 'pB', on: false }]);
    assert.equal(core.state, 'sfu');
    assert.deepEqual(direct().handle({ type: 'forbidden' }, 2000), [], 'while the node still says p2p, the node decides');
  });
});

describe('what rules out a direct path', () => {
  const base = { version: 1, settings: { lobby: false, locked: false, speak_mode: false, allow_self_unmute: true, p2p: true }, speakers: [], holds: {} };
  const pair = [
    { id: 'pA', role: /** @type {const} */ ('host') },
    { id: 'pB', role: /** @type {const} */ ('participant') },
  ];
  const hold = { groups: ['camera'], by: 'pA', by_name: 'Alice' };
  /** @type {[string, any, boolean][]} */
  const cases = [
    ['nothing', base, false],
    ['an older node without the setting', { ...base, settings: { ...base.settings, p2p: undefined } }, false],
    ['the setting off', { ...base, settings: { ...base.settings, p2p: false } }, true],
    ['a hold on the peer', { ...base, holds: { pB: hold } }, true],
    ['an empty hold', { ...base, holds: { pB: { ...hold, groups: [] } } }, false],
    ['speak mode, the participant not a speaker', { ...base, settings: { ...base.settings, speak_mode: true } }, true],
    ['speak mode, the participant a speaker', { ...base, settings: { ...base.settings, speak_mode: true }, speakers: ['pB'] }, false],
    ['a recording', { ...base, recording: { id: 'r', started_at_ms: 1, started_by: 'pA', started_by_name: 'Alice' } }, true],
  ];
  for (const [what, policy, forbidden] of cases) {
    test(`${what}: ${forbidden ? 'forbidden' : 'allowed'}`, () => {
      assert.equal(directForbidden(policy, pair), forbidden);
    });
  }
});
