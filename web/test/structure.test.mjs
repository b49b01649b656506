// The web client's shape: no module imports another in a cycle, and no
// file grows into a monolith again. Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PUBLIC = fileURLToPath(new URL('../public/', import.meta.url));
/** The project's rule is "about 400 lines"; past this a file must be split. */
const MAX_LINES = 450;
/** Third-party code, vendored as published (scripts/vendor-mls.sh): not ours to split. */
const VENDOR = 'vendor';

/**
 * Every .js file under `dir`.
 * @param {string} dir
 * @returns {string[]}
 */
function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === VENDOR ? [] : jsFiles(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

/**
 * The modules a file imports at run time (`import ... from './x.js'` and
 * `export ... from`), as absolute paths. JSDoc `import('...')` types are
 * not imports.
 * @param {string} file
 * @returns {string[]}
 */
function imports(file) {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm)];
  return found.map((m) => resolve(dirname(file), m[1])).filter((p) => !relative(PUBLIC, p).startsWith(`${VENDOR}/`));
}

test('no web module imports another in a cycle', () => {
  const files = jsFiles(PUBLIC);
  assert.ok(files.length > 10, 'the client files were found');
  /** @type {Map<string, 'visiting' | 'done'>} */
  const state = new Map();
  /** @type {string[]} */
  const stack = [];
  /** @param {string} f */
  const visit = (f) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(f)), f].map((p) => relative(PUBLIC, p));
      assert.fail(`import cycle: ${cycle.join(' -> ')}`);
    }
    state.set(f, 'visiting');
    stack.push(f);
    for (const dep of imports(f)) visit(dep);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) visit(f);
});

test(`no web client file is over ${MAX_LINES} lines`, () => {
  const long = jsFiles(PUBLIC)
    .map((f) => ({ file: relative(PUBLIC, f), lines: readFileSync(f, 'utf8').split('\n').length }))
    .filter((f) => f.lines > MAX_LINES);
  assert.deepEqual(long, []);
});
