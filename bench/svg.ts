/**
 * Hand-written SVG line charts (no dependency): axes with ticks, optional log scales, one polyline
 * with point markers per series, a legend on the right. Pure: returns the SVG text.
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  readonly color?: string;
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  /** Force the y axis to start at this value (linear scale; default 0 when all values are >= 0). */
  readonly yMin?: number;
  /** Force the x axis to start at this value (linear scale; default the smallest x). */
  readonly xMin?: number;
  readonly width?: number;
  readonly height?: number;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** 1200 -> "1.2k", 1000000 -> "1M", 0.25 -> "0.25". */
export function compactNumber(value: number): string {
  const abs = Math.abs(value);
  const trim = (text: string): string => text.replace(/\.0+$/, '').replace(/(\.\d*?)0+$/, '$1');
  if (abs >= 1e9) return `${trim((value / 1e9).toFixed(2))}G`;
  if (abs >= 1e6) return `${trim((value / 1e6).toFixed(2))}M`;
  if (abs >= 1e4) return `${trim((value / 1e3).toFixed(2))}k`;
  if (abs >= 100) return String(Math.round(value));
  if (abs === 0) return '0';
  if (abs < 0.01) return value.toExponential(0);
  return trim(value.toFixed(abs < 1 ? 2 : abs < 10 ? 1 : 0));
}

/** About `count` round tick values covering [min, max] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) max = min + 1;
  const rough = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? power * 10;
  const ticks: number[] = [];
  for (let value = Math.floor(min / step) * step; value <= max + step * 1e-9; value += step) ticks.push(Number(value.toPrecision(12)));
  return ticks;
}

function logTicks(min: number, max: number, values: readonly number[]): number[] {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  if (distinct.length > 0 && distinct.length <= 8) return distinct;
  const ticks: number[] = [];
  for (let exponent = Math.floor(Math.log10(min)); exponent <= Math.ceil(Math.log10(max)); exponent++) ticks.push(10 ** exponent);
  return ticks;
}

export function lineChart(options: LineChartOptions): string {
  const longest = Math.max(0, ...options.series.map((s) => s.name.length + (s.points.length === 0 ? 10 : 0)));
  const margin = { left: 72, right: Math.max(160, 56 + Math.ceil(longest * 7)), top: 44, bottom: 56 };
  const width = options.width ?? margin.left + 500 + margin.right;
  const height = options.height ?? 420;
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const usable = (x: number, y: number): boolean => Number.isFinite(x) && Number.isFinite(y) && (!options.xLog || x > 0) && (!options.yLog || y > 0);
  const series = options.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length] as string, points: s.points.filter(([x, y]) => usable(x, y)) }));
  const all = series.flatMap((s) => s.points);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`);
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666666">no data</text>`);
    parts.push('</svg>');
    return parts.join('\n');
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  let xMin = options.xMin !== undefined && !options.xLog ? Math.min(options.xMin, ...xs) : Math.min(...xs);
  let xMax = Math.max(...xs);
  let yMin = options.yMin ?? (options.yLog ? Math.min(...ys) : Math.min(0, ...ys));
  let yMax = Math.max(...ys);
  if (xMax === xMin) { xMin = options.xLog ? xMin / 2 : xMin - 1; xMax = options.xLog ? xMax * 2 : xMax + 1; }
  if (yMax === yMin) { yMax = options.yLog ? yMax * 2 : yMax + 1; if (options.yLog) yMin = yMin / 2; }
  const xTicks = options.xLog ? logTicks(xMin, xMax, xs) : niceTicks(xMin, xMax, 6);
  const yTicks = options.yLog ? logTicks(yMin, yMax, []) : niceTicks(yMin, yMax * 1.05, 5);
  if (!options.xLog) { xMin = Math.min(xMin, xTicks[0] ?? xMin); xMax = Math.max(xMax, xTicks.at(-1) ?? xMax); }
  if (!options.yLog) { yMin = Math.min(yMin, yTicks[0] ?? yMin); yMax = Math.max(yMax, yTicks.at(-1) ?? yMax); }
  const scale = (value: number, low: number, high: number, log: boolean | undefined): number =>
    log ? (Math.log10(value) - Math.log10(low)) / (Math.log10(high) - Math.log10(low)) : (value - low) / (high - low);
  const px = (x: number): number => round1(margin.left + scale(x, xMin, xMax, options.xLog) * plotWidth);
  const py = (y: number): number => round1(margin.top + plotHeight - scale(y, yMin, yMax, options.yLog) * plotHeight);
  // Axes and grid.
  parts.push(`<g class="axes" stroke="#333333" fill="none">`);
  parts.push(`<line x1="${margin.left}" y1="${margin.top + plotHeight}" x2="${margin.left + plotWidth}" y2="${margin.top + plotHeight}"/>`);
  parts.push(`<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotHeight}"/>`);
  parts.push('</g>');
  parts.push('<g class="ticks" fill="#333333">');
  for (const tick of xTicks.filter((value) => value >= xMin && value <= xMax)) {
    const x = px(tick);
    parts.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${margin.top + plotHeight}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x}" y="${margin.top + plotHeight + 16}" text-anchor="middle">${escapeXml(compactNumber(tick))}</text>`);
  }
  for (const tick of yTicks.filter((value) => value >= yMin && value <= yMax)) {
    const y = py(tick);
    parts.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotWidth}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y + 4}" text-anchor="end">${escapeXml(compactNumber(tick))}</text>`);
  }
  parts.push('</g>');
  parts.push(`<text x="${margin.left + plotWidth / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(options.xLabel)}${options.xLog ? ' (log scale)' : ''}</text>`);
  parts.push(`<text x="16" y="${margin.top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 16 ${margin.top + plotHeight / 2})">${escapeXml(options.yLabel)}${options.yLog ? ' (log scale)' : ''}</text>`);
  // Series.
  for (const s of series) {
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    parts.push(`<g class="series" data-series="${escapeXml(s.name)}" stroke="${s.color}" fill="${s.color}">`);
    if (sorted.length > 0) {
      const d = sorted.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x)},${py(y)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      if (sorted.length <= 40) for (const [x, y] of sorted) parts.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3"/>`);
    }
    parts.push('</g>');
  }
  // Legend.
  parts.push('<g class="legend">');
  series.forEach((s, i) => {
    const y = margin.top + 8 + i * 20;
    const x = margin.left + plotWidth + 16;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${x + 30}" y="${y + 4}">${escapeXml(s.name)}${s.points.length === 0 ? ' (no data)' : ''}</text>`);
  });
  parts.push('</g>');
  parts.push('</svg>');
  return parts.join('\n');
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Points of an empirical CDF: (value, fraction of samples <= value). */
export function cdfPoints(values: readonly number[]): [number, number][] {
  const sorted = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.map((value, i) => [value, (i + 1) / sorted.length]);
}
