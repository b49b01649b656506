// The call core's transitions, driven by events and a fake clock. Run with
// `node --test web/test/`. The core is pure: every test feeds events and
// checks the actions it returns, including the timers it asks for.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CallCore } from '../public/lib/call-core.js';
import {
  MAX_QUEUED_CHATS,
  MEDIA_CONNECT_TIMEOUT_MS,
  MEDIA_FAILURES_BEFORE_EXPLAINING,
  MEDIA_UNREACHABLE_MESSAGE,
} from '../public/lib/call-types.js';
import { CloseCode } from '../public/lib/limits.js';
import { MOVE_OLD_SOCKET_GRACE_MS } from '../public/lib/reconnect.js';

/** @typedef {import('../public/lib/call-types.js').CallAction} CallAction */
/** @typedef {import('../public/lib/call-types.js').CallEvent} CallEvent */

const MEDIA = { mic_muted: false, camera_muted: true, screen_sharing: false };

/**
 * A join response for `node`.
 * @param {number} node
 * @param {string} token
 * @param {string} secret
 */
function resp(node, token, secret) {
  return {
    token,
    ws_url: '/media/ws',
    participant_id: 'p1',
    node_id: node,
    expires_at_ms: 0,
    room: { id: 1, slug: 'AbCdEfGhIjKlMnOpQrStUv', name: 'Room', link: '', created_at_ms: 0 },
    rejoin_secret: secret,
  };
}

/**
 * A `joined` for participant `pid`.
 * @param {string} pid
 * @param {string} resumeToken
 * @returns {import('../public/lib/types.js').JoinedMessage}
 */
function joinedMsg(pid = 'p1', resumeToken = 'r1') {
  return {
    type: 'joined',
    participant_id: pid,
    room: { id: 1, slug: 'AbCdEfGhIjKlMnOpQrStUv', name: 'Room' },
    participants: [{ id: pid, display_name: 'Ann', status: 'connected', media: MEDIA, tracks: [], joined_at_ms: 1 }],
    ice_servers: [],
    resume_token: resumeToken,
  };
}

/** Drives a core like the shell does: keeps its timers and its banner. */
class Harness {
  constructor() {
    this.core = new CallCore();
    this.now = 1_000_000;
    /** @type {Map<string, number>} Timer key -> delay asked for. */
    this.timers = new Map();
    /** @type {string | null | undefined} */
    this.banner = undefined;
    /** @type {CallAction[]} Every action so far. */
    this.all = [];
    /** @type {CallAction[]} */
    this.last = [];
    /** The session of the call, once `inCall` joined one. */
    this.sid = 0;
  }

  /**
   * @param {CallEvent} ev
   * @returns {CallAction[]}
   */
  send(ev) {
    const out = this.core.handle(ev, this.now);
    for (const a of out) {
      if (a.type === 'set_timer') this.timers.set(a.key, a.ms);
      if (a.type === 'cancel_timer') this.timers.delete(a.key);
      if (a.type === 'status') this.banner = a.banner;
    }
    this.all.push(...out);
    this.last = out;
    return out;
  }

  /**
   * Fires a timer the core asked for, after its delay.
   * @param {string} key
   */
  fire(key) {
    const ms = this.timers.get(key);
    assert.notEqual(ms, undefined, `timer ${key} was not set (timers: ${[...this.timers.keys()].join(', ') || 'none'})`);
    this.timers.delete(key);
    this.now += /** @type {number} */ (ms);
    return this.send({ type: 'timer', key });
  }

  /**
   * The one action of `type` in the last output.
   * @param {string} type
   * @returns {any}
   */
  one(type) {
    const found = this.last.filter((a) => a.type === type);
    assert.equal(found.length, 1, `expected one ${type} in ${JSON.stringify(this.last)}`);
    return found[0];
  }

  /**
   * @param {string} type
   * @returns {any[]}
   */
  of(type) {
    return this.last.filter((a) => a.type === type);
  }

