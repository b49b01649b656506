// Cost of the key agreement in a room of 60, with the vendored ts-mls and
// Veche's suite and credential, run in Node (WebCrypto, like the browser):
//
//   node web/bench/mls-bench.mjs [members]
//
// Prints medians of a few runs: key package (time, size), the commit that
// adds the last member (time, commit and welcome size), joining from that
// welcome, the commit that removes one member (time, size), and processing
// it at another member. Sizes are the base64url text on the wire, which
// protocol/src/limits.rs `e2ee` bounds.

import { createIdentity } from '../public/e2ee/identity.js';
import { newClient } from '../public/e2ee/group.js';
import { MAX_ADDS_PER_COMMIT } from '../public/e2ee/committer.js';

const N = Number(process.argv[2] ?? 60);
const RUNS = 5;

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** @template T @param {() => Promise<T>} f @returns {Promise<[T, number]>} */
async function timed(f) {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

const identity = await createIdentity();
const kpTimes = [];
const clients = [];
for (let i = 0; i < N; i++) {
  const [c, ms] = await timed(() => newClient(identity, `p${i}`, `Participant ${i}`));
  kpTimes.push(ms);
  clients.push(c);
}
const [founder, ...rest] = clients;
await founder.createGroup();
// Everyone but the last joins in a wave, as the committer batches it (at
// most MAX_ADDS_PER_COMMIT per commit), then the last alone.
/** @type {import('../public/e2ee/group.js').PendingCommit[]} */
const waves = [];
const joiners = rest.slice(0, -1);
for (let i = 0; i < joiners.length; i += MAX_ADDS_PER_COMMIT) {
  const chunk = joiners.slice(i, i + MAX_ADDS_PER_COMMIT);
  const wave = await founder.commit({ adds: chunk.map((c) => c.keyPackage) });
  founder.applyOwnCommit(wave);
  await Promise.all(joiners.slice(0, i).map((c) => c.processCommit(wave.commit)));
  await Promise.all(chunk.map((c) => c.joinFromWelcome(/** @type {string} */ (wave.welcome))));
  waves.push(wave);
}

const addTimes = [];
const joinTimes = [];
let add;
for (let r = 0; r < RUNS; r++) {
  const [p, ms] = await timed(() => founder.commit({ adds: [rest[rest.length - 1].keyPackage] }));
  addTimes.push(ms);
  add = p;
  const fresh = await newClient(identity, `p${N - 1}`, `Participant ${N - 1}`);
  const again = await founder.commit({ adds: [fresh.keyPackage] });
  const [, jms] = await timed(() => fresh.joinFromWelcome(/** @type {string} */ (again.welcome)));
  joinTimes.push(jms);
}
add = /** @type {import('../public/e2ee/group.js').PendingCommit} */ (add);
founder.applyOwnCommit(add);
await Promise.all(rest.map((c) => (c.inGroup ? c.processCommit(add.commit) : c.joinFromWelcome(/** @type {string} */ (add.welcome)))));

const removeTimes = [];
const processTimes = [];
let remove;
for (let r = 0; r < RUNS; r++) {
  const committer = rest[0];
  const [p, ms] = await timed(() => committer.commit({ removes: [rest[rest.length - 1].myLeaf] }));
  removeTimes.push(ms);
  remove = p;
  // Processing does not change the processor's state here: use a member
  // per run, each once.
  const [, pms] = await timed(() => rest[1 + r].processCommit(p.commit));
  processTimes.push(pms);
}
remove = /** @type {import('../public/e2ee/group.js').PendingCommit} */ (remove);

const kb = (s = '') => `${(s.length / 1024).toFixed(1)} KB`;
console.log(`MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, ts-mls 1.6.4, ${N} members, node ${process.version}, medians of ${RUNS}`);
console.table({
  'key package': { ms: median(kpTimes).toFixed(2), size: kb(clients[0].keyPackage) },
  [`commit adding ${Math.min(MAX_ADDS_PER_COMMIT, N - 2)} (a wave)`]: { ms: '', size: kb(waves[0].commit), welcome: kb(waves[0].welcome) },
  'commit adding 1': { ms: median(addTimes).toFixed(2), size: kb(add.commit), welcome: kb(add.welcome) },
  'join from welcome': { ms: median(joinTimes).toFixed(2) },
  'commit removing 1': { ms: median(removeTimes).toFixed(2), size: kb(remove.commit) },
  'process that commit': { ms: median(processTimes).toFixed(2) },
});
