// The signalling WebSocket wrapper (lib/signalling.js). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiError,
  CloseCode,
  Signalling,
} from '../public/protocol.js';
import { FakeWebSocket, fakeTimers } from './fakes.mjs';

describe('Signalling', () => {
  function open(options = {}) {
    FakeWebSocket.instances = [];
    const t = fakeTimers();
    const sig = new Signalling('ws://host/media/ws', {
      WebSocket: FakeWebSocket,
      now: t.now,
      timers: t,
      ...options,
    });
    const connected = sig.connect();
    const ws = FakeWebSocket.instances[0];
    return { sig, ws, t, connected };
  }

  test('connect resolves on open and messages are sent as exact JSON', async () => {
    const { sig, ws, connected } = open();
    assert.equal(sig.isOpen, false);
    assert.equal(sig.send({ type: 'leave' }), false, 'cannot send before open');
    ws.serverOpen();
    await connected;
    assert.equal(sig.isOpen, true);
    sig.send({
      type: 'join',
      token: 'v1.a.b',
      media: { mic_muted: false, camera_muted: false, screen_sharing: false },
    });
    sig.send({ type: 'media', mic_muted: true, camera_muted: false, screen_sharing: false });
    sig.send({ type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
    sig.send({ type: 'candidate', candidate: null });
    sig.send({ type: 'leave' });
    assert.deepEqual(ws.sent, [
      '{"type":"join","token":"v1.a.b","media":{"mic_muted":false,"camera_muted":false,"screen_sharing":false}}',
      '{"type":"media","mic_muted":true,"camera_muted":false,"screen_sharing":false}',
      '{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}}',
      '{"type":"candidate","candidate":null}',
      '{"type":"leave"}',
    ]);
  });

  test('connect rejects if the socket closes before opening, with no close event', async () => {
    const { sig, ws, connected } = open();
    let closes = 0;
    sig.on('close', () => closes++);
    ws.serverClose(1006);
    await assert.rejects(connected, (e) => e instanceof ApiError && e.code === 'network');
    assert.equal(closes, 0);
  });

  test('server messages are dispatched by type and to "message"', async () => {
    const { sig, ws, connected } = open();
    ws.serverOpen();
    await connected;
    const seen = /** @type {any[]} */ ([]);
    sig.on('message', (m) => seen.push(`message:${m.type}`));
    sig.on('chat', (m) => seen.push(`chat:${m.message.text}`));
    const off = sig.on('pong', () => seen.push('pong'));
    ws.serverSend({ type: 'chat', message: { id: 1, room_id: 1, participant_id: 'p1', display_name: 'Ann', text: 'hi', sent_at_ms: 5 } });
    ws.serverSend({ type: 'pong', seq: 1, server_time_ms: 5 });
    off();
    ws.serverSend({ type: 'pong', seq: 2, server_time_ms: 6 });
    assert.deepEqual(seen, ['message:chat', 'chat:hi', 'message:pong', 'pong', 'message:pong']);
  });

  test('malformed frames raise protocol_error and do not break the connection', async () => {
    const { sig, ws, connected } = open();
    ws.serverOpen();
    await connected;
    const errors = [];
    const msgs = /** @type {any[]} */ ([]);
    sig.on('protocol_error', (e) => errors.push(e));
    sig.on('message', (m) => msgs.push(m.type));
    ws.serverSend('{not json');
    ws.serverSend('[1,2]');
    ws.serverSend('null');
    ws.serverSend({ type: 'pong', seq: 1, server_time_ms: 1 });
    assert.equal(errors.length, 3);
    assert.deepEqual(msgs, ['pong']);
  });

  test('a throwing handler does not stop other handlers', async () => {
    const { sig, ws, connected } = open();
    ws.serverOpen();
    await connected;
    let reached = false;
    const orig = console.error;
    console.error = () => {};
    try {
      sig.on('pong', () => {
        throw new Error('boom');
      });
      sig.on('pong', () => {
        reached = true;
      });
      ws.serverSend({ type: 'pong', seq: 1, server_time_ms: 1 });
    } finally {
      console.error = orig;
    }
    assert.equal(reached, true);
  });

  test('pings every 5 s with increasing seq', async () => {
    const { sig, ws, t, connected } = open();
    ws.serverOpen();
    await connected;
    t.advance(5000);
    ws.serverSend({ type: 'pong', seq: 1, server_time_ms: 1 });
    t.advance(5000);
    assert.deepEqual(ws.sentJson, [
      { type: 'ping', seq: 1 },
      { type: 'ping', seq: 2 },
    ]);
    assert.equal(sig.isOpen, true);
  });

  test('a node that stays silent for three intervals is declared dead', async () => {
    const { sig, ws, t, connected } = open();
    ws.serverOpen();
    await connected;
    const closes = /** @type {any[]} */ ([]);
    sig.on('close', (c) => closes.push(c));
    t.advance(15000);
    assert.equal(closes.length, 0, 'exactly three intervals is still alive');
    t.advance(5000);
    assert.deepEqual(closes, [{ code: CloseCode.ABNORMAL, reason: 'keepalive timeout', byClient: false }]);
    assert.deepEqual(ws.closeCalls, [[CloseCode.RECONNECTING, 'keepalive timeout']], 'not 1000, which means "left"');
    // The real close event that follows is not reported twice.
    ws.serverClose(1006);
    assert.equal(closes.length, 1);
    assert.equal(t.pending, 0, 'ping timer stopped');
  });

  test('a probe that gets no answer declares the socket dead at once, without blaming the node', async () => {
    const { sig, ws, t, connected } = open();
    ws.serverOpen();
    await connected;
    const closes = /** @type {any[]} */ ([]);
    sig.on('close', (c) => closes.push(c));
    t.advance(1000);
    sig.probe(1500);
    assert.deepEqual(ws.sentJson.at(-1), { type: 'ping', seq: 1 });
    t.advance(1499);
    assert.equal(closes.length, 0);
    t.advance(1);
    assert.deepEqual(closes, [{ code: CloseCode.RECONNECTING, reason: 'no answer after a network change', byClient: false }]);
    assert.deepEqual(ws.closeCalls, [[CloseCode.RECONNECTING, 'network changed']]);
  });

  test('a probe that is answered changes nothing', async () => {
    const { sig, ws, t, connected } = open();
    ws.serverOpen();
    await connected;
    const closes = /** @type {any[]} */ ([]);
    sig.on('close', (c) => closes.push(c));
    t.advance(1000);
    sig.probe(1500);
    t.advance(200);
    ws.serverSend({ type: 'pong', seq: 1, server_time_ms: 1 });
    t.advance(2000);
    assert.equal(closes.length, 0);
    assert.equal(sig.isOpen, true);
  });

  test('server close reports the code; client close is marked byClient', async () => {
    let { sig, ws, connected } = open();
    ws.serverOpen();
    await connected;
    let closes = /** @type {any[]} */ ([]);
    sig.on('close', (c) => closes.push(c));
    ws.serverClose(4004, 'room gone');
    assert.deepEqual(closes, [{ code: 4004, reason: 'room gone', byClient: false }]);
    assert.equal(sig.isOpen, false);

    ({ sig, ws, connected } = open());
    ws.serverOpen();
    await connected;
    closes = [];
    sig.on('close', (c) => closes.push(c));
    sig.close();
    ws.serverClose(1000);
    assert.deepEqual(closes, [{ code: 1000, reason: '', byClient: true }]);
    assert.deepEqual(ws.closeCalls, [[1000, '']]);
  });
});