  /**
   * Answers the pending token request and opens the socket: returns the
   * new session's id and the `send_join` action.
   * @param {number} node
   * @param {string} token
   * @param {string} secret
   */
  connectTo(node, token, secret) {
    const req = this.one('request_token');
    this.send({ type: 'join_response', request: req.request, response: resp(node, token, secret) });
    const open = this.one('open');
    assert.equal(open.nodeId, node);
    this.send({ type: 'socket_open', session: open.session });
    return { id: /** @type {number} */ (open.session), join: this.one('send_join'), hints: req.hints };
  }

  /**
   * Joins all the way to media connected.
   * @param {number} node
   * @param {string} token
   * @param {string} secret
   * @param {boolean} [media]
   */
  joinFully(node, token, secret, media = true) {
    const s = this.connectTo(node, token, secret);
    this.send({ type: 'joined', session: s.id, message: joinedMsg() });
    this.one('start_media');
    if (media) this.send({ type: 'media_connected', session: s.id });
    return s;
  }
}

/** @returns {Harness} A harness in the call on node 1 with token t1 (session `sid`). */
function inCall() {
  const h = new Harness();
  h.send({ type: 'start' });
  h.sid = h.joinFully(1, 't1', 's1').id;
  return h;
}

describe('call core: joining', () => {
  test('start asks for a token without hints, opens its socket and joins without resume', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    assert.equal(h.banner, 'Connecting…');
    const s = h.connectTo(1, 't1', 's1');
    assert.deepEqual(s.hints, { rejoinToken: null, rejoinSecret: null, unreachableNode: null });
    assert.deepEqual(s.join, { type: 'send_join', session: s.id, token: 't1', resume: null });
    h.send({ type: 'joined', session: s.id, message: joinedMsg() });
    assert.equal(h.core.phase, 'joined');
    assert.equal(h.banner, null);
    assert.deepEqual(h.one('start_media').iceServers, []);
    assert.equal(h.timers.get('media'), MEDIA_CONNECT_TIMEOUT_MS, 'media must connect in time');
    h.send({ type: 'media_connected', session: s.id });
    assert.equal(h.timers.has('media'), false);
    assert.equal(h.core.sendTarget(), s.id);
  });

  test('an answer to a superseded token request is ignored', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    const req = h.one('request_token').request;
    assert.deepEqual(h.send({ type: 'join_response', request: req + 7, response: resp(1, 'x', 'y') }), []);
  });

  test('a control plane that is down is retried with the backoff; a refusal ends the call', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    h.send({ type: 'join_failed', request: h.one('request_token').request, code: 'unavailable', message: 'down' });
    assert.equal(h.core.phase, 'waiting');
    h.fire('reconnect');
    h.send({ type: 'join_failed', request: h.one('request_token').request, code: 'bad_request', message: 'Name too long' });
    assert.deepEqual(h.one('ended'), { type: 'ended', reason: 'refused', message: 'Name too long' });
    assert.equal(h.core.phase, 'ended');
  });
});

