// The regression gates through the action as the runner runs it: real clients through the proxy the
// bundled main step started, the gates applied by the post step (or by main with `run`), read back
// as annotations, exit codes, the stats file and the job summary.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import {
  Job,
  callThrough,
  readStats,
  runPost,
  runStep,
  startUpstream,
  transcript,
  waitFor,
  type StepResult,
  type Upstream,
} from './support/action-runner.js';
import type { SessionStats } from '../src/session.js';

const jobs: Job[] = [];
const upstreams: Upstream[] = [];

async function newUpstream(): Promise<Upstream> {
  const upstream = await startUpstream();
  upstreams.push(upstream);
  return upstream;
}

function newJob(): Job {
  const job = new Job();
  jobs.push(job);
  return job;
}

after(async () => {
  for (const job of jobs) job.remove();
  await Promise.all(upstreams.map((u) => u.close()));
});

/** A client whose timeout fires after `giveUpMs`: it destroys its socket without waiting for the answer. */
function impatientCall(port: number, giveUpMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('query'));
    socket.once('data', () => {
      socket.destroy();
      reject(new Error(`answered within its ${giveUpMs} ms timeout: the delay did not hold the call`));
    });
    socket.once('error', reject);
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, giveUpMs);
  });
}

function assertMainOk(main: StepResult): void {
  assert.equal(main.code, 0, transcript(main));
  assert.deepEqual(main.annotations, [], transcript(main));
}

function statsOf(main: StepResult): SessionStats {
  const stats = readStats(main.outputs['stats-file']);
  assert.ok(stats, `no stats file at ${main.outputs['stats-file']}`);
  return stats;
}

/** The summary's row of one gate: `| name | limit | figure | result | detail |`. */
function gateRow(summary: string, gate: string): string[] {
  const line = summary.split('\n').find((l) => l.startsWith(`| ${gate} | `));
  assert.ok(line, `no ${gate} row in the gates table:\n${summary}`);
  return line.slice(2, -2).split(' | ');
}

/** The rows of the summary's baseline comparison table. */
function baselineRows(summary: string): string[] {
  const section = summary.split('#### Compared with the baseline\n\n')[1];
  assert.ok(section, `no baseline comparison in the summary:\n${summary}`);
  const lines = section.split('\n');
  const end = lines.indexOf('');
  return lines.slice(2, end === -1 ? undefined : end);
}

