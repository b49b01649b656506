// Tests for the DOM-free parts of the browser client. Run with
// `node --test web/test/` (node 20+, no npm packages).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiError,
  ChatHistory,
  CloseCode,
  MAX_CHAT_CHARS,
  MOVE_OLD_SOCKET_GRACE_MS,
  Negotiator,
  QUICK_RETRY_MIN_GAP_MS,
  RoomState,
  Signalling,
  backoffDelay,
  buildJoinBody,
  buildTrackMap,
  closeAction,
  createRoom,
  describeMediaError,
  fetchMessages,
  filterChatText,
  getRoom,
  humanMessage,
  initials,
  isNodeLoss,
  isRetryable,
  join,
  parseMediaSections,
  parseMove,
  parseStreamId,
  reconnectDelay,
  rejoinRefused,
  resolveWsUrl,
  resumeFor,
  slugFromLink,
  slugFromPath,
  unreachableNodeAfter,
  validateChat,
} from '../protocol.js';

const SLUG = 'AbCdEfGhIjKlMnOpQrStUv';

// ---------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------

/** A WebSocket stand-in that records what is sent and lets tests drive it. */
class FakeWebSocket {
  /** @type {FakeWebSocket[]} */
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {string[]} */
    this.sent = [];
    this.closeCalls = [];
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close(code, reason) {
    this.closeCalls.push([code, reason]);
    this.readyState = 3;
  }
  // Test drivers.
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  get sentJson() {
    return this.sent.map((s) => JSON.parse(s));
  }
}

/** Manual timers and clock. */
function fakeTimers() {
  let now = 1_000_000;
  let nextId = 1;
  /** @type {Map<number, {fn: () => void, ms: number, next: number, repeat: boolean}>} */
  const timers = new Map();
  return {
    now: () => now,
    setInterval(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: true });
      return id;
    },
    clearInterval(id) {
      timers.delete(id);
    },
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: false });
      return id;
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let due = null;
        for (const [id, t] of timers) if (t.next <= end && (!due || t.next < due[1].next)) due = [id, t];
        if (!due) break;
        const [id, t] = due;
        now = t.next;
        if (t.repeat) t.next += t.ms;
        else timers.delete(id);
        t.fn();
      }
      now = end;
    },
    get pending() {
      return timers.size;
    },
  };
}

/** A fetch stand-in: answers from a handler and records requests. */
function fakeFetch(handler) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init, body: init?.body ? JSON.parse(init.body) : undefined });
    const r = await handler(url, init);
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      json: async () => {
        if (typeof r.body === 'string') return JSON.parse(r.body);
        return r.body;
      },
    };
  };
  fn.calls = calls;
  return fn;
}

const participant = (id, name, extra = {}) => ({
  id,
  display_name: name,
  status: 'connected',
  media: { mic_muted: false, camera_muted: false, screen_sharing: false },
  tracks: [],
  joined_at_ms: 1000,
  ...extra,
});

// ---------------------------------------------------------------------------
// Signalling
// ---------------------------------------------------------------------------

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
    const seen = [];
    sig.on('message', (m) => seen.push(`message:${m.type}`));
    sig.on('chat', (m) => seen.push(`chat:${m.message.text}`));
    const off = sig.on('pong', () => seen.push('pong'));
    ws.serverSend({ type: 'chat', message: { id: 1, text: 'hi' } });
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
    const msgs = [];
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
    const closes = [];
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

  test('server close reports the code; client close is marked byClient', async () => {
    let { sig, ws, connected } = open();
    ws.serverOpen();
    await connected;
    let closes = [];
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
  const closed = (code, byClient = false) => ({ code, reason: '', byClient });

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
    for (const code of ['token_invalid', 'token_expired', 'unauthorized', 'bad_request']) {
      assert.equal(rejoinRefused(code), true, code);
    }
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
    const moves = [];
    sig.on('move', (m) => moves.push(parseMove(m)));
    ws.serverSend({ type: 'move', reason: 'drained by operator' });
    assert.deepEqual(moves, [{ type: 'move', reason: 'drained by operator' }]);
    assert.deepEqual(ws.sent, [], 'the library answers nothing by itself: no leave');
    const state = new RoomState('p1', { id: 1, slug: SLUG, name: 'x' }, new Map([['p1', participant('p1', 'Ann')]]));
    assert.equal(state.apply({ type: 'move', reason: 'x' }), state);
  });
});

