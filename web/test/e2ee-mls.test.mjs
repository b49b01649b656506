// The key agreement with real MLS (vendored ts-mls): identity binding,
// sessions agreeing on epochs through a delivery service with the
// server's ordering rules, forward secrecy, and the cost of a change.
// Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Room } from './e2ee-mls-ds.mjs';
import { bindCredential, createIdentity, verifyCredential } from '../public/e2ee/identity.js';
import { newClient } from '../public/e2ee/group.js';
import { Committer, DEBOUNCE_MS, FAILOVER_MS, MAX_ADDS_PER_COMMIT } from '../public/e2ee/committer.js';

/** @param {Uint8Array} a @param {Uint8Array} b */
const same = (a, b) => Buffer.from(a).equals(Buffer.from(b));

/**
 * The chat key of an epoch, as chat-seal.js derives it (HKDF-SHA256 over
 * the exporter, info "veche chat", AES-GCM-128).
 * @param {Uint8Array} exporter
 */
async function chatKey(exporter) {
  const base = await crypto.subtle.importKey('raw', /** @type {BufferSource} */ (exporter), 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(), info: new TextEncoder().encode('veche chat') },
    base, { name: 'AES-GCM', length: 128 }, false, ['encrypt', 'decrypt'],
  );
}

/** @param {Uint8Array} exporter @param {string} text */
async function seal(exporter, text) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await chatKey(exporter), new TextEncoder().encode(text));
  return { iv, ct: new Uint8Array(ct) };
}

/** @param {Uint8Array} exporter @param {{iv: Uint8Array, ct: Uint8Array}} sealed */
async function open(exporter, sealed) {
  try {
    const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: /** @type {BufferSource} */ (sealed.iv) }, await chatKey(exporter), /** @type {BufferSource} */ (sealed.ct));
    return new TextDecoder().decode(pt);
  } catch {
    return undefined;
  }
}

/** A room whose given participants have agreed on one epoch. @param {string[]} pids */
async function agreedRoom(pids) {
  const room = new Room();
  for (const p of pids) await room.join(p);
  await room.until(() => room.agreed(pids), `${pids.join(', ')} agree on one epoch`);
  return room;
}

test('the identity private key cannot be exported, and the credential binds pid, name and MLS key', async () => {
  const id = await createIdentity();
  await assert.rejects(crypto.subtle.exportKey('pkcs8', id.privateKey));
  const mlsKey = crypto.getRandomValues(new Uint8Array(32));
  const bytes = await bindCredential(id, 'p1', 'Ada', mlsKey);
  assert.deepEqual(await verifyCredential(bytes, mlsKey), { pid: 'p1', name: 'Ada', idk: JSON.parse(new TextDecoder().decode(bytes)).idk, ok: true });
  const other = crypto.getRandomValues(new Uint8Array(32));
  assert.equal((await verifyCredential(bytes, other)).ok, false, 'another leaf key');
  const json = JSON.parse(new TextDecoder().decode(bytes));
  const renamed = new TextEncoder().encode(JSON.stringify({ ...json, name: 'Eve' }));
  assert.equal((await verifyCredential(renamed, mlsKey)).ok, false, 'a changed name');
  assert.equal((await verifyCredential(new TextEncoder().encode('{"pid":1}'), mlsKey)).ok, false);
  assert.equal((await verifyCredential(new Uint8Array([0xff, 0xfe]), mlsKey)).ok, false);
});

test('three participants reach the same epoch, exporter, authenticator and member list', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const [ea, eb, ec] = ['a', 'b', 'c'].map((p) => room.last(p));
  assert.ok(same(ea.authenticator, eb.authenticator) && same(eb.authenticator, ec.authenticator));
  assert.deepEqual(ea.members.map((m) => [m.pid, m.ok]).sort(), [['a', true], ['b', true], ['c', true]]);
  assert.deepEqual(eb.members, ec.members);
  assert.equal(new Set([ea.myLeaf, eb.myLeaf, ec.myLeaf]).size, 3);
  assert.equal(ea.exporter.length, 32);
  assert.equal(room.count.refused, 0);
});