describe('call core: drops, resumes and node loss', () => {
  test('a drop after media connected rejoins at once, with the last token and its secret, and resumes the seat', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.NORMAL, reason: '', byClient: false } });
    // Only the socket broke: the shell may keep the peer connection for the resume.
    assert.deepEqual(h.one('close'), { type: 'close', session: h.sid, code: CloseCode.NORMAL, keepMedia: true });
    assert.equal(h.timers.get('reconnect'), 0, 'the first retry after a drop goes out at once');
    assert.equal(h.banner, 'Reconnecting…');
    h.fire('reconnect');
    const s = h.connectTo(1, 't2', 's2');
    assert.deepEqual(s.hints, { rejoinToken: 't1', rejoinSecret: 's1', unreachableNode: null });
    assert.deepEqual(s.join.resume, { participant_id: 'p1', resume_token: 'r1' });
  });

  test('a resumed seat whose node kept its media takes the kept peer connection back', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.NORMAL, reason: '', byClient: false } });
    h.fire('reconnect');
    const s = h.connectTo(1, 't2', 's2');
    h.of('start_media');
    h.send({ type: 'joined', session: s.id, message: { ...joinedMsg(), resumed: true, media_kept: true } });
    assert.deepEqual(h.one('start_media'), { type: 'start_media', session: s.id, iceServers: [], mediaKept: true });
  });

  test('a drop during a move, or a refused seat, keeps no peer connection', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.REMOVED, reason: '', byClient: false } });
    assert.equal(h.one('close').keepMedia, false);
    const m = inCall();
    m.send({ type: 'move', session: m.sid, reason: 'drain' });
    m.send({ type: 'closed', session: m.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    assert.equal(m.of('close').every((a) => !a.keepMedia), true);
  });

  test('node loss names the lost node, and a token for another node joins without resume', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    h.fire('reconnect');
    const s = h.connectTo(2, 't2', 's2');
    assert.deepEqual(s.hints, { rejoinToken: 't1', rejoinSecret: 's1', unreachableNode: 1 });
    assert.equal(s.join.resume, null, 'seats do not travel between nodes');
    h.send({ type: 'joined', session: s.id, message: joinedMsg('p1', 'r2') });
    h.send({ type: 'media_connected', session: s.id });
    // The next rejoin presents the token it got from node 2, and that token's secret.
    h.send({ type: 'closed', session: s.id, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    h.fire('reconnect');
    assert.deepEqual(h.one('request_token').hints, { rejoinToken: 't2', rejoinSecret: 's2', unreachableNode: 2 });
  });

  test('a socket that never opens marks its node unreachable and retries', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    const req = h.one('request_token');
    h.send({ type: 'join_response', request: req.request, response: resp(4, 't1', 's1') });
    h.send({ type: 'socket_failed', session: h.one('open').session });
    h.fire('reconnect');
    assert.equal(h.one('request_token').hints.unreachableNode, 4);
  });

  test('a refused resume (4009 before joined) is followed at once by a join without resume', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    h.fire('reconnect');
    const s = h.connectTo(1, 't2', 's2');
    assert.notEqual(s.join.resume, null);
    h.send({ type: 'closed', session: s.id, info: { code: CloseCode.INVALID_STATE, reason: 'no seat', byClient: false } });
    assert.equal(h.timers.has('reconnect'), false, 'no backoff: join again at once');
    const again = h.connectTo(1, 't3', 's3');
    assert.equal(again.join.resume, null);
    assert.equal(again.hints.rejoinToken, 't1', 'the rejoin token still keeps the participant id');
  });

  test('a refused rejoin token is dropped and the request made again without it', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    h.fire('reconnect');
    h.send({ type: 'join_failed', request: h.one('request_token').request, code: 'token_expired', message: 'old' });
    assert.deepEqual(h.one('request_token').hints, { rejoinToken: null, rejoinSecret: null, unreachableNode: 1 });
  });

  test('a refused token (4001) gets a new one at once, three times, then backs off', () => {
    const h = inCall();
    for (let i = 0; i < 3; i++) {
      h.send({ type: 'closed', session: h.core.current ?? -1, info: { code: CloseCode.TOKEN_INVALID, reason: '', byClient: false } });
      assert.equal(h.timers.has('reconnect'), false);
      const s = h.connectTo(1, `tok${i}`, 'x');
      h.sid = s.id;
    }
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.TOKEN_INVALID, reason: '', byClient: false } });
    assert.equal(h.timers.has('reconnect'), true);
  });

  test('a session closed for flooding (4008) is not reconnected; one closed for not reading (4011) resumes', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.POLICY, reason: '', byClient: false } });
    assert.equal(h.one('ended').reason, 'refused');
    assert.equal(h.timers.has('reconnect'), false);
    const g = inCall();
    g.send({ type: 'closed', session: g.sid, info: { code: CloseCode.TOO_SLOW, reason: '', byClient: false } });
    g.fire('reconnect');
    assert.notEqual(g.connectTo(1, 't2', 's2').join.resume, null);
  });

  test('a participant removed by a moderator (4020) or denied at the lobby (4021) is not reconnected', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.REMOVED, reason: '', byClient: false } });
    assert.equal(h.one('ended').reason, 'removed');
    assert.equal(h.timers.has('reconnect'), false);
    assert.equal(h.core.phase, 'ended');
    const g = inCall();
    g.send({ type: 'closed', session: g.sid, info: { code: CloseCode.DENIED, reason: '', byClient: false } });
    assert.deepEqual(g.one('ended'), { type: 'ended', reason: 'denied', message: 'A moderator did not let you in' });
    assert.equal(g.timers.has('reconnect'), false);
  });

  test('a room that is gone ends the call; 4010 without a move means we joined elsewhere', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ROOM_NOT_FOUND, reason: '', byClient: false } });
    assert.equal(h.one('ended').reason, 'room_gone');
    const g = inCall();
    g.send({ type: 'closed', session: g.sid, info: { code: CloseCode.MOVED, reason: '', byClient: false } });
    assert.equal(g.one('ended').reason, 'elsewhere');
    assert.equal(g.timers.has('reconnect'), false);
  });
});

