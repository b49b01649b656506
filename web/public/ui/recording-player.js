// The recording player's page part: a grid with one <video> per recorded
// file, all driven by ONE clock ("Play", "Pause", the "Seek" slider,
// "Speed"). A timer applies the DOM-free decisions of
// lib/recording-player.js to the videos: each shows its file at
// T − offset (a placeholder before its start and after its end), is sought
// back when it drifts more than 0.15 s, and the clock waits while a video
// that should play is still loading.

import {
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
  filePosition,
  fileNames,
  followLeader,
  formatClock,
} from '../lib/recording-player.js';

/** @typedef {import('../lib/recording-api.js').FileView} FileView */
/** @typedef {import('../lib/recording-player.js').Clock} Clock */
/** @typedef {import('../lib/recording-player.js').VideoFacts} VideoFacts */

/**
 * One file's place on the page.
 * @typedef {object} Cell
 * @property {FileView} file
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} frame
 * @property {HTMLElement} placeholder
 * @property {number} lastCorrection When it was last sought (ms, performance clock).
 * @property {number | null} loadingSince When it started holding the clock.
 */

/** How often the timer runs while playing, in ms. */
const TICK_MS = 100;

/** The player's state: one clock, the cells, the timer. */
const player = {
  /** @type {Clock} */
  clock: newClock(0, 0),
  /** @type {Cell[]} */
  cells: [],
  /** @type {ReturnType<typeof setInterval> | null} */
  timer: null,
  /** The person is dragging the slider: do not move it under them. */
  dragging: false,
  /** The browser refused to play with sound until the person allows it. */
  muted: false,
};

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

const now = () => performance.now();

/**
 * What a video element reports.
 * @param {HTMLVideoElement} v
 * @returns {VideoFacts}
 */
function factsOf(v) {
  return { currentTime: v.currentTime, paused: v.paused, seeking: v.seeking, ended: v.ended, readyState: v.readyState, duration: v.duration };
}

/**
 * Plays a video; if the browser wants a gesture for sound first, plays
 * every video muted and offers "Turn on sound".
 * @param {HTMLVideoElement} v
 */
function run(v) {
  v.play().catch((e) => {
    if (/** @type {any} */ (e)?.name !== 'NotAllowedError' || player.muted) return;
    player.muted = true;
    for (const c of player.cells) c.video.muted = true;
    $('sound-on').hidden = false;
    v.play().catch(() => {});
  });
}

/**
 * Applies the clock to every video, and shows the time.
 * @param {boolean} [force] The person moved the clock: put every video in
 *   place now, not after a cool-down.
 */
function step(force = false) {
  const at = now();
  const t0 = timeAt(player.clock, at);
  let stalled = false;
  for (const c of player.cells) {
    const facts = factsOf(c.video);
    const active = filePosition(c.file, t0).state === 'active';
    if (!player.clock.playing || !active || !holdsClock(facts, 0)) {
      c.loadingSince = null;
      continue;
    }
    c.loadingSince ??= at;
    if (holdsClock(facts, at - c.loadingSince)) stalled = true;
  }
  player.clock = tick(player.clock, at, stalled);
  if (!stalled && !force) {
    player.clock = followLeader(player.clock, at, player.cells.map((c) => ({ file: c.file, video: factsOf(c.video) })));
  }
  const t = timeAt(player.clock, at);
  const running = player.clock.playing && !stalled;
  for (const c of player.cells) {
    const plan = planVideo(c.file, t, running, factsOf(c.video), { sinceCorrectionMs: at - c.lastCorrection, force });
    c.frame.classList.toggle('idle', !plan.show);
    if (!plan.show) {
      const pos = filePosition(c.file, t).state;
      c.placeholder.textContent = placeholderText(c.file, pos === 'before' ? 'before' : 'after');
    }
    if (plan.seekTo !== null) {
      c.video.currentTime = plan.seekTo;
      c.lastCorrection = at;
    }
    if (c.video.playbackRate !== player.clock.rate) c.video.playbackRate = player.clock.rate;
    if (plan.run && c.video.paused) run(c.video);
    else if (!plan.run && !c.video.paused) c.video.pause();
  }
  showTime(t);
  if (!player.clock.playing) stopTimer();
}

/**
 * The slider and the time display.
 * @param {number} t
 */