describe('max-wait', () => {
  test('a client that gives up after 200 ms passes max-wait 500ms against a 1200ms delay', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'impatient', delay: '1200ms', 'max-wait': '500ms' };
    const main = await runStep(job, 'main', inputs);
    assertMainOk(main);
    await impatientCall(Number(main.outputs.port), 200);
    await waitFor('the give-up in the stats file', () => readStats(main.outputs['stats-file'])?.calls.gaveUp === 1, 2500);

    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.deepEqual(post.annotations, [], transcript(post));
    const stats = statsOf(main);
    assert.equal(stats.maxWait.exceeded, 0);
    assert.equal(stats.maxWait.limitMs, 500);
    assert.match(post.summary, /^### ✅ impatient: the app gave up within \d+ ms on all 1 delayed call/);
    const [, limit, figure, result] = gateRow(post.summary, 'max-wait');
    assert.equal(limit, '500 ms');
    const figureMs = Number(/^(\d+) ms$/.exec(figure)?.[1]);
    assert.ok(figureMs >= 180 && figureMs < 500, `the longest wait of a client that gives up at 200 ms: ${figure}`);
    assert.equal(result, 'pass');
  });

  test('a client without a timeout fails max-wait 500ms against a 1200ms delay, with one error annotation', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'patient', delay: '1200ms', 'max-wait': '500ms' };
    const main = await runStep(job, 'main', inputs);
    assertMainOk(main);
    const started = performance.now();
    assert.equal(await callThrough(Number(main.outputs.port), 'query'), 're:query');
    const waited = performance.now() - started;
    assert.ok(waited >= 1150 && waited < 4000, `the call waited ${Math.round(waited)} ms`);

    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 1, transcript(post));
    assert.equal(post.errors.length, 1, `expected exactly one error annotation: ${transcript(post)}`);
    const [error] = post.errors;
    assert.equal(error.properties.title, 'slow-proxy max-wait');
    assert.match(error.message, /^patient: the app waited 1\.\d s on 1 of 1 call \(max-wait 500 ms\); worst: connection 1, call 1, delay 1\.2 s$/);
    const stats = statsOf(main);
    assert.equal(stats.maxWait.exceeded, 1);
    assert.equal(stats.maxWait.worst?.delayMs, 1200);
    assert.ok(stats.endedAt, 'the stats are not final');

    assert.match(post.summary, /^### ❌ patient: the app waited 1\.\d s on 1 call \(max-wait 500 ms\)/);
    const [, limit, figure, result, detail] = gateRow(post.summary, 'max-wait');
    assert.equal(limit, '500 ms');
    assert.match(figure, /^1\.\d s \(1 of 1 call over\)$/);
    assert.equal(result, 'FAIL');
    assert.equal(detail, error.message);
  });

  test('a generous max-wait 5s passes the same call', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'generous', delay: '1200ms', 'max-wait': '5s' };
    const main = await runStep(job, 'main', inputs);
    assertMainOk(main);
    assert.equal(await callThrough(Number(main.outputs.port), 'query'), 're:query');
    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.deepEqual(post.annotations, [], transcript(post));
    assert.equal(readStats(main.outputs['stats-file'])?.maxWait.exceeded, 0);
    assert.match(post.summary, /^### ✅ generous: the app waited at most 1\.\d s on all 1 call \(max-wait 5 s\)/);
    const [, limit, figure, result] = gateRow(post.summary, 'max-wait');
    assert.deepEqual([limit, result], ['5 s', 'pass']);
    assert.match(figure, /^1\.\d s$/);
  });

  test('a call still hanging when the job ends counts against max-wait', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const inputs = { target: upstream.target, name: 'hung', faults: 'hang', 'max-wait': '500ms' };
    const main = await runStep(job, 'main', inputs);
    assertMainOk(main);
    const client = net.connect(Number(main.outputs.port), '127.0.0.1', () => client.write('query'));
    client.on('error', () => {});
    try {
      await waitFor('a wait over 500 ms in the live stats', () => (readStats(main.outputs['stats-file'])?.maxWait.exceeded ?? 0) > 0, 3000);
      const post = await runPost(job, main, inputs);
      assert.equal(post.code, 1, transcript(post));
      assert.equal(post.errors.length, 1, `expected exactly one error annotation: ${transcript(post)}`);
      assert.match(post.errors[0].message, /^hung: the app waited \d(\.\d)? s on 1 of 1 call \(max-wait 500 ms\); worst: connection 1, call 1, /);
      const stats = statsOf(main);
      assert.equal(stats.maxWait.exceeded, 1);
      assert.equal(stats.calls.total, 1);
    } finally {
      client.destroy();
    }
  });

  test('with run, main itself fails on the gate, once, and post does nothing', async () => {
    const job = newJob();
    const upstream = await newUpstream();
    const client =
      "const s = require('node:net').connect(Number(process.env.SLOW_PROXY_PORT), '127.0.0.1', () => s.write('q')); s.on('data', () => s.end());";
    const inputs = { target: upstream.target, name: 'run-gate', delay: '800ms', 'max-wait': '300ms', run: `node -e "${client}"` };
    const main = await runStep(job, 'main', inputs);
    assert.equal(main.code, 1, transcript(main));
    assert.equal(main.errors.length, 1, `expected exactly one error annotation: ${transcript(main)}`);
    assert.match(main.errors[0].message, /^run-gate: the app waited \d+ ms on 1 of 1 call \(max-wait 300 ms\); worst: connection 1, call 1, delay 800 ms$/);
    assert.match(main.summary, /^### ❌ run-gate:/);
    const post = await runPost(job, main, inputs);
    assert.equal(post.code, 0, transcript(post));
    assert.equal(post.stdout, '');
  });
});

