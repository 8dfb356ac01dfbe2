// Durations, byte sizes and rates as users write them in the policy language, and back.
// Sizes follow Toxiproxy: KB, MB and GB are powers of 1000; KiB, MiB and GiB are powers of 1024.
import { SyntaxProblem, readInput } from './syntax.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };
/** Node's timers cannot wait longer than about 24.8 days; a day is already far beyond any test. */
export const MAX_DURATION_MS = 24 * 60 * 60_000;

const SIZE_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['GiB', 1024 ** 3],
  ['GB', 1000 ** 3],
  ['MiB', 1024 ** 2],
  ['MB', 1000 ** 2],
  ['KiB', 1024],
  ['KB', 1000],
  ['B', 1],
];
const SIZE_UNIT_NAMES = 'B, KB, MB, GB, KiB, MiB or GiB';

const NUMBER_WITH_UNIT = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/;

/** Keeps decimal input exact enough that `1.005s` is 1005 ms, not 1004.9999999999999. */
function onMicroGrid(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Reads `250ms`, `1.5s`, `2m` or `0` as milliseconds; throws SyntaxProblem. */
export function readDuration(text: string, example = '250ms'): number {
  if (text === '') throw new SyntaxProblem('a duration is missing', example);
  if (text.startsWith('-')) throw new SyntaxProblem(`${JSON.stringify(text)} is negative; durations start at 0`, example);
  const match = NUMBER_WITH_UNIT.exec(text);
  if (!match) throw new SyntaxProblem(`${JSON.stringify(text)} is not a duration (a number with ms, s or m)`, example);
  const [, digits, unit] = match;
  const n = Number(digits);
  if (unit === '') {
    if (n === 0) return 0;
    throw new SyntaxProblem(`${JSON.stringify(text)} needs a unit (ms, s or m)`, example);
  }
  const scale = DURATION_UNITS[unit];
  if (scale === undefined) throw new SyntaxProblem(`${JSON.stringify(text)} has an unknown unit ${JSON.stringify(unit)} (use ms, s or m)`, example);
  const ms = onMicroGrid(n * scale);
  if (ms > MAX_DURATION_MS) throw new SyntaxProblem(`${JSON.stringify(text)} is longer than 24 hours`, example);
  return ms;
}

/** A duration input such as `250ms`, `1.5s`, `2m` or `0`, in milliseconds. */
export function parseDuration(input: string, value: string): number {
  return readInput(input, value, () => readDuration(value.trim()));
}

/**
 * The shortest exact form in the policy language (`250ms`, `1.5s`, `2m`, `0ms`), so reports
 * show what the user wrote and the text parses back to the same value.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0ms';
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && Number.isInteger(ms)) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Reads `64B`, `10KB`, `1MB`, `64KiB` as a whole number of bytes, at least 1; throws SyntaxProblem. */
export function readByteSize(text: string, example = '64KiB'): number {
  if (text === '') throw new SyntaxProblem('a size is missing', example);
  if (text.startsWith('-')) throw new SyntaxProblem(`${JSON.stringify(text)} is negative`, example);
  const match = NUMBER_WITH_UNIT.exec(text);
  if (!match) throw new SyntaxProblem(`${JSON.stringify(text)} is not a size (a number with ${SIZE_UNIT_NAMES})`, example);
  const [, digits, unit] = match;
  if (unit === '') throw new SyntaxProblem(`${JSON.stringify(text)} needs a unit (${SIZE_UNIT_NAMES})`, example);
  const scale = SIZE_UNITS.find(([name]) => name.toLowerCase() === unit.toLowerCase())?.[1];
  if (scale === undefined) throw new SyntaxProblem(`${JSON.stringify(text)} has an unknown unit ${JSON.stringify(unit)} (use ${SIZE_UNIT_NAMES})`, example);
  const bytes = onMicroGrid(Number(digits) * scale);
  if (!Number.isInteger(bytes)) throw new SyntaxProblem(`${JSON.stringify(text)} is not a whole number of bytes`, example);
  if (bytes < 1) throw new SyntaxProblem(`${JSON.stringify(text)} is less than 1 byte`, example);
  if (!Number.isSafeInteger(bytes)) throw new SyntaxProblem(`${JSON.stringify(text)} is too large`, example);
  return bytes;
}

/** A size input such as `64B`, `10KB` (10 000 bytes) or `64KiB` (65 536 bytes), in bytes. */
export function parseByteSize(input: string, value: string): number {
  return readInput(input, value, () => readByteSize(value.trim()));
}

/**
 * The unit that states the size exactly with the fewest decimals (at most three), the larger on
 * a tie, bytes when none does: `64KB`, `64KiB`, `1.5KiB`, `1.001KB`, `100B`.
 */
export function formatByteSize(bytes: number): string {
  let best: { text: string; decimals: number } | null = null;
  for (const [name, scale] of SIZE_UNITS) {
    if (scale === 1 || bytes < scale) continue;
    const decimals = [0, 1, 2, 3].find((d) => ((bytes * 10 ** d) % scale) === 0);
    if (decimals !== undefined && (best === null || decimals < best.decimals)) best = { text: `${bytes / scale}${name}`, decimals };
  }
  return best?.text ?? `${bytes}B`;
}

/** Reads `64KB/s` as bytes per second; throws SyntaxProblem. */
export function readRate(text: string, example = '64KB/s'): number {
  if (!text.endsWith('/s')) {
    const why = text.includes('/') ? 'must be per second (/s)' : 'needs "/s" (per second)';
    throw new SyntaxProblem(`${JSON.stringify(text)} ${why}`, example);
  }
  return readByteSize(text.slice(0, -2), example);
}

/** A rate input such as `64KB/s`, in bytes per second. */
export function parseRate(input: string, value: string): number {
  return readInput(input, value, () => readRate(value.trim()));
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatByteSize(bytesPerSecond)}/s`;
}
