// Number formatting shared by the job summary and the terminal report, so both say the same thing.

/** A duration for people: `0.4 ms`, `310 ms`, `2 s`, `20.1 s`, `2 min 5 s`, `1 h 3 min`; `-` when unknown. */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return ms === Infinity ? 'for ever' : '-';
  if (ms < 0) return `-${formatMs(-ms)}`;
  if (ms < 10) return `${trimZero((Math.round(ms * 10) / 10).toFixed(1))} ms`;
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const tenthsOfSecond = Math.round(ms / 100);
  if (tenthsOfSecond < 600) return `${trimZero((tenthsOfSecond / 10).toFixed(1))} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return joinUnits(Math.floor(seconds / 60), 'min', seconds % 60, 's');
  const minutes = Math.round(seconds / 60);
  return joinUnits(Math.floor(minutes / 60), 'h', minutes % 60, 'min');
}

/** A byte count: `512 B`, `1.5 KiB`, `20 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${trimZero(value.toFixed(value < 10 ? 1 : 0))} ${units[unit]}`;
}

/** A signed percentage change: `+45%`, `-12%`, `+0%`; `new` when there was nothing to compare with. */
export function formatChange(pct: number | null): string {
  if (pct === null) return '-';
  if (!Number.isFinite(pct)) return 'new';
  const rounded = Math.abs(pct) < 10 ? Math.round(pct * 10) / 10 : Math.round(pct);
  return `${rounded < 0 ? '' : '+'}${rounded}%`;
}

/** A count with thousands separators (`100,000`), stable whatever the machine's locale. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `1 call`, `3 calls`. */
export function plural(n: number, word: string, words = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : words}`;
}

function trimZero(fixed: string): string {
  return fixed.endsWith('.0') ? fixed.slice(0, -2) : fixed;
}

function joinUnits(big: number, bigUnit: string, small: number, smallUnit: string): string {
  return small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
}