describe('call core: media failing while signalling works', () => {
  test('the backoff grows across joins until media connects, then the next drop is immediate again', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    /** @type {number[]} */
    const delays = [];
    for (let i = 0; i < 7; i++) {
      const s = h.joinFully(1, `t${i}`, 's', false);
      h.send({ type: 'media_failed', session: s.id });
      assert.equal(h.one('close').code, CloseCode.RECONNECTING, 'the seat is kept for the rejoin');
      delays.push(/** @type {number} */ (h.timers.get('reconnect')));
      h.fire('reconnect');
    }
    assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000, 10000, 10000], 'joined does not reset the backoff');
    const s = h.joinFully(1, 'ok', 's', true);
    h.send({ type: 'closed', session: s.id, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    assert.equal(h.timers.get('reconnect'), 0, 'media connected: back to an immediate retry');
  });

  test('two drops seconds apart each retry at once when media connected in between', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.NORMAL, reason: '', byClient: false } });
    assert.equal(h.timers.get('reconnect'), 0);
    h.fire('reconnect');
    const s = h.joinFully(1, 't2', 's2');
    h.now += 3000;
    h.send({ type: 'closed', session: s.id, info: { code: CloseCode.NORMAL, reason: '', byClient: false } });
    assert.equal(h.timers.get('reconnect'), 0, 'a second network change is no loop');
    h.fire('reconnect');
    h.joinFully(1, 't3', 's3', false);
    h.now += 3000;
    const [current] = [...h.core.sessions.keys()];
    h.send({ type: 'closed', session: current, info: { code: CloseCode.NORMAL, reason: '', byClient: false } });
    assert.equal(h.timers.get('reconnect'), 1000, 'a session whose media never came up is a loop: wait');
  });

  test('after a few media failures the person is told why instead of an endless spinner', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    for (let i = 0; i < MEDIA_FAILURES_BEFORE_EXPLAINING; i++) {
      assert.notEqual(h.banner, MEDIA_UNREACHABLE_MESSAGE, `not yet after ${i} failures`);
      const s = h.joinFully(1, `t${i}`, 's', false);
      h.send({ type: 'media_failed', session: s.id });
      if (i < MEDIA_FAILURES_BEFORE_EXPLAINING - 1) h.fire('reconnect');
    }
    assert.equal(h.banner, MEDIA_UNREACHABLE_MESSAGE);
    assert.equal(MEDIA_UNREACHABLE_MESSAGE, "Can't reach the media server: your network may block it");
    h.fire('reconnect');
    const s = h.joinFully(1, 'tx', 's', false);
    assert.equal(h.banner, MEDIA_UNREACHABLE_MESSAGE, 'joined alone does not hide the explanation');
    h.send({ type: 'media_connected', session: s.id });
    assert.equal(h.banner, null);
  });

  test('media that never connects counts as a failure when the media timer fires', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    const s = h.joinFully(1, 't1', 's1', false);
    h.fire('media');
    assert.deepEqual(h.one('close'), { type: 'close', session: s.id, code: CloseCode.RECONNECTING, keepMedia: false });
    assert.equal(h.core.mediaFailures, 1);
    assert.equal(h.core.phase, 'waiting');
  });
});