test('a join makes a new epoch with a new exporter that everyone shares', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const before = room.last('a');
  await room.join('d');
  await room.until(() => room.agreed(['a', 'b', 'c', 'd']), 'd joins');
  const after = room.last('d');
  assert.equal(after.group, before.group);
  assert.ok(after.epoch > before.epoch);
  assert.ok(!same(after.exporter, before.exporter));
});

test('a leave makes a new epoch; a removed member that still listens never learns it', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const before = room.last('c');
  const heardByC = room.epochs.get('c') ?? [];
  const cBefore = heardByC.length;
  await room.leave('c', { listen: true });
  await room.until(() => room.agreed(['a', 'b']) && room.last('a').epoch > before.epoch, 'a and b rekey without c');
  const after = room.last('a');
  assert.ok(!same(after.exporter, before.exporter));
  // c processed the commit that removed it (it was delivered) and got no
  // key for the new epoch: no epoch after it was reported to c.
  await room.wait(1000);
  assert.equal(heardByC.length, cBefore, 'c reported no new epoch');
  assert.equal(room.sessions.get('c')?.stats.rejoins, 1, 'c processed the commit and learned it was removed');
  assert.ok(heardByC.every((e) => !same(e.exporter, after.exporter)));
});

test('forward secrecy: the commit that removes a member tells it so, and leaves it no state for the next epoch', async () => {
  const ids = await Promise.all([0, 1, 2].map(() => createIdentity()));
  const [a, b, c] = await Promise.all([newClient(ids[0], 'a', 'A'), newClient(ids[1], 'b', 'B'), newClient(ids[2], 'c', 'C')]);
  await a.createGroup();
  const add = await a.commit({ adds: [b.keyPackage, c.keyPackage] });
  a.applyOwnCommit(add);
  await b.joinFromWelcome(/** @type {string} */ (add.welcome));
  await c.joinFromWelcome(/** @type {string} */ (add.welcome));
  const n = await c.exporter('veche sframe', new Uint8Array(), 32);
  assert.ok(same(n, await a.exporter('veche sframe', new Uint8Array(), 32)));
  const remove = await a.commit({ removes: [c.myLeaf] });
  a.applyOwnCommit(remove);
  assert.deepEqual(await b.processCommit(remove.commit), { removedMe: false });
  assert.deepEqual(await c.processCommit(remove.commit), { removedMe: true });
  assert.equal(c.inGroup, false);
  await assert.rejects(c.exporter('veche sframe', new Uint8Array(), 32), /not in a group/);
  const next = await a.exporter('veche sframe', new Uint8Array(), 32);
  assert.ok(same(next, await b.exporter('veche sframe', new Uint8Array(), 32)));
  assert.ok(!same(next, n));
  // A frame sealed at n+1 does not open with the last key c had.
  const sealed = await seal(next, 'after c left');
  assert.equal(await open(next, sealed), 'after c left', 'the control opens');
  assert.equal(await open(n, sealed), undefined);
});

test('forward secrecy: a joiner at epoch n cannot open what was sealed at n-1', async () => {
  const room = await agreedRoom(['a', 'b']);
  const old = room.last('a');
  const sealed = await seal(old.exporter, 'before d joined');
  assert.equal(await open(room.last('b').exporter, sealed), 'before d joined', 'a member of n-1 opens it');
  await room.join('d');
  await room.until(() => room.agreed(['a', 'b', 'd']), 'd joins');
  const seenByD = room.epochs.get('d') ?? [];
  assert.ok(seenByD.every((e) => e.epoch > old.epoch), 'd never had an epoch up to n-1');
  for (const e of seenByD) assert.equal(await open(e.exporter, sealed), undefined);
});

test('a change costs one commit: a wave of joins is one commit, a leave is one commit seen once by each', async () => {
  const pids = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];
  const room = new Room();
  await room.join(pids[0]);
  await room.until(() => room.agreed([pids[0]]), 'p0 founds the group');
  for (const p of pids.slice(1)) await room.join(p);
  await room.until(() => room.agreed(pids), 'all eight agree');
  assert.equal(room.count.accepted, 1, 'seven joins in one commit');
  assert.equal(room.count.commits, 1);
  const delivered = room.count.delivered;
  await room.leave('p5');
  const rest = pids.filter((p) => p !== 'p5');
  await room.until(() => room.agreed(rest), 'the rest rekey');
  await room.wait(2 * FAILOVER_MS);
  assert.equal(room.count.commits, 2, 'one more commit for the leave, and no other');
  assert.equal(room.count.delivered - delivered, rest.length, 'O(N): the commit, once to each');
});

