/** Small statistics and formatting helpers shared by every benchmark and report. */

export function median(xs: readonly number[]): number | undefined {
  return quantile(xs, 0.5);
}

/**
 * Linear-interpolation quantile (q in 0..1; the method numpy and R use by default), so the
 * quartiles of 10 runs fall between runs instead of jumping to one of them.
 */
export function quantile(xs: readonly number[], q: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Nearest-rank percentile (p in 0..100): used for latency samples (p99 is a real sample). */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

/** Median, quartiles and extremes of a set of measured runs. */
export interface Spread {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(xs: readonly number[]): Spread | undefined {
  const finite = xs.filter((x) => Number.isFinite(x));
  if (finite.length === 0) return undefined;
  return {
    median: quantile(finite, 0.5)!,
    p25: quantile(finite, 0.25)!,
    p75: quantile(finite, 0.75)!,
    min: Math.min(...finite),
    max: Math.max(...finite),
    n: finite.length,
  };
}

export function fmtInt(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '–' : Math.round(x).toLocaleString('en-US');
}

export function fmtMs(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (x < 1) return x.toFixed(3);
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return Math.round(x).toLocaleString('en-US');
}

export function fmtRatio(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  return x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}

/** A number with 2–3 significant digits, for CPU seconds and similar small quantities. */
export function fmtSmall(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** `median (p25–p75)` for integers such as tasks/s. */
export function fmtIntSpread(s: Spread | undefined): string {
  return s ? `${fmtInt(s.median)} (${fmtInt(s.p25)}–${fmtInt(s.p75)})` : '–';
}
