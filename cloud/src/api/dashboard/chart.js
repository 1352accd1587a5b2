// rapport operator dashboard: one readings series (`[at_ms, value]` points, as
// `GET /api/v1/vehicles/{vin}/readings` answers) drawn as a small line chart in SVG. No
// library and nothing inline: the elements are built one by one with attribute setters, and
// styled by style.css.

import { KM, el, formatDate, formatTime, num, str } from './format.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes and children (strings become text nodes). */
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c);
  }
  return e;
}

/** One series as a line over time: value axis on the left, first and last time below. */
export function chart(key, label, series) {
  const unit = str(series.unit);
  const points = (Array.isArray(series.points) ? series.points : []).filter(
    (p) => Array.isArray(p) && num(p[0]) !== null && num(p[1]) !== null,
  );
  const count = num(series.count) ?? points.length;
  const caption = el(
    'figcaption',
    {},
    `${label} `,
    el('span', { class: 'hint' }, `${KM.format(count)} reading${count === 1 ? '' : 's'}${points.length < count ? `, ${points.length} points drawn` : ''}`),
  );
  const figure = el('figure', { class: 'chart-box', testid: `readings-${key}` }, caption);
  if (points.length === 0) return figure;
  const [W, H, L, R, T, B] = [560, 130, 96, 14, 10, 24];
  const t0 = points[0][0];
  const t1 = Math.max(points[points.length - 1][0], t0 + 1);
  let v0 = Math.min(...points.map((p) => p[1]));
  let v1 = Math.max(...points.map((p) => p[1]));
  if (v1 - v0 < 1e-9) {
    v0 -= 1;
    v1 += 1;
  }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - v0) / (v1 - v0)) * (H - T - B);
  const value = (v) => `${KM.format(v)} ${unit}`;
  const when = t1 - t0 < 2 * 86_400_000 ? formatTime : formatDate;
  const plot = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: `chart ${key}`,
    role: 'img',
    'aria-label': `${label} from ${value(points[0][1])} to ${value(points[points.length - 1][1])}`,
    'data-testid': `chart-${key}`,
    'data-points': points.length,
  });
  for (const v of [v0, (v0 + v1) / 2, v1]) {
    plot.append(
      svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }),
      svg('text', { class: 'axis', x: L - 6, y: (y(v) + 4).toFixed(1), 'text-anchor': 'end' }, value(v)),
    );
  }
  plot.append(
    svg('text', { class: 'axis', x: L, y: H - 6 }, when(points[0][0])),
    svg('text', { class: 'axis', x: W - R, y: H - 6, 'text-anchor': 'end' }, when(points[points.length - 1][0])),
    svg('polyline', {
      class: 'line',
      'data-testid': `chart-line-${key}`,
      points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '),
    }),
  );
  const last = points[points.length - 1];
  plot.append(
    svg('circle', { class: 'dot', cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 3.5 }, svg('title', {}, `${value(last[1])}, ${formatTime(last[0])}`)),
  );
  figure.append(plot);
  return figure;
}
