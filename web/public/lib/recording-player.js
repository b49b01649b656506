// The recording player's decisions, with no DOM: one clock for the whole
// recording (play, pause, seek, speed), where each file is on it, what each
// `<video>` should show at time T (its file at T − offset, nothing before
// its start or after its end), when a video has drifted far enough to be
// put back (more than `DRIFT_S`), and how times and files are worded. The
// page (ui/recording-player.js) applies these to its videos on a timer.
// Tested under node (web/test/recording-player.test.mjs).

/** @typedef {import('./recording-api.js').FileView} FileView */

/** A video further than this from its place on the timeline, in seconds, is sought back. */
export const DRIFT_S = 0.15;
/**
 * After a correction, a video is left alone this long (ms): seeking takes
 * a moment, and correcting again meanwhile would only restart it.
 */
export const CORRECTION_COOLDOWN_MS = 1000;
/**
 * A video that has not caught up in this long (ms) no longer holds the
 * clock: one broken file must not freeze the others.
 */
export const MAX_STALL_MS = 5000;
/** The speeds offered, as `playbackRate` values. */
export const SPEEDS = Object.freeze([0.5, 1, 1.5, 2]);

/**
 * The shared clock. Time on the recording's timeline is `base` seconds at
 * wall time `at` (ms), advancing at `rate` while `playing`.
 * @typedef {object} Clock
 * @property {boolean} playing
 * @property {number} rate
 * @property {number} base Seconds on the timeline at `at`.
 * @property {number} at Wall-clock milliseconds.
 * @property {number} duration Seconds: the timeline's end.
 */

/**
 * A paused clock at 0 for a timeline of `durationMs`.
 * @param {number} durationMs
 * @param {number} now
 * @returns {Clock}
 */
export function newClock(durationMs, now) {
  return { playing: false, rate: 1, base: 0, at: now, duration: Math.max(0, durationMs / 1000) };
}

/**
 * The clock's time at `now`, in seconds, within [0, duration].
 * @param {Clock} c
 * @param {number} now
 * @returns {number}
 */
export function timeAt(c, now) {
  const t = c.playing ? c.base + (Math.max(0, now - c.at) / 1000) * c.rate : c.base;
  return clamp(t, 0, c.duration);
}

/**
 * Starts the clock; at the end, it starts again from 0.
 * @param {Clock} c
 * @param {number} now
 * @returns {Clock}
 */
export function play(c, now) {
  const t = timeAt(c, now);
  return { ...c, playing: true, base: t >= c.duration ? 0 : t, at: now };
}

/**
 * Stops the clock where it is.
 * @param {Clock} c
 * @param {number} now
 * @returns {Clock}
 */
export function pause(c, now) {
  return { ...c, playing: false, base: timeAt(c, now), at: now };
}

/**
 * Moves the clock to `t` seconds (clamped to the timeline), playing or not.
 * @param {Clock} c
 * @param {number} t
 * @param {number} now
 * @returns {Clock}
 */
export function seek(c, t, now) {
  return { ...c, base: clamp(Number.isFinite(t) ? t : 0, 0, c.duration), at: now };
}

/**
 * Changes the speed from now on (an unknown speed is 1).
 * @param {Clock} c
 * @param {number} rate
 * @param {number} now
 * @returns {Clock}
 */
export function setRate(c, rate, now) {
  return { ...c, base: timeAt(c, now), at: now, rate: SPEEDS.includes(rate) ? rate : 1 };
}

/**
 * One step of the page's timer. While a playing video is still loading
 * (`stalled`), the clock does not advance, so the others wait for it
 * rather than drift apart; at the end of the timeline it stops.
 * @param {Clock} c
 * @param {number} now
 * @param {boolean} stalled
 * @returns {Clock}
 */
export function tick(c, now, stalled) {
  if (!c.playing) return c;
  const t = stalled ? c.base : timeAt(c, now);
  if (t >= c.duration) return { ...c, playing: false, base: c.duration, at: now };
  return { ...c, base: t, at: now };
}

/**
 * While playing, the clock follows the first video that plays smoothly in
 * its window (its file's time plus its offset), so the videos are compared
 * with one of themselves rather than with the wall clock, which a playing
 * video always trails a little (its start takes a moment): only the
 * others are ever corrected, and only when they really drift. A leader
 * more than `LEADER_MAX_JUMP_S` from the clock is not followed (it jumped,
 * or is about to be corrected itself).
 * @param {Clock} c
 * @param {number} now
 * @param {{file: Pick<FileView, 'offset_ms' | 'duration_ms'>, video: VideoFacts}[]} videos
 * @returns {Clock}
 */
export function followLeader(c, now, videos) {
  if (!c.playing) return c;
  const t = timeAt(c, now);
  for (const { file, video } of videos) {
    if (filePosition(file, t).state !== 'active') continue;
    if (video.paused || video.seeking || video.ended || video.readyState < 3) continue;
    const lead = file.offset_ms / 1000 + video.currentTime;
    if (Math.abs(lead - t) > LEADER_MAX_JUMP_S) continue;
    return { ...c, base: clamp(lead, 0, c.duration), at: now };
  }
  return c;
}

/** See `followLeader`. */
export const LEADER_MAX_JUMP_S = 1;

/**
 * Where a file is at timeline time `t` (seconds): `before` its start,
 * `active` with `time` the position in the file, or `after` its end.
 * @param {Pick<FileView, 'offset_ms' | 'duration_ms'>} file
 * @param {number} t
 * @returns {{state: 'before' | 'active' | 'after', time: number}}
 */
