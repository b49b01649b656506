// The admin page's chart geometry and formatting, without a browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChart, niceCeiling } from '../public/lib/charts.js';
import { formatDuration, meetingsPath, myMeetingsPath, myMeetingRow } from '../public/lib/admin-format.js';

test('grid tops are round numbers at or above the largest value', () => {
  assert.equal(niceCeiling(0), 1);
  assert.equal(niceCeiling(1), 1);
  assert.equal(niceCeiling(3), 5);
  assert.equal(niceCeiling(7), 10);
  assert.equal(niceCeiling(12), 20);
  assert.equal(niceCeiling(200), 200);
  assert.equal(niceCeiling(201), 500);
});

test('bars share the plot width and their heights are proportional', () => {
  const c = barChart([0, 5, 10], ['a', 'b', 'c'], { width: 336, height: 130 });
  // Plot: 36..332 wide (296 / 3 per bar), 8..108 tall (100 units for 10).
  assert.equal(c.max, 10);
  assert.equal(c.bars.length, 3);
  const [zero, half, full] = c.bars;
  assert.equal(zero.height, 0);
  assert.equal(zero.y, c.plot.bottom);
  assert.equal(full.height, 100);
  assert.equal(full.y, c.plot.top);
  assert.equal(half.height, 50);
  for (const b of c.bars) {
    assert.ok(b.x >= c.plot.left && b.x + b.width <= c.plot.right, 'inside the plot');
  }
  assert.ok(zero.x + zero.width < half.x, 'bars do not touch');
  assert.deepEqual(c.ticks.map((t) => t.value), [0, 5, 10]);
  assert.equal(c.bars[1].label, 'b');
});

test('an empty chart has a unit scale and no bars out of bounds', () => {
  const c = barChart([0, 0], ['x', 'y']);
  assert.equal(c.max, 1);
  assert.deepEqual(c.ticks.map((t) => t.value), [0, 1]);
  assert.ok(c.bars.every((b) => b.height === 0));
});

test('axis labels thin out but the newest bucket is always labelled', () => {
  const values = Array.from({ length: 30 }, (_, i) => i);
  const labels = values.map((i) => `d${i}`);
  const c = barChart(values, labels);
  assert.ok(c.axis.length <= 7, `${c.axis.length} labels`);
  assert.equal(c.axis[c.axis.length - 1].text, 'd29');
});

test('durations read as people say them', () => {
  assert.equal(formatDuration(44_600), '45 s');
  assert.equal(formatDuration(12 * 60_000), '12 min');
  assert.equal(formatDuration(7_400), '7 s');
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(12 * 60_000 + 5_200), '12 min 05 s');
  assert.equal(formatDuration(59 * 60_000 + 59_600), '1 h 00 min');
  assert.equal(formatDuration(65 * 60_000), '1 h 05 min');
});

test('the history path carries the search and the cursor', () => {
  assert.equal(meetingsPath('', null), '/api/admin/meetings');
  assert.equal(meetingsPath(' design ', 12), '/api/admin/meetings?q=design&before=12');
});

test('my meetings: rows say when, which meeting with its link, how long and how many; one still going says so', () => {
  const ended = myMeetingRow({
    room_name: 'Weekly', room_slug: 'AAAAAAAAAAAAAAAAAAAAAA', started_at_ms: Date.UTC(2026, 11, 6, 10),
    ended_at_ms: Date.UTC(2026, 11, 6, 10, 12, 5), duration_ms: 725_000, participants: 3,
  });
  assert.equal(ended.name, 'Weekly');
  assert.equal(ended.href, '/r/AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(ended.duration, '12 min 05 s');
  assert.equal(ended.people, '3 people');
  assert.ok(ended.when.includes('2026'), ended.when);
  const going = myMeetingRow({
    room_name: 'Now', room_slug: 'BBBBBBBBBBBBBBBBBBBBBB', started_at_ms: 1, ended_at_ms: null, duration_ms: 5, participants: 1,
  });
  assert.equal(going.duration, 'under way');
  assert.equal(going.people, '1 person');
  assert.equal(myMeetingsPath(null), '/api/me/meetings');
  assert.equal(myMeetingsPath(42), '/api/me/meetings?before=42');
});
