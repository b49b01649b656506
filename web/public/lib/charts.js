// Bar-chart geometry for the admin page: numbers in, rectangles and labels
// out. No DOM here (admin.js draws the SVG), so the geometry is unit-tested
// in Node (web/test/charts.test.mjs), and no charting framework anywhere.

/**
 * One bar: its rectangle in SVG user units, its value and its label.
 * @typedef {object} Bar
 * @property {number} x
 * @property {number} y
 * @property {number} width
 * @property {number} height
 * @property {number} value
 * @property {string} label
 */

/**
 * A horizontal grid line with its value.
 * @typedef {object} Tick
 * @property {number} y
 * @property {number} value
 */

/**
 * A label under the x axis.
 * @typedef {object} AxisLabel
 * @property {number} x
 * @property {string} text
 */

/**
 * A laid-out bar chart in a `width` x `height` viewBox.
 * @typedef {object} BarChart
 * @property {number} width
 * @property {number} height
 * @property {number} max The value of the top grid line.
 * @property {Bar[]} bars
 * @property {Tick[]} ticks
 * @property {AxisLabel[]} axis
 * @property {{ left: number, top: number, right: number, bottom: number }} plot
 */

/**
 * The smallest "round" number (1, 2 or 5 times a power of ten) at or above
 * `n`, so that grid lines fall on readable values. At least 1.
 * @param {number} n
 * @returns {number}
 */
export function niceCeiling(n) {
  if (!(n > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= n) return step * power;
  }
  return 10 * power;
}

/**
 * Lays out a bar chart of `values`, one bar each, left to right.
 * @param {number[]} values Non-negative counts.
 * @param {string[]} labels One per value (shown on hover).
 * @param {object} [opts]
 * @param {number} [opts.width] ViewBox width; default 600.
 * @param {number} [opts.height] ViewBox height; default 180.
 * @param {number} [opts.labelEvery] Show every n-th label under the axis;
 *   default so that about 6 show.
 * @param {(label: string) => string} [opts.axisText] The text of an axis
 *   label; default the label itself.
 * @returns {BarChart}
 */
export function barChart(values, labels, opts = {}) {
  const width = opts.width ?? 600;
  const height = opts.height ?? 180;
  const plot = { left: 36, top: 8, right: width - 4, bottom: height - 22 };
  const max = niceCeiling(Math.max(0, ...values));
  const n = values.length;
  const slot = n > 0 ? (plot.right - plot.left) / n : 0;
  const gap = Math.min(4, slot * 0.2);
  const scale = (plot.bottom - plot.top) / max;
  const bars = values.map((v, i) => {
    const value = Math.max(0, v);
    const h = value * scale;
    return {
      x: plot.left + i * slot + gap / 2,
      y: plot.bottom - h,
      width: Math.max(0, slot - gap),
      height: h,
      value,
      label: labels[i] ?? '',
    };
  });
  const ticks = [0, max / 2, max]
    .filter((v, i, all) => all.indexOf(v) === i && Number.isInteger(v))
    .map((value) => ({ value, y: plot.bottom - value * scale }));
  const every = opts.labelEvery ?? Math.max(1, Math.ceil(n / 6));
  const axisText = opts.axisText ?? ((/** @type {string} */ l) => l);
  const axis = bars
    .map((b, i) => ({ i, x: b.x + b.width / 2, text: axisText(b.label) }))
    .filter(({ i }) => (n - 1 - i) % every === 0)
    .map(({ x, text }) => ({ x, text }));
  return { width, height, max, bars, ticks, axis, plot };
}