// ---------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------

describe('REST helpers', () => {
  test('createRoom posts the name and returns the room', async () => {
    const room = { id: 7, slug: SLUG, name: 'Standup', link: `https://x/r/${SLUG}`, created_at_ms: 1 };
    const f = fakeFetch(() => ({ status: 201, body: room }));
    assert.deepEqual(await createRoom('Standup', { fetch: f }), room);
    assert.equal(f.calls[0].url, '/api/rooms');
    assert.equal(f.calls[0].init.method, 'POST');
    assert.equal(f.calls[0].init.headers['Content-Type'], 'application/json');
    assert.deepEqual(f.calls[0].body, { name: 'Standup' });
  });

  test('join posts display_name to the room path', async () => {
    const resp = { token: 't', ws_url: '/media/ws', participant_id: 'p1', node_id: 2, expires_at_ms: 9, room: {} };
    const f = fakeFetch(() => ({ status: 200, body: resp }));
    assert.deepEqual(await join(SLUG, 'Ann', { fetch: f, base: 'http://h' }), resp);
    assert.equal(f.calls[0].url, `http://h/api/rooms/${SLUG}/join`);
    assert.deepEqual(f.calls[0].body, { display_name: 'Ann' });
  });

  test('join sends region, rejoin_token and unreachable_node when given, and nothing else', async () => {
    const resp = { token: 't2', ws_url: '/media/ws', participant_id: 'p1', node_id: 5, expires_at_ms: 9, room: {} };
    const f = fakeFetch(() => ({ status: 200, body: resp }));
    const got = await join(SLUG, 'Ann', { fetch: f, region: 'eu-west', rejoinToken: 'v1.old.sig', unreachableNode: 3 });
    assert.equal(got.node_id, 5);
    assert.deepEqual(f.calls[0].body, {
      display_name: 'Ann',
      region: 'eu-west',
      rejoin_token: 'v1.old.sig',
      unreachable_node: 3,
    });
    await join(SLUG, 'Ann', { fetch: f, region: null, rejoinToken: null, unreachableNode: null });
    assert.deepEqual(f.calls[1].body, { display_name: 'Ann' }, 'null hints are left out');
  });

  test('join body: absent, null and empty hints are omitted; node 0 is kept', () => {
    assert.deepEqual(buildJoinBody('Ann'), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', {}), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', { region: '', rejoinToken: '', unreachableNode: undefined }), { display_name: 'Ann' });
    assert.deepEqual(buildJoinBody('Ann', { unreachableNode: 0 }), { display_name: 'Ann', unreachable_node: 0 });
    assert.deepEqual(buildJoinBody('Ann', { rejoinToken: 'v1.a.b' }), { display_name: 'Ann', rejoin_token: 'v1.a.b' });
    assert.deepEqual(
      buildJoinBody('Ann', { rejoinToken: 'v1.a.b', rejoinSecret: 's' }),
      { display_name: 'Ann', rejoin_token: 'v1.a.b', rejoin_secret: 's' },
    );
    assert.deepEqual(buildJoinBody('Ann', { rejoinSecret: 's' }), { display_name: 'Ann' }, 'a secret alone is no rejoin');
    assert.deepEqual(
      Object.keys(buildJoinBody('Ann', /** @type {any} */ ({ fetch: () => {}, base: 'http://h', region: 'x' }))),
      ['display_name', 'region'],
      'REST options never leak into the body (the server refuses unknown fields)',
    );
  });

  test('fetchMessages adds before only when given', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { messages: [], has_more: false } }));
    await fetchMessages(SLUG, null, { fetch: f });
    await fetchMessages(SLUG, 42, { fetch: f });
    assert.equal(f.calls[0].url, `/api/rooms/${SLUG}/messages`);
    assert.equal(f.calls[1].url, `/api/rooms/${SLUG}/messages?before=42`);
    assert.equal(f.calls[0].init.method, 'GET');
  });

  test('a JSON error body becomes an ApiError with the code and a human message', async () => {
    const f = fakeFetch(() => ({ status: 404, body: { code: 'room_not_found', message: 'no room abc' } }));
    await assert.rejects(getRoom(SLUG, { fetch: f }), (e) => {
      assert.ok(e instanceof ApiError);
      assert.ok(e instanceof Error);
      assert.equal(e.code, 'room_not_found');
      assert.equal(e.status, 404);
      assert.equal(e.message, 'This meeting link is not valid');
      return true;
    });
  });

  test('bad_request keeps the server message, which says what to fix', async () => {
    const f = fakeFetch(() => ({ status: 400, body: { code: 'bad_request', message: 'display_name must be 1 to 64 characters' } }));
    await assert.rejects(join(SLUG, '', { fetch: f }), { code: 'bad_request', message: 'display_name must be 1 to 64 characters' });
  });

  test('a non-JSON error and a network failure still give a code', async () => {
    const f = fakeFetch(() => ({ status: 502, body: '<html>bad gateway</html>' }));
    await assert.rejects(getRoom(SLUG, { fetch: f }), (e) => e.code === 'http_502' && e.status === 502 && isRetryable(e.code));
    const down = async () => {
      throw new TypeError('Failed to fetch');
    };
    await assert.rejects(getRoom(SLUG, { fetch: down }), (e) => e.code === 'network' && /reach the server/.test(e.message));
  });

  test('slugs are escaped in paths', async () => {
    const f = fakeFetch(() => ({ status: 200, body: {} }));
    await getRoom('a/b?c', { fetch: f });
    assert.equal(f.calls[0].url, '/api/rooms/a%2Fb%3Fc');
  });
});

