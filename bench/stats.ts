/**
 * Pure number crunching for the benchmark report: percentiles of small samples, ratios, summaries
 * and Prometheus text parsing. No I/O, so test/bench/report.test.ts covers it.
 */

/** Nearest-rank percentile (p in 0..100) of the values; null for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}

export interface Distribution {
  readonly count: number;
  readonly min: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { count: 0, min: null, p50: null, p99: null, max: null, mean: null };
  const sum = values.reduce((a, b) => a + b, 0);
  return {
    count: values.length,
    min: round(Math.min(...values)),
    p50: round(percentile(values, 50) as number),
    p99: round(percentile(values, 99) as number),
    max: round(Math.max(...values)),
    mean: round(sum / values.length),
  };
}

/** a / b, or null when either is missing or b is zero. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** "1.62x", "-", for tables. */
export function formatRatio(value: number | null): string {
  return value === null ? '-' : `${value >= 10 ? value.toFixed(1) : value.toFixed(2)}x`;
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return digits === 0 ? String(Math.round(value)) : String(round(value, digits));
}

/** One sample line of the Prometheus text format. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export function parsePrometheus(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    const labelText = match[3] ?? '';
    for (const label of labelText.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[label[1] as string] = label[2] as string;
    const valueText = match[4] as string;
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value)) continue;
    out.push({ name: match[1] as string, labels, value });
  }
  return out;
}

/** The sum of every series of this metric (any labels), or null when the metric is absent. */
export function metricSum(samples: readonly MetricSample[], name: string): number | null {
  let found = false;
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    found = true;
    sum += sample.value;
  }
  return found ? sum : null;
}

export interface HistogramDelta {
  readonly count: number;
  readonly sum: number;
  /** Mean of the observations made between the two scrapes, or null when there were none. */
  readonly mean: number | null;
  /** The smallest bucket bound that holds every new observation: an upper bound of the maximum. */
  readonly maxAtMost: number | null;
}

/**
 * What a Prometheus histogram recorded between two scrapes (series with other labels are added
 * together). Null when the histogram is absent from the later scrape.
 */
export function histogramDelta(before: readonly MetricSample[], after: readonly MetricSample[], name: string): HistogramDelta | null {
  const countAfter = metricSum(after, `${name}_count`);
  if (countAfter === null) return null;
  const count = countAfter - (metricSum(before, `${name}_count`) ?? 0);
  const sum = (metricSum(after, `${name}_sum`) ?? 0) - (metricSum(before, `${name}_sum`) ?? 0);
  const buckets = (samples: readonly MetricSample[]): Map<number, number> => {
    const map = new Map<number, number>();
    for (const sample of samples) {
      if (sample.name !== `${name}_bucket`) continue;
      const le = sample.labels['le'] === '+Inf' ? Infinity : Number(sample.labels['le']);
      map.set(le, (map.get(le) ?? 0) + sample.value);
    }
    return map;
  };
  const early = buckets(before);
  const late = buckets(after);
  let maxAtMost: number | null = null;
  if (count > 0) {
    for (const le of [...late.keys()].sort((a, b) => a - b)) {
      if ((late.get(le) ?? 0) - (early.get(le) ?? 0) >= count) {
        maxAtMost = le;
        break;
      }
    }
  }
  return { count, sum, mean: count > 0 ? sum / count : null, maxAtMost };
}
