// The recording player's timeline (lib/recording-player.js): one clock for
// every file, where each file is at time T, when a video is put back in
// place, and how times and files are worded. Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CORRECTION_COOLDOWN_MS,
  DRIFT_S,
  MAX_STALL_MS,
  fileNames,
  filePosition,
  followLeader,
  formatClock,
  formatDuration,
  holdsClock,
  newClock,
  pause,
  placeholderText,
  planVideo,
  play,
  seek,
  seekValueText,
  setRate,
  tick,
  timeAt,
} from '../public/lib/recording-player.js';
import { recordedFile as file } from './fakes.mjs';

/** @typedef {import('../public/lib/recording-player.js').VideoFacts} VideoFacts */
/** @typedef {import('../public/lib/recording-api.js').FileView} FileView */

/**
 * A video that is loaded and in place.
 * @param {Partial<VideoFacts>} over
 * @returns {VideoFacts}
 */
function video(over = {}) {
  return { currentTime: 0, paused: true, seeking: false, ended: false, readyState: 4, duration: 10, ...over };
}

const calm = { sinceCorrectionMs: Infinity };

describe('the clock', () => {
  test('it advances only while playing, at the chosen speed, and stops at the end', () => {
    let c = newClock(20_000, 1000);
    assert.equal(timeAt(c, 5000), 0, 'paused at first');
    c = play(c, 1000);
    assert.equal(timeAt(c, 3000), 2);
    c = setRate(c, 2, 3000);
    assert.equal(timeAt(c, 4000), 4);
    c = pause(c, 4000);
    assert.equal(timeAt(c, 60_000), 4, 'a paused clock stays');
    c = play(c, 60_000);
    assert.equal(timeAt(c, 200_000), 20, 'never past the end');
    c = tick(c, 200_000, false);
    assert.equal(c.playing, false, 'the end stops it');
    c = play(c, 200_001);
    assert.equal(timeAt(c, 200_001), 0, 'Play at the end starts again');
  });

  test('a seek is clamped to the timeline and keeps playing or paused', () => {
    const c = play(newClock(10_000, 0), 0);
    assert.equal(timeAt(seek(c, 5, 100), 100), 5);
    assert.equal(seek(c, 5, 100).playing, true);
    assert.equal(timeAt(seek(c, -3, 0), 0), 0);
    assert.equal(timeAt(seek(c, 99, 0), 0), 10);
    assert.equal(timeAt(seek(c, Number.NaN, 0), 0), 0);
    assert.equal(setRate(c, 3, 0).rate, 1, 'only the offered speeds');
  });

  test('while a video loads, the clock waits for it', () => {
    let c = play(newClock(10_000, 0), 0);
    c = tick(c, 1000, false);
    assert.equal(timeAt(c, 1000), 1);
    c = tick(c, 3000, true);
    assert.equal(timeAt(c, 3000), 1, 'held');
    c = tick(c, 3500, false);
    assert.equal(timeAt(c, 3500), 1.5, 'resumes from where it was held');
  });
});

describe('the clock follows a playing video', () => {
  const late = file({ offset_ms: 4000, duration_ms: 3000 });
  const early = file({ offset_ms: 0, duration_ms: 10_000 });

  test('the first video playing in its window sets the time; the others are compared with it', () => {
    const c = play(newClock(10_000, 0), 0);
    const next = followLeader(c, 5000, [
      { file: late, video: video({ currentTime: 0.9, paused: false }) },
      { file: early, video: video({ currentTime: 4.8, paused: false }) },
    ]);
    assert.equal(timeAt(next, 5000), 4.9, 'the late file leads: 4 + 0.9');
  });

  test('a paused, seeking, loading or far-off video does not lead, nor does anything while paused', () => {
    const c = play(newClock(10_000, 0), 0);
    for (const v of [
      video({ currentTime: 4.8 }),
      video({ currentTime: 4.8, paused: false, seeking: true }),
      video({ currentTime: 4.8, paused: false, readyState: 2 }),
      video({ currentTime: 7, paused: false }),
    ]) {
      assert.equal(followLeader(c, 5000, [{ file: early, video: v }]), c);
    }
    const stopped = pause(c, 5000);
    assert.equal(followLeader(stopped, 5000, [{ file: early, video: video({ currentTime: 4.8, paused: false }) }]), stopped);
    assert.equal(followLeader(c, 1000, [{ file: late, video: video({ currentTime: 0.5, paused: false }) }]), c, 'outside its window');
  });
});