describe('URLs and links', () => {
  test('relative ws_url resolves against the page with ws:/wss:', () => {
    assert.equal(resolveWsUrl('/media/ws', 'http://127.0.0.1:8080/r/x'), 'ws://127.0.0.1:8080/media/ws');
    assert.equal(resolveWsUrl('/media/ws', 'https://meet.example/r/x?y=1'), 'wss://meet.example/media/ws');
    assert.equal(resolveWsUrl('wss://node2.example/ws', 'https://meet.example/r/x'), 'wss://node2.example/ws');
    assert.equal(resolveWsUrl('https://node2.example/ws', 'http://meet.example/'), 'wss://node2.example/ws');
  });

  test('slugFromLink accepts links, paths and bare slugs', () => {
    assert.equal(slugFromLink(`https://meet.example/r/${SLUG}`), SLUG);
    assert.equal(slugFromLink(`  https://meet.example/r/${SLUG}?name=x  `), SLUG);
    assert.equal(slugFromLink(`/r/${SLUG}`), SLUG);
    assert.equal(slugFromLink(`meet.example/r/${SLUG}#top`), SLUG);
    assert.equal(slugFromLink(SLUG), SLUG);
    assert.equal(slugFromLink('https://meet.example/r/short'), null);
    assert.equal(slugFromLink('hello'), null);
    assert.equal(slugFromLink(`https://x/r/${SLUG}extra`), null);
  });

  test('slugFromPath reads the room page path', () => {
    assert.equal(slugFromPath(`/r/${SLUG}`), SLUG);
    assert.equal(slugFromPath(`/r/${SLUG}/`), SLUG);
    assert.equal(slugFromPath('/'), null);
    assert.equal(slugFromPath('/r/%E0%A4%A'), null);
  });
});

