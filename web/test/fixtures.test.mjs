// The signalling contract, from the browser's side: every JSON fixture in
// protocol/fixtures/signal/ (shared with the Rust `protocol` crate's tests)
// must be understood by this client. Server fixtures (node -> client) must
// pass the validator and reach the handler of their type; client fixtures
// (client -> node) must be exactly what the message builders produce.
// Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, parseServerMessage, SERVER_MESSAGE_TYPES } from '../public/lib/messages.js';
import { Signalling } from '../public/lib/signalling.js';

const ROOT = fileURLToPath(new URL('../../protocol/fixtures/signal/', import.meta.url));

/**
 * The fixtures of one direction, as [file name, raw text]. Fails if the
 * folder is missing or holds none: a contract test with nothing to check
 * must not pass.
 * @param {'client' | 'server'} dir
 * @returns {[string, string][]}
 */
function fixtures(dir) {
  const path = `${ROOT}${dir}/`;
  /** @type {string[]} */
  let names;
  try {
    names = readdirSync(path).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    assert.fail(`the fixture folder ${path} is missing (${/** @type {Error} */ (e).message})`);
  }
  assert.ok(names.length > 0, `the fixture folder ${path} holds no .json fixture`);
  return names.map((n) => [n, readFileSync(`${path}${n}`, 'utf8')]);
}

/**
 * The message type a fixture's file name says: `<type>.json` or
 * `<type>-<variant>.json`.
 * @param {string} name
 */
function typeOf(name) {
  return name.replace(/\.json$/, '').split('-')[0];
}

/**
 * How the client builds each message it sends, from the fields of an
 * example. A client fixture of a type not listed here fails: the browser
 * must be able to send every client message of the protocol.
 * @type {Record<string, (f: any) => unknown>}
 */
const BUILDERS = {
  join: (f) => build.join(f.token, f.media, f.resume ?? null, f.p2p ?? false, f.resume?.keep_media ?? false),
  offer: (f) => build.offer(f.sdp, f.tracks),
  answer: (f) => build.answer(f.sdp),
  candidate: (f) => build.candidate(f.candidate),
  media: (f) => build.media(f),
  chat: (f) => build.chat(f.text, f.client_msg_id),
  ping: (f) => build.ping(f.seq),
  leave: () => build.leave(),
  moderate: ({ type: _type, ...action }) => build.moderate(action),
  hand: (f) => build.hand(f.raised),
  e2ee_key_package: (f) => build.e2eeKeyPackage(f.key_package),
  e2ee_commit: ({ type: _type, ...c }) => build.e2eeCommit(c),
  peer_signal: (f) => build.peerSignal(f.to, f.pairing, f.signal),
  p2p_state: (f) => build.p2pState(f.pairing, f.state),
};

/** A WebSocket stand-in: opens at once and lets the test push frames. */
class FakeWebSocket {
  /** @type {FakeWebSocket | null} */
  static last = null;
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {((ev?: any) => void) | null} */
    this.onopen = null;
    /** @type {((ev: {data: any}) => void) | null} */
    this.onmessage = null;
    /** @type {(() => void) | null} */
    this.onerror = null;
    /** @type {((ev: {code: number, reason: string}) => void) | null} */
    this.onclose = null;
    FakeWebSocket.last = this;
  }
  /** @param {string} _data */
  send(_data) {}
  close() {}
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  /** @param {string} text */
  push(text) {
    this.onmessage?.({ data: text });
  }
}

describe('signalling fixtures shared with the Rust protocol crate', () => {
  test('every server fixture is a valid message and reaches the handler of its type', async () => {
    const noTimers = { setInterval: () => 0, clearInterval: () => {} };
    for (const [name, text] of fixtures('server')) {
      const value = JSON.parse(text);
      const parsed = parseServerMessage(value);
      assert.ok(parsed.ok, `${name}: refused by the client's validator: ${parsed.ok ? '' : parsed.error}`);
      assert.ok(!parsed.unknown, `${name}: type ${value.type} is unknown to the client (it knows ${SERVER_MESSAGE_TYPES.join(', ')})`);
      assert.equal(value.type, typeOf(name), `${name}: the file name must start with the message type`);

      const sig = new Signalling('ws://node/ws', { WebSocket: FakeWebSocket, timers: noTimers });
      const opened = sig.connect();
      const ws = /** @type {FakeWebSocket} */ (FakeWebSocket.last);
      ws.open();
      await opened;
      /** @type {unknown[]} */
      const got = [];
      /** @type {unknown[]} */
      const errors = [];
      sig.on(value.type, (m) => got.push(m));
      sig.on('protocol_error', (e) => errors.push(e));
      ws.push(text);
      assert.deepEqual(errors, [], `${name}: protocol error`);
      assert.deepEqual(got, [value], `${name}: not dispatched to the "${value.type}" handler`);
    }
  });

  test('every client fixture is exactly what the client builds', () => {
    for (const [name, text] of fixtures('client')) {
      const value = JSON.parse(text);
      assert.equal(value.type, typeOf(name), `${name}: the file name must start with the message type`);
      const builder = BUILDERS[value.type];
      assert.ok(builder, `${name}: the client has no builder for "${value.type}" messages`);
      assert.deepEqual(builder(value), value, `${name}: the client builds a different message`);
    }
  });

  test('the validator is not a rubber stamp: a known type with a wrong field is refused', () => {
    assert.equal(parseServerMessage({ type: 'pong', seq: '7', server_time_ms: 1 }).ok, false);
    assert.equal(parseServerMessage({ type: 'joined', participant_id: 'p1' }).ok, false);
    assert.equal(parseServerMessage({ seq: 7 }).ok, false);
    assert.equal(parseServerMessage([1]).ok, false);
    assert.equal(parseServerMessage({ type: 'media_path', path: 'p2p', pairing: 3, offerer: true }).ok, false, 'p2p without a peer');
    assert.equal(parseServerMessage({ type: 'media_path', path: 'direct', pairing: 3, offerer: true }).ok, false);
    assert.equal(parseServerMessage({ type: 'peer_signal', from: 'p1', pairing: 3, signal: { kind: 'hangup' } }).ok, false);
    const future = parseServerMessage({ type: 'something_new', x: 1 });
    assert.ok(future.ok && future.unknown, 'a type from a newer node is passed on as unknown, not refused');
  });
});