describe('call core: moving to another node', () => {
  /** @returns {Harness} In the call on node 1, told to move. */
  function moving() {
    const h = inCall();
    h.send({ type: 'move', session: h.sid, reason: 'drain' });
    return h;
  }

  test('make-before-break: a token avoiding the old node, a session there, and the old one retired on joined', () => {
    const h = moving();
    assert.deepEqual(h.one('request_token').hints, { rejoinToken: 't1', rejoinSecret: 's1', unreachableNode: 1 });
    assert.equal(h.of('close').length, 0, 'the old session keeps working');
    const t = h.connectTo(2, 't2', 's2');
    assert.equal(t.join.resume, null);
    h.send({ type: 'joined', session: t.id, message: joinedMsg('p1', 'r2') });
    assert.deepEqual(h.one('retire'), { type: 'retire', session: h.sid });
    assert.equal(h.of('send').length, 0, 'no leave to the old node');
    assert.equal(h.of('close').length, 0);
    assert.equal(h.core.current, t.id);
    assert.equal(h.timers.get(`retire:${h.sid}`), MOVE_OLD_SOCKET_GRACE_MS);
    // The old node lets go of us: nothing else happens.
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.MOVED, reason: '', byClient: false } });
    assert.equal(h.one('close').session, h.sid);
    assert.equal(h.core.phase, 'joined');
    assert.equal(h.timers.has(`retire:${h.sid}`), false);
  });

  test('an old node that keeps the socket open is closed with RECONNECTING after the grace', () => {
    const h = moving();
    const t = h.connectTo(2, 't2', 's2');
    h.send({ type: 'joined', session: t.id, message: joinedMsg() });
    h.fire(`retire:${h.sid}`);
    assert.deepEqual(h.one('close'), { type: 'close', session: h.sid, code: CloseCode.RECONNECTING, keepMedia: false });
  });

  test('a token for the node being left is retried after a backoff', () => {
    const h = moving();
    h.send({ type: 'join_response', request: h.one('request_token').request, response: resp(1, 't2', 's2') });
    assert.equal(h.of('open').length, 0);
    assert.equal(h.timers.get('move'), 1000);
    h.fire('move');
    h.one('request_token');
  });

  test('the old node dying mid-move hands the call to the session under way', () => {
    const h = moving();
    const req = h.one('request_token');
    h.send({ type: 'join_response', request: req.request, response: resp(2, 't2', 's2') });
    const target = h.one('open').session;
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    assert.equal(h.core.current, target);
    h.send({ type: 'socket_open', session: target });
    h.send({ type: 'joined', session: target, message: joinedMsg() });
    assert.equal(h.core.phase, 'joined');
  });

  test('coming back as a new participant leaves the old seat', () => {
    const h = moving();
    const t = h.connectTo(2, 't2', 's2');
    h.send({ type: 'joined', session: t.id, message: joinedMsg('p9', 'r9') });
    assert.deepEqual(h.one('close'), { type: 'close', session: h.sid, code: CloseCode.NORMAL, keepMedia: false });
    assert.equal(h.one('joined').samePerson, false);
  });
});

