// Regression gates: max-wait, baseline comparison, broken baselines and the max-regression input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../src/errors.js';
import { evaluateGates, loadBaseline, parseMaxRegression } from '../src/record/gates.js';
import { StatsRecorder, type Stats } from '../src/record/stats.js';
import type { CallOutcome } from '../src/proxy/types.js';

interface Call {
  waitMs: number;
  delayMs?: number;
  outcome?: CallOutcome;
  conn?: number;
}

function statsOf(calls: Call[], maxWaitMs: number | null = 2000): Stats {
  const rec = new StatsRecorder({
    name: 'postgres',
    target: 'db:5432',
    listen: '127.0.0.1:15432',
    seed: 7,
    policy: { delay: 'fixed(20s)', delayPer: 'call', direction: 'upstream', faults: [] },
    maxWaitMs,
    startedAt: new Date('2024-05-01T10:00:00Z'),
  });
  calls.forEach((c, i) => {
    const record = { conn: c.conn ?? 1, call: i + 1, connCall: i + 1, startMs: i * 100, endMs: null as number | null, delayMs: 0, outcome: null as CallOutcome | null, bytesUp: 1, bytesDown: 0 };
    rec.onCallStart(record);
    record.endMs = record.startMs + c.waitMs;
    record.delayMs = c.delayMs ?? 0;
    record.outcome = c.outcome ?? 'answered';
    rec.onCallEnd(record);
  });
  return rec.snapshot({ endedAt: new Date('2024-05-01T10:01:00Z') });
}

const quick = (n: number, waitMs = 10): Call[] => Array.from({ length: n }, () => ({ waitMs }));

describe('max-wait gate', () => {
  test('fails with a one-line message naming the worst call', () => {
    const calls: Call[] = [...quick(37)];
    calls[3] = { waitMs: 20_100, delayMs: 20_000, outcome: 'gave-up', conn: 4 };
    calls[10] = { waitMs: 2500, delayMs: 2400, conn: 2 };
    calls[20] = { waitMs: 2001, outcome: 'upstream-closed', conn: 3 };
    calls.push({ waitMs: 1999, delayMs: 20_000, outcome: 'gave-up' }, { waitMs: 5 }, { waitMs: 2000 });
    const report = evaluateGates(statsOf(calls));
    assert.equal(report.passed, false);
    assert.equal(report.gates.length, 1);
    const [gate] = report.gates;
    assert.equal(gate.name, 'max-wait');
    assert.equal(gate.status, 'fail');
    assert.equal(gate.limit, '2 s');
    assert.equal(gate.figure, '20.1 s (3 of 40 calls over)');
    assert.equal(gate.message, 'postgres: the app waited 20.1 s on 3 of 40 calls (max-wait 2 s); worst: connection 4, call 4, delay 20 s');
  });

  test('passes when every call ended within the limit, quick give-ups included', () => {
    const report = evaluateGates(statsOf([...quick(10), { waitMs: 310, delayMs: 20_000, outcome: 'gave-up' }, { waitMs: 1200 }]));
    assert.equal(report.passed, true);
    assert.deepEqual(report.gates, [
      { name: 'max-wait', limit: '2 s', figure: '1.2 s', status: 'pass', message: 'postgres: the app waited at most 1.2 s on all 12 calls (max-wait 2 s)' },
    ]);
  });

  test('warns (without failing) when no call went through the proxy', () => {
    const report = evaluateGates(statsOf([]));
    assert.equal(report.passed, true);
    assert.equal(report.gates[0].status, 'warn');
    assert.match(report.gates[0].message, /^postgres: no calls went through the proxy, so max-wait 2 s checked nothing/);
  });

  test('no limit, no gate', () => {
    const report = evaluateGates(statsOf([{ waitMs: 60_000 }], null));
    assert.deepEqual(report, { gates: [], baselineRows: [], passed: true });
  });
});