describe('baseline', () => {
  /**
   * A run with `calls` calls through a 150ms delay and a baseline the test writes while the job runs:
   * `craft` gets the run's own stats file (live, all calls done) and returns the baseline file's text.
   */
  async function runAgainstBaseline(
    name: string,
    inputs: Record<string, string>,
    craft: ((live: SessionStats) => string) | null,
  ): Promise<{ post: StepResult; live: SessionStats; baselineFile: string }> {
    const job = newJob();
    const upstream = await newUpstream();
    const baselineFile = join(job.dir, 'baseline-stats.json');
    const all = { target: upstream.target, name, delay: '150ms', baseline: baselineFile, ...inputs };
    const main = await runStep(job, 'main', all);
    assertMainOk(main);
    const port = Number(main.outputs.port);
    for (let i = 0; i < 3; i++) assert.equal(await callThrough(port, `q${i}`), `re:q${i}`);
    const live = await waitFor('3 answered calls in the stats file', () => {
      const stats = readStats(main.outputs['stats-file']);
      return stats?.calls.answered === 3 ? stats : null;
    }, 2500);
    if (craft) writeFileSync(baselineFile, craft(structuredClone(live)));
    const post = await runPost(job, main, all);
    return { post, live, baselineFile };
  }

  /** The live stats as a finished baseline run with answered p95 set to `p95`. */
  function baselineWith(p95: number) {
    return (stats: SessionStats): string => {
      stats.endedAt = new Date().toISOString();
      stats.waitMs.answered.p95 = p95;
      return JSON.stringify(stats, null, 2);
    };
  }

  test('passes when the p95 wait did not grow', async () => {
    let p95 = 0;
    const { post, live } = await runAgainstBaseline('same', {}, (stats) => baselineWith((p95 = stats.waitMs.answered.p95))(stats));
    assert.ok(live.waitMs.answered.p95 >= 140, `p95 of calls through a 150ms delay: ${live.waitMs.answered.p95}`);
    assert.equal(post.code, 0, transcript(post));
    assert.deepEqual(post.annotations, [], transcript(post));
    const [, limit, figure, result] = gateRow(post.summary, 'baseline');
    assert.deepEqual([limit, figure, result], ['+20% p95', '+0%', 'pass']);
    assert.match(post.summary, /#### Compared with the baseline\n\n\| Outcome \| Baseline p95 \| This run p95 \| Change \| Result \|/);
    assert.deepEqual(baselineRows(post.summary), [
      `| answered | ${Math.round(p95)} ms | ${Math.round(p95)} ms | +0% | pass |`,
      '| gave up | - | - | - | skipped: no gave up calls in either run |',
    ]);
  });

  test('fails when the p95 wait grew past max-regression, with one error annotation', async () => {
    let before = 0;
    const { post, live } = await runAgainstBaseline('slower', { 'max-regression': '20%' }, (stats) =>
      baselineWith((before = stats.waitMs.answered.p95 / 2))(stats),
    );
    assert.equal(post.code, 1, transcript(post));
    assert.equal(post.errors.length, 1, `expected exactly one error annotation: ${transcript(post)}`);
    assert.equal(post.errors[0].properties.title, 'slow-proxy baseline');
    const ms = (v: number) => `${Math.round(v)} ms`;
    assert.equal(
      post.errors[0].message,
      `slower: p95 wait of answered calls grew from ${ms(before)} to ${ms(live.waitMs.answered.p95)} (+100%, max-regression 20%)`,
    );
    const [, limit, figure, result] = gateRow(post.summary, 'baseline');
    assert.deepEqual([limit, figure, result], ['+20% p95', '+100%', 'FAIL']);
    assert.equal(baselineRows(post.summary)[0], `| answered | ${ms(before)} | ${ms(live.waitMs.answered.p95)} | +100% | FAIL |`);
  });

  test('passes the same growth under a larger max-regression', async () => {
    const { post } = await runAgainstBaseline('tolerant', { 'max-regression': '150%' }, (stats) => baselineWith(stats.waitMs.answered.p95 / 2)(stats));
    assert.equal(post.code, 0, transcript(post));
    assert.deepEqual(post.annotations, [], transcript(post));
    const [, limit, figure, result] = gateRow(post.summary, 'baseline');
    assert.deepEqual([limit, figure, result], ['+150% p95', '+100%', 'pass']);
  });

  const broken: { what: string; craft: ((live: SessionStats) => string) | null; warning: RegExp }[] = [
    { what: 'a missing baseline file', craft: null, warning: /does not exist \(a first run has no baseline yet\)$/ },
    { what: 'a baseline that is not JSON', craft: (stats) => JSON.stringify(stats).slice(0, 40), warning: /is not JSON: / },
    { what: 'a baseline that is not a stats file', craft: () => '{"calls": 3}', warning: /is not a stats file of this action/ },
  ];
  for (const { what, craft, warning } of broken) {
    test(`${what} warns and does not fail`, async () => {
      const { post, baselineFile } = await runAgainstBaseline('broken', {}, craft);
      assert.equal(post.code, 0, transcript(post));
      assert.deepEqual(post.errors, [], transcript(post));
      assert.equal(post.warnings.length, 1, `expected exactly one warning: ${transcript(post)}`);
      assert.equal(post.warnings[0].properties.title, 'slow-proxy baseline');
      assert.ok(post.warnings[0].message.startsWith(`broken: not compared with a baseline: ${baselineFile}`), post.warnings[0].message);
      assert.match(post.warnings[0].message, warning);
      const [, limit, figure, result] = gateRow(post.summary, 'baseline');
      assert.deepEqual([limit, figure, result], ['+20% p95', '-', 'warning']);
      assert.doesNotMatch(post.summary, /Compared with the baseline/);
    });
  }
});