describe('call core: Leave ends the seat in every state', () => {
  test('in the call: leave, then close 1000', () => {
    const h = inCall();
    h.send({ type: 'leave' });
    const sends = h.of('send');
    assert.deepEqual(sends.map((a) => a.message), [{ type: 'leave' }]);
    assert.deepEqual(h.one('close'), { type: 'close', session: h.sid, code: CloseCode.NORMAL, keepMedia: false });
    assert.equal(h.one('ended').reason, 'left');
    assert.equal(h.core.phase, 'left');
  });

  test('while the token request is in flight: its answer opens nothing', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    const req = h.one('request_token').request;
    h.send({ type: 'leave' });
    assert.deepEqual(h.send({ type: 'join_response', request: req, response: resp(1, 't', 's') }), []);
  });

  test('with join sent but no joined yet: leave goes after the join, then close 1000', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    h.connectTo(1, 't1', 's1');
    h.send({ type: 'leave' });
    assert.deepEqual(h.one('send').message, { type: 'leave' });
    assert.equal(h.one('close').code, CloseCode.NORMAL);
  });

  test('while the socket is opening: close 1000, and a late open is closed again', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    h.send({ type: 'join_response', request: h.one('request_token').request, response: resp(1, 't', 's') });
    const id = h.one('open').session;
    h.send({ type: 'leave' });
    assert.equal(h.of('send').length, 0, 'nothing to say on a socket that is not open');
    assert.deepEqual(h.one('close'), { type: 'close', session: id, code: CloseCode.NORMAL, keepMedia: false });
    assert.equal(h.send({ type: 'socket_open', session: id }).filter((a) => a.type === 'send_join').length, 0);
  });

  test('between attempts: the pending attempt is cancelled and nothing further is joined', () => {
    const h = inCall();
    h.send({ type: 'media_failed', session: h.sid });
    assert.equal(h.timers.has('reconnect'), true);
    h.send({ type: 'leave' });
    assert.equal(h.timers.has('reconnect'), false);
    assert.equal(h.one('ended').reason, 'left');
    assert.deepEqual(h.send({ type: 'timer', key: 'reconnect' }), [], 'a late timer joins nothing');
  });

  test('during a move: both the old session and the target get leave and 1000', () => {
    const h = inCall();
    h.send({ type: 'move', session: h.sid, reason: 'drain' });
    const t = h.connectTo(2, 't2', 's2');
    h.send({ type: 'leave' });
    assert.deepEqual(
      h.of('send').map((a) => a.session).sort(),
      [h.sid, t.id].sort(),
    );
    assert.deepEqual(
      h.of('close').map((a) => [a.session, a.code]).sort(),
      [[h.sid, CloseCode.NORMAL], [t.id, CloseCode.NORMAL]].sort(),
    );
  });
});

describe('call core: chat while not connected', () => {
  test('chat typed while reconnecting is queued and sent first on the next joined', () => {
    const h = inCall();
    h.send({ type: 'closed', session: h.sid, info: { code: CloseCode.ABNORMAL, reason: '', byClient: false } });
    assert.deepEqual(h.send({ type: 'chat', text: 'still there?', clientMsgId: 'c1' }), []);
    h.fire('reconnect');
    const s = h.connectTo(1, 't2', 's2');
    h.send({ type: 'joined', session: s.id, message: joinedMsg() });
    assert.deepEqual(h.one('send'), {
      type: 'send',
      session: s.id,
      message: { type: 'chat', text: 'still there?', client_msg_id: 'c1' },
    });
  });

  test('chat in the call goes out at once; after Leave, queued and new chat fail visibly', () => {
    const h = inCall();
    assert.deepEqual(h.send({ type: 'chat', text: 'hi', clientMsgId: 'c0' }).map((a) => a.type), ['send']);
    h.send({ type: 'media_failed', session: h.sid });
    h.send({ type: 'chat', text: 'queued', clientMsgId: 'c1' });
    h.send({ type: 'leave' });
    assert.deepEqual(h.of('chat_failed').map((a) => a.clientMsgId), ['c1']);
    assert.equal(h.send({ type: 'chat', text: 'late', clientMsgId: 'c2' })[0].type, 'chat_failed');
  });

  test('the queue is bounded: beyond it a message fails instead of piling up', () => {
    const h = new Harness();
    h.send({ type: 'start' });
    for (let i = 0; i < MAX_QUEUED_CHATS; i++) assert.deepEqual(h.send({ type: 'chat', text: 'x', clientMsgId: `c${i}` }), []);
    assert.equal(h.send({ type: 'chat', text: 'x', clientMsgId: 'over' })[0].type, 'chat_failed');
  });
});