// ---------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------

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
    const m = (id) => ({ id, room_id: 1, participant_id: 'p', display_name: 'A', text: `m${id}`, sent_at_ms: id });
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

  test('joined replaces the whole state', () => {
    const s = new RoomState().apply(joined);
    assert.equal(s.participantId, 'p2');
    assert.equal(s.room.name, 'R');
    assert.equal(s.self.display_name, 'Bob');
    assert.deepEqual(s.list().map((p) => p.display_name), ['Ann', 'Bob'], 'join order');
  });

  test('deltas add, replace and remove participants without mutating the old state', () => {
    const s0 = new RoomState().apply(joined);
    const s1 = s0.apply({ type: 'participant_joined', participant: participant('p3', 'Cy', { joined_at_ms: 3000 }) });
    assert.equal(s0.participants.size, 2, 'old state unchanged');
    assert.equal(s1.participants.size, 3);
    const updated = participant('p3', 'Cy', {
      joined_at_ms: 3000,
      status: 'reconnecting',
      media: { mic_muted: true, camera_muted: true, screen_sharing: false },
    });
    const s2 = s1.apply({ type: 'participant_updated', participant: updated });
    assert.equal(s1.get('p3').status, 'connected', 'old state unchanged');
    assert.deepEqual(s2.get('p3'), updated, 'updated replaces rather than patches');
    const s3 = s2.apply({ type: 'participant_left', participant_id: 'p1', reason: 'left' });
    assert.deepEqual(s3.list().map((p) => p.id), ['p2', 'p3']);
    assert.equal(s2.get('p1').display_name, 'Ann');
  });

  test('unrelated messages and unknown leavers return the same state', () => {
    const s = new RoomState().apply(joined);
    assert.equal(s.apply({ type: 'pong', seq: 1, server_time_ms: 1 }), s);
    assert.equal(s.apply({ type: 'participant_left', participant_id: 'nobody', reason: 'left' }), s);
    assert.equal(s.apply({ type: 'chat', message: {} }), s);
  });

  test('an update for an unknown participant adds them', () => {
    const s = new RoomState().apply(joined).apply({ type: 'participant_updated', participant: participant('p9', 'Zed') });
    assert.equal(s.get('p9').display_name, 'Zed');
  });

  test('stream ids map to owners; screen shares are marked', () => {
    const s = new RoomState().apply(joined);
    assert.deepEqual(parseStreamId('p1'), { participantId: 'p1', screen: false });
    assert.deepEqual(parseStreamId('p1-screen'), { participantId: 'p1', screen: true });
    const o = s.streamOwner('p1-screen');
    assert.equal(o.participant.display_name, 'Ann');
    assert.equal(o.screen, true);
    assert.equal(s.streamOwner('pX').participant, undefined);
  });
});

// ---------------------------------------------------------------------------
// SDP helpers and negotiation
// ---------------------------------------------------------------------------

const sdpWith = (sections) =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    ...sections.flatMap(([kind, mid, msid]) => [
      `m=${kind} 9 UDP/TLS/RTP/SAVPF 111`,
      'c=IN IP4 0.0.0.0',
      `a=mid:${mid}`,
      ...(msid ? [`a=msid:${msid}`] : []),
    ]),
    '',
  ].join('\r\n');

describe('SDP track map', () => {
  test('media sections are read with their mid and msid track id', () => {
    const sdp = sdpWith([
      ['audio', '0', 'stream1 trackA'],
      ['video', '1', 'stream1 trackV'],
      ['video', '2', null],
      ['video', '3', '- trackS'],
    ]);
    assert.deepEqual(parseMediaSections(sdp), [
      { mid: '0', kind: 'audio', streamId: 'stream1', trackId: 'trackA' },
      { mid: '1', kind: 'video', streamId: 'stream1', trackId: 'trackV' },
      { mid: '2', kind: 'video', streamId: null, trackId: null },
      { mid: '3', kind: 'video', streamId: null, trackId: 'trackS' },
    ]);
  });

  test('the offer tracks map keys msid track ids by their transceiver source', () => {
    const sdp = sdpWith([
      ['audio', '0', 's trackA'],
      ['video', '1', 's trackV'],
      ['video', '2', null],
      ['video', '3', 'scr trackS'],
      ['video', '4', 'x unknown'],
    ]);
    const sources = new Map([
      ['0', 'microphone'],
      ['1', 'camera'],
      ['2', 'camera'],
      ['3', 'screen'],
    ]);
    assert.deepEqual(buildTrackMap(sdp, sources), { trackA: 'microphone', trackV: 'camera', trackS: 'screen' });
  });
});

