#!/usr/bin/env bash
# Vendors the MLS library the browser client uses for end-to-end encryption
# into web/public/vendor/mls/, so that it ships inside the binary with the
# rest of the client (only web/public is embedded; there is no bundler).
#
#   ./scripts/vendor-mls.sh
#
# What it does:
#  1. `npm install` the pinned packages into a temporary folder (never into
#     web/): ts-mls 1.6.4 (2.0 is a release candidate; ts-mls is not
#     audited, see docs/e2ee.md "Threat model"), @hpke/core 1.9.0 and
#     @hpke/common 1.10.x. No @noble package is needed: with the suite
#     MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 every primitive runs
#     through WebCrypto, and ts-mls only reaches @noble through dynamic
#     imports for other suites (or through its index.js, which we do not
#     load).
#  2. Starting from the ts-mls modules web/public/e2ee/group.js needs
#     (ENTRIES below), follow the static imports and copy only the files
#     reached (each .js with its .d.ts, for tsc), plus the licences.
#  3. Rewrite the bare specifiers `@hpke/core` and `@hpke/common` into
#     relative paths. The vendored tree is then plain relative ES modules:
#     no import map in the page, Node tests import the very same files, and
#     a module worker could load them too (import maps do not apply there).
#  4. Write web/public/vendor/mls/mls.js, the one module the client imports,
#     re-exporting what group.js uses, and modules.js, the list of every
#     vendored module, for <link rel="modulepreload"> (e2ee/mls-preload.js).
#
# Run it again after changing a version or ENTRIES; commit the result.
set -euo pipefail

TS_MLS=1.6.4
HPKE_CORE=1.9.0
HPKE_COMMON=1.10.1

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/web/public/vendor/mls"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(
  cd "$tmp"
  npm init -y >/dev/null
  npm install --ignore-scripts --no-audit --no-fund --omit=peer \
    "ts-mls@$TS_MLS" "@hpke/core@$HPKE_CORE" "@hpke/common@$HPKE_COMMON" >/dev/null
)

rm -rf "$out"
mkdir -p "$out"

