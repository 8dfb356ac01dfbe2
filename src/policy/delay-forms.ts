// The terms of the `delay` language, each a pure function of the global call number, the time
// since the proxy started and the seeded RNG. delay.ts reads the syntax and adds terms up.
import { formatDuration, readDuration } from './duration.js';
import type { Rng } from './rng.js';
import { SyntaxProblem, readCount } from './syntax.js';

export interface SampleContext {
  /** Global call number, from 1. */
  call: number;
  /** Milliseconds since the proxy started. */
  elapsedMs: number;
  rng: Rng;
}

export interface DelayTerm {
  /** Canonical text of the term. */
  text: string;
  /** True when every sample is 0 ms. */
  isZero: boolean;
  sample(ctx: SampleContext): number;
}

/** One `name=value` argument of a form such as `ramp(...)`, as written. */
export interface FormArg {
  key: string;
  value: string;
}

export const EXAMPLES = {
  fixed: '500ms',
  uniform: '100ms..2s',
  ramp: 'ramp(from=0ms, step=250ms, to=5s)',
  normal: 'normal(mean=300ms, stddev=50ms)',
  lognormal: 'lognormal(median=200ms, p99=2s)',
  spike: 'spike(every=10, delay=30s)',
  phases: 'phases(0s=0ms, 30s=2s, 90s=0ms)',
  sum: '200ms + 0ms..50ms',
} as const;

/** z of the 99th percentile of the standard normal distribution. */
const Z_P99 = 2.3263478740408408;

export function fixed(ms: number): DelayTerm {
  return { text: formatDuration(ms), isZero: ms === 0, sample: () => ms };
}

export function uniform(low: number, high: number): DelayTerm {
  const text = `${formatDuration(low)}..${formatDuration(high)}`;
  if (low > high) throw new SyntaxProblem(`the range ${text} goes down (write the smaller bound first)`, EXAMPLES.uniform);
  return { text, isZero: high === 0, sample: ({ rng }) => low + rng.next() * (high - low) };
}

/** Checks a form's named arguments once, then hands out their values by name. */
class NamedArgs {
  private readonly values = new Map<string, string>();

  constructor(
    private readonly form: keyof typeof FORMS,
    args: FormArg[],
    names: readonly string[],
  ) {
    for (const { key, value } of args) {
      if (!names.includes(key)) throw this.problem(`${form} has no argument ${JSON.stringify(key)} (it takes ${names.join(', ')})`);
      if (this.values.has(key)) throw this.problem(`${form} has ${key} twice`);
      this.values.set(key, value);
    }
  }

  duration(name: string, fallback?: number): number {
    const text = this.values.get(name);
    if (text === undefined) {
      if (fallback !== undefined) return fallback;
      throw this.problem(`${this.form} needs ${name}=<duration>`);
    }
    return readDuration(text, EXAMPLES[this.form]);
  }

  count(name: string, min: number): number {
    const text = this.values.get(name);
    if (text === undefined) throw this.problem(`${this.form} needs ${name}=<count>`);
    return readCount(text, `${this.form}'s ${name}`, min, EXAMPLES[this.form]);
  }

  problem(why: string): SyntaxProblem {
    return new SyntaxProblem(why, EXAMPLES[this.form]);
  }
}

/** A triangle over the call number: from, from+step, ..., to, to-step, ..., from, from+step, ... */
function ramp(args: FormArg[]): DelayTerm {
  const named = new NamedArgs('ramp', args, ['from', 'step', 'to']);
  const from = named.duration('from');
  const step = named.duration('step');
  const to = named.duration('to');
  if (step === 0) throw named.problem("ramp's step must be above 0");
  if (from > to) throw named.problem(`ramp's from (${formatDuration(from)}) is above its to (${formatDuration(to)})`);
  // Steps up from `from` and down from `to`; when the range is not a whole number of steps, the
  // last step up is shorter (0, 300 ms, ... 1.8 s, 2 s, 1.7 s, ... 200 ms, 0 for step=300ms, to=2s).
  const steps = Math.ceil((to - from) / step - 1e-9);
  const period = 2 * steps;
  const exact = (ms: number) => Math.round(ms * 1e6) / 1e6;
  return {
    text: `ramp(from=${formatDuration(from)}, step=${formatDuration(step)}, to=${formatDuration(to)})`,
    isZero: to === 0,
    sample: ({ call }) => {
      if (period === 0) return from;
      const pos = (((call - 1) % period) + period) % period;
      if (pos >= steps) return exact(to - (pos - steps) * step);
      return exact(from + pos * step);
    },
  };
}

function normal(args: FormArg[]): DelayTerm {
  const named = new NamedArgs('normal', args, ['mean', 'stddev']);
  const mean = named.duration('mean');
  const stddev = named.duration('stddev');
  return {
    text: `normal(mean=${formatDuration(mean)}, stddev=${formatDuration(stddev)})`,
    isZero: mean === 0 && stddev === 0,
    sample: ({ rng }) => Math.max(0, mean + stddev * rng.normal()),
  };
}

/** Long-tailed: half the calls wait less than the median, one in a hundred more than p99. */
function lognormal(args: FormArg[]): DelayTerm {
  const named = new NamedArgs('lognormal', args, ['median', 'p99']);
  const median = named.duration('median');
  const p99 = named.duration('p99');
  if (median === 0) throw named.problem("lognormal's median must be above 0");
  if (p99 < median) throw named.problem(`lognormal's p99 (${formatDuration(p99)}) is below its median (${formatDuration(median)})`);
  const sigma = Math.log(p99 / median) / Z_P99;
  return {
    text: `lognormal(median=${formatDuration(median)}, p99=${formatDuration(p99)})`,
    isZero: false,
    sample: ({ rng }) => median * Math.exp(sigma * rng.normal()),
  };
}

function spike(args: FormArg[]): DelayTerm {
  const named = new NamedArgs('spike', args, ['every', 'delay', 'else']);
  const every = named.count('every', 1);
  const delay = named.duration('delay');
  const otherwise = named.duration('else', 0);
  const elseText = otherwise === 0 ? '' : `, else=${formatDuration(otherwise)}`;
  return {
    text: `spike(every=${every}, delay=${formatDuration(delay)}${elseText})`,
    isZero: delay === 0 && otherwise === 0,
    sample: ({ call }) => (call % every === 0 ? delay : otherwise),
  };
}

/** A delay by time since the proxy started; 0 ms before the first phase. */
function phases(args: FormArg[]): DelayTerm {
  const problem = (why: string) => new SyntaxProblem(why, EXAMPLES.phases);
  if (args.length === 0) throw problem('phases needs at least one time=delay pair');
  const steps = args.map(({ key, value }) => ({
    atMs: readDuration(key, EXAMPLES.phases),
    delayMs: readDuration(value, EXAMPLES.phases),
  }));
  steps.forEach((step, i) => {
    const before = steps[i - 1];
    if (!before) return;
    if (step.atMs === before.atMs) throw problem(`phases has ${formatDuration(step.atMs)} twice`);
    if (step.atMs < before.atMs) throw problem(`phases' times must increase (${formatDuration(step.atMs)} comes after ${formatDuration(before.atMs)})`);
  });
  const latestFirst = [...steps].reverse();
  return {
    text: `phases(${steps.map((s) => `${formatDuration(s.atMs)}=${formatDuration(s.delayMs)}`).join(', ')})`,
    isZero: steps.every((s) => s.delayMs === 0),
    sample: ({ elapsedMs }) => latestFirst.find((s) => s.atMs <= elapsedMs)?.delayMs ?? 0,
  };
}

export const FORMS = { ramp, normal, lognormal, spike, phases };
