import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDelay, type DelayPolicy } from '../src/policy/delay.js';
import { parseFaults } from '../src/policy/faults.js';
import { createPolicyPlanner, type PolicyOptions } from '../src/policy/planner.js';
import { createRng, randomSeed } from '../src/policy/rng.js';
import type { CallRecord, ConnectionPlan, Direction, HoldContext } from '../src/proxy/types.js';

/** Delays of `policy` for calls 1..n at a fixed time. */
function byCall(policy: DelayPolicy, n: number, seed = 1): number[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => policy.sample({ call: i + 1, elapsedMs: 0, rng }));
}

function draws(text: string, n = 10_000, seed = 7): number[] {
  return byCall(parseDelay(text), n, seed);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function stddev(xs: number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function near(actual: number, expected: number, relative: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * relative, `${what}: ${actual} is not within ${relative * 100}% of ${expected}`);
}

describe('rng', () => {
  test('the same seed gives the same sequence; another seed another one', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 100 }, () => a.next());
    const seqB = Array.from({ length: 100 }, () => b.next());
    const seqC = Array.from({ length: 100 }, () => c.next());
    assert.deepEqual(seqA, seqB);
    assert.notDeepEqual(seqA, seqC);
  });

  test('next() is uniform in [0, 1)', () => {
    const rng = createRng(0);
    const xs = Array.from({ length: 10_000 }, () => rng.next());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    near(mean(xs), 0.5, 0.02, 'mean');
    const buckets = new Array<number>(10).fill(0);
    for (const x of xs) buckets[Math.floor(x * 10)] += 1;
    for (const count of buckets) near(count, 1000, 0.15, 'bucket');
  });

  test('normal() has mean 0 and standard deviation 1', () => {
    const rng = createRng(5);
    const xs = Array.from({ length: 10_000 }, () => rng.normal());
    assert.ok(Math.abs(mean(xs)) < 0.05, `mean ${mean(xs)}`);
    near(stddev(xs), 1, 0.05, 'stddev');
  });

  test('randomSeed() gives 32-bit seeds that vary', () => {
    const seeds = Array.from({ length: 20 }, () => randomSeed());
    assert.ok(seeds.every((s) => Number.isInteger(s) && s >= 0 && s <= 2 ** 32 - 1));
    assert.ok(new Set(seeds).size > 1);
  });
});