NODE_MODULES="$tmp/node_modules" OUT="$out" node --input-type=module <<'EOF'
import { readFileSync, writeFileSync, mkdirSync, existsSync, copyFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const nm = process.env.NODE_MODULES;
const out = process.env.OUT;
/** Package folder in node_modules -> folder under vendor/mls. */
const PACKAGES = {
  'ts-mls': { src: join(nm, 'ts-mls/dist/src'), dst: join(out, 'ts-mls'), lic: join(nm, 'ts-mls/LICENSE') },
  '@hpke/core': { src: join(nm, '@hpke/core/esm'), dst: join(out, 'hpke-core'), lic: join(nm, '@hpke/core/LICENSE') },
  '@hpke/common': { src: join(nm, '@hpke/common/esm'), dst: join(out, 'hpke-common'), lic: join(nm, '@hpke/common/LICENSE') },
};
/** Bare specifier -> the file it resolves to. */
const BARE = {
  '@hpke/core': join(nm, '@hpke/core/esm/mod.js'),
  '@hpke/common': join(nm, '@hpke/common/esm/mod.js'),
};
/** The ts-mls modules group.js uses (see mls.js below). */
const ENTRIES = [
  'clientState.js', 'createCommit.js', 'processMessages.js', 'keyPackage.js', 'message.js',
  'keySchedule.js', 'crypto/ciphersuite.js', 'crypto/getCiphersuiteImpl.js',
  'defaultCapabilities.js', 'lifetime.js', 'pskIndex.js', 'incomingMessageAction.js',
  'util/byteArray.js', 'clientConfig.js',
].map((f) => join(PACKAGES['ts-mls'].src, f));

/** Where a source file goes in the vendored tree. */
function target(file) {
  for (const p of Object.values(PACKAGES)) {
    if (file.startsWith(p.src + '/')) return join(p.dst, relative(p.src, file));
  }
  throw new Error(`not in a vendored package: ${file}`);
}

// Static imports and re-exports only: dynamic `import("...")` is how
// ts-mls loads the optional packages of other suites, never run here.
// Only at the start of a line, so that examples in comments do not count.
const STATIC = /^(\s*(?:import|export)\b[^'";]*?\bfrom\s*|\s*import\s*)(["'])([^"']+)\2/gm;
const seen = new Set();
const queue = [...ENTRIES];
while (queue.length > 0) {
  const file = queue.pop();
  if (seen.has(file)) continue;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(STATIC, (all, head, q, spec) => {
    let dep;
    if (spec.startsWith('.')) dep = resolve(dirname(file), spec);
    else if (spec in BARE) dep = BARE[spec];
    else throw new Error(`${file} imports ${spec}, which is not vendored`);
    queue.push(dep);
    const dst = target(file);
    let rel = relative(dirname(dst), target(dep));
    if (!rel.startsWith('.')) rel = './' + rel;
    return `${head}${q}${rel}${q}`;
  }).replace(/\n\/\/# sourceMappingURL=.*$/, '\n');
  const dst = target(file);
  mkdirSync(dirname(dst), { recursive: true });
  writeFileSync(dst, rewritten);
}
// Types for tsc --checkJs: the .d.ts of every module copied, and of the
// modules those name only as types, with the same specifier rewrite.
const typeQueue = [...seen].map((f) => f.replace(/\.js$/, '.d.ts')).filter(existsSync);
const typeSeen = new Set(typeQueue);
while (typeQueue.length > 0) {
  const dts = typeQueue.pop();
  const text = readFileSync(dts, 'utf8').replace(/(from\s*|import\()(["'])([^"']+)\2/g, (all, head, q, spec) => {
    if (!spec.startsWith('.') && !(spec in BARE)) return all;
    const depJs = spec.startsWith('.') ? resolve(dirname(dts), spec) : BARE[spec];
    const dep = depJs.replace(/\.js$/, '.d.ts');
    if (existsSync(dep) && !typeSeen.has(dep)) {
      typeSeen.add(dep);
      typeQueue.push(dep);
    }
    let rel = relative(dirname(target(dts)), target(depJs));
    if (!rel.startsWith('.')) rel = './' + rel;
    return `${head}${q}${rel}${q}`;
  }).replace(/\n\/\/# sourceMappingURL=.*$/, '\n');
  mkdirSync(dirname(target(dts)), { recursive: true });
  writeFileSync(target(dts), text);
}
for (const p of Object.values(PACKAGES)) copyFileSync(p.lic, join(p.dst, 'LICENSE'));
// The list of modules, for <link rel="modulepreload"> (e2ee/mls-preload.js):
// the import graph is 8 levels deep, and preloading fetches it in one round.
const modules = [...seen].map((f) => relative(out, target(f))).sort();
writeFileSync(join(out, 'modules.js'), `// Generated by scripts/vendor-mls.sh: every module mls.js loads, relative to this folder.\n`
  + `export const MODULES = Object.freeze(${JSON.stringify(['mls.js', ...modules], null, 1)});\n`);
console.log(`vendored ${seen.size} modules`);
EOF

cat >"$out/mls.js" <<'EOF'
// The part of ts-mls the client uses, vendored by scripts/vendor-mls.sh
// (do not edit the files under this folder by hand). Importing single
// modules instead of ts-mls's index.js keeps the optional @noble packages
// (other ciphersuites) out of the page.
export { createGroup, joinGroup } from './ts-mls/clientState.js';
export { defaultClientConfig } from './ts-mls/clientConfig.js';
export { createCommit } from './ts-mls/createCommit.js';
export { processMessage } from './ts-mls/processMessages.js';
export { generateKeyPackageWithKey } from './ts-mls/keyPackage.js';
export { encodeMlsMessage, decodeMlsMessage } from './ts-mls/message.js';
export { mlsExporter } from './ts-mls/keySchedule.js';
export { getCiphersuiteFromName } from './ts-mls/crypto/ciphersuite.js';
export { getCiphersuiteImpl } from './ts-mls/crypto/getCiphersuiteImpl.js';
export { defaultCapabilities } from './ts-mls/defaultCapabilities.js';
export { defaultLifetime } from './ts-mls/lifetime.js';
export { emptyPskIndex } from './ts-mls/pskIndex.js';
export { acceptAll } from './ts-mls/incomingMessageAction.js';
export { zeroOutUint8Array } from './ts-mls/util/byteArray.js';
EOF
cp "$out/mls.js" "$out/mls.d.ts"

cat >"$out/README.md" <<EOF
# Vendored MLS

Generated by \`scripts/vendor-mls.sh\`; do not edit by hand. Only the
modules reachable from \`mls.js\` are here, with bare specifiers rewritten
to relative paths (no import map needed).

| Package | Version | Licence | Folder |
|---|---|---|---|
| ts-mls | $TS_MLS | MIT | ts-mls/ |
| @hpke/core | $HPKE_CORE | MIT | hpke-core/ |
| @hpke/common | $HPKE_COMMON | MIT | hpke-common/ |
EOF
echo "vendored into ${out#"$root"/}: $(find "$out" -name '*.js' | wc -l) files, $(find "$out" -name '*.js' -exec cat {} + | wc -c) bytes of JavaScript"