test('a commit for epoch n+1 that arrives before n is held until n is applied', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const epoch = room.ds.epoch;
  room.swapNext.add('c');
  await room.join('d');
  await room.until(() => room.ds.epoch === epoch + 1, 'the server accepts the commit adding d');
  await room.join('e');
  await room.until(() => room.agreed(['a', 'b', 'c', 'd', 'e']), 'e joins, c gets the two commits swapped');
  assert.equal(room.sessions.get('c')?.stats.rejoins, 0);
  assert.equal(room.swapped.size, 0, 'the swap happened');
  assert.equal(room.ds.epoch, epoch + 2);
});

test('two committers in one epoch: the server takes one, the other drops its commit', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  // b wrongly believes a is gone, so both a and b think they commit.
  await room.sessions.get('b')?.participantLeft('a', true);
  await room.join('d');
  await room.until(() => room.agreed(['a', 'b', 'c', 'd']), 'd joins once');
  assert.ok(room.count.refused >= 1, 'the second commit was refused');
  for (const p of ['a', 'b', 'c']) assert.equal(room.sessions.get(p)?.stats.rejoins, 0, `${p} did not rejoin`);
});

test('a reconnect without state rejoins: the old leaf is replaced by the new one', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const before = room.last('a');
  await room.sessions.get('b')?.reset();
  await room.until(() => room.agreed(['a', 'b', 'c']) && room.last('a').epoch > before.epoch, 'b is back');
  assert.deepEqual(room.last('a').members.map((m) => m.pid).sort(), ['a', 'b', 'c']);
});

test('a key package retry that crosses the welcome is taken as a rejoin, and the welcome re-admits the same leaf keys', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const epoch = room.ds.epoch;
  const b = /** @type {import('../public/e2ee/session.js').E2eeSession} */ (room.sessions.get('b'));
  room.fromClient('b', { type: 'e2ee_key_package', key_package: /** @type {any} */ (b.client).keyPackage });
  await room.until(() => room.ds.epoch > epoch && room.agreed(['a', 'b', 'c']), 'b is re-admitted');
  assert.equal(b.stats.rejoins, 0, 'b kept its key package');
  assert.ok(room.ds.members.has('b'));
});

test('a member that missed the last commit and sees a later epoch in use rejoins', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const c = /** @type {import('../public/e2ee/session.js').E2eeSession} */ (room.sessions.get('c'));
  // c's connection is down while d is added: c never gets that commit.
  room.sessions.delete('c');
  await room.join('d');
  await room.until(() => room.ds.waiting.size === 0 && room.last('d') !== undefined, 'd is added without c');
  room.sessions.set('c', c);
  const now = room.last('a');
  await c.sawEpoch(now.group, now.epoch);
  await room.until(() => room.agreed(['a', 'b', 'c', 'd']), 'c catches up by rejoining');
  assert.equal(c.stats.rejoins, 1);
});

test('the lowest leaf rejoining hands committing to the next member', async () => {
  const room = await agreedRoom(['a', 'b', 'c']);
  const founder = room.last('a').members.find((m) => m.leaf === 0)?.pid ?? '';
  await room.sessions.get(founder)?.reset();
  await room.until(() => room.agreed(['a', 'b', 'c']) && room.sessions.get(founder)?.stats.rejoins === 1, `${founder} is back`);
});

test('when the last member leaves, the next key package founds a new group', async () => {
  const room = await agreedRoom(['a']);
  const first = room.last('a').group;
  await room.leave('a');
  await room.join('b');
  await room.until(() => room.agreed(['b']), 'b founds');
  assert.equal(room.last('b').group, first + 1);
  assert.equal(room.last('b').epoch, 0);
});