describe('delay policies as functions of call number, time and seed', () => {
  test('fixed', () => {
    assert.deepEqual(byCall(parseDelay('500ms'), 5), [500, 500, 500, 500, 500]);
    assert.equal(parseDelay('0').isZero, true);
    assert.equal(parseDelay('500ms').isZero, false);
  });

  test('ramp is an exact triangle over the global call number', () => {
    assert.deepEqual(byCall(parseDelay('ramp(from=0ms, step=250ms, to=1s)'), 13), [0, 250, 500, 750, 1000, 750, 500, 250, 0, 250, 500, 750, 1000]);
    assert.deepEqual(byCall(parseDelay('ramp(from=1s, step=500ms, to=2s)'), 7), [1000, 1500, 2000, 1500, 1000, 1500, 2000]);
    assert.deepEqual(byCall(parseDelay('ramp(from=0.1s, step=0.1s, to=0.3s)'), 6), [100, 200, 300, 200, 100, 200]);
    assert.deepEqual(byCall(parseDelay('ramp(from=1s, step=1s, to=1s)'), 3), [1000, 1000, 1000]);
    // A range that is not a whole number of steps: the last step up is shorter, the way down steps from `to`.
    assert.deepEqual(
      byCall(parseDelay('ramp(from=0ms, step=300ms, to=2s)'), 16),
      [0, 300, 600, 900, 1200, 1500, 1800, 2000, 1700, 1400, 1100, 800, 500, 200, 0, 300],
    );
    const ramp = parseDelay('ramp(from=0ms, step=250ms, to=5s)');
    assert.equal(ramp.sample({ call: 21, elapsedMs: 0, rng: createRng(1) }), 5000);
    assert.equal(ramp.sample({ call: 41, elapsedMs: 0, rng: createRng(1) }), 0);
  });

  test('spike hits every n-th call', () => {
    assert.deepEqual(byCall(parseDelay('spike(every=3, delay=30s)'), 7), [0, 0, 30_000, 0, 0, 30_000, 0]);
    assert.deepEqual(byCall(parseDelay('spike(every=3, delay=1s, else=50ms)'), 4), [50, 50, 1000, 50]);
    assert.deepEqual(byCall(parseDelay('spike(every=1, delay=1s)'), 3), [1000, 1000, 1000]);
  });

  test('phases follow the time since the proxy started', () => {
    const policy = parseDelay('phases(0s=0ms, 30s=2s, 90s=0ms)');
    const at = (elapsedMs: number) => policy.sample({ call: 1, elapsedMs, rng: createRng(1) });
    assert.deepEqual([0, 29_999, 30_000, 89_999, 90_000, 1_000_000].map(at), [0, 0, 2000, 2000, 0, 0]);
    const late = parseDelay('phases(30s=1s)');
    assert.equal(late.sample({ call: 1, elapsedMs: 10_000, rng: createRng(1) }), 0);
    assert.equal(late.sample({ call: 1, elapsedMs: 30_000, rng: createRng(1) }), 1000);
  });

  test('uniform stays in its bounds and spreads evenly', () => {
    const xs = draws('100ms..2s');
    assert.ok(xs.every((x) => x >= 100 && x < 2000));
    near(mean(xs), 1050, 0.03, 'mean');
    near(percentile(xs, 25), 575, 0.05, 'p25');
    near(percentile(xs, 75), 1525, 0.05, 'p75');
  });

  test('normal has its mean and standard deviation, and is clamped at 0', () => {
    const xs = draws('normal(mean=300ms, stddev=50ms)');
    near(mean(xs), 300, 0.01, 'mean');
    near(stddev(xs), 50, 0.05, 'stddev');
    near(percentile(xs, 50), 300, 0.02, 'median');
    const clamped = draws('normal(mean=10ms, stddev=100ms)');
    assert.ok(clamped.every((x) => x >= 0));
    near(clamped.filter((x) => x === 0).length / clamped.length, 0.46, 0.1, 'share clamped to 0');
  });

  test('lognormal has its median and p99', () => {
    const xs = draws('lognormal(median=200ms, p99=2s)');
    assert.ok(xs.every((x) => x > 0));
    near(percentile(xs, 50), 200, 0.06, 'median');
    near(percentile(xs, 99), 2000, 0.15, 'p99');
  });

  test('terms add up: 200ms with up to 50ms jitter', () => {
    const xs = draws('200ms + 0ms..50ms');
    assert.ok(xs.every((x) => x >= 200 && x < 250));
    near(mean(xs), 225, 0.01, 'mean');
    assert.deepEqual(byCall(parseDelay('100ms + spike(every=2, delay=1s)'), 4), [100, 1100, 100, 1100]);
  });

  test('a sum is clamped to 24 hours', () => {
    assert.deepEqual(byCall(parseDelay('1440m + 1s'), 1), [24 * 3600 * 1000]);
  });

  test('random policies repeat with the same seed and differ with another', () => {
    for (const text of ['100ms..2s', 'normal(mean=300ms, stddev=50ms)', 'lognormal(median=200ms, p99=2s)']) {
      assert.deepEqual(draws(text, 50, 1), draws(text, 50, 1), text);
      assert.notDeepEqual(draws(text, 50, 1), draws(text, 50, 2), text);
    }
  });

  test('isZero only when every sample is 0', () => {
    for (const text of ['0', '0ms..0ms', '0 + 0s', 'spike(every=2, delay=0ms)', 'phases(0s=0ms, 10s=0ms)', 'normal(mean=0ms, stddev=0ms)']) {
      assert.equal(parseDelay(text).isZero, true, text);
    }
    for (const text of ['1ms', '0ms..1ms', 'spike(every=2, delay=1ms)', 'lognormal(median=1ms, p99=1ms)', 'ramp(from=0ms, step=1ms, to=1ms)']) {
      assert.equal(parseDelay(text).isZero, false, text);
    }
  });
});

// --- the planner, driven with the contexts the engine would give it ----------------------------

function planner(over: Partial<PolicyOptions> = {}) {
  return createPolicyPlanner({ delay: parseDelay('0'), delayPer: 'call', direction: 'downstream', faults: [], seed: 1, ...over });
}