describe('baseline gate', () => {
  const baselineCalls = [...quick(95, 100), ...quick(5, 120), ...Array.from({ length: 20 }, () => ({ waitMs: 300, delayMs: 5000, outcome: 'gave-up' as const }))];
  const baseline = statsOf(baselineCalls);

  test('passes when p95 grew within max-regression', () => {
    const now = statsOf([...quick(95, 105), ...quick(5, 130), ...Array.from({ length: 20 }, () => ({ waitMs: 330, delayMs: 5000, outcome: 'gave-up' as const }))]);
    const report = evaluateGates(now, { baseline: { path: 'base.json', stats: baseline }, maxRegressionPct: 20 });
    assert.equal(report.passed, true);
    const gate = report.gates.find((g) => g.name === 'baseline');
    assert.equal(gate?.status, 'pass');
    assert.equal(gate?.limit, '+20% p95');
    assert.equal(gate?.figure, '+10%');
    assert.equal(gate?.message, 'postgres: p95 wait within 20% of the baseline (answered 100 ms -> 105 ms, gave up 300 ms -> 330 ms)');
    assert.deepEqual(
      report.baselineRows.map((r) => [r.outcome, r.baselineP95Ms, r.currentP95Ms, Math.round(r.changePct ?? NaN), r.status]),
      [
        ['answered', 100, 105, 5, 'pass'],
        ['gave up', 300, 330, 10, 'pass'],
      ],
    );
  });

  test('fails when a p95 grew by more than max-regression', () => {
    const now = statsOf([...quick(95, 100), ...quick(5, 120), ...Array.from({ length: 20 }, () => ({ waitMs: 1200, delayMs: 5000, outcome: 'gave-up' as const }))]);
    const report = evaluateGates(now, { baseline: { path: 'base.json', stats: baseline }, maxRegressionPct: 20 });
    assert.equal(report.passed, false);
    const gate = report.gates.find((g) => g.name === 'baseline');
    assert.equal(gate?.status, 'fail');
    assert.equal(gate?.figure, '+300%');
    assert.equal(gate?.message, 'postgres: p95 wait of gave up calls grew from 300 ms to 1.2 s (+300%, max-regression 20%)');
    assert.deepEqual(report.baselineRows.map((r) => r.status), ['pass', 'fail']);
    // max-wait itself still passes: the baseline is what caught it.
    assert.equal(report.gates.find((g) => g.name === 'max-wait')?.status, 'pass');
  });

  test('0% allows no growth beyond noise; growth under 1 ms is noise', () => {
    const base = statsOf(quick(50, 0.2));
    const jitter = statsOf(quick(50, 0.9));
    assert.equal(evaluateGates(jitter, { baseline: { path: 'b', stats: base }, maxRegressionPct: 0 }).passed, true);
    const slower = statsOf(quick(50, 3));
    const report = evaluateGates(slower, { baseline: { path: 'b', stats: base }, maxRegressionPct: 0 });
    assert.equal(report.passed, false);
    assert.match(report.gates[1].message, /p95 wait of answered calls grew from 0.2 ms to 3 ms \(\+1400%, max-regression 0%\)/);
  });

  test('fails when a run that stayed within max-wait in the baseline now exceeds it', () => {
    const now = statsOf([...quick(95, 100), ...quick(5, 120), ...Array.from({ length: 20 }, (_, i) => ({ waitMs: i === 0 ? 2600 : 300, delayMs: 5000, outcome: 'gave-up' as const }))]);
    const report = evaluateGates(now, { baseline: { path: 'b', stats: baseline } });
    const gate = report.gates.find((g) => g.name === 'baseline');
    assert.equal(gate?.status, 'fail');
    assert.equal(gate?.message, 'postgres: the baseline kept every call within max-wait 2 s, this run went over on 1 call');
  });

  test('skips a class with no calls on either side', () => {
    const now = statsOf(quick(20, 100));
    const report = evaluateGates(now, { baseline: { path: 'b', stats: baseline } });
    assert.deepEqual(
      report.baselineRows.map((r) => [r.outcome, r.status, r.note]),
      [
        ['answered', 'pass', undefined],
        ['gave up', 'skip', 'no gave up calls in this run'],
      ],
    );
    assert.equal(report.passed, true);
    const nothing = evaluateGates(statsOf([{ waitMs: 5, outcome: 'upstream-closed' }]), { baseline: { path: 'b', stats: statsOf([{ waitMs: 6, outcome: 'upstream-closed' }]) } });
    assert.equal(nothing.gates[1].status, 'warn');
    assert.equal(nothing.gates[1].message, 'postgres: nothing to compare with the baseline (no answered calls in either run, no gave up calls in either run)');
  });

  test('a baseline that could not be read is a warning, not a failure', () => {
    const report = evaluateGates(statsOf(quick(3)), { baseline: { path: 'b.json', warning: 'b.json does not exist (a first run has no baseline yet)' } });
    assert.equal(report.passed, true);
    assert.deepEqual(report.gates[1], {
      name: 'baseline',
      limit: '+20% p95',
      figure: '-',
      status: 'warn',
      message: 'postgres: not compared with a baseline: b.json does not exist (a first run has no baseline yet)',
    });
  });
});

describe('loadBaseline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slow-proxy-gates-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a stats file', () => {
    const path = join(dir, 'good.json');
    const stats = statsOf(quick(3));
    writeFileSync(path, JSON.stringify(stats));
    assert.deepEqual(loadBaseline(path), { path, stats });
  });

  test('warns on a missing, unreadable, non-JSON or foreign file', () => {
    const missing = join(dir, 'nope.json');
    assert.deepEqual(loadBaseline(missing), { path: missing, warning: `${missing} does not exist (a first run has no baseline yet)` });

    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{"version": 1,');
    const bad = loadBaseline(notJson);
    assert.ok('warning' in bad && bad.warning.startsWith(`${notJson} is not JSON: `), JSON.stringify(bad));

    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ version: 1, calls: { answered: 1, gaveUp: 0 }, waitMs: { answered: { p95: 'fast' } } }));
    assert.deepEqual(loadBaseline(foreign), { path: foreign, warning: `${foreign} is not a stats file of this action (version 1): waitMs.answered.p95 is not a number` });

    const otherVersion = join(dir, 'v2.json');
    writeFileSync(otherVersion, JSON.stringify({ ...statsOf(quick(1)), version: 2 }));
    assert.deepEqual(loadBaseline(otherVersion), { path: otherVersion, warning: `${otherVersion} is not a stats file of this action (version 1): version is not 1` });

    const aDirectory = loadBaseline(dir);
    assert.ok('warning' in aDirectory && aDirectory.warning.startsWith(`cannot read ${dir}: `), JSON.stringify(aDirectory));
  });
});

describe('parseMaxRegression', () => {
  test('reads percentages, empty is the default 20%', () => {
    assert.equal(parseMaxRegression('max-regression', '20%'), 20);
    assert.equal(parseMaxRegression('max-regression', '0%'), 0);
    assert.equal(parseMaxRegression('max-regression', ' 12.5 % '), 12.5);
    assert.equal(parseMaxRegression('max-regression', ''), 20);
  });

  test('rejects anything else with a one-line InputError', () => {
    for (const value of ['20', '-5%', 'lots', '%', '1e3%']) {
      assert.throws(() => parseMaxRegression('max-regression', value), (err: unknown) => {
        assert.ok(err instanceof InputError);
        assert.equal(err.message, `max-regression: cannot read ${JSON.stringify(value)}: expected a percentage of growth allowed for the p95 wait, e.g. 20%`);
        return true;
      });
    }
  });
});
