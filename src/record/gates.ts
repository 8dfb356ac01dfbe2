// Regression gates: decide pass/fail from a run's stats (max-wait) and from a baseline run's stats (max-regression).
// The max-wait limit is the one the stats were recorded with (stats.maxWait.limitMs): only the recorder saw every
// call, so only it can count the calls over the limit exactly.

import { readFileSync } from 'node:fs';
import { InputError, messageOf } from '../errors.js';
import { formatChange, formatMs, plural } from '../render/format.js';
import { STATS_VERSION, type Stats } from './stats.js';

export const DEFAULT_MAX_REGRESSION_PCT = 20;
/**
 * Growth of a p95 below this is never a regression: sub-millisecond waits double from scheduling jitter alone on a
 * shared CI runner, and a percentage of almost nothing says nothing.
 */
export const REGRESSION_NOISE_MS = 1;

export type GateStatus = 'pass' | 'fail' | 'warn';

export interface GateResult {
  name: 'max-wait' | 'baseline';
  /** The limit, for people: `2 s`, `+20% p95`. */
  limit: string;
  /** What this run measured against the limit, for people. */
  figure: string;
  status: GateStatus;
  /** One line that names the service, the figure and the limit. */
  message: string;
}

/** One outcome class compared with the baseline. */
export interface BaselineRow {
  outcome: 'answered' | 'gave up';
  baselineP95Ms: number | null;
  currentP95Ms: number | null;
  /** Null when skipped; Infinity when the baseline p95 was 0. */
  changePct: number | null;
  status: 'pass' | 'fail' | 'skip';
  /** Why a row was skipped. */
  note?: string;
}

export interface GateReport {
  gates: GateResult[];
  /** Empty unless a baseline was read. */
  baselineRows: BaselineRow[];
  /** False when any gate failed; warnings do not fail. */
  passed: boolean;
}

export type BaselineLoad = { path: string; stats: Stats } | { path: string; warning: string };

export interface GateOptions {
  /** The baseline, as `loadBaseline` read it; null or absent when no baseline is set. */
  baseline?: BaselineLoad | null;
  /** Largest accepted growth of a p95 wait, in percent; default 20. */
  maxRegressionPct?: number;
}

export function evaluateGates(stats: Stats, opts: GateOptions = {}): GateReport {
  const gates: GateResult[] = [];
  let baselineRows: BaselineRow[] = [];
  if (stats.maxWait.limitMs !== null) gates.push(maxWaitGate(stats, stats.maxWait.limitMs));
  if (opts.baseline) {
    const maxPct = opts.maxRegressionPct ?? DEFAULT_MAX_REGRESSION_PCT;
    if ('warning' in opts.baseline) {
      gates.push({
        name: 'baseline',
        limit: `+${maxPct}% p95`,
        figure: '-',
        status: 'warn',
        message: `${stats.name}: not compared with a baseline: ${opts.baseline.warning}`,
      });
    } else {
      baselineRows = compareP95(stats, opts.baseline.stats, maxPct);
      gates.push(baselineGate(stats, opts.baseline.stats, baselineRows, maxPct));
    }
  }
  return { gates, baselineRows, passed: gates.every((gate) => gate.status !== 'fail') };
}

function maxWaitGate(stats: Stats, limitMs: number): GateResult {
  const limit = formatMs(limitMs);
  const total = stats.calls.total;
  const worst = stats.maxWait.worst;
  if (stats.maxWait.exceeded > 0 && worst) {
    return {
      name: 'max-wait',
      limit,
      figure: `${formatMs(worst.waitMs)} (${stats.maxWait.exceeded} of ${plural(total, 'call')} over)`,
      status: 'fail',
      message:
        `${stats.name}: the app waited ${formatMs(worst.waitMs)} on ${stats.maxWait.exceeded} of ${plural(total, 'call')} ` +
        `(max-wait ${limit}); worst: connection ${worst.conn}, call ${worst.call}, delay ${formatMs(worst.delayMs)}`,
    };
  }
  if (total === 0) {
    return {
      name: 'max-wait',
      limit,
      figure: 'no calls',
      status: 'warn',
      message: `${stats.name}: no calls went through the proxy, so max-wait ${limit} checked nothing; does the app connect to the proxy's address?`,
    };
  }
  const longest = stats.slowest[0]?.waitMs ?? 0;
  return {
    name: 'max-wait',
    limit,
    figure: formatMs(longest),
    status: 'pass',
    message: `${stats.name}: the app waited at most ${formatMs(longest)} on all ${plural(total, 'call')} (max-wait ${limit})`,
  };
}