function open(p: ReturnType<typeof planner>, conn = 1, callsStarted = 0): ConnectionPlan {
  return p.planner({ conn, client: '127.0.0.1:1', nowMs: 0, callsStarted });
}

function hold(plan: ConnectionPlan, dir: Direction, call: number | null, unitStart: boolean, connCall: number | null = call, nowMs = 0): number {
  const ctx: HoldContext = { conn: 1, dir, call, connCall, unitStart, bytes: 10, nowMs };
  return plan[dir].hold(ctx);
}

function callRecord(call: number): CallRecord {
  return { conn: 1, call, connCall: call, startMs: 0, endMs: null, delayMs: 0, outcome: null, bytesUp: 0, bytesDown: 0 };
}

describe('planner: delay', () => {
  test('per call: the first chunk of each unit in an enabled direction draws, the rest wait behind it', () => {
    const plan = open(planner({ delay: parseDelay('ramp(from=100ms, step=100ms, to=300ms)') }));
    assert.equal(hold(plan, 'up', 1, true), 0, 'upstream is not enabled');
    assert.equal(hold(plan, 'down', 1, true), 100);
    assert.equal(hold(plan, 'down', 1, false), 0);
    assert.equal(hold(plan, 'up', 2, true), 0);
    assert.equal(hold(plan, 'down', 2, true), 200);
  });

  test('direction both delays the request and the response', () => {
    const plan = open(planner({ delay: parseDelay('300ms'), direction: 'both' }));
    assert.equal(hold(plan, 'up', 1, true), 300);
    assert.equal(hold(plan, 'up', 1, false), 0);
    assert.equal(hold(plan, 'down', 1, true), 300);
    const upOnly = open(planner({ delay: parseDelay('300ms'), direction: 'upstream' }));
    assert.equal(hold(upOnly, 'up', 1, true), 300);
    assert.equal(hold(upOnly, 'down', 1, true), 0);
  });

  test('per chunk: every chunk draws, data outside calls too', () => {
    const plan = open(planner({ delay: parseDelay('50ms'), delayPer: 'chunk' }));
    assert.equal(hold(plan, 'down', null, false), 50);
    assert.equal(hold(plan, 'down', 1, true), 50);
    assert.equal(hold(plan, 'down', 1, false), 50);
  });

  test('per connection: only the first call of a connection waits', () => {
    const p = planner({ delay: parseDelay('ramp(from=100ms, step=100ms, to=300ms)'), delayPer: 'connection' });
    const first = open(p, 1, 0);
    assert.equal(hold(first, 'down', 1, true, 1), 100);
    assert.equal(hold(first, 'down', 1, false, 1), 0);
    assert.equal(hold(first, 'down', 3, true, 2), 0);
    const second = open(p, 2, 1);
    assert.equal(hold(second, 'down', 2, true, 1), 200);
  });

  test('data outside any call is not delayed per call', () => {
    const plan = open(planner({ delay: parseDelay('500ms') }));
    assert.equal(hold(plan, 'down', null, false, null), 0);
  });

  test('setDelay applies to calls that start after it, on open connections too', () => {
    const p = planner({ delay: parseDelay('100ms') });
    const plan = open(p);
    hold(plan, 'up', 1, true);
    p.setDelay(parseDelay('900ms'));
    assert.equal(hold(plan, 'down', 1, true), 100, 'call 1 started before the change');
    hold(plan, 'up', 2, true);
    assert.equal(hold(plan, 'down', 2, true), 900);
    assert.equal(p.describe().delay, '900ms');
  });

  test('phases read the engine clock', () => {
    const plan = open(planner({ delay: parseDelay('phases(0s=0ms, 1s=700ms)') }));
    assert.equal(hold(plan, 'down', 1, true, 1, 500), 0);
    assert.equal(hold(plan, 'down', 2, true, 2, 1500), 700);
  });

  test('the same seed replays the same delays', () => {
    const run = (seed: number) => {
      const plan = open(planner({ delay: parseDelay('0ms..1s'), seed }));
      return [1, 2, 3, 4, 5].map((call) => hold(plan, 'down', call, true));
    };
    assert.deepEqual(run(9), run(9));
    assert.notDeepEqual(run(9), run(10));
  });
});

