// The recording pages' markup against their scripts and the UI contract
// the browser tests rely on (issue 13): every element id a recording view
// looks up exists in its page, and the accessible names are exactly
// "Start recording", "Stop recording", a role="status" indicator,
// "Recordings", "Play", "Pause", "Seek" and "Speed". Run with
// `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const PUBLIC = new URL('../public/', import.meta.url);

/** @param {string} path */
const read = (path) => readFileSync(new URL(path, PUBLIC), 'utf8');

/**
 * The ids a script looks up with `$('…')`.
 * @param {string} path
 * @returns {string[]}
 */
function lookedUp(path) {
  return [...read(path).matchAll(/\$\('([A-Za-z0-9_-]+)'\)/g)].map((m) => m[1]);
}

/**
 * The ids a page declares.
 * @param {string} html
 * @returns {Set<string>}
 */
function ids(html) {
  return new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
}

test('every id a recording view looks up is in its page', () => {
  const pages = /** @type {[string, string[]][]} */ ([
    ['room.html', ['ui/recording-room.js']],
    ['recording.html', ['recording.js', 'ui/recording-player.js']],
    ['recordings.html', ['recordings.js']],
  ]);
  for (const [page, scripts] of pages) {
    const declared = ids(read(page));
    for (const script of scripts) {
      const wanted = lookedUp(script);
      assert.ok(wanted.length > 3, `${script} looks up elements`);
      // Made by the script itself, inside the indicator.
      const missing = wanted.filter((id) => !declared.has(id) && id !== 'recording-text');
      assert.deepEqual(missing, [], `${script} looks up ids that ${page} lacks`);
    }
  }
});

test('the room page has the recording buttons and the status indicator, by their names', () => {
  const room = read('room.html');
  assert.match(room, /<button id="record-start"[^>]*>[\s\S]*?<span class="label">Start recording<\/span>\s*<\/button>/);
  assert.match(room, /<button id="record-stop"[^>]*>[\s\S]*?<span class="label">Stop recording<\/span>\s*<\/button>/);
  assert.match(room, /<p id="recording-indicator" class="recording-indicator" role="status"><\/p>/);
  assert.match(room, /<a id="call-recordings"[^>]*>Recordings<\/a>/);
});

test('the player has one timeline: Play, Pause, a Seek slider and a Speed select with the four speeds', () => {
  const player = read('recording.html');
  assert.match(player, /<button type="button" id="play"[^>]*>Play<\/button>/);
  assert.match(player, /<button type="button" id="pause"[^>]*>Pause<\/button>/);
  assert.match(player, /<input type="range" id="seek"[^>]*aria-label="Seek"/);
  assert.match(player, /<label for="speed">Speed<\/label>/);
  const speeds = [...player.matchAll(/<option value="([0-9.]+)"[^>]*>[0-9.]+×<\/option>/g)].map((m) => m[1]);
  assert.deepEqual(speeds, ['0.5', '1', '1.5', '2']);
  assert.match(player, /Download everything as one file/);
});

test('the list page is called Recordings and pages with Load more', () => {
  const list = read('recordings.html');
  assert.match(list, /<title>Recordings · Veche<\/title>/);
  assert.match(list, /<h1 id="recordings-title">Recordings<\/h1>/);
  assert.match(list, /<button type="button" id="load-more"[^>]*>Load more<\/button>/);
});