function compareP95(stats: Stats, baseline: Stats, maxPct: number): BaselineRow[] {
  const classes = [
    { outcome: 'answered', now: stats.waitMs.answered, before: baseline.waitMs.answered, nowCount: stats.calls.answered, beforeCount: baseline.calls.answered },
    { outcome: 'gave up', now: stats.waitMs.gaveUp, before: baseline.waitMs.gaveUp, nowCount: stats.calls.gaveUp, beforeCount: baseline.calls.gaveUp },
  ] as const;
  return classes.map(({ outcome, now, before, nowCount, beforeCount }): BaselineRow => {
    if (nowCount === 0 || beforeCount === 0) {
      const side = nowCount === 0 && beforeCount === 0 ? 'either run' : nowCount === 0 ? 'this run' : 'the baseline';
      return {
        outcome,
        baselineP95Ms: beforeCount === 0 ? null : before.p95,
        currentP95Ms: nowCount === 0 ? null : now.p95,
        changePct: null,
        status: 'skip',
        note: `no ${outcome} calls in ${side}`,
      };
    }
    const grewMs = now.p95 - before.p95;
    const changePct = before.p95 === 0 ? (grewMs === 0 ? 0 : Infinity) : (grewMs / before.p95) * 100;
    const regressed = grewMs > REGRESSION_NOISE_MS && changePct > maxPct;
    return { outcome, baselineP95Ms: before.p95, currentP95Ms: now.p95, changePct, status: regressed ? 'fail' : 'pass' };
  });
}

function baselineGate(stats: Stats, baseline: Stats, rows: BaselineRow[], maxPct: number): GateResult {
  const limit = `+${maxPct}% p95`;
  const compared = rows.filter((row) => row.status !== 'skip');
  const changes = compared.map((row) => row.changePct ?? 0);
  const figure = changes.length === 0 ? '-' : formatChange(Math.max(...changes));
  const failures = compared
    .filter((row) => row.status === 'fail')
    .map(
      (row) =>
        `p95 wait of ${row.outcome} calls grew from ${formatMs(row.baselineP95Ms)} to ${formatMs(row.currentP95Ms)} ` +
        `(${formatChange(row.changePct)}, max-regression ${maxPct}%)`,
    );
  const limitMs = stats.maxWait.limitMs;
  if (limitMs !== null && baseline.maxWait.exceeded === 0 && stats.maxWait.exceeded > 0) {
    failures.push(
      `the baseline kept every call within max-wait ${formatMs(limitMs)}, this run went over on ${plural(stats.maxWait.exceeded, 'call')}`,
    );
  }
  if (failures.length > 0) return { name: 'baseline', limit, figure, status: 'fail', message: `${stats.name}: ${failures.join('; ')}` };
  if (compared.length === 0) {
    return {
      name: 'baseline',
      limit,
      figure,
      status: 'warn',
      message: `${stats.name}: nothing to compare with the baseline (${rows.map((row) => row.note).join(', ')})`,
    };
  }
  const detail = compared.map((row) => `${row.outcome} ${formatMs(row.baselineP95Ms)} -> ${formatMs(row.currentP95Ms)}`).join(', ');
  return { name: 'baseline', limit, figure, status: 'pass', message: `${stats.name}: p95 wait within ${maxPct}% of the baseline (${detail})` };
}

/** Reads a baseline stats file; anything wrong with it is a warning, so a first run (no baseline yet) still passes. */
export function loadBaseline(path: string): BaselineLoad {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { path, warning: missing ? `${path} does not exist (a first run has no baseline yet)` : `cannot read ${path}: ${messageOf(err)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { path, warning: `${path} is not JSON: ${messageOf(err)}` };
  }
  const missing = missingBaselineField(parsed);
  if (missing) return { path, warning: `${path} is not a stats file of this action (version ${STATS_VERSION}): ${missing}` };
  return { path, stats: parsed as Stats };
}

/** The first field the gates need that the parsed file lacks, or null. */
function missingBaselineField(parsed: unknown): string | null {
  if (field(parsed, ['version']) !== STATS_VERSION) return `version is not ${STATS_VERSION}`;
  const numbers = [
    ['calls', 'answered'],
    ['calls', 'gaveUp'],
    ['waitMs', 'answered', 'p95'],
    ['waitMs', 'gaveUp', 'p95'],
    ['maxWait', 'exceeded'],
  ];
  for (const path of numbers) {
    if (typeof field(parsed, path) !== 'number') return `${path.join('.')} is not a number`;
  }
  return null;
}

function field(value: unknown, path: string[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** `max-regression`: a percentage such as `20%` or `0%`; empty means the default 20%. */
export function parseMaxRegression(input: string, value: string): number {
  const text = value.trim();
  if (text === '') return DEFAULT_MAX_REGRESSION_PCT;
  const match = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (!match) throw new InputError(input, value, 'expected a percentage of growth allowed for the p95 wait', '20%');
  return Number(match[1]);
}
