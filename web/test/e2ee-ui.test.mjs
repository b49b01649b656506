// The encrypted room as the page shows it, with no DOM: the security
// indicator's states and "Mark as verified" (lib/e2ee-status.js), which
// browsers may join, chat sealed and opened with real WebCrypto
// (lib/e2ee-chat.js over e2ee/chat-seal.js), the create request, and the
// page elements browser tests and screen readers rely on. Run with
// `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  SecurityStatus,
  indicatorText,
  mediaTransformKind,
  membershipKey,
  shortKey,
  UNSUPPORTED_TEXT,
} from '../public/lib/e2ee-status.js';
import {
  BEFORE_JOIN_TEXT,
  CHAT_NOTICE,
  ChatKeyRing,
  FUTURE_EPOCH_WAIT_MS,
  UNREADABLE_TEXT,
  openAll,
  openIncoming,
  sealOutgoing,
} from '../public/lib/e2ee-chat.js';
import { seal, chatKey } from '../public/e2ee/chat-seal.js';
import { MAX_CHAT_CHARS } from '../public/lib/limits.js';
import { createRoom } from '../public/lib/rest.js';

const PUBLIC = new URL('../public/', import.meta.url);
/** @param {string} path */
const page = (path) => readFileSync(new URL(path, PUBLIC), 'utf8');

const ann = { pid: 'p1', name: 'Ann', idk: 'BAnnKey000000000000000000000000000000000000000000000000000000000000000000000000000000001' };
const bob = { pid: 'p2', name: 'Bob', idk: 'BBobKey000000000000000000000000000000000000000000000000000000000000000000000000000000002' };
const cat = { pid: 'p3', name: 'Cat', idk: 'BCatKey000000000000000000000000000000000000000000000000000000000000000000000000000000003' };

/**
 * @param {number} epoch
 * @param {typeof ann[]} members
 */
const facts = (epoch, members) => ({ group: 1, epoch, members, code: `code-${epoch}` });

test('a plain room is "Not encrypted" and has nothing to verify', () => {
  const s = new SecurityStatus(false);
  s.update(facts(3, [ann, bob]));
  assert.equal(s.state, 'none');
  assert.equal(s.text, 'Not encrypted');
  assert.equal(s.markVerified(), false);
});

test('an encrypted room says "End-to-end encrypted" only once this browser holds a key', () => {
  const s = new SecurityStatus(true);
  assert.equal(s.state, 'none');
  assert.doesNotMatch(s.text, /End-to-end encrypted/);
  assert.match(s.text, /^Not encrypted yet/);
  assert.equal(s.markVerified(), false, 'nothing to compare before the first key');
  assert.equal(s.update(facts(0, [ann])), true);
  assert.equal(s.state, 'encrypted');
  assert.equal(s.text, 'End-to-end encrypted');
  // Losing the key (removed, rejoining) goes back: frames are dropped then.
  s.update({ group: null, epoch: null, members: [], code: null });
  assert.equal(s.state, 'none');
});

test('"Mark as verified" holds across epochs of the same membership and lapses when it changes', () => {
  const s = new SecurityStatus(true);
  s.update(facts(1, [ann, bob]));
  assert.equal(s.markVerified(), true);
  assert.equal(s.state, 'verified');
  assert.equal(s.text, 'End-to-end encrypted and verified');
  assert.match(s.text, /End-to-end encrypted/);
  // Same people in another order, a later epoch: still verified.
  s.update(facts(2, [bob, ann]));
  assert.equal(s.state, 'verified');
  // Someone joins: the code changes, the mark lapses and does not come back.
  s.update(facts(3, [ann, bob, cat]));
  assert.equal(s.state, 'encrypted');
  s.update(facts(4, [ann, bob]));
  assert.equal(s.state, 'encrypted', 'a lapsed mark is not revived');
  s.markVerified();
  // Bob rejoins with a new identity key: a different membership.
  s.update(facts(5, [ann, { ...bob, idk: 'BNewBobKey' }]));
  assert.equal(s.state, 'encrypted');
});

test('the membership key ignores order and names the group and identity keys', () => {
  assert.equal(membershipKey(1, [ann, bob]), membershipKey(1, [bob, ann]));
  assert.notEqual(membershipKey(1, [ann, bob]), membershipKey(2, [ann, bob]));
  assert.notEqual(membershipKey(1, [ann]), membershipKey(1, [{ ...ann, idk: 'other' }]));
});