function showTime(t) {
  const seekInput = /** @type {HTMLInputElement} */ ($('seek'));
  if (!player.dragging) seekInput.value = String(Math.round(t * 10) / 10);
  seekInput.setAttribute('aria-valuetext', seekValueText(t, player.clock.duration));
  $('time').textContent = `${formatClock(t)} / ${formatClock(player.clock.duration)}`;
}

function startTimer() {
  if (player.timer === null) player.timer = setInterval(() => step(), TICK_MS);
}

function stopTimer() {
  if (player.timer !== null) clearInterval(player.timer);
  player.timer = null;
}

/**
 * A video's cell in the grid.
 * @param {FileView} file
 * @param {{caption: string, label: string}} names
 * @returns {{cell: HTMLElement, entry: Cell}}
 */
function cellFor(file, names) {
  const figure = document.createElement('figure');
  figure.className = `player-cell source-${file.source}`;
  const frame = document.createElement('div');
  frame.className = 'player-frame';
  const video = document.createElement('video');
  video.id = `video-${file.file_id}`;
  video.dataset.file = file.file_id;
  video.playsInline = true;
  video.setAttribute('playsinline', '');
  video.preload = 'auto';
  video.muted = false;
  video.setAttribute('aria-label', names.label);
  video.src = file.url;
  const placeholder = document.createElement('p');
  placeholder.className = 'player-placeholder';
  placeholder.setAttribute('aria-hidden', 'true');
  frame.append(video, placeholder);
  const caption = document.createElement('figcaption');
  caption.textContent = file.state === 'interrupted' ? `${names.caption} (cut short)` : names.caption;
  figure.append(frame, caption);
  return { cell: figure, entry: { file, video, frame, placeholder, lastCorrection: -Infinity, loadingSince: null } };
}

/**
 * Builds the grid for `files` on a timeline of `durationMs`.
 * @param {FileView[]} files
 * @param {number} durationMs
 */
export function mountPlayer(files, durationMs) {
  const names = fileNames(files);
  const built = files.map((f, i) => cellFor(f, names[i]));
  player.cells = built.map((b) => b.entry);
  player.clock = newClock(durationMs, now());
  $('player-grid').replaceChildren(...built.map((b) => b.cell));
  $('player-grid').dataset.count = String(Math.min(files.length, 9));
  const seekInput = /** @type {HTMLInputElement} */ ($('seek'));
  seekInput.max = String(player.clock.duration);
  for (const c of player.cells) {
    // A file's own events also re-apply the clock (a seek finished, data came).
    c.video.addEventListener('loadedmetadata', () => step());
    c.video.addEventListener('seeked', () => {
      if (!player.clock.playing) step();
    });
  }
  step(true);
}

/** Moves the clock to the slider's value. */
function seekToSlider() {
  const v = Number(/** @type {HTMLInputElement} */ ($('seek')).value);
  player.clock = seek(player.clock, v, now());
  step(true);
}

/** Wires the timeline's controls. */
export function wirePlayer() {
  $('play').addEventListener('click', () => {
    player.clock = play(player.clock, now());
    startTimer();
    step(true);
  });
  $('pause').addEventListener('click', () => {
    player.clock = pause(player.clock, now());
    step();
  });
  const seekInput = $('seek');
  seekInput.addEventListener('pointerdown', () => (player.dragging = true));
  for (const type of ['pointerup', 'pointercancel', 'blur']) seekInput.addEventListener(type, () => (player.dragging = false));
  seekInput.addEventListener('input', seekToSlider);
  seekInput.addEventListener('change', () => {
    player.dragging = false;
    seekToSlider();
  });
  $('speed').addEventListener('change', () => {
    player.clock = setRate(player.clock, Number($('speed').value), now());
    step();
  });
  $('sound-on').addEventListener('click', () => {
    player.muted = false;
    for (const c of player.cells) c.video.muted = false;
    $('sound-on').hidden = true;
  });
}

/** For automated tests: the clock, and moving it as the slider would. */
export const playerDebug = {
  /** @returns {number} Seconds on the timeline. */
  time: () => timeAt(player.clock, now()),
  /** @returns {boolean} */
  playing: () => player.clock.playing,
  /** @param {number} seconds */
  seek: (seconds) => {
    player.clock = seek(player.clock, seconds, now());
    step(true);
  },
};
