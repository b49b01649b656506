// The reconnection policy (lib/reconnect.js): close codes, backoff, node loss, moves. Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CloseCode,
  MOVE_OLD_SOCKET_GRACE_MS,
  QUICK_RETRY_MIN_GAP_MS,
  RoomState,
  Signalling,
  backoffDelay,
  closeAction,
  isNodeLoss,
  parseMove,
  reconnectDelay,
  rejoinRefused,
  resumeFor,
  unreachableNodeAfter,
} from '../public/protocol.js';
import { SLUG, FakeWebSocket, fakeTimers, participant } from './fakes.mjs';

describe('closeAction and backoff', () => {
  test('close codes map to reconnection decisions', () => {
    assert.equal(closeAction({ code: 1000, reason: '', byClient: true }), 'none');
    assert.equal(closeAction({ code: 4004, reason: '', byClient: false }), 'room_gone');
    assert.equal(closeAction({ code: 4001, reason: '', byClient: false }), 'new_token');
    assert.equal(closeAction({ code: 4002, reason: '', byClient: false }), 'new_token');
    assert.equal(closeAction({ code: 1006, reason: '', byClient: false }), 'retry');
    assert.equal(closeAction({ code: 4503, reason: '', byClient: false }), 'retry');
    assert.equal(closeAction({ code: 4010, reason: 'continued on another media node', byClient: false }), 'moved');
  });

  test('a refused resume falls back to a fresh join; other 4009s retry', () => {
    const closed = { code: 4009, reason: 'no seat', byClient: false };
    assert.equal(closeAction(closed, { resuming: true, joined: false }), 'fresh_join');
    assert.equal(closeAction(closed, { resuming: false, joined: false }), 'retry');
    assert.equal(closeAction(closed, { resuming: true, joined: true }), 'retry');
    assert.equal(closeAction({ code: 4001, reason: '', byClient: false }, { resuming: true }), 'new_token');
  });

  test('backoff doubles from 1 s up to 10 s', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 20].map(backoffDelay), [1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  });

  test('the first reconnect after a drop goes at once, then the backoff', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((a) => reconnectDelay(a)), [0, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    assert.equal(reconnectDelay(0, QUICK_RETRY_MIN_GAP_MS), 0);
  });

  test('a session that keeps dropping right after joining does not reconnect in a tight loop', () => {
    assert.equal(reconnectDelay(0, 500), 1000);
    assert.equal(reconnectDelay(0, QUICK_RETRY_MIN_GAP_MS - 1), 1000);
    assert.equal(reconnectDelay(1, 500), 1000, 'later attempts follow the backoff whatever the gap');
  });
});

describe('node loss and moving between media nodes', () => {
  const closed = (/** @type {number} */ code, byClient = false) => ({ code, reason: '', byClient });

  test('a dead or failing node is node loss; a node that answered is not', () => {
    for (const code of [1001, 1006, 1011, 1012, 1013, 1015, 4500, 4503]) {
      assert.equal(isNodeLoss(closed(code)), true, `code ${code}`);
    }
    for (const code of [1000, 1005, 4000, 4001, 4002, 4004, 4009, 4010, 4013, 4029, 4100]) {
      assert.equal(isNodeLoss(closed(code)), false, `code ${code}`);
    }
    assert.equal(isNodeLoss(closed(1006, true)), false, 'closed by us (Leave, ICE failure)');
    assert.equal(
      isNodeLoss({ code: CloseCode.ABNORMAL, reason: 'keepalive timeout', byClient: false }),
      true,
      'a keepalive timeout is reported as 1006 and counts',
    );
  });

  test('the unreachable node is the one whose socket never opened or died', () => {
    assert.equal(unreachableNodeAfter(3, null), 3, 'never opened');
    assert.equal(unreachableNodeAfter(3, closed(1006)), 3, 'SIGKILLed node');
    assert.equal(unreachableNodeAfter(3, closed(4503)), 3);
    assert.equal(unreachableNodeAfter(3, closed(4001)), null, 'token refused: the node answered');
    assert.equal(unreachableNodeAfter(3, closed(4009)), null, 'resume refused');
    assert.equal(unreachableNodeAfter(3, closed(4004)), null, 'room gone');
    assert.equal(unreachableNodeAfter(3, closed(1000, true)), null, 'we left');
    assert.equal(unreachableNodeAfter(0, null), 0, 'node id 0 is an id');
    assert.equal(unreachableNodeAfter(null, null), null, 'unknown node: nothing to report');
    assert.equal(unreachableNodeAfter(undefined, closed(1006)), null);
  });

  test('resume only when the new token is for the node that holds the seat', () => {
    const resume = { participant_id: 'p1', resume_token: 'r1' };
    assert.deepEqual(resumeFor({ resume, nodeId: 2 }, 2), resume);
    assert.equal(resumeFor({ resume, nodeId: 2 }, 5), null, 'other node: plain join, rejoin token keeps the id');
    assert.equal(resumeFor({ resume, nodeId: 0 }, 1), null);
    assert.equal(resumeFor(null, 2), null, 'no seat');
    assert.deepEqual(resumeFor({ resume, nodeId: null }, 2), resume, 'older control plane: resume as before');
    assert.deepEqual(resumeFor({ resume, nodeId: 2 }, undefined), resume);
  });

  test('rejoin refusals are the token and request errors, not outages', () => {
    for (const code of ['token_invalid', 'token_expired', 'unauthorized', 'bad_request']) assert.equal(rejoinRefused(code), true, code);
    for (const code of ['network', 'unavailable', 'internal', 'room_not_found', 'http_502']) {
      assert.equal(rejoinRefused(code), false, code);
    }
  });

  test('move messages are read with their reason, other types are not moves', () => {
    assert.deepEqual(parseMove({ type: 'move', reason: 'node draining' }), { type: 'move', reason: 'node draining' });
    assert.deepEqual(parseMove({ type: 'move' }), { type: 'move', reason: '' }, 'reason defaults to empty');
    assert.deepEqual(parseMove({ type: 'move', reason: 7, extra: true }), { type: 'move', reason: '' });
    assert.equal(parseMove({ type: 'pong', seq: 1, server_time_ms: 1 }), null);
    assert.equal(parseMove(null), null);
    assert.equal(parseMove('move'), null);
    assert.equal(MOVE_OLD_SOCKET_GRACE_MS, 10000);
  });

  test('a move from the node is dispatched as a "move" event and leaves the room state alone', async () => {
    FakeWebSocket.instances = [];
    const t = fakeTimers();
    const sig = new Signalling('ws://host/media/ws', { WebSocket: FakeWebSocket, now: t.now, timers: t });
    const connected = sig.connect();
    const ws = FakeWebSocket.instances[0];
    ws.serverOpen();
    await connected;
    const moves = /** @type {any[]} */ ([]);
    sig.on('move', (m) => moves.push(parseMove(m)));
    ws.serverSend({ type: 'move', reason: 'drained by operator' });
    assert.deepEqual(moves, [{ type: 'move', reason: 'drained by operator' }]);
    assert.deepEqual(ws.sent, [], 'the library answers nothing by itself: no leave');
    const state = new RoomState('p1', { id: 1, slug: SLUG, name: 'x' }, new Map([['p1', participant('p1', 'Ann')]]));
    assert.equal(state.apply({ type: 'move', reason: 'x' }), state);
  });
});