test('members with a bad credential are listed as warnings; the list is sorted by name', () => {
  const s = new SecurityStatus(true);
  s.update({ group: 1, epoch: 1, members: [cat, { ...bob, badSig: true }, ann], code: 'c' });
  assert.deepEqual(s.members.map((m) => m.name), ['Ann', 'Bob', 'Cat']);
  assert.deepEqual(s.warnings.map((m) => m.pid), ['p2']);
  assert.equal(shortKey('BAnnKey00000000abcdefgh'), 'abcd efgh');
});

test('indicator texts for each state', () => {
  assert.equal(indicatorText(true, 'encrypted'), 'End-to-end encrypted');
  assert.equal(indicatorText(true, 'verified'), 'End-to-end encrypted and verified');
  assert.equal(indicatorText(false, 'encrypted'), 'Not encrypted');
});

test('a browser joins an encrypted room only if it can transform media, with WebCrypto and workers', () => {
  function Sender() {}
  Sender.prototype.createEncodedStreams = () => {};
  const base = { crypto: { subtle: {} }, Worker: function Worker() {} };
  assert.equal(mediaTransformKind({ ...base, RTCRtpScriptTransform: function T() {}, RTCRtpSender: Sender }), 'script');
  assert.equal(mediaTransformKind({ ...base, RTCRtpSender: Sender }), 'streams');
  assert.equal(mediaTransformKind({ ...base, RTCRtpSender: function Plain() {} }), null);
  assert.equal(mediaTransformKind({ ...base }), null);
  assert.equal(mediaTransformKind({ Worker: base.Worker, RTCRtpScriptTransform: function T() {} }), null, 'insecure origin: no WebCrypto');
  assert.equal(mediaTransformKind({ crypto: base.crypto, RTCRtpScriptTransform: function T() {} }), null, 'no workers');
  assert.match(UNSUPPORTED_TEXT, /end-to-end encrypted, and this browser cannot encrypt media/);
});

/** A ring for one participant at epoch `epoch` of group 1 with `exporter`. */
function ring(/** @type {string} */ self, /** @type {Uint8Array} */ exporter, epoch = 1) {
  const r = new ChatKeyRing();
  r.install(1, epoch, exporter, self);
  return r;
}

const exporter1 = crypto.getRandomValues(new Uint8Array(32));
const exporter2 = crypto.getRandomValues(new Uint8Array(32));

/**
 * @param {string} text
 * @param {string} from
 * @returns {import('../public/lib/types.js').ChatMessage}
 */
const msg = (text, from) => ({ id: 1, room_id: 1, participant_id: from, display_name: from, text, sent_at_ms: 0 });

test('chat is filtered like a plain room, sealed, and opens to the same text for every member', async () => {
  const a = ring('p1', exporter1);
  const b = ring('p2', exporter1);
  const r = await sealOutgoing('  hi\r\nthere\u202E\u0007  ', a.crypto());
  assert.ok(r.ok);
  assert.equal(r.text, 'hi\nthere');
  assert.match(r.envelope, /^e2ee1:1:1:[A-Za-z0-9_-]{38,}$/);
  assert.doesNotMatch(r.envelope, /hi/);
  const opened = await openIncoming(msg(r.envelope, 'p1'), b.crypto());
  assert.equal(opened.text, 'hi\nthere');
  assert.equal(opened.sealed, 'open');
  // The sender reads its own message back too.
  assert.equal((await openIncoming(msg(r.envelope, 'p1'), a.crypto())).text, 'hi\nthere');
});

test('empty and too long messages are refused before sealing; no key means nothing is sent', async () => {
  const a = ring('p1', exporter1);
  const empty = await sealOutgoing(' \u0007 ', a.crypto());
  assert.deepEqual(empty, { ok: false, code: 'chat_empty', chars: 0 });
  const long = await sealOutgoing('x'.repeat(MAX_CHAT_CHARS + 1), a.crypto());
  assert.equal(long.ok, false);
  assert.equal(!long.ok && long.code, 'chat_too_long');
  const fresh = new ChatKeyRing();
  const none = await sealOutgoing('hello', fresh.crypto());
  assert.equal(!none.ok && none.code, 'no_key');
  a.lost();
  const after = await sealOutgoing('hello', a.crypto());
  assert.equal(!after.ok && after.code, 'no_key', 'removed from the group: nothing is sealed');
});