/**
 * A peer connection that follows the signalling state machine of JSEP,
 * including the implicit rollback of a polite peer.
 */
class FakePeer {
  constructor() {
    this.signalingState = 'stable';
    this.localDescription = null;
    this.remoteDescription = null;
    this.n = 0;
    this.log = [];
    this.candidates = [];
    this.transceivers = [
      { mid: null, sender: 'mic' },
      { mid: null, sender: 'cam' },
    ];
  }
  getTransceivers() {
    return this.transceivers;
  }
  async createOffer() {
    await null;
    this.n += 1;
    return { type: 'offer', sdp: sdpWith([['audio', '0', 'ls mic-track'], ['video', '1', 'ls cam-track']]) + `a=x-offer:${this.n}\r\n` };
  }
  async setLocalDescription(desc) {
    await null;
    if (desc && desc.type === 'offer') {
      assert.equal(this.signalingState, 'stable', 'offer created only when stable');
      this.localDescription = desc;
      this.signalingState = 'have-local-offer';
      this.transceivers[0].mid = '0';
      this.transceivers[1].mid = '1';
      this.log.push('slo');
    } else {
      assert.equal(this.signalingState, 'have-remote-offer');
      this.localDescription = { type: 'answer', sdp: `answer-to:${this.remoteDescription.sdp}` };
      this.signalingState = 'stable';
      this.log.push('sla');
    }
  }
  async setRemoteDescription(desc) {
    await null;
    if (desc.type === 'offer') {
      if (this.signalingState === 'have-local-offer') this.log.push('rollback');
      this.remoteDescription = desc;
      this.signalingState = 'have-remote-offer';
      this.log.push('sro');
    } else {
      if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError');
      this.remoteDescription = desc;
      this.signalingState = 'stable';
      this.log.push('sra');
    }
  }
  async addIceCandidate(c) {
    await null;
    if (!this.remoteDescription) throw new Error('no remote description');
    this.candidates.push(c);
  }
}