export function filePosition(file, t) {
  const local = t - file.offset_ms / 1000;
  const end = file.duration_ms / 1000;
  if (local < 0) return { state: 'before', time: 0 };
  if (local >= end) return { state: 'after', time: end };
  return { state: 'active', time: local };
}

/**
 * What a `<video>` reports about itself (the page reads these from the
 * element).
 * @typedef {object} VideoFacts
 * @property {number} currentTime
 * @property {boolean} paused
 * @property {boolean} seeking
 * @property {boolean} ended
 * @property {number} readyState `HTMLMediaElement.readyState`.
 * @property {number} duration The media's own duration (NaN or Infinity
 *   when unknown, as for a file still being written).
 */

/**
 * What the page should do with one video.
 * - `show`: the video is in its window (otherwise a placeholder shows);
 * - `seekTo`: set `currentTime` (null: leave it);
 * - `run`: whether it should be playing.
 * @typedef {object} VideoPlan
 * @property {boolean} show
 * @property {number | null} seekTo
 * @property {boolean} run
 */

/**
 * The plan for one video at timeline time `t`. A video more than
 * `DRIFT_S` from its place is sought back, unless it is seeking already
 * or was corrected less than `CORRECTION_COOLDOWN_MS` ago (`force`, after
 * the person moved the slider, skips both). A place past the media's own
 * end (a file a little shorter than the index says) is not sought.
 * @param {Pick<FileView, 'offset_ms' | 'duration_ms'>} file
 * @param {number} t
 * @param {boolean} playing
 * @param {VideoFacts} video
 * @param {{sinceCorrectionMs: number, force?: boolean}} opts
 * @returns {VideoPlan}
 */
export function planVideo(file, t, playing, video, opts) {
  const pos = filePosition(file, t);
  if (pos.state !== 'active') {
    // Parked at its start (ready for when T reaches it) or its end.
    const park = pos.state === 'before' ? 0 : null;
    const seekTo = park !== null && Math.abs(video.currentTime - park) > DRIFT_S && !video.seeking ? park : null;
    return { show: false, seekTo, run: false };
  }
  const known = Number.isFinite(video.duration) && video.duration > 0;
  const beyond = known && pos.time >= video.duration - DRIFT_S;
  const off = Math.abs(video.currentTime - pos.time) > DRIFT_S;
  const calm = !video.seeking && opts.sinceCorrectionMs >= CORRECTION_COOLDOWN_MS;
  const seekTo = off && !beyond && (opts.force || calm) ? pos.time : null;
  return { show: true, seekTo, run: playing && !beyond && !video.ended };
}

/**
 * Whether a video in its window is still loading (so the clock waits):
 * seeking, or without enough data to play on. A video that ended, or
 * that has held the clock for `MAX_STALL_MS`, does not hold it.
 * @param {VideoFacts} video
 * @param {number} stalledForMs How long it has been loading.
 * @returns {boolean}
 */
export function holdsClock(video, stalledForMs) {
  if (video.ended || stalledForMs >= MAX_STALL_MS) return false;
  return video.seeking || video.readyState < 3;
}

/**
 * A time on the timeline as a clock: "0:05", "12:34", "1:02:03".
 * @param {number} seconds
 * @returns {string}
 */
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * A length in words, for lists: "42 s", "5 min 3 s", "1 h 2 min".
 * @param {number} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round((Number.isFinite(ms) ? ms : 0) / 1000));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  const rest = s % 60;
  return rest > 0 ? `${m} min ${rest} s` : `${m} min`;
}

/**
 * The slider's spoken value: "1:05 of 3:20".
 * @param {number} t
 * @param {number} duration
 * @returns {string}
 */
export function seekValueText(t, duration) {
  return `${formatClock(t)} of ${formatClock(duration)}`;
}

/**
 * "camera" or "screen", as the page words a file's source.
 * @param {FileView['source']} source
 * @returns {string}
 */
export function sourceWord(source) {
  return source === 'screen' ? 'screen' : 'camera';
}

/**
 * Each file's names: its caption ("Ann · camera"), the video's accessible
 * name ("Ann's camera") and its download link ("Download Ann's camera").
 * A person who recorded the same source more than once (they rejoined, or
 * shared the screen twice) gets "(2)", "(3)"... on the later files, so
 * every name is unique.
 * @param {FileView[]} files In timeline order.
 * @returns {{caption: string, label: string, download: string}[]}
 */
export function fileNames(files) {
  /** @type {Map<string, number>} */
  const seen = new Map();
  return files.map((f) => {
    const key = `${f.display_name}\u0000${f.source}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    const suffix = n > 1 ? ` (${n})` : '';
    const word = sourceWord(f.source);
    return {
      caption: `${f.display_name} · ${word}${suffix}`,
      label: `${f.display_name}'s ${word}${suffix}`,
      download: `Download ${f.display_name}'s ${word}${suffix}`,
    };
  });
}

/**
 * What the placeholder of a video outside its window says.
 * @param {Pick<FileView, 'offset_ms' | 'duration_ms' | 'display_name'>} file
 * @param {'before' | 'after'} state
 * @returns {string}
 */
export function placeholderText(file, state) {
  if (state === 'before') return `${file.display_name} starts at ${formatClock(file.offset_ms / 1000)}`;
  return `${file.display_name} ended at ${formatClock((file.offset_ms + file.duration_ms) / 1000)}`;
}

/**
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 */
function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}