test('a message from an epoch this browser never had reads "from before you joined"; a forged one cannot be read', async () => {
  const old = ring('p1', exporter1, 1);
  const sealed = await sealOutgoing('secret plans', old.crypto());
  assert.ok(sealed.ok);
  const joiner = ring('p3', exporter2, 2);
  const shown = await openIncoming(msg(sealed.envelope, 'p1'), joiner.crypto());
  assert.equal(shown.text, BEFORE_JOIN_TEXT);
  assert.equal(shown.sealed, 'before_join');
  // Same epoch, but the server claims another sender: the AAD does not match.
  const member = ring('p2', exporter1, 1);
  const forged = await openIncoming(msg(sealed.envelope, 'p9'), member.crypto());
  assert.equal(forged.text, UNREADABLE_TEXT);
  // Not an envelope at all.
  assert.equal((await openIncoming(msg('plain text', 'p1'), member.crypto())).text, UNREADABLE_TEXT);
  assert.equal(CHAT_NOTICE, 'Messages sent before you joined cannot be read.');
});

test('what a member sealed is filtered again when opened: control and bidi characters never reach the page', async () => {
  const key = await chatKey(exporter1);
  const raw = await seal('pay \u202Eevil\u0000 now', key, { group: 1, epoch: 1, sender: 'p1' });
  const shown = await openIncoming(msg(raw, 'p1'), ring('p2', exporter1).crypto());
  assert.equal(shown.text, 'pay evil now');
  const blank = await seal('\u0007', key, { group: 1, epoch: 1, sender: 'p1' });
  assert.equal((await openIncoming(msg(blank, 'p1'), ring('p2', exporter1).crypto())).text, UNREADABLE_TEXT);
});

test('a message for the next epoch waits for its key instead of reading "from before you joined"', async () => {
  const sender = ring('p1', exporter2, 2);
  const sealed = await sealOutgoing('after the commit', sender.crypto());
  assert.ok(sealed.ok);
  const late = ring('p2', exporter1, 1);
  const pending = openAll([msg(sealed.envelope, 'p1')], late.crypto());
  setTimeout(() => late.install(1, 2, exporter2, 'p2'), 20);
  const [shown] = await pending;
  assert.equal(shown.text, 'after the commit');
  assert.ok(FUTURE_EPOCH_WAIT_MS >= 1000);
});

test('the create request carries e2ee only when the box is ticked', async () => {
  /** @type {any[]} */
  const bodies = [];
  /** @type {any} */
  const f = async (/** @type {string} */ _url, /** @type {any} */ init) => {
    bodies.push(JSON.parse(init.body));
    return new Response(JSON.stringify({ id: 1, slug: 's', name: 'n', link: 'l', created_at_ms: 0, e2ee: true }), {
      status: 201,
      headers: { 'content-type': 'application/json' },
    });
  };
  await createRoom('Board', { fetch: f, e2ee: true });
  await createRoom('Board', { fetch: f });
  assert.deepEqual(bodies, [{ name: 'Board', e2ee: true }, { name: 'Board' }]);
});

test('the pages carry the checkbox, the indicator, the Security dialog with the code, and the chat notice', () => {
  const home = page('index.html');
  assert.match(home, /<input id="room-e2ee"[^>]*type="checkbox"[^>]*> End-to-end encrypted<\/label>/);
  const room = page('room.html');
  assert.match(room, /href="\/static\/e2ee\.css"/);
  assert.match(room, /<p id="e2ee-indicator"[^>]*role="status"/);
  assert.match(room, /<button id="security-button"[^>]*>[\s\S]*?<span class="label">Security<\/span>/);
  assert.match(room, /aria-label="Verification code"/);
  assert.match(room, /id="e2ee-verify"[^>]*>Mark as verified</);
  assert.match(room, new RegExp(`id="chat-e2ee-notice"[^>]*hidden>${CHAT_NOTICE.replace('.', '\\.')}<`));
  assert.match(room, /id="prejoin-e2ee"[^>]*hidden>[\s\S]*?End-to-end encrypted/);
});

test('a message that arrives before our welcome waits for the key instead of reading "from before you joined"', async () => {
  const sender = ring('p1', exporter2, 2);
  const sealed = await sealOutgoing('welcome aboard', sender.crypto());
  assert.ok(sealed.ok);
  const joining = new ChatKeyRing();
  const pending = openIncoming(msg(sealed.envelope, 'p1'), joining.crypto());
  setTimeout(() => joining.install(1, 2, exporter2, 'p3'), 20);
  assert.equal((await pending).text, 'welcome aboard');
  // An epoch before ours will never come: no wait.
  assert.equal(joining.mayCome(1, 1), false);
  assert.equal(joining.mayCome(2, 0), true, 'a newer group incarnation may still come');
});