describe('planner: faults', () => {
  test('probability 0% never and 100% always; in between, the seeded share of connections', () => {
    const count = (line: string) => {
      const p = planner({ faults: parseFaults(line) });
      return Array.from({ length: 1000 }, (_, i) => open(p, i + 1)).filter((plan) => plan.refuse).length;
    };
    assert.equal(count('refuse probability=0%'), 0);
    assert.equal(count('refuse probability=100%'), 1000);
    near(count('refuse probability=25%'), 250, 0.2, 'refused connections');
  });

  test('connection-level calls= looks at the next call number at accept', () => {
    const p = planner({ faults: parseFaults('connect-delay 2s calls=3..4') });
    assert.equal(open(p, 1, 1).connectDelayMs, undefined, 'next call is 2');
    assert.equal(open(p, 2, 2).connectDelayMs, 2000);
    assert.equal(open(p, 3, 3).connectDelayMs, 2000);
    assert.equal(open(p, 4, 4).connectDelayMs, undefined);
  });

  test('hang holds for ever, only the calls in range when scoped', () => {
    const all = open(planner({ faults: parseFaults('hang') }));
    assert.equal(hold(all, 'up', 1, true), Infinity);
    assert.equal(hold(all, 'down', 1, true), 0);
    const scoped = open(planner({ faults: parseFaults('hang calls=2 direction=downstream') }));
    assert.equal(hold(scoped, 'down', 1, true), 0);
    assert.equal(hold(scoped, 'down', 2, true), Infinity);
    assert.equal(hold(scoped, 'down', null, false, null), 0);
  });

  test('timed faults start at open, or at the first in-range call start', () => {
    assert.deepEqual(open(planner({ faults: parseFaults('reset after=500ms') })).timed, [{ kind: 'reset', afterMs: 500 }]);
    const plan = open(planner({ faults: parseFaults('close after=1s calls=2..3') }));
    assert.equal(plan.timed, undefined);
    assert.equal(plan.onCallStart?.(callRecord(1)), undefined);
    assert.deepEqual(plan.onCallStart?.(callRecord(2)), [{ kind: 'close', afterMs: 1000 }]);
    assert.equal(plan.onCallStart?.(callRecord(3)), undefined, 'once per connection');
  });

  test('pacing: bandwidth and slice per direction, combined when both apply', () => {
    const plan = open(planner({ faults: parseFaults(['bandwidth 10KB/s direction=downstream', 'slice 100B delay=5ms calls=2']) }));
    const ctx = (call: number): HoldContext => ({ conn: 1, dir: 'down', call, connCall: call, unitStart: true, bytes: 10, nowMs: 0 });
    assert.equal(plan.up.pacing, undefined);
    const one = plan.down.pacing?.(ctx(1));
    assert.equal(one?.pieceBytes, 500);
    assert.equal(one?.pauseAfter(500), 50);
    const two = plan.down.pacing?.(ctx(2));
    assert.equal(two?.pieceBytes, 100);
    assert.equal(two?.pauseAfter(100), 15);
  });

  test('limit-data and slow-close go on their lanes; refuse and connect-delay on the connection', () => {
    const plan = open(planner({ faults: parseFaults(['limit-data 10KB', 'limit-data 2KB', 'slow-close 2s direction=both', 'connect-delay 1s', 'connect-delay 500ms']) }));
    assert.equal(plan.down.limitBytes, 2000);
    assert.equal(plan.up.limitBytes, undefined);
    assert.equal(plan.down.slowCloseMs, 2000);
    assert.equal(plan.up.slowCloseMs, 2000);
    assert.equal(plan.connectDelayMs, 1500);
    assert.equal(plan.refuse, undefined);
  });

  test('setFaults applies to connections accepted after it; describe() gives canonical lines', () => {
    const p = planner({ faults: parseFaults('refuse'), seed: 3 });
    const before = open(p, 1);
    p.setFaults(parseFaults('bandwidth 64KB/s\nhang calls=5'));
    const after = open(p, 2);
    assert.equal(before.refuse, true);
    assert.equal(after.refuse, undefined);
    assert.deepEqual(p.describe(), { delay: '0ms', delayPer: 'call', direction: 'downstream', faults: ['bandwidth 64KB/s', 'hang calls=5'], seed: 3 });
  });
});