test('a key package whose credential names another participant is not committed', async () => {
  const room = await agreedRoom(['a', 'b']);
  const mallory = await newClient(await createIdentity(), 'b', 'Bob');
  room.ds.waiting.add('m');
  room.broadcast({ type: 'e2ee_key_package', participant_id: 'm', group: room.ds.group, key_package: mallory.keyPackage });
  await room.wait(3 * DEBOUNCE_MS + FAILOVER_MS);
  assert.equal(room.count.commits, 1, 'only the commit that added b');
  assert.ok(room.agreed(['a', 'b']));
});

test('committer: the lowest present leaf commits a batch after the debounce; the next one after a failover delay', () => {
  const members = [{ leaf: 0, pid: 'a' }, { leaf: 1, pid: 'b' }, { leaf: 2, pid: 'c' }];
  const a = new Committer('a');
  const b = new Committer('b');
  for (const c of [a, b]) {
    c.keyPackage('d', 'KPd', 1000);
    c.keyPackage('c', 'KPc2', 1100);
    c.left('e', false, 1100);
  }
  assert.ok(a.isCommitter(members) && !b.isCommitter(members));
  assert.equal(a.due(members, 1000 + DEBOUNCE_MS - 1), undefined);
  assert.deepEqual(a.due(members, 1000 + DEBOUNCE_MS), { adds: ['KPd', 'KPc2'], removeLeaves: [2], added: ['d', 'c'], removed: [] });
  assert.equal(b.due(members, 1000 + DEBOUNCE_MS), undefined, 'b waits for a');
  assert.ok(b.due(members, 1000 + DEBOUNCE_MS + FAILOVER_MS), 'then takes over');
  b.left('a', true, 2000);
  assert.ok(b.isCommitter(members), 'a dropped: b is first in line');
  a.applied(['d', 'c'], [], 3000);
  assert.deepEqual(a.pending(), { adds: [], removes: [] });
});

test('committer: a refusal drops the adds (waiters resend) but keeps the removes', () => {
  const members = [{ leaf: 0, pid: 'a' }, { leaf: 1, pid: 'b' }];
  const a = new Committer('a');
  a.keyPackage('d', 'KPd', 0);
  a.left('b', false, 0);
  a.refused(500);
  assert.deepEqual(a.pending(), { adds: [], removes: ['b'] });
  assert.equal(a.due(members, 600), undefined, 'backs off');
  assert.deepEqual(a.due(members, 1500), { adds: [], removeLeaves: [1], added: [], removed: ['b'] });
});

test('committer: a wave larger than one commit may carry is split, oldest key packages first', () => {
  const members = [{ leaf: 0, pid: 'a' }];
  const a = new Committer('a');
  const n = MAX_ADDS_PER_COMMIT + 5;
  for (let i = 0; i < n; i++) a.keyPackage(`j${i}`, `KP${i}`, 0);
  const first = a.due(members, DEBOUNCE_MS);
  assert.equal(first?.added.length, MAX_ADDS_PER_COMMIT);
  assert.equal(first?.added[0], 'j0');
  a.applied(first?.added ?? [], [], 1000);
  assert.equal(a.due(members, 1000 + DEBOUNCE_MS)?.added.length, 5);
});

test('held commits: the next epoch comes out in order, a lasting gap expires, too many are dropped', async () => {
  const { HeldCommits, GAP_TIMEOUT_MS, MAX_HELD } = await import('../public/e2ee/held.js');
  /** @param {number} group @param {number} epoch @returns {import('../public/lib/types.js').E2eeCommitMessage} */
  const c = (group, epoch) => ({ type: 'e2ee_commit', participant_id: 'x', group, epoch, added: [], removed: [], commit: `${group}.${epoch}` });
  const h = new HeldCommits();
  h.hold(c(1, 5));
  h.hold(c(1, 7));
  h.gap(0);
  assert.equal(h.at(1, 5, 10)?.commit, '1.5');
  assert.equal(h.at(1, 6, 20), undefined, 'epoch 6 is missing');
  assert.ok(!h.gapExpired(20 + GAP_TIMEOUT_MS - 1) && h.gapExpired(20 + GAP_TIMEOUT_MS));
  for (let e = 0; e < MAX_HELD; e++) assert.equal(h.hold(c(2, e)), e + 2 <= MAX_HELD);
});