describe('where each file is on the timeline', () => {
  const late = file({ offset_ms: 4000, duration_ms: 3000 });

  test('a file plays at T minus its offset, and is absent before its start and after its end', () => {
    assert.deepEqual(filePosition(late, 2), { state: 'before', time: 0 });
    assert.deepEqual(filePosition(late, 4), { state: 'active', time: 0 });
    assert.deepEqual(filePosition(late, 5.5), { state: 'active', time: 1.5 });
    assert.deepEqual(filePosition(late, 7), { state: 'after', time: 3 });
  });

  test('a video outside its window is hidden, not played, and parked at its start', () => {
    assert.deepEqual(planVideo(late, 2, true, video({ currentTime: 0 }), calm), { show: false, seekTo: null, run: false });
    assert.deepEqual(planVideo(late, 2, true, video({ currentTime: 2 }), calm), { show: false, seekTo: 0, run: false });
    assert.deepEqual(planVideo(late, 8, true, video({ currentTime: 3, ended: true }), calm), { show: false, seekTo: null, run: false });
  });

  test('a video that drifted more than 0.15 s is sought back; less is left alone', () => {
    assert.deepEqual(planVideo(late, 6, true, video({ currentTime: 2.1, paused: false }), calm), { show: true, seekTo: null, run: true });
    assert.equal(planVideo(late, 6, true, video({ currentTime: 2 + DRIFT_S + 0.01 }), calm).seekTo, 2);
    assert.equal(planVideo(late, 6, true, video({ currentTime: 1.5 }), calm).seekTo, 2);
  });

  test('a video is not corrected again while it seeks or just after a correction, unless the person moved the clock', () => {
    const off = video({ currentTime: 0.5 });
    assert.equal(planVideo(late, 6, true, { ...off, seeking: true }, calm).seekTo, null);
    assert.equal(planVideo(late, 6, true, off, { sinceCorrectionMs: CORRECTION_COOLDOWN_MS - 1 }).seekTo, null);
    assert.equal(planVideo(late, 6, true, off, { sinceCorrectionMs: CORRECTION_COOLDOWN_MS }).seekTo, 2);
    assert.equal(planVideo(late, 6, true, { ...off, seeking: true }, { sinceCorrectionMs: 0, force: true }).seekTo, 2);
  });

  test('a paused timeline pauses its videos', () => {
    assert.equal(planVideo(late, 6, false, video({ currentTime: 2, paused: false }), calm).run, false);
  });

  test('a file shorter than the index says is not sought past its own end', () => {
    const f = file({ duration_ms: 10_000 });
    const short = video({ currentTime: 9.5, duration: 9.6, ended: true });
    assert.deepEqual(planVideo(f, 9.9, true, short, calm), { show: true, seekTo: null, run: false });
    const live = video({ currentTime: 1, duration: Infinity });
    assert.equal(planVideo(f, 9.9, true, live, calm).seekTo, 9.9, 'a file still being written has no end to respect');
  });

  test('a loading video holds the clock, but not once it ended or after a while', () => {
    assert.equal(holdsClock(video({ readyState: 2 }), 0), true);
    assert.equal(holdsClock(video({ seeking: true }), 100), true);
    assert.equal(holdsClock(video({ readyState: 4 }), 0), false);
    assert.equal(holdsClock(video({ readyState: 1, ended: true }), 0), false);
    assert.equal(holdsClock(video({ readyState: 1 }), MAX_STALL_MS), false);
  });
});

describe('words', () => {
  test('times read as clocks and lengths as words', () => {
    assert.equal(formatClock(0), '0:00');
    assert.equal(formatClock(5.9), '0:05');
    assert.equal(formatClock(754), '12:34');
    assert.equal(formatClock(3723), '1:02:03');
    assert.equal(formatClock(Number.NaN), '0:00');
    assert.equal(formatDuration(42_400), '42 s');
    assert.equal(formatDuration(303_000), '5 min 3 s');
    assert.equal(formatDuration(120_000), '2 min');
    assert.equal(formatDuration(3_720_000), '1 h 2 min');
    assert.equal(formatDuration(7_200_000), '2 h');
    assert.equal(seekValueText(65, 200), '1:05 of 3:20');
  });

  test('each file has unique names: caption, video label and download link', () => {
    const names = fileNames([
      file(),
      file({ source: 'screen' }),
      file({ display_name: 'Bo', participant_id: 'p2' }),
      file({ offset_ms: 5000 }),
    ]);
    assert.deepEqual(names.map((n) => n.download), [
      "Download Ann's camera",
      "Download Ann's screen",
      "Download Bo's camera",
      "Download Ann's camera (2)",
    ]);
    assert.equal(names[1].label, "Ann's screen");
    assert.equal(names[0].caption, 'Ann · camera');
  });

  test('a hidden video says when its person starts or ended', () => {
    const f = file({ offset_ms: 65_000, duration_ms: 10_000 });
    assert.equal(placeholderText(f, 'before'), 'Ann starts at 1:05');
    assert.equal(placeholderText(f, 'after'), 'Ann ended at 1:15');
  });
});
