// Small statistics and number formats for the bench report.

/** Nearest-rank percentile of `values` (0 < p <= 100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function max(values: number[]): number {
  return values.reduce((a, b) => Math.max(a, b), -Infinity);
}

export function min(values: number[]): number {
  return values.reduce((a, b) => Math.min(a, b), Infinity);
}

/** A fixed number of decimals, with thin grouping for thousands. */
export function fixed(value: number, decimals = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** `0.62×` */
export function ratio(value: number): string {
  return `${value.toFixed(2)}×`;
}

/** `+12.3` or `-0.4` */
export function signed(value: number, decimals = 1): string {
  return `${value >= 0 ? '+' : '−'}${fixed(Math.abs(value), decimals)}`;
}