describe('Negotiator', () => {
  function setup() {
    const pc = new FakePeer();
    const sent = [];
    const t = fakeTimers();
    const errors = [];
    const sources = new Map([
      ['mic', 'microphone'],
      ['cam', 'camera'],
    ]);
    const neg = new Negotiator(pc, (m) => sent.push(m), {
      sourceOf: (tr) => sources.get(tr.sender),
      onError: (e) => errors.push(e),
      setTimeout: t.setTimeout,
      retryFallbackMs: 3000,
    });
    const offers = () => sent.filter((m) => m.type === 'offer');
    return { pc, sent, neg, t, errors, offers };
  }

  test('first offer carries the SDP and the tracks map from the msid lines', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    assert.equal(offers().length, 1);
    assert.equal(offers()[0].sdp, pc.localDescription.sdp);
    assert.deepEqual(offers()[0].tracks, { 'mic-track': 'microphone', 'cam-track': 'camera' });
    assert.equal(neg.offerInFlight, true);
    await neg.handleAnswer('answer-sdp');
    assert.equal(pc.signalingState, 'stable');
    assert.equal(neg.established, true);
    assert.equal(neg.offerInFlight, false);
  });

  test('negotiationneeded before the first answer does not cause a second offer', async () => {
    const { neg, offers } = setup();
    neg.negotiationNeeded(); // fired by addTrack before start()
    await neg.start();
    neg.negotiationNeeded(); // Chrome may deliver it while the first offer is in flight
    await neg.handleAnswer('a');
    assert.equal(offers().length, 1, 'the first offer covered every track added before it');
  });

  test('never two client offers in flight: events during an offer are left to the browser to re-fire', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded();
    assert.equal(offers().length, 2);
    await neg.negotiationNeeded();
    await neg.negotiationNeeded();
    assert.equal(offers().length, 2, 'ignored while in flight');
    await neg.handleAnswer('a2');
    assert.equal(offers().length, 2);
    // The browser re-fires once stable if a change was not covered.
    assert.equal(pc.signalingState, 'stable');
    await neg.negotiationNeeded();
    assert.equal(offers().length, 3);
    await neg.handleAnswer('a3');
  });

  test('negotiationneeded while a node offer is being answered does not offer mid-exchange', async () => {
    const { pc, neg, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    pc.signalingState = 'have-remote-offer';
    await neg.negotiationNeeded();
    assert.equal(offers().length, 1);
  });

  test('node offers are answered', async () => {
    const { pc, neg, sent } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.handleOffer('node-offer-1');
    assert.deepEqual(sent.at(-1), { type: 'answer', sdp: 'answer-to:node-offer-1' });
    assert.equal(pc.signalingState, 'stable');
  });

  test('glare: a crossing node offer wins, the refused client offer is retried after answering', async () => {
    const { pc, neg, sent, offers } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded(); // e.g. screen share added
    assert.equal(offers().length, 2);
    // The node's offer crossed ours: it arrives first, then the refusal.
    await neg.handleOffer('node-offer');
    assert.ok(pc.log.includes('rollback'));
    assert.deepEqual(sent.at(-1), { type: 'answer', sdp: 'answer-to:node-offer' });
    assert.equal(offers().length, 2, 'no new offer until the refusal arrives');
    assert.equal(neg.handleError({ type: 'error', code: 'invalid_state', message: 'offer outstanding', request: 'offer' }), true);
    await neg.chain;
    assert.equal(offers().length, 3, 'retried');
    assert.equal(pc.signalingState, 'have-local-offer');
    await neg.handleAnswer('a3');
    assert.equal(pc.signalingState, 'stable');
  });

  test('glare refusal before the node offer: retry after the node offer is answered', async () => {
    const { neg, sent, offers, t } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    await neg.negotiationNeeded();
    neg.handleError({ type: 'error', code: 'invalid_state', message: 'x', request: 'offer' });
    await neg.chain;
    // Our local offer is still applied locally; the node offer rolls it back.
    await neg.handleOffer('node-offer');
    const answerIdx = sent.findIndex((m) => m.type === 'answer');
    const lastOfferIdx = sent.lastIndexOf(offers().at(-1));
    assert.equal(offers().length, 3);
    assert.ok(lastOfferIdx > answerIdx, 'the retry follows the answer');
    t.advance(5000);
    await neg.chain;
    assert.equal(offers().length, 3, 'fallback timer does not offer again');
  });

  test('glare refusal with no node offer at all: fallback retry after a timeout', async () => {
    const { pc, neg, offers, t } = setup();
    await neg.start();
    await neg.handleAnswer('a1');
    // Simulate the node having refused an offer we then rolled back ourselves.
    neg.offerInFlight = true;
    neg.handleError({ type: 'error', code: 'invalid_state', message: 'x', request: 'offer' });
    assert.equal(offers().length, 1);
    t.advance(3000);
    await neg.chain;
    assert.equal(offers().length, 2);
    assert.equal(pc.signalingState, 'have-local-offer');
  });

  test('other errors are not negotiation errors; other offer errors are reported', async () => {
    const { neg, errors } = setup();
    assert.equal(neg.handleError({ type: 'error', code: 'chat_too_long', message: 'x', request: 'chat' }), false);
    assert.equal(neg.handleError({ type: 'error', code: 'bad_request', message: 'bad sdp', request: 'offer' }), true);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'bad_request');
  });

  test('candidates are added in order after the description they belong to', async () => {
    const { pc, neg } = setup();
    await neg.start();
    neg.handleAnswer('a1');
    neg.handleCandidate({ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 });
    neg.handleCandidate(null);
    neg.handleCandidate({ candidate: '' });
    await neg.chain;
    assert.deepEqual(pc.candidates, [{ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 }]);
  });

  test('after close nothing more is sent', async () => {
    const { neg, sent } = setup();
    await neg.start();
    neg.close();
    await neg.handleOffer('late');
    assert.equal(sent.length, 1);
  });
});

// ---------------------------------------------------------------------------
// User-facing messages
// ---------------------------------------------------------------------------

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
