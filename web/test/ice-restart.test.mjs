// When the media connection restarts ICE (lib/ice-restart.js). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ICE_DISCONNECTED_GRACE_MS,
  ICE_RESTART_TIMEOUT_MS,
  INBOUND_RESTART_MS,
  INBOUND_STALL_MS,
  IceRestart,
  MAX_ICE_RESTARTS,
  SIGNAL_PROBE_MS,
} from '../public/lib/ice-restart.js';

/** @param {IceRestart} r @param {string} state @param {number} now */
const ice = (r, state, now) => r.handle({ type: 'ice_state', state }, now);
const types = (/** @type {{type: string}[]} */ actions) => actions.map((a) => a.type);

/** A connection that came up at t=0. */
function up() {
  const r = new IceRestart();
  ice(r, 'checking', 0);
  ice(r, 'connected', 0);
  return r;
}

describe('ICE restart decision', () => {
  test('a short disconnection that recovers alone restarts nothing', () => {
    const r = up();
    assert.deepEqual(ice(r, 'disconnected', 1000), [
      { type: 'set_timer', ms: ICE_DISCONNECTED_GRACE_MS },
      { type: 'probe_signalling', ms: SIGNAL_PROBE_MS },
    ]);
    assert.deepEqual(ice(r, 'connected', 1800), [{ type: 'cancel_timer' }]);
    assert.equal(r.restarts, 0);
    assert.equal(r.lastRecoveryMs, 800);
  });

  test('a disconnection that outlasts the grace restarts ICE, once, then waits for it', () => {
    const r = up();
    ice(r, 'disconnected', 1000);
    assert.deepEqual(r.handle({ type: 'timer' }, 1000 + ICE_DISCONNECTED_GRACE_MS), [
      { type: 'restart' },
      { type: 'set_timer', ms: ICE_RESTART_TIMEOUT_MS },
      { type: 'probe_signalling', ms: SIGNAL_PROBE_MS },
    ]);
    // The old generation fails while the restart checks: no second restart.
    assert.deepEqual(ice(r, 'failed', 3000), []);
    assert.deepEqual(ice(r, 'checking', 3100), []);
    assert.deepEqual(ice(r, 'connected', 3500), [{ type: 'cancel_timer' }]);
    assert.equal(r.restarts, 1);
    assert.equal(r.lastRecoveryMs, 2500);
  });

  test('failed restarts at once', () => {
    const r = up();
    assert.deepEqual(types(ice(r, 'failed', 500)), ['cancel_timer', 'restart', 'set_timer', 'probe_signalling']);
  });

  test('a connection that never came up is not restarted: the call decides', () => {
    const r = new IceRestart();
    ice(r, 'checking', 0);
    assert.deepEqual(ice(r, 'failed', 100), []);
    assert.deepEqual(r.handle({ type: 'network_change' }, 200), []);
  });

  test('restarts that never reconnect give up after the limit, and then stay quiet', () => {
    const r = up();
    ice(r, 'failed', 0);
    let t = 0;
    for (let i = 1; i < MAX_ICE_RESTARTS; i++) {
      t += ICE_RESTART_TIMEOUT_MS;
      assert.deepEqual(types(r.handle({ type: 'timer' }, t)), ['restart', 'set_timer', 'probe_signalling']);
    }
    t += ICE_RESTART_TIMEOUT_MS;
    assert.deepEqual(r.handle({ type: 'timer' }, t), [{ type: 'give_up' }]);
    assert.equal(r.restarts, MAX_ICE_RESTARTS);
    assert.deepEqual(ice(r, 'failed', t + 1), []);
    assert.deepEqual(r.handle({ type: 'timer' }, t + 2), []);
  });

  test('reconnecting resets the count of restarts in a row', () => {
    const r = up();
    for (let round = 0; round < MAX_ICE_RESTARTS + 1; round++) {
      assert.deepEqual(types(ice(r, 'failed', round * 100)), ['cancel_timer', 'restart', 'set_timer', 'probe_signalling']);
      ice(r, 'connected', round * 100 + 50);
    }
    assert.equal(r.restarts, MAX_ICE_RESTARTS + 1);
  });

  test('a network change restarts a connection that is up without waiting for ICE', () => {
    const r = up();
    assert.deepEqual(types(r.handle({ type: 'network_change' }, 10)), ['restart', 'set_timer', 'probe_signalling']);
    // A second change while the restart runs waits for it.
    assert.deepEqual(r.handle({ type: 'network_change' }, 20), []);
  });

  test('a host address that appears while connected is a new network: restart at once', () => {
    const r = new IceRestart();
    const cand = (/** @type {string} */ t, /** @type {string} */ a) => r.handle({ type: 'local_candidate', candidateType: t, address: a }, 0);
    assert.deepEqual(cand('host', '10.0.0.2'), [], 'gathered before connecting');
    ice(r, 'connected', 0);
    assert.deepEqual(cand('relay', '192.0.2.9'), [], 'a late relayed candidate is no new network');
    assert.deepEqual(cand('host', '10.0.0.2'), [], 'an address seen before');
    assert.deepEqual(types(cand('host', '10.0.0.3')), ['restart', 'set_timer', 'probe_signalling']);
  });

  test('a restart the shell made is waited for: the addresses it gathers restart nothing again', () => {
    const r = new IceRestart();
    const cand = (/** @type {string} */ a, /** @type {number} */ t) => r.handle({ type: 'local_candidate', candidateType: 'host', address: a }, t);
    cand('10.0.0.2', 0);
    ice(r, 'connected', 0);
    assert.deepEqual(r.handle({ type: 'restarting' }, 100), [{ type: 'set_timer', ms: ICE_RESTART_TIMEOUT_MS }]);
    assert.deepEqual(cand('10.0.1.2', 150), [], 'the new network the resumed seat restarts for');
    assert.deepEqual(ice(r, 'connected', 400), [{ type: 'cancel_timer' }]);
    assert.equal(r.restarts, 1);
    assert.equal(r.lastRecoveryMs, 300);
  });

  test('a restart while ICE never left connected is over once media flows, and the next stall probes again', () => {
    const r = up();
    const inbound = (/** @type {number} */ packets, /** @type {number} */ t) => r.handle({ type: 'inbound', packets }, t);
    inbound(10, 0);
    inbound(20, 250);
    r.handle({ type: 'restarting' }, 1000);
    assert.deepEqual(inbound(21, 1250), []);
    assert.deepEqual(inbound(30, 1500), [{ type: 'cancel_timer' }], 'media again: the restart worked');
    assert.equal(r.phase, 'up');
    inbound(40, 1750);
    assert.deepEqual(inbound(40, 1750 + INBOUND_STALL_MS), [{ type: 'probe_signalling', ms: SIGNAL_PROBE_MS }]);
  });

  test('a restart the shell made that never reconnects is followed by one of ours', () => {
    const r = up();
    r.handle({ type: 'restarting' }, 0);
    assert.deepEqual(types(r.handle({ type: 'timer' }, ICE_RESTART_TIMEOUT_MS)), ['restart', 'set_timer', 'probe_signalling']);
  });

  test('media that was flowing and stops probes the socket at once, and restarts ICE if it stays stalled', () => {
    const r = up();
    const inbound = (/** @type {number} */ packets, /** @type {number} */ t) => r.handle({ type: 'inbound', packets }, t);
    assert.deepEqual(inbound(10, 0), []);
    assert.deepEqual(inbound(40, 500), []);
    assert.deepEqual(inbound(70, 1000), []);
    assert.deepEqual(inbound(70, 1500), [], 'half a second without packets is jitter');
    assert.deepEqual(inbound(70, 1000 + INBOUND_STALL_MS), [{ type: 'probe_signalling', ms: SIGNAL_PROBE_MS }]);
    assert.deepEqual(inbound(70, 2500), [], 'one probe per stall');
    assert.equal(r.restarts, 0);
    // The socket answered (or the call would have resumed), media did not come back.
    assert.deepEqual(types(inbound(70, 1000 + INBOUND_RESTART_MS)), ['cancel_timer', 'restart', 'set_timer', 'probe_signalling']);
    assert.deepEqual(inbound(70, 2000 + INBOUND_RESTART_MS), [], 'one restart per stall');
    ice(r, 'connected', 2100 + INBOUND_RESTART_MS);
    assert.equal(r.lastRecoveryMs, INBOUND_RESTART_MS + 1100, 'counted from the last packet');
  });

  test('media that comes back after the probe restarts nothing', () => {
    const r = up();
    const inbound = (/** @type {number} */ packets, /** @type {number} */ t) => r.handle({ type: 'inbound', packets }, t);
    inbound(10, 0);
    inbound(40, 500);
    inbound(70, 1000);
    assert.deepEqual(types(inbound(70, 1000 + INBOUND_STALL_MS)), ['probe_signalling']);
    inbound(80, 2000);
    inbound(90, 2500);
    assert.deepEqual(inbound(90, 3000), []);
    assert.equal(r.restarts, 0);
    assert.deepEqual(types(inbound(90, 2500 + INBOUND_STALL_MS)), ['probe_signalling'], 'a new stall probes again');
  });

  test('a connection that never received media never stalls', () => {
    const r = up();
    for (let t = 0; t < 5000; t += 500) assert.deepEqual(r.handle({ type: 'inbound', packets: 0 }, t), []);
  });

  test('a closed connection does nothing more', () => {
    const r = up();
    ice(r, 'disconnected', 10);
    assert.deepEqual(ice(r, 'closed', 20), [{ type: 'cancel_timer' }]);
    assert.deepEqual(r.handle({ type: 'timer' }, 5000), []);
  });
});
